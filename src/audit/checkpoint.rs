//! Signed checkpoints of the log's head, and checking a log against one kept elsewhere.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::chain;
use super::log::VerifyReport;
use crate::signing::jws::CompactJws;
use crate::signing::HallPublicKey;
use crate::storage::{secrets, DbConn};

/// The payload of a checkpoint JWS; `at` in seconds since the epoch, as in every JWS here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    pub size: u64,
    pub head: String,
    pub at: i64,
}

/// Why a log does not agree with a checkpoint; one variant per failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint file cannot be read: {0}")]
    Unreadable(String),
    #[error("the checkpoint is not a signed checkpoint")]
    Malformed,
    #[error("the checkpoint's key is not one of the service's keys")]
    UnknownKey,
    #[error("the checkpoint's signature does not verify")]
    BadSignature,
    #[error("the log holds {intact} intact events, fewer than the checkpoint's {size}: its tail was cut or altered")]
    Truncated { intact: u64, size: u64 },
    #[error("the first {size} events do not hash to the checkpoint's head: the log was rewritten")]
    HeadMismatch { size: u64 },
}

/// Verifies the signature with the service keys recorded in the database, then that the
/// intact prefix of the log reproduces the signed head.
pub fn check(
    conn: &mut DbConn,
    jws: &str,
    report: &VerifyReport,
) -> Result<CheckpointClaims, CheckpointError> {
    let parsed = CompactJws::parse(jws).map_err(|_| CheckpointError::Malformed)?;
    let kid = parsed.kid.clone().ok_or(CheckpointError::UnknownKey)?;
    let jwk = secrets::published_key(conn, &kid)
        .map_err(|e| CheckpointError::Unreadable(e.to_string()))?
        .ok_or(CheckpointError::UnknownKey)?;
    let key = serde_json::from_str(&jwk)
        .ok()
        .and_then(|v| HallPublicKey::from_jwk(&v))
        .ok_or(CheckpointError::UnknownKey)?;
    parsed
        .verify(&key)
        .map_err(|_| CheckpointError::BadSignature)?;
    let claims: CheckpointClaims =
        serde_json::from_slice(&parsed.payload).map_err(|_| CheckpointError::Malformed)?;
    let intact = report.leaves.len() as u64;
    if intact < claims.size {
        return Err(CheckpointError::Truncated {
            intact,
            size: claims.size,
        });
    }
    let head = chain::tree_head(&report.leaves[..claims.size as usize]);
    if chain::to_hex(&head) != claims.head {
        return Err(CheckpointError::HeadMismatch { size: claims.size });
    }
    Ok(claims)
}

pub fn check_file(
    conn: &mut DbConn,
    path: &Path,
    report: &VerifyReport,
) -> Result<CheckpointClaims, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CheckpointError::Unreadable(format!("{}: {e}", path.display())).to_string())?;
    let jws = checkpoint_jws(&text).map_err(|e| e.to_string())?;
    check(conn, &jws, report).map_err(|e| e.to_string())
}

/// The JWS a kept checkpoint holds: the compact JWS itself, or the object
/// `GET /api/v1/audit/checkpoint` answers (`{"checkpoint": "<compact JWS>"}`), saved as is.
fn checkpoint_jws(text: &str) -> Result<String, CheckpointError> {
    let text = text.trim();
    if !text.starts_with('{') {
        return Ok(text.to_owned());
    }
    let answer: serde_json::Value =
        serde_json::from_str(text).map_err(|_| CheckpointError::Malformed)?;
    answer["checkpoint"]
        .as_str()
        .map(|jws| jws.trim().to_owned())
        .ok_or(CheckpointError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_kept_checkpoint_is_the_jws_or_the_endpoint_s_answer() {
        assert_eq!(checkpoint_jws("a.b.c\n").unwrap(), "a.b.c");
        assert_eq!(
            checkpoint_jws("{\"checkpoint\": \"a.b.c\"}\n").unwrap(),
            "a.b.c"
        );
        for bad in ["{\"checkpoint\": 1}", "{\"other\": \"a.b.c\"}", "{not json"] {
            assert_eq!(checkpoint_jws(bad), Err(CheckpointError::Malformed));
        }
    }
}
