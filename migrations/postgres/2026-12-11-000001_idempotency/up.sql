-- Idempotent retries: one row per (caller, Idempotency-Key). In flight while `response` is
-- null (held by the request `attempt` until `lease_until`, wall clock); complete once the
-- first response is stored (sealed). Forgotten after `expires_at` (service clock).
CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    attempt TEXT NOT NULL,
    lease_until TIMESTAMP,
    request_digest TEXT,
    request_bytes BIGINT,
    status INTEGER,
    response TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (caller, idem_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
