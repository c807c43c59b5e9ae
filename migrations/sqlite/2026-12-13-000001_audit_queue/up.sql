-- The same queue as on PostgreSQL, for one schema on both backends. SQLite has one writer at a
-- time, whose batch (group commit) appends events to the chain directly: nothing is queued here.
CREATE TABLE audit_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    work_order TEXT,
    detail TEXT NOT NULL,
    queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
