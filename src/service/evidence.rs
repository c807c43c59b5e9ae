//! Evidence files: upload (streamed, typed by magic bytes, content-addressed), listing, and
//! downloads that re-hash the bytes so a damaged file is never served as good.
//!
//! Order of writes: the object is complete in the store *before* its metadata row and audit
//! event commit together, so a row never points at a partial object; an upload refused after
//! its object was stored leaves an orphan, harmless and reported by `crossprov evidence verify`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{recorder, ChainLock, Error, Refusal, Result, Services};
use crate::audit::{AuditAction, Recorder};
use crate::crypto::stream::{Opener, Sealer};
use crate::crypto::DataKey;
use crate::domain::access::Actor;
use crate::domain::evidence::{self as rules, EvidenceKind, MediaType, SNIFF_LEN};
use crate::domain::{Detail, DomainError, WorkOrderId};
use crate::storage::evidence::{self as rows, EvidenceRow};
use crate::storage::objects::{EvidenceStore, ObjectError, ObjectName};
use crate::storage::{data_keys, work_orders};

/// An evidence file as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvidenceView {
    pub kind: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
    pub uploaded_at: DateTime<Utc>,
    /// The hall that uploaded it, and who.
    pub hall_id: String,
    pub uploaded_by: String,
}

impl From<&EvidenceRow> for EvidenceView {
    fn from(r: &EvidenceRow) -> Self {
        Self {
            kind: r.kind.clone(),
            sha256: r.sha256.clone(),
            size: r.size,
            content_type: r.content_type.clone(),
            uploaded_at: r.uploaded_at.and_utc(),
            hall_id: r.hall_id.clone(),
            uploaded_by: r.uploaded_by.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvidenceList {
    pub items: Vec<EvidenceView>,
}

/// A file on its way out: what it is, and its bytes (re-hashed as they stream).
pub struct EvidenceDownload {
    pub file: EvidenceView,
    pub bytes: BoxStream<'static, Result<Bytes>>,
}

/// What an upload streamed into the store.
struct Received {
    sha256: String,
    size: u64,
}

fn not_found_file() -> DomainError {
    DomainError::NotFound(Detail::new("核验材料文件", "evidence file"))
}

impl Services {
    /// Streams the body into the store, then records the file and its audit event in one
    /// transaction. The caller's rights are checked before a byte is stored, and again
    /// under the chain lock.
    pub(crate) async fn upload_evidence<S>(
        &self,
        actor: Actor,
        id: WorkOrderId,
        kind: EvidenceKind,
        media: MediaType,
        body: S,
    ) -> Result<EvidenceView>
    where
        S: Stream<Item = Result<Bytes>> + Unpin,
    {
        actor.require(crate::domain::access::Permission::ActAsHallStaff)?;
        let (check_actor, check_id) = (actor.clone(), id.clone());
        let crypto = self.crypto.clone();
        let (msisdn, live) = self
            .store
            .read(move |c| -> Result<(String, Option<(String, DataKey)>)> {
                let order = work_orders::get(c, &check_id)?
                    .ok_or_else(|| DomainError::NotFound(Detail::work_order()))?;
                rules::authorize_upload(&order, &check_actor)?;
                let live = match data_keys::live_for(c, &order.msisdn)? {
                    Some(row) => crypto.unwrap(&row)?.map(|k| (row.id, k)),
                    None => None,
                };
                Ok((order.msisdn, live))
            })
            .await?;
        // The file is sealed as it streams in, under the subscriber's data key (made now, on
        // first need, when the order was opened without an expected name).
        let (key_id, key) = match live {
            Some(live) => live,
            None => {
                let crypto = self.crypto.clone();
                self.write(ChainLock::NotNeeded, recorder(&actor), move |tx, now| {
                    Ok(crypto.live_key(tx, &msisdn, now)?)
                })
                .await?
            }
        };

        let limit = self.settings.limits.evidence_bytes as u64;
        let sealer = Sealer::new(&key, &key_id, id.as_str())?;
        let received = receive(&self.evidence, body, media, limit, sealer, id.as_str())
            .await
            .inspect_err(|e| self.storage_health.note(e))?;

        let attempt = self
            .record_upload(actor.clone(), id.clone(), kind, media, &received, &key_id)
            .await;
        match attempt {
            // Two identical uploads raced to insert the same row: the loser's transaction
            // is spoiled on PostgreSQL, so record it again, now as the second upload.
            Err(Error::Storage(e)) if e.is_unique_violation() => {
                self.record_upload(actor, id, kind, media, &received, &key_id)
                    .await
            }
            other => other,
        }
    }

    /// The metadata row (unless these bytes are on record already) and the upload's event.
    async fn record_upload(
        &self,
        actor: Actor,
        id: WorkOrderId,
        kind: EvidenceKind,
        media: MediaType,
        received: &Received,
        key_id: &str,
    ) -> Result<EvidenceView> {
        let (sha256, size) = (received.sha256.clone(), received.size);
        let key_id = key_id.to_owned();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            let order = work_orders::get_steady(tx, &id)?
                .ok_or_else(|| DomainError::NotFound(Detail::work_order()))?;
            rules::authorize_upload(&order, &actor)?;
            let existing = rows::find(tx, order.id.as_str(), kind.as_str(), &sha256)?;
            let again = existing.is_some();
            let row = match existing {
                // Stored again, now sealed (a file stored plain before encryption at rest).
                Some(row) if row.data_key_id.as_deref() != Some(key_id.as_str()) => {
                    rows::set_key(tx, &row.id, &key_id)?;
                    EvidenceRow {
                        data_key_id: Some(key_id.clone()),
                        ..row
                    }
                }
                Some(row) => row,
                None => {
                    let row = EvidenceRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        work_order_id: order.id.to_string(),
                        kind: kind.as_str().to_owned(),
                        sha256: sha256.clone(),
                        size: i64::try_from(size)
                            .map_err(|_| Error::Internal("file size overflows".into()))?,
                        content_type: media.as_str().to_owned(),
                        hall_id: order
                            .claimed_hall_id
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        uploaded_by: actor.username.to_string(),
                        uploaded_at: now.naive_utc(),
                        data_key_id: Some(key_id.clone()),
                        shredded_at: None,
                        object_deleted: false,
                    };
                    rows::insert(tx, &row)?;
                    row
                }
            };
            let detail = json!({
                "kind": row.kind, "sha256": row.sha256, "size": row.size,
                "content_type": row.content_type, "again": again,
            });
            crate::audit::append(
                tx,
                &recorder(&actor),
                AuditAction::EvidenceUploaded,
                Some(&order.id),
                &detail,
                now,
            )?;
            Ok(EvidenceView::from(&row))
        })
        .await
    }

    /// The order's files, for anyone who sees the order.
    pub(crate) async fn list_evidence(
        &self,
        actor: Actor,
        id: WorkOrderId,
    ) -> Result<EvidenceList> {
        actor.require(crate::domain::access::Permission::ReadOrderEvents)?;
        self.store
            .read(move |c| {
                let order = super::work_orders::load_visible(c, &id, &actor)?;
                let items = rows::for_order(c, order.id.as_str())?;
                Ok(EvidenceList {
                    items: items.iter().map(EvidenceView::from).collect(),
                })
            })
            .await
    }

    /// A file's bytes for the roles that may read them. The stored bytes are hashed before
    /// anything is sent; a file that no longer matches its digest is refused, logged,
    /// counted and audited. The read itself is audited (`evidence.viewed`) before it starts.
    pub(crate) async fn download_evidence(
        &self,
        actor: Actor,
        id: WorkOrderId,
        sha256: String,
    ) -> Result<EvidenceDownload> {
        actor.require(crate::domain::access::Permission::ReadOrderEvents)?;
        let (check_actor, check_id, check_sha) = (actor.clone(), id.clone(), sha256.clone());
        let crypto = self.crypto.clone();
        let (row, key) = self
            .store
            .read(move |c| -> Result<(EvidenceRow, Option<DataKey>)> {
                let order = super::work_orders::load_visible(c, &check_id, &check_actor)?;
                rules::authorize_download(&order, &check_actor)?;
                let row = rows::find_by_digest(c, order.id.as_str(), &check_sha)?
                    .ok_or_else(not_found_file)?;
                rules::authorize_file(&row.hall_id, &check_actor)?;
                if row.shredded_at.is_some() {
                    return Err(Error::Shredded);
                }
                let key = match &row.data_key_id {
                    Some(key_id) => Some(crypto.key(c, key_id)?.ok_or(Error::Shredded)?),
                    None => None,
                };
                Ok((row, key))
            })
            .await?;

        if let Err(why) = check_stored(&self.evidence, &row, key.as_ref()).await {
            return Err(self
                .integrity_failure(&row, why, actor.username.as_str())
                .await);
        }

        let row = self
            .write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
                let order = super::work_orders::load_visible(tx, &id, &actor)?;
                rules::authorize_download(&order, &actor)?;
                let row = rows::find_by_digest(tx, order.id.as_str(), &sha256)?
                    .ok_or_else(not_found_file)?;
                let detail = json!({ "kind": row.kind, "sha256": row.sha256 });
                crate::audit::append(
                    tx,
                    &recorder(&actor),
                    AuditAction::EvidenceViewed,
                    Some(&order.id),
                    &detail,
                    now,
                )?;
                Ok::<_, Refusal>(row)
            })
            .await?;

        // Hash again while streaming: a file changed after the check breaks off the
        // transfer instead of completing it.
        let stream = plain_stream(&self.evidence, &row, key.as_ref()).await?;
        let failures = self.evidence_failures.clone();
        let expected = row.sha256.clone();
        let checked = rehashing(stream, expected, failures);
        Ok(EvidenceDownload {
            file: EvidenceView::from(&row),
            bytes: checked,
        })
    }

    /// Logs, counts and audits a stored file that failed its check; answers the caller's error.
    async fn integrity_failure(&self, row: &EvidenceRow, why: StoredCheck, asker: &str) -> Error {
        let missing = matches!(why, StoredCheck::Missing);
        let reason = match why.verdict() {
            Ok(reason) => reason,
            // The store did not answer: not a verdict on the file.
            Err(e) => return Error::Evidence(e),
        };
        self.evidence_failures.inc();
        tracing::error!(
            work_order = %row.work_order_id, sha256 = %row.sha256, %reason,
            "evidence file failed its integrity check; not served"
        );
        let (order_id, detail) = (
            WorkOrderId::from(row.work_order_id.as_str()),
            json!({
                "kind": row.kind, "sha256": row.sha256, "reason": reason, "requested_by": asker,
            }),
        );
        let recorded = self
            .write(ChainLock::AtAppend, Recorder::system(), move |tx, now| {
                crate::audit::append(
                    tx,
                    &Recorder::system(),
                    AuditAction::EvidenceIntegrityFailed,
                    Some(&order_id),
                    &detail,
                    now,
                )?;
                Ok::<_, Refusal>(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not audit an evidence integrity failure");
        }
        Error::EvidenceCorrupted {
            sha256: row.sha256.clone(),
            missing,
        }
    }
}

/// Streams a body into a new object: the first bytes must be what the label says, the size
/// within `limit`; the digest is computed on the way. Any refusal aborts the staged object.
async fn receive<S>(
    store: &EvidenceStore,
    mut body: S,
    media: MediaType,
    limit: u64,
    mut sealer: Sealer,
    order_id: &str,
) -> Result<Received>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    let mut staging = store.begin().await?;
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut size: u64 = 0;
    let outcome: Result<String> = async {
        staging.write(sealer.header()).await?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large(limit));
            }
            if head.len() < SNIFF_LEN {
                let take = (SNIFF_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() == SNIFF_LEN {
                    media.check_label(&head)?;
                }
            }
            hasher.update(&chunk);
            let sealed = sealer.push(&chunk)?;
            if !sealed.is_empty() {
                staging.write(&sealed).await?;
            }
        }
        if head.len() < SNIFF_LEN {
            media.check_label(&head)?;
        }
        let sha256 = hex::encode(hasher.finalize());
        staging.write(&sealer.finish(&sha256)?).await?;
        Ok(sha256)
    }
    .await;
    let sha256 = match outcome {
        Ok(sha256) => sha256,
        Err(e) => {
            staging.abort().await;
            return Err(e);
        }
    };
    let name = ObjectName::Sealed {
        order: order_id.to_owned(),
        sha256: sha256.clone(),
    };
    staging.finish(&name).await?;
    Ok(Received { sha256, size })
}

fn too_large(limit: u64) -> Error {
    Error::TooLarge { limit }
}

/// Why a stored object is not served.
pub enum StoredCheck {
    Mismatch(String),
    Missing,
    /// A sealed object that does not open: altered, truncated, or moved from another name.
    Unreadable,
    Store(ObjectError),
}

impl StoredCheck {
    /// Why the file is bad, or the store's own failure (which says nothing about the file).
    pub fn verdict(self) -> std::result::Result<String, ObjectError> {
        match self {
            Self::Mismatch(actual) => Ok(format!("stored bytes hash to {actual}")),
            Self::Missing => Ok("no stored object".to_owned()),
            Self::Unreadable => {
                Ok("the sealed object does not open (altered or truncated)".to_owned())
            }
            Self::Store(e) => Err(e),
        }
    }
}

/// The plain bytes of a stored file, opened on the way when its object is sealed (`key`: its
/// data key). Memory stays at about a chunk whatever the file's size.
pub async fn plain_stream(
    store: &EvidenceStore,
    row: &EvidenceRow,
    key: Option<&DataKey>,
) -> std::result::Result<BoxStream<'static, std::result::Result<Bytes, ObjectError>>, ObjectError> {
    let name = row.object();
    let raw = store.read(&name).await?;
    let (key_id, key) = match (&row.data_key_id, key) {
        (None, _) => return Ok(raw),
        (Some(key_id), Some(key)) => (key_id, key),
        (Some(_), None) => return Err(ObjectError::Unreadable(name.to_string())),
    };
    let opener = Opener::new(key, key_id, &row.work_order_id, &row.sha256);
    let label = name.to_string();
    let state = (raw, Some(opener), label);
    Ok(
        futures_util::stream::unfold(state, |(mut raw, mut opener, label)| async move {
            loop {
                let o = opener.as_mut()?;
                match raw.next().await {
                    Some(Ok(bytes)) => match o.push(&bytes) {
                        Ok(plain) if plain.is_empty() => continue,
                        Ok(plain) => return Some((Ok(Bytes::from(plain)), (raw, opener, label))),
                        Err(_) => {
                            let e = ObjectError::Unreadable(label.clone());
                            return Some((Err(e), (raw, None, label)));
                        }
                    },
                    Some(Err(e)) => return Some((Err(e), (raw, None, label))),
                    None => {
                        let last = opener.take()?.finish();
                        return match last {
                            Ok(plain) => Some((Ok(Bytes::from(plain)), (raw, None, label))),
                            Err(_) => {
                                let e = ObjectError::Unreadable(label.clone());
                                Some((Err(e), (raw, None, label)))
                            }
                        };
                    }
                }
            }
        })
        .boxed(),
    )
}

/// Opens and re-hashes a stored file; Ok when its bytes still hash to its digest.
pub async fn check_stored(
    store: &EvidenceStore,
    row: &EvidenceRow,
    key: Option<&DataKey>,
) -> std::result::Result<(), StoredCheck> {
    let mut stream = match plain_stream(store, row, key).await {
        Ok(s) => s,
        Err(ObjectError::Missing(_)) => return Err(StoredCheck::Missing),
        Err(ObjectError::Unreadable(_)) => return Err(StoredCheck::Unreadable),
        Err(e) => return Err(StoredCheck::Store(e)),
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => hasher.update(&bytes),
            Err(ObjectError::Unreadable(_)) => return Err(StoredCheck::Unreadable),
            Err(e) => return Err(StoredCheck::Store(e)),
        }
    }
    let actual = hex::encode(hasher.finalize());
    if actual == row.sha256 {
        Ok(())
    } else {
        Err(StoredCheck::Mismatch(actual))
    }
}

/// Passes the bytes through, hashing them, always one chunk behind: the last chunk goes out
/// only once the whole file hashed right. A file changed after the check therefore ends in
/// an error before its last bytes, so the client sees a short (broken) transfer, never a
/// complete wrong file.
fn rehashing(
    stream: BoxStream<'static, std::result::Result<Bytes, ObjectError>>,
    expected: String,
    failures: prometheus::IntCounter,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        inner: BoxStream<'static, std::result::Result<Bytes, ObjectError>>,
        hasher: Option<Sha256>,
        held: Option<Bytes>,
        expected: String,
        failures: prometheus::IntCounter,
    }
    let state = State {
        inner: stream,
        hasher: Some(Sha256::new()),
        held: None,
        expected,
        failures,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            let hasher = st.hasher.as_mut()?;
            match st.inner.next().await {
                Some(Ok(bytes)) => {
                    hasher.update(&bytes);
                    if let Some(previous) = st.held.replace(bytes) {
                        return Some((Ok(previous), st));
                    }
                }
                Some(Err(e)) => {
                    st.hasher = None;
                    return Some((Err(Error::Evidence(e)), st));
                }
                None => {
                    let actual = hex::encode(st.hasher.take()?.finalize());
                    if actual == st.expected {
                        return st.held.take().map(|last| (Ok(last), st));
                    }
                    st.failures.inc();
                    tracing::error!(sha256 = %st.expected, %actual,
                        "evidence file changed while it was served; transfer broken off");
                    let err = Error::EvidenceCorrupted {
                        sha256: st.expected.clone(),
                        missing: false,
                    };
                    return Some((Err(err), st));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> BoxStream<'static, std::result::Result<Bytes, ObjectError>> {
        let items: Vec<_> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures_util::stream::iter(items).boxed()
    }

    async fn collect(s: BoxStream<'static, Result<Bytes>>) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut failed = false;
        let mut s = s;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        (out, failed)
    }

    #[actix_web::test]
    async fn a_good_file_streams_whole() -> Result<(), prometheus::Error> {
        let sha = crate::domain::sha256_hex(b"abcdef");
        let counter = prometheus::IntCounter::new("t", "t")?;
        let (bytes, failed) = collect(rehashing(
            chunks(&[b"ab", b"cd", b"ef"]),
            sha,
            counter.clone(),
        ))
        .await;
        assert_eq!(bytes, b"abcdef");
        assert!(!failed);
        assert_eq!(counter.get(), 0);
        Ok(())
    }

    #[actix_web::test]
    async fn a_file_changed_after_the_check_never_arrives_complete() -> Result<(), prometheus::Error>
    {
        let sha = crate::domain::sha256_hex(b"abcdef");
        let counter = prometheus::IntCounter::new("t", "t")?;
        let (bytes, failed) = collect(rehashing(
            chunks(&[b"ab", b"cd", b"eX"]),
            sha,
            counter.clone(),
        ))
        .await;
        assert!(failed);
        assert_eq!(bytes, b"abcd", "the last chunk is held back");
        assert_eq!(counter.get(), 1);
        // One chunk only: nothing is sent at all.
        let sha = crate::domain::sha256_hex(b"ok");
        let (bytes, failed) = collect(rehashing(chunks(&[b"no"]), sha, counter)).await;
        assert!(failed && bytes.is_empty());
        Ok(())
    }
}
