DROP INDEX outbox_failed;
CREATE INDEX outbox_state ON outbox (state, id);
