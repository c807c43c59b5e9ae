//! JWS in and out: hall results verified, the service's own statements signed.

pub mod jws;
pub mod keys;
pub mod receipt;

pub use keys::{Alg, HallPublicKey, KeyError, ServiceKey};
