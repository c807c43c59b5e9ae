//! Single-event proofs an auditor can hand over: `audit prove` reads the database once and
//! prints the event, its leaf hash, its inclusion path and the checkpoint it leads to;
//! `audit check-proof` verifies that object with no database at all.

use std::path::Path;
use std::process::ExitCode;

use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::audit::chain::{self, StoredEvent};
use crate::audit::checkpoint::{self, Kept, WitnessPolicy};
use crate::audit::note::{self, VerifierKey};
use crate::config::Settings;
use crate::signing::HallPublicKey;
use crate::storage::offline::OfflineDb;

/// `audit prove`: the proof on standard output (exit 0), or why not (exit 1).
pub fn prove(
    s: &Settings,
    seq: i64,
    checkpoint_file: &Path,
    policy: &WitnessPolicy,
) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(checkpoint_file)
        .map_err(|e| format!("{}: {e}", checkpoint_file.display()))?;
    let kept = Kept::read(&text).map_err(|e| e.to_string())?;
    let db = OfflineDb::open_existing(s.database_url().expose_secret())
        .map_err(|e| format!("cannot reach the database: {e}"))?;
    match db.prove(seq, &kept, policy).map_err(|e| e.to_string())? {
        Ok(p) => {
            println!(
                "{}",
                json!({
                    "seq": p.event.seq,
                    "size": p.size,
                    "event": p.event,
                    "leaf_hash": chain::to_hex(&p.leaf_hash),
                    "path": p.path.iter().map(chain::to_hex).collect::<Vec<_>>(),
                    "checkpoint": text.trim_end_matches('\n').to_owned() + "\n",
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("crossprov: audit prove: {why}");
            println!("{}", json!({ "ok": false, "error": why }));
            Ok(ExitCode::from(1))
        }
    }
}

/// `audit check-proof`: one JSON verdict; exit 0 when the proof holds, 1 otherwise.
pub fn check(
    file: &Path,
    jwks: Option<&Path>,
    log_keys: &[String],
    policy: &WitnessPolicy,
) -> ExitCode {
    match check_file(file, jwks, log_keys, policy) {
        Ok(verdict) => {
            println!("{verdict}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("crossprov: audit check-proof: {why}");
            println!("{}", json!({ "ok": false, "error": why }));
            ExitCode::from(1)
        }
    }
}

fn check_file(
    file: &Path,
    jwks: Option<&Path>,
    log_keys: &[String],
    policy: &WitnessPolicy,
) -> Result<Value, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let proof: Value = serde_json::from_str(&read(file)?).map_err(|e| format!("the proof: {e}"))?;
    let jwks: Vec<(String, HallPublicKey)> = match jwks {
        None => Vec::new(),
        Some(p) => {
            let set: Value = serde_json::from_str(&read(p)?).map_err(|e| format!("--jwks: {e}"))?;
            set["keys"]
                .as_array()
                .ok_or("--jwks: not a JWK Set")?
                .iter()
                .filter_map(|k| Some((k["kid"].as_str()?.to_owned(), HallPublicKey::from_jwk(k)?)))
                .collect()
        }
    };
    let log_keys = log_keys
        .iter()
        .map(|k| {
            let key = VerifierKey::parse(k).map_err(|e| format!("--log-key {k}: {e}"))?;
            if key.sig_type != note::TYPE_ED25519 {
                return Err(format!("--log-key {k}: not a log key (type 0x01)"));
            }
            Ok(key)
        })
        .collect::<Result<Vec<_>, String>>()?;
    if jwks.is_empty() && log_keys.is_empty() {
        return Err("give the service's keys: --jwks FILE or --log-key VKEY".into());
    }
    verify(&proof, &jwks, &log_keys, policy)
}

/// The checks, in order: the event hashes to its leaf, the checkpoint is signed (and
/// cosigned), the path leads from the leaf to the checkpoint's head.
fn verify(
    proof: &Value,
    jwks: &[(String, HallPublicKey)],
    log_keys: &[VerifierKey],
    policy: &WitnessPolicy,
) -> Result<Value, String> {
    let event: StoredEvent = serde_json::from_value(proof["event"].clone())
        .map_err(|e| format!("the proof's event: {e}"))?;
    let leaf = chain::leaf_hash(&event.fields());
    let hex = chain::to_hex(&leaf);
    if hex != event.hash || proof["leaf_hash"].as_str() != Some(hex.as_str()) {
        return Err(format!(
            "event {} does not hash to the leaf the proof names: it was altered",
            event.seq
        ));
    }
    let text = proof["checkpoint"]
        .as_str()
        .ok_or("the proof holds no checkpoint")?;
    let kept = Kept::read(text).map_err(|e| e.to_string())?;
    let claims = checkpoint::signed_claims(
        &kept,
        |origin| {
            let mut keys: Vec<VerifierKey> = log_keys
                .iter()
                .filter(|k| k.name == origin)
                .cloned()
                .collect();
            keys.extend(checkpoint::note_keys_of(jwks, origin));
            keys
        },
        |kid| {
            jwks.iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| key.clone())
        },
        policy,
    )
    .map_err(|e| e.to_string())?;
    let path = proof["path"]
        .as_array()
        .ok_or("the proof holds no path")?
        .iter()
        .map(|h| h.as_str().and_then(chain::from_hex))
        .collect::<Option<Vec<_>>>()
        .ok_or("the path holds a value that is not a hash")?;
    let root = chain::from_hex(&claims.head).ok_or("the checkpoint's head is not a hash")?;
    let seq = u64::try_from(event.seq).map_err(|_| "a negative seq")?;
    if seq == 0 || !chain::verify_inclusion(&leaf, seq - 1, claims.size, &path, &root) {
        return Err(format!(
            "the path does not lead from event {seq} to the checkpoint's head at size {}",
            claims.size
        ));
    }
    Ok(json!({
        "ok": true,
        "seq": event.seq,
        "size": claims.size,
        "head": claims.head,
        "cosignatures": match &kept {
            Kept::Note(n) => note::count_cosignatures(n, &policy.keys),
            Kept::Jws(_) => 0,
        },
    }))
}
