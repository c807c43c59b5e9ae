//! What callers are shown: the contract's JSON shapes, with personal data masked per role.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::access::Actor;
use crate::domain::quality::Flag;
use crate::domain::work_order::WorkOrder;
use crate::storage::verification_results::VerificationRow;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaskedDocumentView {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub number: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerificationView {
    pub outcome: String,
    #[schema(value_type = Object)]
    pub method: Value,
    pub document: Option<MaskedDocumentView>,
    #[schema(value_type = Vec<Object>)]
    pub evidence: Value,
    pub kid: String,
    pub alg: String,
    pub staff: String,
    /// Seconds since the epoch, as in the JWS.
    pub iat: i64,
    pub jti: String,
    pub submitted_at: DateTime<Utc>,
    pub signature_valid: bool,
}

impl MaskedDocumentView {
    /// The stored masked columns, when a document was recorded at all.
    pub fn from_columns(
        doc_type: &Option<String>,
        number: &Option<String>,
        name: &Option<String>,
    ) -> Option<Self> {
        match (doc_type, number, name) {
            (Some(t), Some(n), Some(name)) => Some(Self {
                doc_type: t.clone(),
                number: n.clone(),
                name: name.clone(),
            }),
            _ => None,
        }
    }
}

impl From<&VerificationRow> for VerificationView {
    fn from(r: &VerificationRow) -> Self {
        let document = MaskedDocumentView::from_columns(
            &r.document_type,
            &r.document_number_masked,
            &r.document_name_masked,
        );
        Self {
            outcome: r.outcome.clone(),
            method: serde_json::from_str(&r.method).unwrap_or(Value::Null),
            document,
            evidence: serde_json::from_str(&r.evidence).unwrap_or(Value::Array(vec![])),
            kid: r.kid.clone(),
            alg: r.alg.clone(),
            staff: r.staff.clone(),
            iat: r.iat,
            jti: r.jti.clone(),
            submitted_at: r.submitted_at.and_utc(),
            // Stored only after every check passed, the signature first among them.
            signature_valid: true,
        }
    }
}

/// A flag of the quality checks (`docs/quality.md`): no personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagView {
    pub code: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    pub reason: FlagReasonView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagReasonView {
    pub zh: String,
    pub en: String,
}

impl From<Flag> for FlagView {
    fn from(f: Flag) -> Self {
        Self {
            code: f.code,
            severity: f.severity.as_str().to_owned(),
            reason: FlagReasonView {
                zh: f.reason.zh,
                en: f.reason.en,
            },
        }
    }
}

/// What the quality checks made of the order's current result, and its four-eyes state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualityView {
    pub flags: Vec<FlagView>,
    /// Completing needs two clerks: the first `complete` approves
    /// (`awaiting_second_approval`), a second one completes.
    pub needs_second_approval: bool,
    /// The clerk whose `complete` was the first approval, once given.
    pub approved_by: Option<String>,
}

impl QualityView {
    fn of(o: &WorkOrder, r: &VerificationRow) -> Self {
        let flags: Vec<Flag> = serde_json::from_str(&r.quality_flags).unwrap_or_default();
        Self {
            flags: flags.into_iter().map(FlagView::from).collect(),
            needs_second_approval: o.review.needs_second_approval,
            approved_by: o.review.approved_by.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkOrderView {
    pub id: String,
    pub reference: String,
    pub msisdn: String,
    pub home_province: String,
    pub target_province: String,
    pub target_city: String,
    pub target_hall_id: Option<String>,
    pub state: String,
    pub version: i64,
    pub reason: String,
    /// Unmasked only for clerks of the home province; null when unset or erased (shredded).
    pub expected_name: Option<String>,
    pub opened_by: String,
    pub claimed_by: Option<String>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    /// The date the number's service will be suspended (停机日期), when the clerk gave one.
    pub suspend_at: Option<DateTime<Utc>>,
    /// When the reminder before `due_at` and the escalation after it went out.
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub verification: Option<VerificationView>,
    /// The quality checks of the current result; null while there is none.
    pub quality: Option<QualityView>,
    /// Compact JWS signed by the service, once completed.
    pub receipt: Option<String>,
    /// The calls the viewer may make on the order now (`claim`, `release`, `verification`,
    /// `complete`, `return`, `fail`, `cancel`, `reroute`, `suspension`): what a client offers.
    pub actions: Vec<&'static str>,
}

impl WorkOrderView {
    /// `opened_name`: the expected name unsealed, which only a home clerk is shown (the
    /// service opens it only for them); everyone else sees the stored mask.
    pub fn new(
        o: &WorkOrder,
        verification: Option<&VerificationRow>,
        viewer: &Actor,
        opened_name: Option<String>,
    ) -> Self {
        let expected_name = if viewer.is_home_clerk_of(o) {
            opened_name.filter(|_| o.expected_name_masked.is_some())
        } else {
            o.expected_name_masked.clone()
        };
        Self {
            id: o.id.to_string(),
            reference: o.reference.clone(),
            msisdn: o.msisdn.clone(),
            home_province: o.home_province.clone(),
            target_province: o.target_province.clone(),
            target_city: o.target_city.clone(),
            target_hall_id: o.target_hall_id.as_ref().map(ToString::to_string),
            state: o.state.as_str().to_owned(),
            version: o.version,
            reason: o.reason.clone(),
            expected_name,
            opened_by: o.opened_by.to_string(),
            claimed_by: o.claimed_by.as_ref().map(ToString::to_string),
            due_at: o.due_at,
            deadline_at: o.deadline_at,
            suspend_at: o.suspend_at,
            reminded_at: o.reminded_at,
            escalated_at: o.escalated_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
            verification: verification.map(VerificationView::from),
            quality: verification.map(|r| QualityView::of(o, r)),
            receipt: o.receipt.clone(),
            actions: crate::domain::work_order::calls_for(o, viewer)
                .into_iter()
                .map(crate::domain::work_order::Call::as_str)
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkOrderPage {
    pub items: Vec<WorkOrderView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub work_order: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<crate::storage::audit::AuditRow> for AuditEventView {
    fn from(r: crate::storage::audit::AuditRow) -> Self {
        Self {
            seq: r.seq,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail.clone())),
            at: r.at,
            actor: r.actor,
            role: r.role,
            action: r.action,
            work_order: r.work_order,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<AuditEventView>,
}
