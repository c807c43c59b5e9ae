-- Device-key enrolment: a hall staff member's browser key (WebCrypto, its private half never
-- leaves the device) asks to become one of their hall's keys; an admin approves it (the key is
-- then registered in hall_keys, in the same transaction) or rejects it.
-- `state` is `pending`, `approved` or `rejected`; `decided_by`, `decided_at` (and for a
-- rejection `reason`) are set by the decision.
CREATE TABLE device_key_requests (
    id TEXT PRIMARY KEY NOT NULL,
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    hall_id TEXT NOT NULL REFERENCES halls(id),
    username TEXT NOT NULL REFERENCES users(username),
    state TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    decided_by TEXT,
    decided_at TIMESTAMP,
    reason TEXT
);
-- A kid is asked for by one live request at a time: two staff members racing for one kid
-- meet here, whatever the service checked before.
CREATE UNIQUE INDEX device_key_requests_live_kid ON device_key_requests (kid)
    WHERE state IN ('pending', 'approved');
CREATE INDEX device_key_requests_username ON device_key_requests (username, requested_at);
CREATE INDEX device_key_requests_requested ON device_key_requests (requested_at);
