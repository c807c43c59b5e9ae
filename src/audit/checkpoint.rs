//! Signed checkpoints of the log's head, and checking a log against one kept elsewhere.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::chain;
use super::log::VerifyReport;
use super::note::{self, CheckpointBody, SignedNote, VerifierKey};
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
    #[error("the checkpoint is not a signed checkpoint (a compact JWS or a signed note)")]
    Malformed,
    #[error("the checkpoint's key is not one of the service's keys")]
    UnknownKey,
    #[error("the checkpoint's signature does not verify")]
    BadSignature,
    #[error("the log holds {intact} intact events, fewer than the checkpoint's {size}: its tail was cut or altered")]
    Truncated { intact: u64, size: u64 },
    #[error("the first {size} events do not hash to the checkpoint's head: the log was rewritten")]
    HeadMismatch { size: u64 },
    #[error("the checkpoint carries {valid} valid cosignatures of the witnesses given, fewer than the quorum of {quorum}")]
    NoQuorum { valid: usize, quorum: usize },
}

/// The witnesses a checkpoint must carry cosignatures of, and how many (0: none needed).
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    pub keys: Vec<VerifierKey>,
    pub quorum: usize,
}

impl WitnessPolicy {
    /// From `--witness-key` vkeys (type 0x04) and `--quorum`.
    pub fn parse(keys: &[String], quorum: usize) -> Result<Self, String> {
        let keys = keys
            .iter()
            .map(|k| {
                let key = VerifierKey::parse(k).map_err(|e| format!("--witness-key {k}: {e}"))?;
                if key.sig_type != note::TYPE_COSIGNATURE {
                    return Err(format!(
                        "--witness-key {k}: not a cosignature key (type 0x04)"
                    ));
                }
                Ok(key)
            })
            .collect::<Result<Vec<_>, String>>()?;
        if quorum > keys.len() {
            return Err(format!(
                "--quorum {quorum} needs at least {quorum} --witness-key"
            ));
        }
        Ok(Self { keys, quorum })
    }
}

/// A checkpoint kept elsewhere: the JWS, or the C2SP signed note (with any cosignatures).
#[derive(Debug, Clone)]
pub enum Kept {
    Jws(String),
    Note(SignedNote),
}

impl Kept {
    /// Reads a kept file: a signed note, a compact JWS, or the JSON
    /// `GET /api/v1/audit/checkpoint` answers.
    pub fn read(text: &str) -> Result<Self, CheckpointError> {
        if text.contains("\n\n\u{2014} ") {
            return SignedNote::parse(text)
                .map(Self::Note)
                .map_err(|_| CheckpointError::Malformed);
        }
        checkpoint_jws(text).map(Self::Jws)
    }
}

/// Checks a kept checkpoint's signature and cosignatures with the keys given: `note_keys`
/// the log keys of an origin, `jws_key` the key of a `kid`. Pure, for the offline tools.
pub fn signed_claims(
    kept: &Kept,
    note_keys: impl Fn(&str) -> Vec<VerifierKey>,
    jws_key: impl Fn(&str) -> Option<HallPublicKey>,
    policy: &WitnessPolicy,
) -> Result<CheckpointClaims, CheckpointError> {
    match kept {
        Kept::Jws(jws) => {
            let parsed = CompactJws::parse(jws).map_err(|_| CheckpointError::Malformed)?;
            let kid = parsed.kid.clone().ok_or(CheckpointError::UnknownKey)?;
            let key = jws_key(&kid).ok_or(CheckpointError::UnknownKey)?;
            parsed
                .verify(&key)
                .map_err(|_| CheckpointError::BadSignature)?;
            if policy.quorum > 0 {
                return Err(CheckpointError::NoQuorum {
                    valid: 0,
                    quorum: policy.quorum,
                });
            }
            serde_json::from_slice(&parsed.payload).map_err(|_| CheckpointError::Malformed)
        }
        Kept::Note(signed) => {
            let body =
                CheckpointBody::parse(&signed.text).map_err(|_| CheckpointError::Malformed)?;
            let keys = note_keys(&body.origin);
            let named: Vec<&VerifierKey> = keys
                .iter()
                .filter(|k| {
                    signed
                        .signatures
                        .iter()
                        .any(|s| s.name == k.name && s.id == k.id())
                })
                .collect();
            if named.is_empty() {
                return Err(CheckpointError::UnknownKey);
            }
            if !named.iter().all(|k| signed.signed_by(k)) {
                return Err(CheckpointError::BadSignature);
            }
            let valid = note::count_cosignatures(signed, &policy.keys);
            if valid < policy.quorum {
                return Err(CheckpointError::NoQuorum {
                    valid,
                    quorum: policy.quorum,
                });
            }
            Ok(CheckpointClaims {
                size: body.size,
                head: chain::to_hex(&body.root),
                // A note carries no time of its own; the cosignatures carry theirs.
                at: 0,
            })
        }
    }
}

/// The service keys recorded in the database (every instance's), as JWS keys.
fn published(conn: &mut DbConn) -> Result<Vec<(String, HallPublicKey)>, CheckpointError> {
    let stored =
        secrets::published_keys(conn).map_err(|e| CheckpointError::Unreadable(e.to_string()))?;
    Ok(stored
        .iter()
        .filter_map(|jwk| {
            let v: serde_json::Value = serde_json::from_str(jwk).ok()?;
            let kid = v.get("kid")?.as_str()?.to_owned();
            Some((kid, HallPublicKey::from_jwk(&v)?))
        })
        .collect())
}

/// The note keys an origin's checkpoints are signed with, from published Ed25519 keys.
pub fn note_keys_of(keys: &[(String, HallPublicKey)], origin: &str) -> Vec<VerifierKey> {
    keys.iter()
        .filter_map(|(_, k)| VerifierKey::new(origin, note::TYPE_ED25519, k.ed25519_raw()?).ok())
        .collect()
}

/// Verifies the signature with the service keys recorded in the database, then that the
/// intact prefix of the log reproduces the signed head.
pub fn check(
    conn: &mut DbConn,
    jws: &str,
    report: &VerifyReport,
) -> Result<CheckpointClaims, CheckpointError> {
    check_kept(
        conn,
        &Kept::Jws(jws.to_owned()),
        report,
        &WitnessPolicy::default(),
    )
}

/// As [`check`], for a JWS or a signed note, and with a quorum of cosignatures required.
pub fn check_kept(
    conn: &mut DbConn,
    kept: &Kept,
    report: &VerifyReport,
    policy: &WitnessPolicy,
) -> Result<CheckpointClaims, CheckpointError> {
    let keys = published(conn)?;
    let claims = signed_claims(
        kept,
        |origin| note_keys_of(&keys, origin),
        |kid| {
            keys.iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| key.clone())
        },
        policy,
    )?;
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

pub fn read_file(path: &Path) -> Result<Kept, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CheckpointError::Unreadable(format!("{}: {e}", path.display())).to_string())?;
    Kept::read(&text).map_err(|e| e.to_string())
}

pub fn check_file(
    conn: &mut DbConn,
    path: &Path,
    report: &VerifyReport,
    policy: &WitnessPolicy,
) -> Result<CheckpointClaims, String> {
    let kept = read_file(path)?;
    check_kept(conn, &kept, report, policy).map_err(|e| e.to_string())
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
    fn a_kept_file_is_read_as_a_note_when_it_has_signature_lines() {
        let note = "o.test/log\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n\n\u{2014} o.test/log AAAAAAAA\n";
        assert!(matches!(Kept::read(note), Ok(Kept::Note(_))));
        assert!(matches!(Kept::read("a.b.c\n"), Ok(Kept::Jws(_))));
        let broken = "o.test/log\n1\n\n\u{2014} o.test/log !!\n";
        assert_eq!(Kept::read(broken).err(), Some(CheckpointError::Malformed));
    }

    #[test]
    fn a_quorum_needs_that_many_witness_keys_of_the_cosignature_type() {
        let w = |ty| VerifierKey::new("w.test/1", ty, [7; 32]).unwrap().encode();
        assert_eq!(
            WitnessPolicy::parse(&[w(note::TYPE_COSIGNATURE)], 1)
                .unwrap()
                .quorum,
            1
        );
        assert!(WitnessPolicy::parse(&[w(note::TYPE_COSIGNATURE)], 2).is_err());
        assert!(WitnessPolicy::parse(&[w(note::TYPE_ED25519)], 1).is_err());
        assert!(WitnessPolicy::parse(&["not a key".into()], 0).is_err());
        // A JWS carries no cosignatures: any quorum refuses it, after its signature.
        let key = crate::signing::keys::PrivateKey::generate(crate::signing::Alg::EdDsa).unwrap();
        let jws = key
            .sign(
                "k1",
                &CheckpointClaims {
                    size: 1,
                    head: "00".repeat(32),
                    at: 1,
                },
            )
            .unwrap();
        let policy = WitnessPolicy {
            keys: vec![],
            quorum: 1,
        };
        let got = signed_claims(
            &Kept::Jws(jws),
            |_| vec![],
            |_| Some(key.public().clone()),
            &policy,
        );
        assert_eq!(
            got,
            Err(CheckpointError::NoQuorum {
                valid: 0,
                quorum: 1
            })
        );
    }

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
