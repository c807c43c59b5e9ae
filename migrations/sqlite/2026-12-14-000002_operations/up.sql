-- The operations overview counts completions per day over a window of up to 90 days: a range
-- of this index, where the work_orders_state index would make it read every completed order
-- ever (a completed order changes no more, so its updated_at is when it completed).
CREATE INDEX work_orders_state_updated ON work_orders (state, updated_at);
