-- Audit events committed by a step but not yet in the chain. A step inserts its event here in
-- its own transaction, taking no row every other writer takes; the sequencer (one instance at a
-- time, under an advisory lock) moves them into audit_events in batches, assigning seq,
-- prev_hash and the leaf hash in `id` order, and deletes them in the same transaction.
-- `id` comes from a sequence with no per-session cache, so a step that began after another
-- committed gets a larger id: the chain keeps every order's own history in order.
CREATE TABLE audit_queue (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    work_order TEXT,
    detail TEXT NOT NULL,
    queued_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
