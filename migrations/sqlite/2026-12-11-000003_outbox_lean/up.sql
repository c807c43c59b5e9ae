-- Fewer pages per mail written in a step's transaction (two instead of four): the row is
-- stored in its primary key's tree (no rowid tree beside it), and one index holds the pending
-- rows, which the worker sorts by when they are due (the backlog, small unless the mail
-- server is away); failed rows have their own small index; sent rows, nearly all of them, are
-- listed in key order from the table itself.
CREATE TABLE outbox_keyed (
    id TEXT PRIMARY KEY NOT NULL,
    work_order_id TEXT,
    event TEXT NOT NULL,
    recipient TEXT NOT NULL,
    facts TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
) WITHOUT ROWID;
INSERT INTO outbox_keyed (id, work_order_id, event, recipient, facts, state, attempts,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, sent_at)
SELECT id, work_order_id, event, recipient, facts, state, attempts,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, sent_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_keyed RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (id) WHERE state = 'failed';
