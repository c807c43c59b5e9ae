//! Checkpoints as C2SP signed notes (`tlog-checkpoint`, `signed-note`) and their witness
//! cosignatures (`tlog-cosignature`, Ed25519, signature type 0x04). Pure: keys come in as
//! bytes and signing as a function, so the witness, the service and the offline tools share
//! one reading of the format. docs/audit.md gives the format byte for byte.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

use super::chain::Hash;

/// Signature type of a log's own Ed25519 note signature.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 witness cosignature.
pub const TYPE_COSIGNATURE: u8 = 0x04;

/// The most signature lines read from one note (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note: {0}")]
    Malformed(&'static str),
    #[error("not a checkpoint: {0}")]
    NotACheckpoint(&'static str),
    #[error("not a verifier key (name+id+base64): {0}")]
    BadKey(&'static str),
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`.
pub fn key_id(name: &str, sig_type: u8, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, sig_type]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A key name: non-empty, no spaces, no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A public key that checks note signatures: the log's (type 0x01) or a witness's (0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub sig_type: u8,
    pub public: [u8; 32],
}

impl VerifierKey {
    pub fn new(name: &str, sig_type: u8, public: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey("the name is empty or holds a space or +"));
        }
        Ok(Self {
            name: name.to_owned(),
            sig_type,
            public,
        })
    }

    pub fn id(&self) -> [u8; 4] {
        key_id(&self.name, self.sig_type, &self.public)
    }

    /// The vkey text: `<name>+<key ID, 8 hex digits>+<base64(type || public key)>`.
    pub fn encode(&self) -> String {
        let mut material = vec![self.sig_type];
        material.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.id()),
            STANDARD.encode(material)
        )
    }

    /// Reads a vkey; its key ID must be the one its name and key give.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("three parts joined by + expected"));
        };
        let material = STANDARD
            .decode(material)
            .map_err(|_| NoteError::BadKey("the key is not base64"))?;
        let (&sig_type, public) = material.split_first().ok_or(NoteError::BadKey("no key"))?;
        if sig_type != TYPE_ED25519 && sig_type != TYPE_COSIGNATURE {
            return Err(NoteError::BadKey(
                "not an Ed25519 (0x01) or cosignature (0x04) key",
            ));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::BadKey("an Ed25519 key is 32 bytes"))?;
        let key = Self::new(name, sig_type, public)?;
        if hex::encode(key.id()) != id.to_ascii_lowercase() {
            return Err(NoteError::BadKey(
                "the key ID does not match the name and key",
            ));
        }
        Ok(key)
    }
}

/// One signature line: `— <name> base64(key ID || signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    pub fn line(&self) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("\u{2014} {} {}\n", self.name, STANDARD.encode(raw))
    }

    fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line starts with an em dash",
        ))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("a signature line names its key"))?;
        if !valid_name(name) {
            return Err(NoteError::Malformed("a bad key name"));
        }
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("a signature is too short"));
        }
        Ok(Self {
            name: name.to_owned(),
            id: [raw[0], raw[1], raw[2], raw[3]],
            bytes: raw[4..].to_vec(),
        })
    }

    fn is_by(&self, key: &VerifierKey) -> bool {
        self.name == key.name && self.id == key.id()
    }
}

/// Signature lines alone, as a witness answers them.
pub fn parse_signature_lines(text: &str) -> Result<Vec<NoteSignature>, NoteError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::Malformed("too many signatures"));
    }
    lines
        .iter()
        .map(|l| {
            let l = l
                .strip_suffix('\n')
                .ok_or(NoteError::Malformed("every line ends in a newline"))?;
            NoteSignature::parse_line(l)
        })
        .collect()
}

/// A note's text (ending in a newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::Malformed(
                "control characters other than newline",
            ));
        }
        // The text ends at the last blank line.
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        let signatures = parse_signature_lines(sigs)?;
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note as text: its text, a blank line, one line per signature.
    pub fn encode(&self) -> String {
        let mut out = format!("{}\n", self.text);
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// Whether a signature by `key` (the log's, type 0x01) is on the note and verifies. A
    /// signature by that key that does not verify makes the whole note bad: false.
    pub fn signed_by(&self, key: &VerifierKey) -> bool {
        let mut mine = self.signatures.iter().filter(|s| s.is_by(key)).peekable();
        mine.peek().is_some()
            && mine.all(|s| ed25519_verifies(&key.public, self.text.as_bytes(), &s.bytes))
    }

    /// The time of a valid cosignature by the witness `key` (type 0x04), if there is one.
    pub fn cosigned_by(&self, key: &VerifierKey) -> Option<u64> {
        self.signatures
            .iter()
            .filter(|s| s.is_by(key))
            .find_map(|s| verify_cosignature(&self.text, key, s))
    }

    /// Adds signatures not already on the note (the same line twice counts once).
    pub fn add(&mut self, more: impl IntoIterator<Item = NoteSignature>) {
        for s in more {
            if !self.signatures.contains(&s) {
                self.signatures.push(s);
            }
        }
    }
}

fn ed25519_verifies(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .is_ok()
}

/// The message a v1 cosignature signs: the header and time lines, then the note text.
pub fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A cosignature's time when `sig` is `key`'s valid v1 cosignature on `text`.
fn verify_cosignature(text: &str, key: &VerifierKey, sig: &NoteSignature) -> Option<u64> {
    if key.sig_type != TYPE_COSIGNATURE || sig.bytes.len() != 8 + 64 {
        return None;
    }
    let timestamp = u64::from_be_bytes(sig.bytes[..8].try_into().ok()?);
    if timestamp > i64::MAX as u64 {
        return None;
    }
    ed25519_verifies(
        &key.public,
        &cosigned_message(text, timestamp),
        &sig.bytes[8..],
    )
    .then_some(timestamp)
}

/// Signs `text` as the log (`sign` is the Ed25519 signing function of `key`'s private half).
pub fn sign<E>(
    text: &str,
    key: &VerifierKey,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<NoteSignature, E> {
    Ok(NoteSignature {
        name: key.name.clone(),
        id: key.id(),
        bytes: sign(text.as_bytes())?,
    })
}

/// Cosigns `text` as the witness `key` at `timestamp` (seconds since the epoch).
pub fn cosign<E>(
    text: &str,
    key: &VerifierKey,
    timestamp: u64,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<NoteSignature, E> {
    let mut bytes = timestamp.to_be_bytes().to_vec();
    bytes.extend(sign(&cosigned_message(text, timestamp))?);
    Ok(NoteSignature {
        name: key.name.clone(),
        id: key.id(),
        bytes,
    })
}

/// The body of a `tlog-checkpoint`: origin, size, root hash (extension lines are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBody {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl CheckpointBody {
    pub fn new(origin: &str, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `<origin>\n<size>\n<base64 root>\n`, then any extension lines.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::NotACheckpoint("the text ends in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::NotACheckpoint("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| *s == "0" || !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::NotACheckpoint(
                "the size is not a decimal number",
            ))?;
        let root = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or(NoteError::NotACheckpoint(
                "the root hash is not 32 bytes of base64",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::NotACheckpoint("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// How many of `witnesses` validly cosigned the note (each key counted once).
pub fn count_cosignatures(note: &SignedNote, witnesses: &[VerifierKey]) -> usize {
    let mut seen: Vec<&VerifierKey> = Vec::new();
    for w in witnesses {
        if !seen.contains(&w) && note.cosigned_by(w).is_some() {
            seen.push(w);
        }
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn key(name: &str, ty: u8, p: &Ed25519KeyPair) -> VerifierKey {
        VerifierKey::new(name, ty, p.public_key().as_ref().try_into().unwrap()).unwrap()
    }

    fn signer(p: &Ed25519KeyPair) -> impl FnOnce(&[u8]) -> Result<Vec<u8>, ()> + '_ {
        move |m| Ok(p.sign(m).as_ref().to_vec())
    }

    #[test]
    fn a_checkpoint_note_round_trips_and_verifies() {
        let log = pair(1);
        let lk = key("example.com/log", TYPE_ED25519, &log);
        let body = CheckpointBody::new("example.com/log", 7, [9; 32]);
        let text = body.text();
        assert_eq!(
            text,
            "example.com/log\n7\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
        );
        let sig = sign(&text, &lk, signer(&log)).unwrap();
        let mut note = SignedNote {
            text: text.clone(),
            signatures: vec![sig],
        };
        let parsed = SignedNote::parse(&note.encode()).unwrap();
        assert_eq!(parsed, note);
        assert!(parsed.signed_by(&lk));
        assert_eq!(CheckpointBody::parse(&parsed.text).unwrap(), body);

        let w = pair(2);
        let wk = key("example.com/w1", TYPE_COSIGNATURE, &w);
        let cosig = cosign(&text, &wk, 1_700_000_000, signer(&w)).unwrap();
        note.add([cosig.clone(), cosig]);
        assert_eq!(note.signatures.len(), 2);
        assert_eq!(note.cosigned_by(&wk), Some(1_700_000_000));
        assert_eq!(count_cosignatures(&note, &[wk.clone(), wk.clone()]), 1);
        // A cosignature is no log signature, and the log's key is no witness's.
        assert!(!note.signed_by(&key("example.com/w1", TYPE_ED25519, &w)));
        assert_eq!(
            note.cosigned_by(&key("example.com/log", TYPE_COSIGNATURE, &log)),
            None
        );
        // Another text: nothing verifies.
        let other = SignedNote {
            text: CheckpointBody::new("example.com/log", 8, [9; 32]).text(),
            signatures: note.signatures.clone(),
        };
        assert!(!other.signed_by(&lk));
        assert_eq!(other.cosigned_by(&wk), None);
    }

    #[test]
    fn vkeys_round_trip_and_a_wrong_id_is_refused() {
        let lk = key("example.com/log", TYPE_ED25519, &pair(3));
        let text = lk.encode();
        assert_eq!(VerifierKey::parse(&text).unwrap(), lk);
        let mut parts: Vec<&str> = text.split('+').collect();
        parts[1] = "00000000";
        assert!(VerifierKey::parse(&parts.join("+")).is_err());
        for bad in ["", "a+b", "na me+00000000+AQ==", "x+00000000+!!"] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_notes_and_checkpoints_are_refused() {
        for bad in [
            "no blank line\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} name AAAA\n",
            "te\rxt\n\n\u{2014} name AAAAAAAA\n",
        ] {
            assert!(SignedNote::parse(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "o\n7\n",
            "o\n07\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "o\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "o\n7\nCQkJ\n",
            "\n7\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "o\n7\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
        ] {
            assert!(CheckpointBody::parse(bad).is_err(), "{bad:?}");
        }
    }
}
