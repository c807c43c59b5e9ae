//! The completion receipt: the service's signed statement that an order was completed on
//! the strength of one particular signed result.

use serde::{Deserialize, Serialize};

use super::keys::{KeyError, ServiceKey};

/// Issuer named in every receipt.
pub const ISSUER: &str = "crossprov";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptClaims {
    pub iss: String,
    pub wo: String,
    pub reference: String,
    pub msisdn: String,
    pub outcome: String,
    /// Hex SHA-256 of the submitted JWS, exactly as stored.
    pub result_sha256: String,
    pub completed_by: String,
    pub iat: i64,
}

pub fn sign(key: &ServiceKey, claims: &ReceiptClaims) -> Result<String, KeyError> {
    key.sign(claims)
}
