//! The evidence object store: bytes addressed by their SHA-256, in a directory or in
//! S3-compatible storage, behind `object_store`. Every byte that enters or leaves the store
//! passes `Staging::write` or `EvidenceStore::read`: the seam where encryption at rest goes.
//!
//! Writes are two steps: stream into `staging/<uuid>`, then move the complete object to its
//! name: `v1/<order id>/<64 hex>` for an object sealed under the subscriber's data key
//! (`crypto::stream`; one per order, since each subscriber has a key of its own), or
//! `sha256/<2 hex>/<64 hex>` for a plain one written before encryption at rest. A reader
//! therefore never sees a partial object under a name, and a database row is written only
//! after the move (see `service::evidence`).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};

use chrono::{DateTime, Utc};

use secrecy::ExposeSecret;

use crate::config::{EvidenceBackend, Settings};
use crate::domain::evidence::is_sha256_hex;
use crate::storage::error::WriteRefusal;

/// S3 refuses multipart parts under 5 MiB (but the last); locally smaller parts keep memory low.
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
const FILE_PART_BYTES: usize = 256 * 1024;
/// Parts in flight per upload: an upload holds at most the part being filled and this many
/// more (S3: 10 MiB per upload; files: 512 KiB), whatever the file's size.
const PARTS_IN_FLIGHT: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("evidence store settings: {0}")]
    Settings(String),
    #[error("no stored object for {0}")]
    Missing(String),
    #[error("evidence store: {0}")]
    Backend(#[from] object_store::Error),
    #[error("evidence store: {context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    /// A sealed object that does not open (altered, truncated, or under another name).
    #[error("evidence object {0} does not open")]
    Unreadable(String),
}

impl ObjectError {
    /// Why the store refused a write (no space, read-only), when that is what happened.
    pub fn write_refusal(&self) -> Option<WriteRefusal> {
        match self {
            Self::Backend(e) => WriteRefusal::in_chain(e),
            Self::Io { source, .. } => WriteRefusal::in_chain(source),
            _ => None,
        }
    }
}

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectName {
    /// A plain object written before encryption at rest, shared by every order with its bytes.
    Plain(String),
    /// An order's object, sealed under its subscriber's data key.
    Sealed { order: String, sha256: String },
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(sha) => write!(f, "{sha}"),
            Self::Sealed { order, sha256 } => write!(f, "{order}/{sha256}"),
        }
    }
}

impl ObjectName {
    pub fn sha256(&self) -> &str {
        match self {
            Self::Plain(sha) | Self::Sealed { sha256: sha, .. } => sha,
        }
    }

    /// The name as it is displayed (`SHA` or `ORDER/SHA`), held to the same rules as a path.
    pub fn parse(text: &str) -> Option<Self> {
        let name = match text.split_once('/') {
            None => Self::Plain(text.to_owned()),
            Some((order, sha256)) => Self::Sealed {
                order: order.to_owned(),
                sha256: sha256.to_owned(),
            },
        };
        name.path().is_ok().then_some(name)
    }

    /// Anything but 64 lowercase hex digits (and an order id of uuid characters) names nothing.
    fn path(&self) -> Result<Path, ObjectError> {
        let sha = self.sha256();
        if !is_sha256_hex(sha) {
            return Err(ObjectError::Missing(sha.to_owned()));
        }
        match self {
            Self::Plain(_) => Ok(Path::from(format!("sha256/{}/{sha}", &sha[..2]))),
            Self::Sealed { order, .. } => {
                let safe = !order.is_empty()
                    && order.len() <= 64
                    && order
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !safe {
                    return Err(ObjectError::Missing(self.to_string()));
                }
                Ok(Path::from(format!("v1/{order}/{sha}")))
            }
        }
    }
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct EvidenceStore {
    inner: Arc<dyn ObjectStore>,
    part_bytes: usize,
    /// The directory of a `file` store: objects are fsynced there, as the database's commits are.
    local_dir: Option<std::path::PathBuf>,
    /// Where the store is, for logs and error messages (no credentials).
    pub location: String,
}

impl std::fmt::Debug for EvidenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceStore")
            .field("location", &self.location)
            .finish()
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl EvidenceStore {
    /// The store the settings name: `evidence.store = "file"` (default) or `"s3"`.
    pub fn open(settings: &Settings) -> Result<Self, ObjectError> {
        let e = &settings.evidence;
        match e.store {
            EvidenceBackend::File => {
                let dir = settings.evidence_dir();
                std::fs::create_dir_all(&dir).map_err(|err| {
                    ObjectError::Settings(format!("cannot create {}: {err}", dir.display()))
                })?;
                prepare_dirs(&dir).map_err(|err| {
                    ObjectError::Settings(format!("cannot prepare {}: {err}", dir.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
                Ok(Self {
                    inner: Arc::new(fs),
                    part_bytes: FILE_PART_BYTES,
                    location: dir.display().to_string(),
                    local_dir: Some(dir),
                })
            }
            EvidenceBackend::S3 => {
                let url = non_empty(&e.s3_url).ok_or_else(|| {
                    ObjectError::Settings("evidence.s3_url must name s3://BUCKET[/PREFIX]".into())
                })?;
                let rest = url.strip_prefix("s3://").ok_or_else(|| {
                    ObjectError::Settings("evidence.s3_url must start with s3://".into())
                })?;
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                // Environment first (AWS_*), then whatever the settings name explicitly.
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = non_empty(&e.s3_endpoint) {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(region) = non_empty(&e.s3_region) {
                    b = b.with_region(region);
                }
                if let Some(id) = non_empty(&e.s3_access_key_id) {
                    b = b.with_access_key_id(id);
                }
                if let Some(secret) = non_empty(e.s3_secret_access_key.expose_secret()) {
                    b = b.with_secret_access_key(secret);
                }
                let s3 = b.build()?;
                let inner: Arc<dyn ObjectStore> = match non_empty(prefix.trim_matches('/')) {
                    Some(p) => Arc::new(object_store::prefix::PrefixStore::new(s3, p)),
                    None => Arc::new(s3),
                };
                Ok(Self {
                    inner,
                    part_bytes: S3_PART_BYTES,
                    location: url.to_owned(),
                    local_dir: None,
                })
            }
        }
    }

    /// Starts writing a new object whose digest is not known yet.
    pub async fn begin(&self) -> Result<Staging, ObjectError> {
        let path = Path::from(format!("staging/{}", uuid::Uuid::new_v4()));
        let upload = self.inner.put_multipart(&path).await?;
        Ok(Staging {
            store: self.clone(),
            path,
            writer: WriteMultipart::new_with_chunk_size(upload, self.part_bytes),
        })
    }

    /// A `file` store's object reaches the disk before its row commits (S3 acknowledges
    /// only durable writes by itself).
    async fn sync_local(&self, object: &Path) -> Result<(), ObjectError> {
        let Some(dir) = &self.local_dir else {
            return Ok(());
        };
        let file = dir.join(object.as_ref());
        let synced = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&file)?.sync_all()?;
            if let Some(parent) = file.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ObjectError::Io {
            context: "fsync task",
            source: std::io::Error::other(e),
        })?;
        synced.map_err(|source| ObjectError::Io {
            context: "fsync",
            source,
        })
    }

    /// Whether an object of a typical upload's size can be written (then deleted): room
    /// again after a full disk.
    pub async fn probe_space(&self) -> Result<(), ObjectError> {
        let path = Path::from(format!("staging/probe-{}", uuid::Uuid::new_v4()));
        let bytes = Bytes::from(vec![0u8; FILE_PART_BYTES]);
        self.inner.put(&path, bytes.into()).await?;
        self.inner.delete(&path).await?;
        Ok(())
    }

    /// Streams the stored bytes of an object, as they are (the caller opens and re-hashes).
    pub async fn read(
        &self,
        name: &ObjectName,
    ) -> Result<BoxStream<'static, Result<Bytes, ObjectError>>, ObjectError> {
        match self.inner.get(&name.path()?).await {
            Ok(got) => Ok(got.into_stream().map_err(ObjectError::from).boxed()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(ObjectError::Missing(name.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object (a shredded subscriber's); one already gone is fine.
    pub async fn delete(&self, name: &ObjectName) -> Result<(), ObjectError> {
        match self.inner.delete(&name.path()?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every sealed object the store holds, with when it was written, for the orphan report.
    pub async fn sealed_objects(&self) -> Result<Vec<(ObjectName, DateTime<Utc>)>, ObjectError> {
        let listed: Vec<_> = self
            .inner
            .list(Some(&Path::from("v1")))
            .try_collect()
            .await?;
        let mut out: Vec<(ObjectName, DateTime<Utc>)> = listed
            .into_iter()
            .filter_map(|meta| {
                let mut parts = meta.location.parts();
                let _v1 = parts.next()?;
                let order = parts.next()?.as_ref().to_owned();
                let sha = parts.next()?.as_ref().to_owned();
                is_sha256_hex(&sha).then_some((
                    ObjectName::Sealed { order, sha256: sha },
                    meta.last_modified,
                ))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every digest the store holds, with when it was written, for the orphan report.
    pub async fn digests(&self) -> Result<Vec<(String, DateTime<Utc>)>, ObjectError> {
        let listed: Vec<_> = self
            .inner
            .list(Some(&Path::from("sha256")))
            .try_collect()
            .await?;
        let mut digests: Vec<(String, DateTime<Utc>)> = listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_owned();
                is_sha256_hex(&name).then_some((name, meta.last_modified))
            })
            .collect();
        digests.sort();
        Ok(digests)
    }

    /// Staged objects never moved under a digest (an upload cut off mid-way), with their age.
    pub async fn staging_leftovers(&self) -> Result<Vec<(String, DateTime<Utc>)>, ObjectError> {
        let listed: Vec<_> = self
            .inner
            .list(Some(&Path::from("staging")))
            .try_collect()
            .await?;
        Ok(listed
            .into_iter()
            .map(|meta| (meta.location.to_string(), meta.last_modified))
            .collect())
    }
}

/// Creates the 256 prefix directories once, durably, so that making an object durable
/// later needs only the file and its own directory fsynced.
fn prepare_dirs(root: &std::path::Path) -> std::io::Result<()> {
    let objects = root.join("sha256");
    for prefix in 0..=255u8 {
        std::fs::create_dir_all(objects.join(format!("{prefix:02x}")))?;
    }
    std::fs::File::open(&objects)?.sync_all()?;
    std::fs::File::open(root)?.sync_all()
}

/// An object being written; finished under its digest or aborted, never left half-visible.
pub struct Staging {
    store: EvidenceStore,
    path: Path,
    writer: WriteMultipart,
}

impl Staging {
    /// Buffers at most one part, then waits for the parts in flight: memory stays bounded.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ObjectError> {
        self.writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.writer.write(chunk);
        Ok(())
    }

    /// Completes the object and moves it under its digest. The same bytes stored twice are
    /// one object; the move always replaces what is there (atomically), so a damaged or
    /// truncated copy is healed by uploading the right bytes again.
    pub async fn finish(self, name: &ObjectName) -> Result<(), ObjectError> {
        let Staging {
            store,
            path,
            writer,
        } = self;
        writer.finish().await?;
        let moved = async {
            let target = name.path()?;
            store.inner.rename(&path, &target).await?;
            store.sync_local(&target).await
        }
        .await;
        if moved.is_err() {
            // Best effort: a staged copy left behind is reported by `evidence verify`.
            let _ = store.inner.delete(&path).await;
        }
        moved
    }

    /// Gives the upload up (a refused or broken request); nothing is left under a digest.
    pub async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, "could not clean up an aborted evidence upload");
        }
    }
}
