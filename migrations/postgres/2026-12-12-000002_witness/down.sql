DROP TABLE audit_witness_lease;
DROP TABLE audit_cosignatures;
DROP TABLE audit_checkpoint_notes;
