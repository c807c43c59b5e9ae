//! The hall terminal: what the CLI does on the hall's side of an order. The digests that
//! `sign-result --evidence` binds into a result are here; the HTTP client that uploads the files
//! is `client`. (The operator's offline checks are `crate::offline`.)

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::evidence::{EvidenceKind, MediaType, SNIFF_LEN};

pub mod client;

pub use client::{probe, ClientTls, Session};

/// `KIND=FILE` as given on the command line.
#[derive(Debug, Clone)]
pub struct EvidenceArg {
    pub kind: EvidenceKind,
    pub file: PathBuf,
}

pub fn parse_evidence_arg(s: &str) -> Result<EvidenceArg, String> {
    let (kind, file) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KIND=FILE"))?;
    let kind = EvidenceKind::parse(kind).ok_or_else(|| {
        format!("{kind:?}: kind must be id_front, id_back, live_photo, registration_form or other")
    })?;
    Ok(EvidenceArg {
        kind,
        file: PathBuf::from(file),
    })
}

/// The SHA-256 of a file, read in chunks (any size, little memory).
pub fn file_sha256(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Adds `{"kind", "sha256"}` for each file to the payload's `evidence` (once each).
pub fn add_evidence(claims: &mut Value, files: &[EvidenceArg]) -> Result<(), String> {
    let obj = claims
        .as_object_mut()
        .ok_or("the payload must be a JSON object")?;
    let list = obj.entry("evidence").or_insert_with(|| json!([]));
    let list = list
        .as_array_mut()
        .ok_or("the payload's evidence must be an array")?;
    for f in files {
        let entry = json!({ "kind": f.kind.as_str(), "sha256": file_sha256(&f.file)? });
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
    Ok(())
}

/// The media type a file's first bytes say it is.
pub(super) fn sniff_file(path: &Path) -> Result<MediaType, String> {
    let mut head = [0u8; SNIFF_LEN];
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut filled = 0;
    while filled < SNIFF_LEN {
        let n = f
            .read(&mut head[filled..])
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    MediaType::sniff(&head[..filled])
        .ok_or_else(|| format!("{}: not a JPEG, PNG or PDF file", path.display()))
}
