//! Accepting a hall's signed verification result, checked in the contract's order.

use crate::domain::text::ceiling::Jws;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::personal;
use super::views::WorkOrderView;
use super::{recorder, ChainLock, Error, Refusal, Result, Services};
use crate::audit::AuditAction;
use crate::crypto::field;
use crate::crypto::index::IndexKind;
use crate::domain::access::{Actor, Permission};
use crate::domain::evidence::{check_binding, UploadedFile};
use crate::domain::quality::{self, Facts, QualitySettings, Verdict};
use crate::domain::verification::{self as rules, ResultClaims};
use crate::domain::work_order::{self, AcceptedResult, Command, Kind, WorkOrder};
use crate::domain::{sha256_hex, Detail, DomainError, Invalid, VerificationId, WorkOrderId};
use crate::signing::jws::{CompactJws, JwsError};
use crate::signing::{Alg, HallPublicKey};
use crate::storage::evidence as evidence_rows;
use crate::storage::{
    halls, quality as counts, verification_results, work_orders, DbConn, StorageError,
};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitResult {
    /// The compact JWS the hall terminal signed.
    pub result: Jws,
}

fn reject(code: Invalid, field: &str, detail: Detail) -> DomainError {
    DomainError::invalid(code, field, detail)
}

/// Why `check_result` stopped: the result was refused (a 422, audited), or the database
/// failed (a 5xx, rolled back, never mistaken for a refusal).
enum CheckError {
    Refused(DomainError),
    Storage(StorageError),
}

impl From<DomainError> for CheckError {
    fn from(e: DomainError) -> Self {
        Self::Refused(e)
    }
}

impl From<StorageError> for CheckError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// The settings the checks read.
struct ResultLimits {
    max_skew_seconds: i64,
    required_evidence: Vec<crate::domain::evidence::EvidenceKind>,
}

/// Every check that can refuse the result, in the contract's order; each refusal is a 422.
#[allow(clippy::too_many_arguments)]
fn check_result(
    conn: &mut DbConn,
    jws: &str,
    order: &WorkOrder,
    expected_name: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
    limits: &ResultLimits,
) -> Result<(ResultClaims, rules::Outcome, String, Alg), CheckError> {
    let bad = |d: Detail| reject(Invalid::BadSignature, "result", d);
    let parsed = CompactJws::parse(jws).map_err(|e| bad(e.detail()))?;

    // 1. The key must be one of the claiming hall's.
    let kid = parsed.kid.clone().ok_or_else(|| {
        reject(
            Invalid::UnknownKey,
            "result",
            Detail::new("JWS 头未指定 kid", "the JWS header names no kid"),
        )
    })?;
    let key = halls::get_key(conn, &kid)?
        .filter(|k| {
            order
                .claimed_hall_id
                .as_ref()
                .is_some_and(|h| h == k.hall_id.as_str())
        })
        .ok_or_else(|| {
            reject(
                Invalid::UnknownKey,
                "result",
                Detail::new(
                    "该 kid 不是认领营业厅的密钥",
                    "the kid is not a key of the claiming hall",
                ),
            )
        })?;

    // 2. A key revoked at T still vouches for results signed (iat) before T.
    if let Some(revoked_at) = key.revoked_at {
        let iat = parsed
            .payload_json()
            .and_then(|p| p.get("iat").and_then(|v| v.as_i64()));
        if iat.is_none_or(|iat| iat >= revoked_at.and_utc().timestamp()) {
            return Err(CheckError::Refused(reject(
                Invalid::RevokedKey,
                "result",
                Detail::new(
                    "该密钥在此结果签发前已被吊销",
                    "the key was revoked before this result was signed",
                ),
            )));
        }
    }

    // 3. The signature, with exactly the registered key's algorithm (never none or HS*).
    let alg = Alg::parse(&key.alg).ok_or_else(|| {
        bad(Detail::new(
            "登记的密钥算法未知",
            "the registered key has an unknown algorithm",
        ))
    })?;
    let public = HallPublicKey::from_pem(alg, &key.public_key_pem).map_err(|_| {
        bad(Detail::new(
            "登记的密钥无法使用",
            "the registered key is unusable",
        ))
    })?;
    parsed
        .verify(&public)
        .map_err(|e: JwsError| bad(e.detail()))?;
    // Say where the payload is wrong, never what it held: it carries an ID number and a name.
    let mut de = serde_json::Deserializer::from_slice(&parsed.payload);
    let claims: ResultClaims = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "result".to_owned() } else { path.clone() };
        reject(
            Invalid::MalformedResult,
            &field,
            Detail::new(
                format!("载荷不是核验结果：{path} 处的字段错误、缺失或格式不对"),
                format!("the payload is not a verification result: wrong, missing or malformed field at {path}"),
            ),
        )
    })?;

    // 4. It must be about this order, this hall, this staff member, this number.
    rules::check_claims(&claims, order, actor)?;
    // 5. Fresh.
    rules::check_fresh(claims.iat, now, limits.max_skew_seconds)?;
    // 6. Never seen before.
    if verification_results::jti_seen(conn, &claims.jti)? {
        return Err(CheckError::Refused(reject(
            Invalid::ReplayedResult,
            "jti",
            Detail::new("该核验结果已提交过", "this result was already submitted"),
        )));
    }
    // 7. Every file it names was uploaded to this order by the claiming hall, and a match
    //    carries the required kinds: the signature then covers the files through their digests.
    let uploaded: Vec<UploadedFile> = evidence_rows::for_order(conn, order.id.as_str())?
        .into_iter()
        .filter(|f| {
            order
                .claimed_hall_id
                .as_ref()
                .is_some_and(|h| h == f.hall_id.as_str())
        })
        .map(|f| UploadedFile {
            kind: f.kind,
            sha256: f.sha256,
        })
        .collect();
    check_binding(
        &claims.evidence,
        &uploaded,
        claims.outcome == rules::Outcome::Match.as_str(),
        &limits.required_evidence,
    )?;
    // 8. The document, then the name.
    let outcome = rules::parse_outcome(&claims)?;
    rules::check_document(outcome, claims.document.as_ref(), now.date_naive())?;
    rules::check_name(outcome, claims.document.as_ref(), expected_name)?;
    Ok((claims, outcome, kid, alg))
}

/// The quality checks of an accepted result, over facts gathered in the submit transaction:
/// the digests' other uses and the 30-day (`rate_window_days`) outcome rates of the staff
/// member, their hall and its province, this result not yet among them.
#[allow(clippy::too_many_arguments)]
fn assess_quality(
    conn: &mut DbConn,
    claims: &ResultClaims,
    outcome: rules::Outcome,
    order: &WorkOrder,
    expected_name: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
    settings: &QualitySettings,
) -> Result<Verdict, StorageError> {
    let digests: Vec<String> = claims.evidence.iter().map(|e| e.sha256.clone()).collect();
    let reuse = counts::evidence_reuse(conn, order.id.as_str(), &order.msisdn, &digests)?;
    let rates = match &actor.hall {
        Some(hall) => counts::outcome_rates(
            conn,
            actor.username.as_str(),
            hall.id.as_str(),
            &hall.province,
            quality::rate_window_start(now, settings),
        )?,
        None => Default::default(),
    };
    let facts = Facts {
        claims,
        outcome,
        expected_name,
        claimed_at: order.claimed_at,
        submitted_at: now,
        reuse,
        rates,
    };
    Ok(quality::assess(&facts, settings))
}

impl Services {
    pub(crate) async fn submit_verification(
        &self,
        actor: Actor,
        id: WorkOrderId,
        if_match: Option<i64>,
        req: SubmitResult,
    ) -> Result<WorkOrderView> {
        actor.require(Permission::ActAsHallStaff)?;
        let limits = ResultLimits {
            max_skew_seconds: self.settings.verification.max_skew_seconds,
            required_evidence: self.settings.verification.required_evidence.clone(),
        };
        let quality_settings = self.settings.quality.clone();
        let mail = self.addressing.clone();
        let crypto = self.crypto.clone();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            let order =
                super::work_orders::load_for(tx, &id, Kind::SubmitResult, &actor, if_match)?;
            // One data key serves the step: it opens the expected name and seals the result.
            let (key_id, key) = crypto.live_key(tx, &order.msisdn, now)?;
            let expected_name = match order.expected_name_masked {
                Some(_) => {
                    let stored = work_orders::stored_names(tx, &[order.id.to_string()])?;
                    match stored.first() {
                        // Sealed under the live key, as every active order's name is.
                        Some((oid, sealed))
                            if crate::crypto::field::sealed_key_id(sealed) == Some(&key_id) =>
                        {
                            Some(field::open(&key, sealed, &personal::name_ad(oid))?)
                        }
                        Some((oid, other)) => crypto.open(tx, other, &personal::name_ad(oid))?,
                        None => None,
                    }
                }
                None => None,
            };

            let jws = req.result.trim().to_owned();
            let result_sha256 = sha256_hex(jws.as_bytes());
            let checked = check_result(
                tx,
                &jws,
                &order,
                expected_name.as_deref(),
                &actor,
                now,
                &limits,
            );
            let (claims, outcome, kid, alg) = match checked {
                Ok(ok) => ok,
                Err(CheckError::Storage(e)) => return Err(e.into()),
                Err(CheckError::Refused(e)) => {
                    // Refused results are evidence too: recorded, with why, never the payload.
                    let detail = json!({
                        "code": e.reason(),
                        "field": e.field(),
                        "result_sha256": result_sha256,
                    });
                    return Err(Refusal::audited(
                        e,
                        AuditAction::ResultRejected,
                        Some(order.id.clone()),
                        detail,
                    ));
                }
            };
            let verdict = assess_quality(
                tx,
                &claims,
                outcome,
                &order,
                expected_name.as_deref(),
                &actor,
                now,
                &quality_settings,
            )?;
            let masked = claims.document.as_ref().map(|d| d.masked());
            let verification_id = VerificationId::new();
            let sealed = field::seal(
                &key,
                &key_id,
                &personal::jws_ad(verification_id.as_str()),
                &jws,
            )?;
            let doc = claims.document.as_ref();
            let row = verification_results::VerificationRow {
                id: verification_id.to_string(),
                work_order_id: order.id.to_string(),
                jws: sealed,
                document_number_index: doc
                    .map(|d| crypto.index(IndexKind::DocumentNumber, &d.number)),
                document_name_index: doc.map(|d| crypto.index(IndexKind::Name, &d.name)),
                result_sha256: result_sha256.clone(),
                kid: kid.clone(),
                alg: alg.as_str().to_owned(),
                hall_id: claims.hall.clone(),
                staff: claims.staff.clone(),
                outcome: outcome.as_str().to_owned(),
                document_type: masked.as_ref().map(|d| d.doc_type.clone()),
                document_number_masked: masked.as_ref().map(|d| d.number.clone()),
                document_name_masked: masked.as_ref().map(|d| d.name.clone()),
                method: claims.method.to_string(),
                evidence: serde_json::to_string(&claims.evidence)
                    .map_err(|e| Error::Internal(e.to_string()))?,
                iat: claims.iat,
                jti: claims.jti.clone(),
                submitted_at: now.naive_utc(),
                quality_flags: serde_json::to_string(&verdict.flags)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            };
            match verification_results::insert(tx, &row) {
                // Two submissions of one jti racing: the unique index decides.
                Err(e) if e.is_unique_violation() => {
                    return Err(DomainError::invalid(
                        Invalid::ReplayedResult,
                        "jti",
                        Detail::new("该核验结果已提交过", "this result was already submitted"),
                    )
                    .into())
                }
                other => other?,
            }
            let cmd = Command::SubmitResult(AcceptedResult {
                verification_id,
                outcome,
                kid,
                jti: row.jti.clone(),
                result_sha256,
                verdict,
            });
            let t = work_order::decide(&order, &cmd, &actor, now)?;
            let next = super::work_orders::save(tx, &recorder(&actor), &mail, &order, t, now)?;
            Ok(WorkOrderView::new(&next, Some(&row), &actor, None))
        })
        .await
    }
}

/// The signed result as the hall submitted it, for an auditor or home clerk to verify
/// independently of this service (`GET /api/v1/work-orders/{id}/verification/result`).
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ResultExport {
    /// The compact JWS, verbatim.
    pub result: String,
}

impl Services {
    /// Unseals the order's accepted result for the roles that may verify it (auditors in
    /// scope, home clerks); each read is an audit event. 410 `shredded` once its subscriber's
    /// key is destroyed.
    pub(crate) async fn export_result(
        &self,
        actor: Actor,
        id: WorkOrderId,
    ) -> Result<ResultExport> {
        use crate::domain::access::Role;
        actor.require(Permission::ReadOrderEvents)?;
        let crypto = self.crypto.clone();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            let order = super::work_orders::load_visible(tx, &id, &actor)?;
            if !(actor.role == Role::Auditor || actor.is_home_clerk_of(&order)) {
                return Err(DomainError::Forbidden(Detail::new(
                    "只有审计员和归属省的受理员可以导出签名的核验结果",
                    "only auditors and the home province's clerks may export the signed result",
                ))
                .into());
            }
            let row = match &order.verification_id {
                Some(v) => verification_results::get(tx, v.as_str())?,
                None => None,
            }
            .ok_or_else(|| DomainError::NotFound(Detail::new("核验结果", "verification result")))?;
            let jws = crypto
                .open(tx, &row.jws, &personal::jws_ad(&row.id))?
                .ok_or(Error::Shredded)?;
            let detail = json!({ "verification": row.id, "result_sha256": row.result_sha256 });
            crate::audit::append(
                tx,
                &recorder(&actor),
                AuditAction::ResultExported,
                Some(&order.id),
                &detail,
                now,
            )?;
            Ok(ResultExport { result: jws })
        })
        .await
    }
}
