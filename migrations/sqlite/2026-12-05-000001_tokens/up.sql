-- Login-token signing keys: the newest key not retired signs, every key not retired verifies.
CREATE TABLE token_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
-- The one HMAC secret of earlier versions becomes the first key (tokens without a `kid` are
-- checked against it), so tokens issued before the upgrade keep working until they expire.
INSERT INTO token_keys (kid, secret, created_at)
    SELECT 'tk-legacy', value, CURRENT_TIMESTAMP FROM service_secrets WHERE name = 'token_hmac_key';
DELETE FROM service_secrets WHERE name = 'token_hmac_key';

-- Revocation: a token carries the generations current when it was issued; a bump refuses it.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE halls ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

-- Failed logins per (username, client address); username '*' counts every name from the address.
CREATE TABLE login_throttle (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failed_at TIMESTAMP NOT NULL,
    blocked_until TIMESTAMP,
    PRIMARY KEY (username, address)
);
CREATE INDEX login_throttle_last_failed ON login_throttle (last_failed_at);
