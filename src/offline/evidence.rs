//! `crossprov evidence verify`: re-hashes the evidence store against the database's rows.

use serde_json::{json, Value};

use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::service::evidence::check_stored;
use crate::storage::objects::EvidenceStore;
use crate::storage::offline::OfflineDb;
use crate::storage::DatabaseUrl;

/// Digests read per page: the check never holds the whole list of rows.
const PAGE: i64 = 500;

/// Re-hashes every stored evidence file the database names, then every object no row names
/// (orphans: bytes stored by an upload refused afterwards, harmless; one younger than a few
/// minutes may be an upload whose row is about to commit). The verdict is about the files
/// rows name: the first bad one (changed or missing) fails the check.
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
    let objects = EvidenceStore::open(s).map_err(|e| e.to_string())?;
    let mut checked = 0u64;
    let mut after = String::new();
    let mut named = std::collections::BTreeSet::new();
    loop {
        let page = db
            .evidence_digests_after(&after, PAGE)
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for sha in page {
            if let Some(reason) = verdict(&objects, &sha).await? {
                let order = db.evidence_order_of(&sha).map_err(|e| e.to_string())?;
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
