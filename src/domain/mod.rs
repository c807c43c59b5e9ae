//! Pure domain logic: no actix, no diesel, time passed in.

pub mod access;
pub mod audit_action;
pub mod calendar;
pub mod device_key;
pub mod document;
pub mod error;
pub mod evidence;
pub mod id_number;
pub mod idempotency;
pub mod ids;
pub mod login_throttle;
pub mod masking;
pub mod msisdn;
pub mod notice;
pub mod person_name;
pub mod quality;
pub mod region;
pub mod sla;
pub mod text;
pub mod verification;
pub mod work_order;

pub use audit_action::AuditAction;
pub use error::{Detail, DomainError, Invalid};
pub use ids::{EnrolmentId, HallId, Username, VerificationId, WorkOrderId};

/// Lowercase hex SHA-256, the digest every hash in the contract uses.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
