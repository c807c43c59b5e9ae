//! Device-key enrolment: hall staff ask for their browser's key (WebCrypto; the private half
//! never leaves the device) to become one of their hall's keys; an admin approves it, which
//! registers it through the hall-key rule (`halls::register_key`) in the same transaction, or
//! rejects it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::halls::{kid_registered, kid_taken, parse_public_key, register_key};
use super::work_orders::Reason;
use super::{recorder, ChainLock, Error, Refusal, Result, Services};
use crate::audit::{self, AuditAction};
use crate::domain::access::{Actor, Permission};
use crate::domain::device_key::{Decision, Enrolment, EnrolmentScope, EnrolmentState};
use crate::domain::text::ceiling::{Code, Id, Name, Pem};
use crate::domain::text::required_text;
use crate::domain::{Detail, DomainError, EnrolmentId};
use crate::storage::device_keys::{self, EnrolmentFilter};
use crate::storage::DbConn;

/// `POST /api/v1/device-keys`: the public half of a key made on the caller's device.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceKey {
    /// The key id results will name in their JWS header; unique among every hall's keys.
    pub kid: Name,
    /// `ES256` (WebCrypto ECDSA P-256) or `EdDSA`.
    pub alg: Code,
    /// SubjectPublicKeyInfo in PEM (`-----BEGIN PUBLIC KEY-----`), of `alg`.
    pub public_key_pem: Pem,
}

/// An enrolment request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceKeyView {
    pub id: String,
    pub kid: String,
    pub alg: String,
    /// The requester's hall: the key becomes one of its keys when approved.
    pub hall_id: String,
    /// The staff member who asked.
    pub username: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub public_key_pem: String,
    pub requested_at: DateTime<Utc>,
    /// The admin who approved or rejected it, or null while pending.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected, or null.
    pub reason: Option<String>,
}

impl From<Enrolment> for DeviceKeyView {
    fn from(e: Enrolment) -> Self {
        Self {
            id: e.id.into_string(),
            kid: e.kid,
            alg: e.alg,
            hall_id: e.hall_id.into_string(),
            username: e.username.into_string(),
            state: e.state.as_str().to_owned(),
            public_key_pem: e.public_key_pem,
            requested_at: e.requested_at,
            decided_by: e.decided_by.map(|u| u.into_string()),
            decided_at: e.decided_at,
            reason: e.reason,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceKeyList {
    pub items: Vec<DeviceKeyView>,
}

/// `GET /api/v1/device-keys`: narrowed by state or hall, within the caller's scope.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceKeyQuery {
    /// `pending`, `approved` or `rejected`.
    pub state: Option<Code>,
    /// Requests of this hall's staff.
    pub hall_id: Option<Id>,
}

fn request_not_found() -> DomainError {
    DomainError::NotFound(Detail::new("设备密钥申请", "device key request"))
}

/// The request a decision acts on; one outside the admin's scope (none is) reads as absent.
fn for_decision(tx: &mut DbConn, actor: &Actor, id: &EnrolmentId) -> Result<Enrolment, Refusal> {
    device_keys::get(tx, id)?
        .filter(|r| EnrolmentScope::of(actor).admits(r))
        .ok_or_else(|| request_not_found().into())
}

/// Writes a decision; a request decided meanwhile answers as the later call deserves.
fn save_decision(
    tx: &mut DbConn,
    decided: &Enrolment,
    attempted: Decision<'_>,
    by: &crate::domain::Username,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if device_keys::decide(tx, decided)? {
        return Ok(());
    }
    let current = device_keys::get(tx, &decided.id)?.ok_or_else(request_not_found)?;
    Err(match current.decide(attempted, by, now) {
        Err(refusal) => refusal.into(),
        Ok(_) => Error::Internal("a pending request refused a decision".into()).into(),
    })
}

impl Services {
    /// A staff member asks for their device's key to become one of their hall's keys.
    /// Judged in the contract's order: role (403), kid taken (409), the key (422).
    pub(crate) async fn request_device_key(
        &self,
        actor: Actor,
        req: NewDeviceKey,
    ) -> Result<DeviceKeyView> {
        actor.require(Permission::ActAsHallStaff)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let kid = required_text(&req.kid, "kid")?;
            // Approval registers the kid as a hall key, where kids are unique: one already
            // registered, or asked for by a live request, could never be approved.
            if kid_registered(tx, &kid)? || device_keys::kid_held(tx, &kid)? {
                return Err(kid_taken().into());
            }
            let public = parse_public_key(&req.alg, &req.public_key_pem)?;
            let request =
                Enrolment::request(&actor, kid, public.alg.as_str(), public.to_pem(), now)?;
            match device_keys::insert(tx, &request) {
                Err(e) if e.is_unique_violation() => return Err(kid_taken().into()),
                other => other?,
            }
            let detail = json!({
                "request_id": request.id, "kid": request.kid, "alg": request.alg,
                "hall_id": request.hall_id,
            });
            audit::append(tx, &by, AuditAction::DeviceKeyRequested, None, &detail, now)?;
            Ok(DeviceKeyView::from(request))
        })
        .await
    }

    /// Requests newest first: an admin's all, a staff member's own. The query is judged
    /// first (400 outranks 403).
    pub(crate) async fn list_device_keys(
        &self,
        actor: Actor,
        q: DeviceKeyQuery,
    ) -> Result<DeviceKeyList> {
        let state = q
            .state
            .as_deref()
            .map(|s| {
                EnrolmentState::parse(s).ok_or_else(|| {
                    Error::bad_request(
                        Some("state"),
                        Detail::new(
                            "state 须为 pending、approved 或 rejected",
                            "state is pending, approved or rejected",
                        ),
                    )
                })
            })
            .transpose()?;
        actor.require(Permission::ReadDeviceKeys)?;
        let filter = EnrolmentFilter {
            scope: EnrolmentScope::of(&actor),
            state,
            hall_id: q.hall_id.map(|h| h.into_string().into()),
        };
        self.store
            .read(move |c| -> Result<DeviceKeyList> {
                let items = device_keys::list(c, &filter)?;
                Ok(DeviceKeyList {
                    items: items.into_iter().map(DeviceKeyView::from).collect(),
                })
            })
            .await
    }

    /// One request: an admin, or the staff member who asked (anyone else of those roles: 404).
    pub(crate) async fn get_device_key(
        &self,
        actor: Actor,
        id: EnrolmentId,
    ) -> Result<DeviceKeyView> {
        actor.require(Permission::ReadDeviceKeys)?;
        let scope = EnrolmentScope::of(&actor);
        self.store
            .read(move |c| -> Result<DeviceKeyView> {
                let request = device_keys::get(c, &id)?
                    .filter(|r| scope.admits(r))
                    .ok_or_else(request_not_found)?;
                Ok(DeviceKeyView::from(request))
            })
            .await
    }

    /// Approves a pending request: the key is registered for the requester's hall as
    /// `POST /api/v1/halls/{id}/keys` registers one (`hall_key.registered`), and the
    /// approval is audited, in one transaction.
    pub(crate) async fn approve_device_key(
        &self,
        actor: Actor,
        id: EnrolmentId,
    ) -> Result<DeviceKeyView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let request = for_decision(tx, &actor, &id)?;
            let approved = request.decide(Decision::Approve, &actor.username, now)?;
            register_key(
                tx,
                &by,
                &request.hall_id,
                &request.kid,
                &request.alg,
                &request.public_key_pem,
                now,
            )?;
            save_decision(tx, &approved, Decision::Approve, &actor.username, now)?;
            let detail = json!({
                "request_id": approved.id, "kid": approved.kid, "alg": approved.alg,
                "hall_id": approved.hall_id,
            });
            audit::append(tx, &by, AuditAction::DeviceKeyApproved, None, &detail, now)?;
            Ok(DeviceKeyView::from(approved))
        })
        .await
    }

    /// Rejects a pending request, saying why.
    pub(crate) async fn reject_device_key(
        &self,
        actor: Actor,
        id: EnrolmentId,
        req: Reason,
    ) -> Result<DeviceKeyView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let request = for_decision(tx, &actor, &id)?;
            let decision = Decision::Reject {
                reason: &req.reason,
            };
            let rejected = request.decide(decision, &actor.username, now)?;
            save_decision(tx, &rejected, decision, &actor.username, now)?;
            // The reason is free text an admin wrote: it stays with the request, not the log.
            let detail = json!({
                "request_id": rejected.id, "kid": rejected.kid, "hall_id": rejected.hall_id,
            });
            audit::append(tx, &by, AuditAction::DeviceKeyRejected, None, &detail, now)?;
            Ok(DeviceKeyView::from(rejected))
        })
        .await
    }
}
