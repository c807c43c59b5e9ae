-- The Merkle tree's perfect subtrees of level >= 1, each stored by the append that completes
-- it (level 0 are the events' own hashes), so heads and proofs read O(log n) hashes, not
-- every event. Append-only like audit_events.
CREATE TABLE audit_tree_nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx BIGINT NOT NULL CHECK (idx >= 0),
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE FUNCTION audit_tree_nodes_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_tree_nodes is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_tree_nodes_no_update_delete BEFORE UPDATE OR DELETE ON audit_tree_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_tree_nodes_refuse_change();
CREATE TRIGGER audit_tree_nodes_no_truncate BEFORE TRUNCATE ON audit_tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_nodes_refuse_change();

-- The roots of the log's right edge at its size, updated with it (docs/audit.md). NULL for
-- a log written before this migration until the service builds its tree at start.
ALTER TABLE audit_head ADD COLUMN frontier TEXT;
UPDATE audit_head SET frontier = '' WHERE size = 0;
