-- The Merkle tree's perfect subtrees of level >= 1, each stored by the append that completes
-- it (level 0 are the events' own hashes), so heads and proofs read O(log n) hashes, not
-- every event. Append-only like audit_events.
CREATE TABLE audit_tree_nodes (
    level INTEGER NOT NULL CHECK (level >= 1),
    idx BIGINT NOT NULL CHECK (idx >= 0),
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

CREATE TRIGGER audit_tree_nodes_no_update BEFORE UPDATE ON audit_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_nodes is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_tree_nodes_no_delete BEFORE DELETE ON audit_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_nodes is append-only: DELETE refused');
END;

-- The roots of the log's right edge at its size, updated with it (docs/audit.md). NULL for
-- a log written before this migration until the service builds its tree at start.
ALTER TABLE audit_head ADD COLUMN frontier TEXT;
UPDATE audit_head SET frontier = '' WHERE size = 0;
