ALTER TABLE halls DROP COLUMN deactivated_at;
ALTER TABLE halls DROP COLUMN updated_at;
ALTER TABLE halls DROP COLUMN version;
ALTER TABLE users DROP COLUMN password_change_required;
