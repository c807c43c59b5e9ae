-- SLA timers: the reminder's time, and when the reminder and the escalation fired (each once).
ALTER TABLE work_orders ADD COLUMN suspend_at TIMESTAMP;
ALTER TABLE work_orders ADD COLUMN remind_at TIMESTAMP;
ALTER TABLE work_orders ADD COLUMN reminded_at TIMESTAMP;
ALTER TABLE work_orders ADD COLUMN escalated_at TIMESTAMP;
UPDATE work_orders SET remind_at = due_at;
-- The scheduler's three questions, each an index range over the orders still open or claimed.
CREATE INDEX work_orders_remind_due ON work_orders (remind_at)
    WHERE state IN ('open', 'claimed') AND reminded_at IS NULL;
CREATE INDEX work_orders_escalate_due ON work_orders (due_at)
    WHERE state IN ('open', 'claimed') AND escalated_at IS NULL;
CREATE INDEX work_orders_expire_due ON work_orders (deadline_at)
    WHERE state IN ('open', 'claimed');
CREATE INDEX work_orders_suspend ON work_orders (suspend_at, id) WHERE suspend_at IS NOT NULL;

-- One row per mail and recipient, written in the transaction of the change that causes it.
CREATE TABLE outbox (
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
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state, id);

-- How far tests have moved the service's clock (testing.movable_clock), shared by every instance.
CREATE TABLE clock_offset (
    id INTEGER PRIMARY KEY NOT NULL,
    offset_seconds BIGINT NOT NULL
);
INSERT INTO clock_offset (id, offset_seconds) VALUES (1, 0);
