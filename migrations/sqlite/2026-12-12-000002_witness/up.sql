-- Checkpoints as C2SP signed notes, signed by the service key (docs/audit.md, "Signed notes").
-- Kept like audit_checkpoints: one per size, the first signed wins.
CREATE TABLE audit_checkpoint_notes (
    size BIGINT PRIMARY KEY NOT NULL,
    note TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);

-- Witness cosignatures on those notes, one line per witness (its vkey) and size; a witness's
-- largest size here is where the next consistency proof to it starts.
CREATE TABLE audit_cosignatures (
    witness TEXT NOT NULL,
    size BIGINT NOT NULL,
    line TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (witness, size)
);

-- Which instance takes the periodic checkpoint and pushes it to the witnesses: a lease,
-- taken by a guarded UPDATE, so instances sharing the database do not all do it at once.
CREATE TABLE audit_witness_lease (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    owner TEXT,
    until TIMESTAMP
);
INSERT INTO audit_witness_lease (id, owner, until) VALUES (1, NULL, NULL);
