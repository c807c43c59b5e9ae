-- Evidence files the claiming hall uploads for an order. The bytes live in the object store
-- under their SHA-256; a row is written only after its object is complete.
CREATE TABLE evidence_files (
    id TEXT PRIMARY KEY NOT NULL,
    work_order_id TEXT NOT NULL REFERENCES work_orders(id),
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    hall_id TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TIMESTAMP NOT NULL
);
-- The same bytes uploaded twice as the same kind are one file of the order.
CREATE UNIQUE INDEX evidence_files_order_kind_sha ON evidence_files (work_order_id, kind, sha256);
CREATE INDEX evidence_files_sha ON evidence_files (sha256);
