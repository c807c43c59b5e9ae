DROP INDEX login_throttle_last_failed;
DROP TABLE login_throttle;
ALTER TABLE halls DROP COLUMN token_generation;
ALTER TABLE users DROP COLUMN token_generation;
ALTER TABLE users DROP COLUMN disabled_at;
INSERT INTO service_secrets (name, value)
    SELECT 'token_hmac_key', secret FROM token_keys ORDER BY created_at DESC LIMIT 1;
DROP TABLE token_keys;
