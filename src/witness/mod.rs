//! `crossprov witness serve`: a C2SP `tlog-witness` that another organisation runs with its
//! own key and its own state. It cosigns a log's checkpoint only when a consistency proof
//! ties it to the last checkpoint it cosigned for that origin, so it never signs a fork or
//! a rollback. The check and the new state are one step under a lock, written to disk
//! before the cosignature leaves (the spec's race between two submissions).

pub mod server;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::audit::chain::{self, Hash};
use crate::audit::note::{self, CheckpointBody, NoteSignature, SignedNote, VerifierKey};
use crate::signing::keys::PrivateKey;

/// The most consistency proof lines a request may carry (the spec's bound).
const MAX_PROOF_LINES: usize = 63;

/// Why a checkpoint was not cosigned; each is one of the protocol's statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body does not parse, or the old size is beyond the checkpoint's.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: no log key is configured for the origin.
    #[error("unknown origin")]
    UnknownOrigin,
    /// 403: no signature by a configured key of the origin verifies.
    #[error("the checkpoint is not signed by the log")]
    Forbidden,
    /// 409: the old size is not the size last cosigned (answered with that size).
    #[error("the witness last cosigned size {0}")]
    StaleSize(u64),
    /// 409: the same size as last cosigned, another root hash: a fork.
    #[error("another root hash at the size last cosigned: a fork")]
    Fork,
    /// 422: the consistency proof does not lead from the last cosigned root to this one.
    #[error("the consistency proof does not verify")]
    BadProof,
    /// 500: the state could not be kept, so nothing is cosigned.
    #[error("the witness state cannot be written: {0}")]
    State(String),
}

/// What the witness remembers per log: the last checkpoint it cosigned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    logs: BTreeMap<String, Cosigned>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cosigned {
    size: u64,
    /// Base64, as in the checkpoint.
    root: String,
}

/// A witness: its identity, the logs it follows and what it last cosigned of each.
pub struct Witness {
    key: PrivateKey,
    vkey: VerifierKey,
    logs: HashMap<String, Vec<VerifierKey>>,
    state_file: PathBuf,
    state: Mutex<State>,
}

/// A parsed `add-checkpoint` body.
struct Submission {
    old: u64,
    proof: Vec<Hash>,
    note: SignedNote,
    body: CheckpointBody,
}

impl Witness {
    /// `name` is the witness's key name; `log_keys` the logs' vkeys (the key name is the
    /// checkpoint origin); the state lives in `state_dir/state.json`.
    pub fn open(
        name: &str,
        key: PrivateKey,
        log_keys: Vec<VerifierKey>,
        state_dir: &Path,
    ) -> Result<Self, String> {
        let public = key
            .ed25519_public()
            .ok_or("a witness key must be Ed25519 (crossprov keygen --alg EdDSA)")?;
        let vkey = VerifierKey::new(name, note::TYPE_COSIGNATURE, public)
            .map_err(|e| format!("--name: {e}"))?;
        let mut logs: HashMap<String, Vec<VerifierKey>> = HashMap::new();
        for k in log_keys {
            if k.sig_type != note::TYPE_ED25519 {
                return Err(format!("--log-key {}: not a log key (type 0x01)", k.name));
            }
            logs.entry(k.name.clone()).or_default().push(k);
        }
        std::fs::create_dir_all(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
        let state_file = state_dir.join("state.json");
        let state = match std::fs::read_to_string(&state_file) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", state_file.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(format!("{}: {e}", state_file.display())),
        };
        Ok(Self {
            key,
            vkey,
            logs,
            state_file,
            state: Mutex::new(state),
        })
    }

    /// The witness's public key as a vkey (type 0x04), what logs and auditors configure.
    pub fn vkey(&self) -> &VerifierKey {
        &self.vkey
    }

    /// The protocol's `add-checkpoint`: the cosignature lines, or why not.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, Refusal> {
        let sub = parse_submission(body)?;
        let keys = self
            .logs
            .get(&sub.body.origin)
            .ok_or(Refusal::UnknownOrigin)?;
        if !keys.iter().any(|k| sub.note.signed_by(k)) {
            return Err(Refusal::Forbidden);
        }
        if sub.old > sub.body.size {
            return Err(Refusal::BadRequest(format!(
                "old size {} is beyond the checkpoint's {}",
                sub.old, sub.body.size
            )));
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| Refusal::State("poisoned".into()))?;
        let last = state.logs.get(&sub.body.origin).cloned();
        let last_size = last.as_ref().map_or(0, |c| c.size);
        if sub.old != last_size {
            return Err(Refusal::StaleSize(last_size));
        }
        if last_size == 0 && !sub.proof.is_empty() {
            return Err(Refusal::BadProof);
        }
        match &last {
            // From nothing (or an empty tree) the proof is empty.
            None => {}
            Some(c) if c.size == 0 => {}
            Some(c) => {
                let old_root = STANDARD
                    .decode(&c.root)
                    .ok()
                    .and_then(|r| Hash::try_from(r.as_slice()).ok())
                    .ok_or_else(|| Refusal::State("a stored root is not a hash".into()))?;
                if c.size == sub.body.size {
                    if old_root != sub.body.root || !sub.proof.is_empty() {
                        return Err(Refusal::Fork);
                    }
                } else if !chain::verify_consistency(
                    c.size,
                    sub.body.size,
                    &old_root,
                    &sub.body.root,
                    &sub.proof,
                ) {
                    return Err(Refusal::BadProof);
                }
            }
        }
        let mut next = state.clone();
        next.logs.insert(
            sub.body.origin.clone(),
            Cosigned {
                size: sub.body.size,
                root: STANDARD.encode(sub.body.root),
            },
        );
        persist(&self.state_file, &next)?;
        *state = next;
        drop(state);
        let cosig: NoteSignature = note::cosign(&sub.note.text, &self.vkey, now, |m| {
            self.key.sign_ed25519(m)
        })
        .map_err(|e| Refusal::State(e.to_string()))?;
        Ok(cosig.line())
    }
}

/// `old N`, proof lines, a blank line, the checkpoint note.
fn parse_submission(body: &str) -> Result<Submission, Refusal> {
    let bad = |why: &str| Refusal::BadRequest(why.to_owned());
    let (head, checkpoint) = body
        .split_once("\n\n")
        .ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|l| l.strip_prefix("old "))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .filter(|n| *n == "0" || !n.starts_with('0'))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| bad("the first line is `old <size>`"))?;
    let proof = lines
        .map(|l| {
            STANDARD
                .decode(l)
                .ok()
                .and_then(|h| Hash::try_from(h.as_slice()).ok())
                .ok_or_else(|| bad("a proof line is not a base64 hash"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if proof.len() > MAX_PROOF_LINES {
        return Err(bad("more than 63 proof lines"));
    }
    let note = SignedNote::parse(checkpoint).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let body = CheckpointBody::parse(&note.text).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    Ok(Submission {
        old,
        proof,
        note,
        body,
    })
}

/// Replaces the state file whole: a temporary file in the same folder, synced, renamed.
fn persist(path: &Path, state: &State) -> Result<(), Refusal> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| Refusal::State(e.to_string());
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
    let text = serde_json::to_vec_pretty(state).map_err(|e| fail(&e))?;
    tmp.write_all(&text).map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // The rename itself is durable only once the folder is synced.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The request body a log sends: `old`, the proof, a blank line, the note.
pub fn submission(old: u64, proof: &[Hash], note: &SignedNote) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&STANDARD.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&note.encode());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signing::Alg;

    struct Log {
        key: PrivateKey,
        vkey: VerifierKey,
        leaves: Vec<Hash>,
    }

    impl Log {
        fn new(origin: &str) -> Self {
            let key = PrivateKey::generate(Alg::EdDsa).unwrap();
            let vkey = VerifierKey::new(origin, note::TYPE_ED25519, key.ed25519_public().unwrap())
                .unwrap();
            Self {
                key,
                vkey,
                leaves: Vec::new(),
            }
        }

        fn grow(&mut self, n: usize, salt: u8) {
            for i in 0..n {
                self.leaves.push([salt ^ (self.leaves.len() + i) as u8; 32]);
            }
        }

        fn note(&self, size: usize) -> SignedNote {
            let body = CheckpointBody::new(
                &self.vkey.name,
                size as u64,
                chain::tree_head(&self.leaves[..size]),
            );
            let text = body.text();
            let sig = note::sign(&text, &self.vkey, |m| self.key.sign_ed25519(m)).unwrap();
            SignedNote {
                text,
                signatures: vec![sig],
            }
        }

        fn submit(&self, w: &Witness, old: usize, size: usize) -> Result<String, Refusal> {
            let proof = if old == 0 || old >= size {
                vec![]
            } else {
                chain::consistency_proof(&self.leaves[..size], old).unwrap()
            };
            w.add_checkpoint(
                &submission(old as u64, &proof, &self.note(size)),
                1_700_000_000,
            )
        }
    }

    fn witness(dir: &Path, log: &Log) -> Witness {
        let key = PrivateKey::generate(Alg::EdDsa).unwrap();
        Witness::open("example.org/w", key, vec![log.vkey.clone()], dir).unwrap()
    }

    #[test]
    fn a_growing_log_is_cosigned_and_a_fork_or_rollback_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("example.com/log");
        log.grow(5, 0);
        let w = witness(dir.path(), &log);
        let lines = log.submit(&w, 0, 5).unwrap();
        let mut note = log.note(5);
        note.add(note::parse_signature_lines(&lines).unwrap());
        assert_eq!(note.cosigned_by(w.vkey()), Some(1_700_000_000));
        // The same checkpoint again is fine; from a stale size it is 409 with the size.
        assert!(log.submit(&w, 5, 5).is_ok());
        assert_eq!(log.submit(&w, 0, 5), Err(Refusal::StaleSize(5)));
        log.grow(4, 0);
        assert!(log.submit(&w, 5, 9).is_ok());
        // Rollback: a smaller checkpoint, from the size the witness holds or from its own.
        assert!(matches!(log.submit(&w, 9, 5), Err(Refusal::BadRequest(_))));
        assert_eq!(log.submit(&w, 5, 5), Err(Refusal::StaleSize(9)));
        // A fork: the same history rewritten from leaf 3 on and grown.
        let mut fork = Log {
            key: PrivateKey::from_pem(&log.key.to_pem()).unwrap(),
            vkey: log.vkey.clone(),
            leaves: log.leaves[..3].to_vec(),
        };
        fork.grow(8, 0x55);
        assert_eq!(fork.submit(&w, 9, 9), Err(Refusal::Fork));
        let forged = chain::consistency_proof(&fork.leaves, 9).unwrap();
        let body = submission(9, &forged, &fork.note(11));
        assert_eq!(w.add_checkpoint(&body, 1), Err(Refusal::BadProof));
        // The state survives a restart.
        let again = Witness::open(
            "example.org/w",
            PrivateKey::generate(Alg::EdDsa).unwrap(),
            vec![log.vkey.clone()],
            dir.path(),
        )
        .unwrap();
        assert_eq!(log.submit(&again, 0, 9), Err(Refusal::StaleSize(9)));
    }

    #[test]
    fn unknown_logs_and_unsigned_checkpoints_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new("example.com/log");
        log.grow(2, 0);
        let w = witness(dir.path(), &log);
        let mut other = Log::new("example.com/other");
        other.grow(2, 0);
        assert_eq!(other.submit(&w, 0, 2), Err(Refusal::UnknownOrigin));
        // Signed by another key under the right name.
        let impostor = Log {
            key: PrivateKey::generate(Alg::EdDsa).unwrap(),
            vkey: VerifierKey::new(
                "example.com/log",
                note::TYPE_ED25519,
                other.key.ed25519_public().unwrap(),
            )
            .unwrap(),
            leaves: log.leaves.clone(),
        };
        assert_eq!(impostor.submit(&w, 0, 2), Err(Refusal::Forbidden));
        for bad in ["", "old 1\n", "old x\n\nnote\n", "old 0\n!!\n\n"] {
            assert!(
                matches!(w.add_checkpoint(bad, 1), Err(Refusal::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert!(log.submit(&w, 0, 2).is_ok());
    }
}
