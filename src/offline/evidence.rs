//! `crossprov evidence verify`: re-hashes the evidence store against the database's rows.

use serde_json::{json, Value};

use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::crypto::DataKey;
use crate::service::evidence::check_stored;
use crate::service::personal::keyring;
use crate::storage::data_keys::DataKeyRow;
use crate::storage::evidence::EvidenceRow;
use crate::storage::objects::{EvidenceStore, ObjectName};
use crate::storage::offline::OfflineDb;
use crate::storage::DatabaseUrl;

/// Digests read per page: the check never holds the whole list of rows.
const PAGE: i64 = 500;

/// Re-hashes every stored evidence file the database names (opening sealed ones with their
/// subscriber's data key), then lists every object no row names (orphans: bytes stored by an
/// upload refused afterwards, harmless; one younger than a few minutes may be an upload whose
/// row is about to commit). The verdict is about the files rows name: the first bad one
/// (changed, not opening, or missing) fails the check. Shredded files are not expected.
pub async fn verify_store(s: &Settings) -> Result<(bool, Value), String> {
    let url = s.database_url();
    let url = url.expose_secret();
    // A mistyped SQLite path must not pass as an empty, intact store.
    if let DatabaseUrl::Sqlite(path) = DatabaseUrl::parse(url) {
        if !path.exists() {
            return Err(format!("no database at {}", path.display()));
        }
    }
    // Like every command but `audit verify`, it applies pending migrations first.
    let db = OfflineDb::open_migrated(url).map_err(|e| e.to_string())?;
    let backend = DatabaseUrl::parse(url).backend();
    // Sealed objects are opened to be re-hashed: the KEK the service uses is needed.
    let keyring = keyring(s, backend).map_err(|e| e.to_string())?;
    let objects = EvidenceStore::open(s).map_err(|e| e.to_string())?;
    let mut checked = 0u64;
    let mut after = String::new();
    let mut named = std::collections::BTreeSet::new();
    loop {
        let page = db
            .evidence_files_after(&after, PAGE)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last().map(|r| r.id.clone()) else {
            break;
        };
        for row in page {
            let name = row.object();
            if named.contains(&name) {
                continue;
            }
            let key = match &row.data_key_id {
                Some(id) => match db.data_key(id).map_err(|e| e.to_string())? {
                    Some(DataKeyRow {
                        id,
                        kek_id,
                        wrapped: Some(wrapped),
                        ..
                    }) => Some(
                        keyring
                            .unwrap(&id, &kek_id, &wrapped)
                            .map_err(|e| e.to_string())?,
                    ),
                    _ => None,
                },
                None => None,
            };
            if let Some(reason) = verdict(&objects, &row, key.as_ref()).await? {
                let report = json!({
                    "ok": false, "checked": checked,
                    "first_bad": { "sha256": row.sha256, "work_order": row.work_order_id, "reason": reason },
                });
                return Ok((false, report));
            }
            checked += 1;
            named.insert(name);
        }
        after = last;
    }
    let mut orphans = Vec::new();
    for (sha, written) in objects.digests().await.map_err(|e| e.to_string())? {
        if named.contains(&ObjectName::Plain(sha.clone())) {
            continue;
        }
        orphans.push(json!({ "sha256": sha, "written_at": written }));
    }
    for (name, written) in objects.sealed_objects().await.map_err(|e| e.to_string())? {
        if named.contains(&name) {
            continue;
        }
        orphans.push(
            json!({ "object": name.to_string(), "sha256": name.sha256(), "written_at": written }),
        );
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

/// Why a stored object is bad, or None when its bytes (opened, if sealed) hash to its digest.
async fn verdict(
    objects: &EvidenceStore,
    row: &EvidenceRow,
    key: Option<&DataKey>,
) -> Result<Option<String>, String> {
    match check_stored(objects, row, key).await {
        Ok(()) => Ok(None),
        Err(bad) => bad.verdict().map(Some).map_err(|e| e.to_string()),
    }
}
