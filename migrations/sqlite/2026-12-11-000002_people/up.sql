-- An admin's password reset: the user changes it before anything else.
ALTER TABLE users ADD COLUMN password_change_required BOOLEAN NOT NULL DEFAULT FALSE;
-- Halls are updated under If-Match (version) and deactivated rather than deleted.
ALTER TABLE halls ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE halls ADD COLUMN updated_at TIMESTAMP;
ALTER TABLE halls ADD COLUMN deactivated_at TIMESTAMP;
