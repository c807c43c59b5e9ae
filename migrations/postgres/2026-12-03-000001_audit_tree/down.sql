ALTER TABLE audit_head DROP COLUMN frontier;
DROP TABLE audit_tree_nodes;
DROP FUNCTION audit_tree_nodes_refuse_change();
