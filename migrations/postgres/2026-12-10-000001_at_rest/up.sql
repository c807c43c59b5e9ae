-- Encryption at rest (docs/security.md). One data key per subscriber (msisdn), wrapped by the
-- KEK (kept outside the database); `wrapped` is NULL once the key is shredded.
CREATE TABLE data_keys (
    id TEXT PRIMARY KEY NOT NULL,
    msisdn TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped TEXT,
    created_at TIMESTAMP NOT NULL,
    shredded_at TIMESTAMP
);
-- At most one live key per subscriber; a shredded one stays as a tombstone.
CREATE UNIQUE INDEX data_keys_one_live_per_msisdn ON data_keys (msisdn) WHERE shredded_at IS NULL;
-- KEK rotation re-wraps the keys not yet under the new KEK.
CREATE INDEX data_keys_kek ON data_keys (kek_id, id) WHERE wrapped IS NOT NULL;

-- expected_name is sealed; its masked form is kept for the views that never decrypt, and
-- a keyed HMAC (blind index) for exact search.
ALTER TABLE work_orders ADD COLUMN expected_name_masked TEXT;
ALTER TABLE work_orders ADD COLUMN expected_name_index TEXT;
CREATE INDEX work_orders_expected_name_index ON work_orders (expected_name_index)
    WHERE expected_name_index IS NOT NULL;

-- verification_results.jws is sealed; the document's number and name are searchable by index.
ALTER TABLE verification_results ADD COLUMN document_number_index TEXT;
ALTER TABLE verification_results ADD COLUMN document_name_index TEXT;
CREATE INDEX verification_results_number_index ON verification_results (document_number_index)
    WHERE document_number_index IS NOT NULL;
CREATE INDEX verification_results_name_index ON verification_results (document_name_index)
    WHERE document_name_index IS NOT NULL;

-- Evidence objects sealed under a data key (NULL: a plain object written before this
-- migration); shredded_at once the subscriber is shredded, object_deleted once its object is
-- gone from the store (retried by the next retention run until then).
ALTER TABLE evidence_files ADD COLUMN data_key_id TEXT;
ALTER TABLE evidence_files ADD COLUMN shredded_at TIMESTAMP;
ALTER TABLE evidence_files ADD COLUMN object_deleted BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX evidence_files_purge ON evidence_files (shredded_at) WHERE NOT object_deleted AND shredded_at IS NOT NULL;
