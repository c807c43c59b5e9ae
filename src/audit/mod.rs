//! The audit trail: a hash chain whose event hashes are the leaves of an RFC 9162 Merkle tree.
//! `chain` is pure and reusable offline; `log` appends inside the caller's transaction.

pub mod chain;
pub mod checkpoint;
pub mod log;
pub mod tree;

pub use log::{append, lock, verify_all, Recorder, TreeCheck, VerifyReport};
