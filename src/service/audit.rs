//! Auditors' reads: the trail, its integrity, and the service's public keys.

use crate::domain::text::ceiling::{Code, Id, Name};
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::views::AuditEventView;
use super::work_orders::parse_msisdn;
use super::{ChainLock, Error, Result, Services};
use crate::audit::checkpoint::CheckpointClaims;
use crate::audit::log::format_at;
use crate::audit::tree::{NodeId, Plan};
use crate::audit::{chain, Leaves};
use crate::audit::{AuditAction, Recorder};
use crate::domain::access::{Actor, Permission};
use crate::domain::masking::mask_id;
use crate::domain::Detail;
use crate::storage::{audit as store, secrets};

#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub work_order: Option<Id>,
    /// Only the events of orders sent to this hall or claimed by it.
    pub hall_id: Option<Id>,
    pub msisdn: Option<Id>,
    /// Exact search by ID number (blind index): the events of orders with a result whose
    /// document has it.
    pub document_number: Option<Name>,
    pub actor: Option<Name>,
    pub action: Option<Name>,
    /// RFC 3339.
    pub since: Option<Name>,
    /// RFC 3339.
    pub until: Option<Name>,
    /// Only events with a greater `seq`.
    pub after: Option<i64>,
    pub limit: Option<i64>,
    pub format: Option<Code>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<AuditEventView>,
    pub next_after: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    pub checked: u64,
    pub head: String,
    pub first_bad_seq: Option<i64>,
    /// Present when the stored Merkle tree (what proofs and checkpoints are computed from)
    /// is not the one the events rebuild: what differs first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

const EXPORT_PAGE: i64 = 2000;

/// One page of an export in its format, a line per event.
fn render(rows: Vec<store::AuditRow>, format: ExportFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for row in rows {
        match format {
            ExportFormat::Ndjson => {
                serde_json::to_writer(&mut out, &AuditEventView::from(row))
                    .map_err(|e| Error::Internal(e.to_string()))?;
            }
            ExportFormat::Csv => {
                let cells = [
                    row.seq.to_string(),
                    row.at,
                    row.actor,
                    row.role,
                    row.action,
                    row.work_order.unwrap_or_default(),
                    row.detail,
                    row.prev_hash,
                    row.hash,
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                out.extend_from_slice(line.join(",").as_bytes());
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// RFC 4180 quoting: a cell with a comma, quote or line break is quoted, quotes doubled.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn time_bound(raw: Option<&str>, field: &str) -> Result<Option<String>> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| format_at(t.with_timezone(&Utc)))
            .map_err(|_| {
                Error::bad_request(
                    Some(field),
                    Detail::new(
                        format!("{field} 须为 RFC 3339 时间"),
                        format!("{field} must be an RFC 3339 time"),
                    ),
                )
            })
    })
    .transpose()
}

impl Services {
    /// Malformed queries (400) answer before the role check (403), as the contract orders.
    pub(crate) async fn audit_events(&self, actor: Actor, q: EventQuery) -> Result<EventPage> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::bad_request(
                Some("limit"),
                Detail::new(
                    "limit 须在 1 到 1000 之间",
                    "limit must be between 1 and 1000",
                ),
            ));
        }
        let filter = self.event_filter(&actor, &q)?;
        // Filtered to one order, only that order's queued events matter.
        self.settle_audit_of(filter.work_order.clone()).await?;
        self.store
            .read(move |c| {
                let mut rows = store::query(c, &filter, limit + 1)?;
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                let next_after = if more {
                    rows.last().map(|r| r.seq)
                } else {
                    None
                };
                Ok(EventPage {
                    items: rows.into_iter().map(Into::into).collect(),
                    next_after,
                })
            })
            .await
    }

    /// Builds the filter in the contract's order: malformed times (400), then the role (403),
    /// then a number that is no mobile number (422).
    fn event_filter(&self, actor: &Actor, q: &EventQuery) -> Result<store::EventFilter> {
        let since = time_bound(q.since.as_deref(), "since")?;
        let until = time_bound(q.until.as_deref(), "until")?;
        let document_number_index = q
            .document_number
            .as_deref()
            .map(|raw| self.document_number_index(raw))
            .transpose()?;
        actor.require(Permission::ReadAudit)?;
        let msisdn = q
            .msisdn
            .as_deref()
            .map(|m| parse_msisdn(m, "msisdn"))
            .transpose()?
            .map(|m| m.into_string());
        Ok(store::EventFilter {
            work_order: q.work_order.clone().map(String::from),
            msisdn,
            actor: q.actor.clone().map(String::from),
            action: q.action.clone().map(String::from),
            since,
            until,
            after_seq: q.after,
            // A provincial auditor sees the events of orders in their province.
            province: actor.province.clone(),
            hall: q.hall_id.clone().map(String::from),
            document_number_index,
        })
    }

    /// Every matching event as NDJSON or CSV, streamed page by page so memory stays flat and
    /// no lock is held while the caller reads. The export is recorded first, in its own short
    /// transaction, so it appears in its own output when it matches the filter.
    pub(crate) async fn export_audit(
        &self,
        actor: Actor,
        q: EventQuery,
        format: ExportFormat,
    ) -> Result<impl futures_util::Stream<Item = Result<Vec<u8>>> + 'static> {
        let filter = self.event_filter(&actor, &q)?;
        self.settle_audit().await?;
        let filters = json!({
            "work_order": q.work_order, "hall_id": q.hall_id, "msisdn": q.msisdn,
            "actor": q.actor, "action": q.action,
            // Recorded masked: the trail never holds a full ID number.
            "document_number": q.document_number.as_deref().map(|n| mask_id(n.trim())),
            "since": q.since, "until": q.until, "after": q.after,
        });
        let by = super::recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let detail = json!({ "format": format.as_str(), "filters": filters });
            crate::audit::append(tx, &by, AuditAction::AuditExported, None, &detail, now)?;
            Ok(())
        })
        .await?;
        let header = (format == ExportFormat::Csv)
            .then(|| b"seq,at,actor,role,action,work_order,detail,prev_hash,hash\n".to_vec());
        let start = Some((self.store.clone(), filter, header));
        Ok(futures_util::stream::unfold(
            start,
            move |state| async move {
                let (store, mut filter, header) = state?;
                if let Some(header) = header {
                    return Some((Ok(header), Some((store, filter, None))));
                }
                let page_filter = filter.clone();
                let page = store
                    .read(move |c| -> Result<_> { Ok(store::query(c, &page_filter, EXPORT_PAGE)?) })
                    .await;
                match page {
                    Err(e) => Some((Err(e), None)),
                    Ok(rows) => {
                        filter.after_seq = Some(rows.last()?.seq);
                        let chunk = render(rows, format);
                        Some((chunk, Some((store, filter, None))))
                    }
                }
            },
        ))
    }

    pub(crate) async fn verify_audit(&self, actor: Actor) -> Result<VerifyView> {
        actor.require(Permission::ReadAudit)?;
        self.settle_audit().await?;
        let report = self
            .store
            .read_beside(|c, beside| -> Result<_> {
                Ok(crate::audit::verify_all(c, beside, Leaves::Skip)?)
            })
            .await?;
        let tree = report.tree.problem();
        if !report.ok {
            tracing::error!(first_bad_seq = ?report.first_bad_seq, checked = report.checked, tree = ?tree, "audit chain is broken");
        }
        Ok(VerifyView {
            ok: report.ok,
            checked: report.checked,
            head: report.head,
            first_bad_seq: report.first_bad_seq,
            tree,
        })
    }

    /// The public keys of every instance sharing the database (receipts and checkpoints).
    pub(crate) async fn jwks(&self) -> Result<Value> {
        let own = self.service_key.jwk();
        let stored = self
            .store
            .read(|c| -> Result<_> { Ok(secrets::published_keys(c)?) })
            .await?;
        let mut keys: Vec<Value> = stored
            .iter()
            .filter_map(|k| serde_json::from_str(k).ok())
            .collect();
        if !keys.iter().any(|k| k.get("kid") == own.get("kid")) {
            keys.push(own);
        }
        Ok(json!({ "keys": keys }))
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointView {
    /// Compact JWS, payload `{"size", "head", "at"}`, signed with a key in the JWKS.
    pub checkpoint: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    pub seq: Option<i64>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InclusionProof {
    pub seq: i64,
    pub size: i64,
    pub leaf_hash: String,
    pub path: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    pub path: Vec<String>,
}

fn required(v: Option<i64>, field: &str) -> Result<i64> {
    v.ok_or_else(|| {
        Error::bad_request(
            Some(field),
            Detail::new(format!("缺少 {field}"), format!("{field} is required")),
        )
    })
}

/// Refuses a size beyond the log's.
fn within_log(c: &mut crate::storage::DbConn, size: i64, field: &str) -> Result<()> {
    let log_size = store::head(c)?.size;
    if size > log_size {
        return Err(Error::bad_request(
            Some(field),
            Detail::new(
                format!("{field} 超出日志现有的 {log_size} 条事件"),
                format!("{field} is beyond the log's {log_size} events"),
            ),
        ));
    }
    Ok(())
}

/// The RFC 9162 consistency proof from `from` to `to` leaves (both within the log).
pub(super) fn consistency_path(
    c: &mut crate::storage::DbConn,
    from: u64,
    to: u64,
) -> Result<Vec<chain::Hash>> {
    let plan = Plan::consistency(from, to)
        .ok_or_else(|| Error::Internal(format!("no consistency proof from {from} to {to}")))?;
    Ok(resolve(c, &plan, &[])?.0)
}

/// The hashes a plan lists, from the few stored subtrees it needs (never every leaf).
fn resolve(
    c: &mut crate::storage::DbConn,
    plan: &Plan,
    also: &[NodeId],
) -> Result<(Vec<chain::Hash>, HashMap<NodeId, chain::Hash>)> {
    let mut ids = plan.needs();
    ids.extend_from_slice(also);
    let known = store::node_hashes(c, &ids)?;
    let hashes = plan
        .resolve(&known)
        .ok_or_else(|| Error::Internal("a stored audit tree node is missing".into()))?;
    Ok((hashes, known))
}

impl Services {
    /// A checkpoint of the log at its current size: the latest one if the log has not grown
    /// since, otherwise a new one, signed and kept. The head comes from the head row (its
    /// frontier gives the tree hash without reading a leaf), the signing happens outside any
    /// transaction, and the new checkpoint is kept in a short write of its own; two requests
    /// racing at one size both get the one stored first.
    pub(crate) async fn audit_checkpoint(&self, actor: Actor) -> Result<CheckpointView> {
        actor.require(Permission::ReadAudit)?;
        self.keep_current_checkpoint().await
    }

    /// The JWS checkpoint at the current size, signed and kept unless it is already (see
    /// `audit_checkpoint`); also what each cosigning round keeps beside its signed note.
    pub(crate) async fn keep_current_checkpoint(&self) -> Result<CheckpointView> {
        self.settle_audit().await?;
        let (size, head, latest) = self
            .store
            .read(|c| -> Result<_> {
                let head = store::head(c)?;
                let latest = store::latest_checkpoint(c)?.filter(|l| l.size == head.size);
                let root = chain::to_hex(&head.frontier()?.root());
                Ok((head.size, root, latest))
            })
            .await?;
        if let Some(latest) = latest {
            return Ok(CheckpointView {
                checkpoint: latest.jws,
            });
        }
        let now = self.now();
        let claims = CheckpointClaims {
            size: u64::try_from(size).map_err(|_| Error::Internal("negative log size".into()))?,
            head,
            at: now.timestamp(),
        };
        let jws = self.service_key.sign(&claims)?;
        let row = store::CheckpointRow {
            size,
            head: claims.head,
            at: now.naive_utc(),
            jws,
        };
        let kept = self
            .write(ChainLock::NotNeeded, Recorder::system(), move |c, _| {
                Ok(store::keep_checkpoint(c, &row)?)
            })
            .await?;
        Ok(CheckpointView {
            checkpoint: kept.jws,
        })
    }

    pub(crate) async fn inclusion_proof(
        &self,
        actor: Actor,
        q: InclusionQuery,
    ) -> Result<InclusionProof> {
        let (seq, size) = (required(q.seq, "seq")?, required(q.size, "size")?);
        if seq < 1 || size < 1 || seq > size {
            return Err(Error::bad_request(
                Some("seq"),
                Detail::new("seq 须在 1 到 size 之间", "seq must be between 1 and size"),
            ));
        }
        actor.require(Permission::ReadAudit)?;
        self.settle_audit().await?;
        self.store
            .read(move |c| {
                within_log(c, size, "size")?;
                let leaf = NodeId::leaf((seq - 1) as u64);
                let plan = Plan::inclusion(leaf.index, size as u64).ok_or_else(|| {
                    Error::bad_request(
                        Some("seq"),
                        Detail::new("seq 超出 size", "seq is beyond size"),
                    )
                })?;
                let (path, known) = resolve(c, &plan, &[leaf])?;
                let leaf_hash = known
                    .get(&leaf)
                    .ok_or_else(|| Error::Internal(format!("event {seq} is missing")))?;
                Ok(InclusionProof {
                    seq,
                    size,
                    leaf_hash: chain::to_hex(leaf_hash),
                    path: path.iter().map(chain::to_hex).collect(),
                })
            })
            .await
    }

    pub(crate) async fn consistency_proof(
        &self,
        actor: Actor,
        q: ConsistencyQuery,
    ) -> Result<ConsistencyProof> {
        let (from, to) = (required(q.from, "from")?, required(q.to, "to")?);
        if from < 1 || from > to {
            return Err(Error::bad_request(
                Some("from"),
                Detail::new("from 须在 1 到 to 之间", "from must be between 1 and to"),
            ));
        }
        actor.require(Permission::ReadAudit)?;
        self.settle_audit().await?;
        self.store
            .read(move |c| {
                within_log(c, to, "to")?;
                let plan = Plan::consistency(from as u64, to as u64).ok_or_else(|| {
                    Error::bad_request(
                        Some("from"),
                        Detail::new("from 超出 to", "from is beyond to"),
                    )
                })?;
                let (path, _) = resolve(c, &plan, &[])?;
                Ok(ConsistencyProof {
                    from,
                    to,
                    path: path.iter().map(chain::to_hex).collect(),
                })
            })
            .await
    }
}
