//! The hall terminal's side of evidence: digests for `sign-result --evidence`, uploads over
//! HTTP(S) for `evidence upload`, and the operator's offline `evidence verify`.

use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::domain::evidence::{EvidenceKind, MediaType, SNIFF_LEN};
use crate::service::evidence::check_stored;
use crate::storage::evidence as rows;
use crate::storage::objects::EvidenceStore;
use crate::storage::{DatabaseUrl, Store};

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
fn sniff_file(path: &Path) -> Result<MediaType, String> {
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

/// How the terminal reaches the service and proves who it is.
pub struct Session {
    pub url: String,
    pub token: String,
    client: reqwest::Client,
}

impl Session {
    pub async fn open(
        url: &str,
        token: Option<String>,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        let url = url.trim_end_matches('/').to_owned();
        let token = match (token, username, password) {
            (Some(t), _, _) => t,
            (None, Some(username), Some(password)) => {
                let res = client
                    .post(format!("{url}/api/v1/auth/token"))
                    .header("Content-Type", "application/json")
                    .body(json!({ "username": username, "password": password }).to_string())
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let body = answer(res).await?;
                body["access_token"]
                    .as_str()
                    .ok_or("the login answer has no access_token")?
                    .to_owned()
            }
            _ => {
                return Err(
                    "give --token (or CROSSPROV_TOKEN), or --username with --password-stdin".into(),
                )
            }
        };
        Ok(Self { url, token, client })
    }

    /// Streams one file to the order; the answer is the service's evidence object.
    pub async fn upload(&self, order: &str, file: &EvidenceArg) -> Result<Value, String> {
        let path = &file.file;
        let media = sniff_file(path)?;
        let size = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        let handle = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let chunks = futures_util::stream::unfold(Some(handle), |f| async move {
            let mut f = f?;
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        let res = self
            .client
            .post(format!(
                "{}/api/v1/work-orders/{}/evidence?kind={}",
                self.url,
                url_segment(order),
                file.kind.as_str()
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", media.as_str())
            .header("Content-Length", size)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        answer(res)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// An order id as one path segment (ids are UUIDs; anything else is escaped, not trusted).
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The JSON body of a 2xx, or the problem's code and detail.
async fn answer(res: reqwest::Response) -> Result<Value, String> {
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "{} {}: {}",
            status.as_u16(),
            body["code"].as_str().unwrap_or("error"),
            body["detail"].as_str().unwrap_or(&text)
        ))
    }
}

/// Re-hashes every stored evidence file the database names, then every object no row names
/// (orphans: bytes stored by an upload refused afterwards, harmless; one younger than a few
/// minutes may be an upload whose row is about to commit). The verdict is about the files
/// rows name: the first bad one (changed or missing) fails the check.
pub async fn verify_store(s: &Settings) -> Result<(bool, Value), String> {
    // A mistyped SQLite path must not pass as an empty, intact store.
    if let DatabaseUrl::Sqlite(path) = DatabaseUrl::parse(s.database_url().expose_secret()) {
        if !path.exists() {
            return Err(format!("no database at {}", path.display()));
        }
    }
    let store = Store::open(
        s.database_url().expose_secret(),
        s.database.pool_size,
        s.database.sqlite_busy_timeout_ms,
    )
    .map_err(|e| e.to_string())?;
    let objects = EvidenceStore::open(s).map_err(|e| e.to_string())?;
    let mut conn = store.connection().map_err(|e| e.to_string())?;
    let mut checked = 0u64;
    let mut after = String::new();
    let mut named = std::collections::BTreeSet::new();
    loop {
        let page = rows::digests_after(&mut conn, &after, 500).map_err(|e| e.to_string())?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for sha in page {
            if let Some(reason) = verdict(&objects, &sha).await? {
                let order = rows::any_with_digest(&mut conn, &sha)
                    .map_err(|e| e.to_string())?
                    .map(|r| r.work_order_id);
                let report = json!({
                    "ok": false, "checked": checked,
                    "first_bad": { "sha256": sha, "work_order": order, "reason": reason },
                });
                return Ok((false, report));
            }
            checked += 1;
            named.insert(sha);
        }
        after = last;
    }
    let mut orphans = Vec::new();
    for (sha, written) in objects.digests().await.map_err(|e| e.to_string())? {
        if named.contains(&sha) {
            continue;
        }
        let problem = verdict(&objects, &sha).await?;
        orphans.push(json!({ "sha256": sha, "written_at": written, "intact": problem.is_none() }));
    }
    let staging: Vec<Value> = objects
        .staging_leftovers()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(path, written)| json!({ "path": path, "written_at": written }))
        .collect();
    Ok((
        true,
        json!({
            "ok": true, "checked": checked, "first_bad": null,
            "orphans": orphans, "staging": staging, "store": objects.location,
        }),
    ))
}

/// Why a stored object is bad, or None when its bytes hash to its name.
async fn verdict(objects: &EvidenceStore, sha: &str) -> Result<Option<String>, String> {
    match check_stored(objects, sha).await {
        Ok(()) => Ok(None),
        Err(bad) => bad.verdict().map(Some).map_err(|e| e.to_string()),
    }
}
