-- Fewer index pages per mail written in a step's transaction: only pending and failed rows are
-- indexed; sent rows, nearly all of them, are listed in key order through the primary key.
DROP INDEX outbox_state;
CREATE INDEX outbox_failed ON outbox (id) WHERE state = 'failed';
