//! The audit trail: a hash chain whose event hashes are the leaves of an RFC 9162 Merkle tree.
//! `chain` is pure and reusable offline, the reference; `tree` (pure too) is the tree as it is
//! stored, perfect subtrees and the frontier, so heads and proofs read O(log n) hashes; `log`
//! appends inside the caller's transaction; `verify` walks the stored chain and tree.

pub mod chain;
pub(crate) mod checkpoint;
pub mod log;
pub mod note;
pub(crate) mod sequencer;
pub mod tree;
pub mod verify;

pub use crate::domain::AuditAction;
pub use log::Recorder;
pub(crate) use log::{append, lock};
pub(crate) use verify::verify_all;
pub use verify::{Leaves, TreeCheck, VerifyReport};
