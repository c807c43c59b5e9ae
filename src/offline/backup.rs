//! `crossprov backup` and `crossprov restore` for the embedded database.
//!
//! A backup is one tar file: a consistent copy of the SQLite database (`VACUUM INTO`, taken
//! while the service runs), every evidence object its rows name (as stored: sealed objects
//! stay sealed), and a manifest signed with the service key that gives each file's size and
//! SHA-256, the audit log's size and Merkle head, and a checkpoint of that head. A restore
//! believes nothing it has not checked: the manifest's signature against the service key of
//! the host it restores on, every file against the manifest, the whole audit chain against
//! the manifest's head and checkpoint, every evidence row against the files, and the KEK at
//! hand against the backup's data keys. Only then does anything reach the data directory.
//!
//! Neither the KEK nor the service key is in the backup: they are kept apart (see
//! docs/operations.md), so a stolen backup holds sealed personal data only, and a subscriber
//! shredded later stays unreadable in it once the KEK that wrapped their key is retired.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::checkpoint::CheckpointClaims;
use crate::config::Settings;
use crate::service::personal::keyring;
use crate::signing::jws::CompactJws;
use crate::signing::keys::{PrivateKey, ServiceKey};
use crate::storage::objects::{EvidenceStore, ObjectName};
use crate::storage::offline::OfflineDb;
use crate::storage::{Backend, DatabaseUrl};

/// What a manifest says it is; a restore refuses any other.
pub const FORMAT: &str = "crossprov-backup/1";
const DATABASE_ENTRY: &str = "crossprov.db";
const MANIFEST_ENTRY: &str = "manifest.jws";
const EVIDENCE_PREFIX: &str = "evidence/";
/// A manifest names every object; even a million stay far below this.
const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// The signed table of contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: DateTime<Utc>,
    /// The crossprov version that wrote it.
    pub version: String,
    pub database: FileDigest,
    pub evidence: Vec<EvidenceObject>,
    pub audit: AuditHead,
    /// A checkpoint of the backed-up log (the JWS `GET /api/v1/audit/checkpoint` gives):
    /// keep it apart, and `crossprov audit verify --checkpoint` proves a restored log later.
    pub checkpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
}

/// An evidence object as stored (sealed bytes for sealed objects): its name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceObject {
    pub object: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Events in the log.
    pub size: u64,
    /// The Merkle tree head over them (hex), as checkpoints sign it.
    pub head: String,
}

/// Why a restore did not happen: the backup failed a check (exit 1), or the restore could not
/// be tried (settings, an occupied target, files; exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> RestoreError {
    RestoreError::Failed(e.to_string())
}

/// The SQLite file the settings name; PostgreSQL has its own tools.
fn sqlite_path(s: &Settings) -> Result<PathBuf, String> {
    match DatabaseUrl::parse(s.database_url().expose_secret()) {
        DatabaseUrl::Sqlite(path) => Ok(path),
        DatabaseUrl::Postgres(_) => Err(
            "the database is PostgreSQL: back it up with pg_dump or continuous archiving and \
             check a restore with `crossprov audit verify --checkpoint` (docs/operations.md, Backups)"
                .into(),
        ),
    }
}

/// The service key as it is: never generated here, since a new key would sign for nobody.
fn service_key(s: &Settings) -> Result<ServiceKey, String> {
    let path = s.service_key_path();
    if !path.exists() {
        return Err(format!(
            "no service key at {}: backups are signed with, and restores checked against, the \
             key the service signs with; copy it there from where it is kept",
            path.display()
        ));
    }
    let key = PrivateKey::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(ServiceKey::from_key(key))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            digest: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<FileDigest> {
        self.inner.flush()?;
        Ok(FileDigest {
            bytes: self.bytes,
            sha256: hex::encode(self.digest.finalize()),
        })
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn digest_file(path: &Path) -> std::io::Result<FileDigest> {
    let mut sink = Hashing::new(std::io::sink());
    std::io::copy(&mut File::open(path)?, &mut sink)?;
    sink.finish()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory a path lives in ("." for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Takes a backup into `out` (replaced only once the new one is whole); answers what
/// `crossprov backup` prints.
pub async fn backup(s: &Settings, out: &Path) -> Result<Value, String> {
    let db_path = sqlite_path(s)?;
    if !db_path.exists() {
        return Err(format!("no database at {}", db_path.display()));
    }
    let key = service_key(s)?;
    let out_dir = parent_of(out);
    // Beside the output, so the finished archive is renamed into place, never copied.
    let work = tempfile::Builder::new()
        .prefix(".crossprov-backup-")
        .tempdir_in(&out_dir)
        .map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let snapshot = work.path().join(DATABASE_ENTRY);
    OfflineDb::open_existing(&sqlite_url(&db_path))
        .and_then(|live| live.snapshot_into(&snapshot))
        .map_err(|e| format!("copying {}: {e}", db_path.display()))?;

    let copy = OfflineDb::open_existing(&sqlite_url(&snapshot)).map_err(|e| e.to_string())?;
    let report = copy
        .verify_audit(None, &Default::default())
        .map_err(|e| e.to_string())?
        .report;
    if !report.ok {
        return Err(format!(
            "the audit chain is not intact (first bad event {:?}): `crossprov audit verify` \
             says more; a backup of it would not restore",
            report.first_bad_seq
        ));
    }
    if !copy.publishes_key(&key.kid).map_err(|e| e.to_string())? {
        return Err(format!(
            "the service key {} at {} is not the key this database's service signs with",
            key.kid,
            s.service_key_path().display()
        ));
    }
    let audit = AuditHead {
        size: report.checked,
        head: report.head.clone(),
    };
    let now = Utc::now();
    let checkpoint = key
        .sign(&CheckpointClaims {
            size: audit.size,
            head: audit.head.clone(),
            at: now.timestamp(),
        })
        .map_err(|e| e.to_string())?;
    let work_orders = copy.count_work_orders().map_err(|e| e.to_string())?;

    // The objects the copy's rows name, read from the store the service writes to.
    let objects = EvidenceStore::open(s).map_err(|e| e.to_string())?;
    let objects_dir = work.path().join("evidence");
    std::fs::create_dir_all(&objects_dir).map_err(|e| e.to_string())?;
    let names = copy.named_evidence_objects().map_err(|e| e.to_string())?;
    drop(copy);
    let mut evidence = Vec::with_capacity(names.len());
    let mut evidence_files = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let file = objects_dir.join(i.to_string());
        let digest = copy_object(&objects, name, &file).await?;
        evidence.push(EvidenceObject {
            object: name.to_string(),
            bytes: digest.bytes,
            sha256: digest.sha256,
        });
        evidence_files.push(file);
    }

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: now,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: digest_file(&snapshot).map_err(|e| e.to_string())?,
        evidence,
        audit,
        checkpoint,
    };
    let signed = key.sign(&manifest).map_err(|e| e.to_string())?;

    let archive = work.path().join("backup.tar");
    write_archive(&archive, &snapshot, &manifest, &evidence_files, &signed)
        .map_err(|e| format!("writing {}: {e}", archive.display()))?;
    std::fs::rename(&archive, out).map_err(|e| format!("{}: {e}", out.display()))?;
    sync_dir(&out_dir).map_err(|e| e.to_string())?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "ok": true,
        "out": out.display().to_string(),
        "bytes": bytes,
        "work_orders": work_orders,
        "database_bytes": manifest.database.bytes,
        "evidence_objects": manifest.evidence.len(),
        "evidence_bytes": manifest.evidence.iter().map(|e| e.bytes).sum::<u64>(),
        "audit": manifest.audit,
        "checkpoint": manifest.checkpoint,
    }))
}

/// Streams one stored object into `file`, hashing it on the way.
async fn copy_object(
    objects: &EvidenceStore,
    name: &ObjectName,
    file: &Path,
) -> Result<FileDigest, String> {
    let mut stream = objects.read(name).await.map_err(|e| {
        format!(
            "evidence object {name}, which the database names, cannot be read ({e}): \
             `crossprov evidence verify` says more"
        )
    })?;
    let mut sink = Hashing::new(File::create(file).map_err(|e| e.to_string())?);
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| format!("reading evidence object {name}: {e}"))?
    {
        sink.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    sink.finish().map_err(|e| e.to_string())
}

fn write_archive(
    archive: &Path,
    snapshot: &Path,
    manifest: &Manifest,
    evidence_files: &[PathBuf],
    signed: &str,
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(std::io::BufWriter::new(File::create(archive)?));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.append_path_with_name(snapshot, DATABASE_ENTRY)?;
    for (object, file) in manifest.evidence.iter().zip(evidence_files) {
        tar.append_path_with_name(file, format!("{EVIDENCE_PREFIX}{}", object.object))?;
    }
    // Last: a reader has every file by the time it learns what they should be.
    let mut header = tar::Header::new_gnu();
    header.set_size(signed.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST_ENTRY, signed.as_bytes())?;
    let file = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// What a restore unpacked into its staging directory, before anything is believed.
#[derive(Default)]
struct Unpacked {
    database: Option<FileDigest>,
    manifest: Option<String>,
    /// Object name → (staged file, its digest).
    evidence: BTreeMap<String, (PathBuf, FileDigest)>,
}

fn unpack(from: &Path, staging: &Path) -> Result<Unpacked, RestoreError> {
    let file = File::open(from).map_err(|e| failed(format!("{}: {e}", from.display())))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let mut got = Unpacked::default();
    let not_a_backup = |why: String| RestoreError::Refused(format!("not a whole backup: {why}"));
    for entry in tar.entries().map_err(|e| not_a_backup(e.to_string()))? {
        let mut entry = entry.map_err(|e| not_a_backup(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| not_a_backup(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(not_a_backup(format!("{name} is not a file")));
        }
        let duplicate = || not_a_backup(format!("{name} appears twice"));
        if name == DATABASE_ENTRY {
            if got.database.is_some() {
                return Err(duplicate());
            }
            got.database = Some(stage(&mut entry, &staging.join(DATABASE_ENTRY))?);
        } else if name == MANIFEST_ENTRY {
            if got.manifest.is_some() {
                return Err(duplicate());
            }
            let mut text = String::new();
            entry
                .by_ref()
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| not_a_backup(format!("{name}: {e}")))?;
            got.manifest = Some(text);
        } else if let Some(object) = name
            .strip_prefix(EVIDENCE_PREFIX)
            .filter(|o| ObjectName::parse(o).is_some())
        {
            if got.evidence.contains_key(object) {
                return Err(duplicate());
            }
            let file = staging.join(format!("evidence-{}", got.evidence.len()));
            let digest = stage(&mut entry, &file)?;
            got.evidence.insert(object.to_owned(), (file, digest));
        } else {
            return Err(not_a_backup(format!("unexpected entry {name}")));
        }
    }
    Ok(got)
}

fn stage(entry: &mut impl Read, file: &Path) -> Result<FileDigest, RestoreError> {
    let mut sink = Hashing::new(File::create(file).map_err(failed)?);
    std::io::copy(entry, &mut sink)
        .map_err(|e| RestoreError::Refused(format!("not a whole backup: {e}")))?;
    sink.finish().map_err(failed)
}

/// The manifest, if the service key of this host signed it.
fn signed_manifest(text: &str, key: &ServiceKey) -> Result<Manifest, RestoreError> {
    let refused = |why: &str| RestoreError::Refused(format!("the manifest {why}"));
    let jws = CompactJws::parse(text).map_err(|_| refused("is not a signed manifest"))?;
    if jws.kid.as_deref() != Some(key.kid.as_str()) {
        return Err(RestoreError::Refused(format!(
            "the manifest is signed by key {}, not by this service's key {}: restore with the \
             service key of the backed-up host",
            jws.kid.as_deref().unwrap_or("(none)"),
            key.kid
        )));
    }
    jws.verify(key.key.public())
        .map_err(|_| refused("signature does not verify: the manifest was changed"))?;
    let manifest: Manifest =
        serde_json::from_slice(&jws.payload).map_err(|_| refused("is not a backup manifest"))?;
    if manifest.format != FORMAT {
        return Err(refused(&format!(
            "is of format {}, not {FORMAT}",
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Restores a backup into the (empty) place the settings name; answers what
/// `crossprov restore` prints.
pub async fn restore(s: &Settings, from: &Path) -> Result<Value, RestoreError> {
    let target = sqlite_path(s).map_err(RestoreError::Failed)?;
    for occupied in [
        target.clone(),
        PathBuf::from(format!("{}-wal", target.display())),
    ] {
        if occupied.exists() {
            return Err(RestoreError::Failed(format!(
                "{} exists: stop the service and move the database (with its -wal and -shm \
                 files) aside before restoring",
                occupied.display()
            )));
        }
    }
    let key = service_key(s).map_err(RestoreError::Failed)?;
    if !s.kek_path().exists() {
        return Err(RestoreError::Failed(format!(
            "no KEK at {}: copy the KEK of the backed-up service there first (without it the \
             restored personal data cannot be read)",
            s.kek_path().display()
        )));
    }
    let target_dir = parent_of(&target);
    std::fs::create_dir_all(&target_dir).map_err(failed)?;
    let staging = tempfile::Builder::new()
        .prefix(".crossprov-restore-")
        .tempdir_in(&target_dir)
        .map_err(|e| failed(format!("{}: {e}", target_dir.display())))?;

    let got = unpack(from, staging.path())?;
    let manifest = signed_manifest(
        got.manifest
            .as_deref()
            .ok_or_else(|| RestoreError::Refused("not a whole backup: no manifest".into()))?,
        &key,
    )?;
    if got.database.as_ref() != Some(&manifest.database) {
        return Err(RestoreError::Refused(format!(
            "{DATABASE_ENTRY} is not the database the manifest describes"
        )));
    }
    let listed: BTreeSet<&str> = manifest
        .evidence
        .iter()
        .map(|e| e.object.as_str())
        .collect();
    if let Some(extra) = got.evidence.keys().find(|o| !listed.contains(o.as_str())) {
        return Err(RestoreError::Refused(format!(
            "evidence object {extra} is not in the manifest"
        )));
    }
    for object in &manifest.evidence {
        match got.evidence.get(&object.object) {
            Some((_, digest)) if digest.bytes == object.bytes && digest.sha256 == object.sha256 => {
            }
            Some(_) => {
                return Err(RestoreError::Refused(format!(
                    "evidence object {} does not match its digest in the manifest",
                    object.object
                )))
            }
            None => {
                return Err(RestoreError::Refused(format!(
                    "evidence object {} is missing",
                    object.object
                )))
            }
        }
    }

    let staged_db = staging.path().join(DATABASE_ENTRY);
    let (work_orders, kept) = check_database(s, &staged_db, &manifest, &listed)?;

    // Every check passed: the objects go to the store first and the database last, so a
    // restore cut short leaves no database and can simply be run again.
    let objects = EvidenceStore::open(s).map_err(failed)?;
    for object in &manifest.evidence {
        if let (Some(name), Some((file, _))) = (
            ObjectName::parse(&object.object),
            got.evidence.get(&object.object),
        ) {
            put_object(&objects, &name, file).await?;
        }
    }
    std::fs::rename(&staged_db, &target).map_err(failed)?;
    sync_dir(&target_dir).map_err(failed)?;
    Ok(json!({
        "ok": true,
        "database": target.display().to_string(),
        "work_orders": work_orders,
        "evidence_objects": manifest.evidence.len(),
        "audit": manifest.audit,
        "checkpoint": kept,
        "backed_up_at": manifest.created_at,
    }))
}

/// The staged database against the manifest: the whole chain re-hashed to its head and
/// checkpoint, every evidence row's object present, the KEK at hand opening its data keys.
/// Answers the number of work orders and the checkpoint's claims.
fn check_database(
    s: &Settings,
    staged_db: &Path,
    manifest: &Manifest,
    listed: &BTreeSet<&str>,
) -> Result<(i64, CheckpointClaims), RestoreError> {
    let db = OfflineDb::open_existing(&sqlite_url(staged_db)).map_err(|e| {
        RestoreError::Refused(format!("{DATABASE_ENTRY} does not open as a database: {e}"))
    })?;
    let (report, kept) = db
        .verify_audit_against(&manifest.checkpoint)
        .map_err(|e| RestoreError::Refused(format!("the audit log cannot be read: {e}")))?;
    if !report.ok {
        return Err(RestoreError::Refused(format!(
            "the audit chain is not intact (first bad event {:?})",
            report.first_bad_seq
        )));
    }
    let head = AuditHead {
        size: report.checked,
        head: report.head.clone(),
    };
    if head != manifest.audit {
        return Err(RestoreError::Refused(format!(
            "the audit log holds {} events with head {}, the manifest {} with head {}",
            head.size, head.head, manifest.audit.size, manifest.audit.head
        )));
    }
    let kept = kept.map_err(|why| RestoreError::Refused(format!("the checkpoint: {why}")))?;
    let named = db
        .named_evidence_objects()
        .map_err(|e| RestoreError::Refused(e.to_string()))?;
    if let Some(name) = named
        .iter()
        .find(|name| !listed.contains(name.to_string().as_str()))
    {
        return Err(RestoreError::Refused(format!(
            "the database names evidence object {name} that the backup does not hold"
        )));
    }
    if let Some(row) = db.a_live_data_key().map_err(failed)? {
        let opens = keyring(s, Backend::Sqlite).and_then(|ring| {
            ring.unwrap(&row.id, &row.kek_id, row.wrapped.as_deref().unwrap_or(""))
        });
        if let Err(e) = opens {
            return Err(RestoreError::Failed(format!(
                "the KEK at {} does not open the backup's data keys (wrapped by KEK {}): {e}; \
                 restore with the KEK the backed-up service used",
                s.kek_path().display(),
                row.kek_id
            )));
        }
    }
    let work_orders = db.count_work_orders().map_err(failed)?;
    Ok((work_orders, kept))
}

/// Writes one staged object into the evidence store under its name.
async fn put_object(
    objects: &EvidenceStore,
    name: &ObjectName,
    file: &Path,
) -> Result<(), RestoreError> {
    let mut source = File::open(file).map_err(failed)?;
    let mut staging = objects.begin().await.map_err(failed)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                staging.abort().await;
                return Err(failed(e));
            }
        };
        if let Err(e) = staging.write(&buf[..n]).await {
            staging.abort().await;
            return Err(failed(e));
        }
    }
    staging.finish(name).await.map_err(failed)
}
