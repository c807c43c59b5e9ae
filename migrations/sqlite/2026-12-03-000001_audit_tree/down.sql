ALTER TABLE audit_head DROP COLUMN frontier;
DROP TABLE audit_tree_nodes;
