CREATE TABLE outbox_rowid (
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
);
INSERT INTO outbox_rowid (id, work_order_id, event, recipient, facts, state, attempts,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, sent_at)
SELECT id, work_order_id, event, recipient, facts, state, attempts,
    next_attempt_at, lease_owner, lease_until, last_error, created_at, sent_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, id);
