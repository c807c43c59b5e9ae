//! Work-order actions: open, read, list, and every transition of the life cycle.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::views::{EventList, WorkOrderPage, WorkOrderView};
use super::{recorder, require_text, Error, Refusal, Result, Services};
use crate::audit;
use crate::domain::access::{Actor, Permission, Role};
use crate::domain::msisdn::Msisdn;
use crate::domain::work_order::{self, Command, Kind, State, Target, WorkOrder};
use crate::domain::{region, DomainError, Invalid};
use crate::signing::receipt::{self, ReceiptClaims};
use crate::storage::{self, halls, subscribers, verification_results, work_orders, DbConn};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrder {
    pub msisdn: String,
    pub target_province: String,
    pub target_city: String,
    #[serde(default)]
    pub target_hall_id: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub expected_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reroute {
    pub target_province: String,
    pub target_city: String,
    #[serde(default)]
    pub target_hall_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub state: Option<String>,
    pub msisdn: Option<String>,
    pub hall_id: Option<String>,
    pub home_province: Option<String>,
    pub target_province: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const MAX_REASON_CHARS: usize = 500;

fn reason(raw: &str) -> Result<String, DomainError> {
    let r = require_text(raw, "reason")?;
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid(
            Invalid::Field,
            "reason",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(r)
}

pub fn parse_msisdn(raw: &str, field: &str) -> Result<Msisdn, DomainError> {
    Msisdn::parse(raw).ok_or_else(|| {
        DomainError::invalid(
            Invalid::Msisdn,
            field,
            "not a mainland mobile number (11 digits, 1[3-9]…)",
        )
    })
}

/// Where an order may be routed: a known province, a city of it, and optionally a hall there.
fn validate_target(
    conn: &mut DbConn,
    province: &str,
    city: &str,
    hall_id: Option<&str>,
) -> Result<Target, Refusal> {
    if region::province(province).is_none() {
        return Err(DomainError::invalid(
            Invalid::Province,
            "target_province",
            "unknown province code",
        )
        .into());
    }
    if !region::city_in_province(city, province) {
        return Err(DomainError::invalid(
            Invalid::City,
            "target_city",
            "not a city code of the target province",
        )
        .into());
    }
    if let Some(id) = hall_id {
        let hall = halls::get(conn, id)?;
        if !hall.is_some_and(|h| h.province == province && h.city == city) {
            return Err(DomainError::invalid(
                Invalid::UnknownHall,
                "target_hall_id",
                "no such hall in the target city",
            )
            .into());
        }
    }
    Ok(Target {
        province: province.to_owned(),
        city: city.to_owned(),
        hall_id: hall_id.map(str::to_owned),
    })
}

/// Loads the order and checks the caller for a command of this kind: role (403) → exists and in scope (404) → claimer
/// (403) → `If-Match` (412) → state (409), the contract's order.
pub(super) fn load_for(
    conn: &mut DbConn,
    id: &str,
    kind: Kind,
    actor: &Actor,
    if_match: Option<i64>,
) -> Result<WorkOrder, Refusal> {
    let Some(order) = work_orders::get(conn, id)? else {
        return Err(denied(
            DomainError::NotFound("work order".into()),
            None,
            kind,
        ));
    };
    work_order::authorize(&order, kind, actor).map_err(|e| denied(e, Some(&order.id), kind))?;
    work_order::check_version(&order, if_match)?;
    work_order::require_allowed(&order, kind)?;
    Ok(order)
}

/// The order, if the caller sees it; out of scope answers exactly like absent (404).
pub(super) fn load_visible(conn: &mut DbConn, id: &str, actor: &Actor) -> Result<WorkOrder> {
    Ok(work_orders::get(conn, id)?
        .filter(|o| actor.sees(o))
        .ok_or_else(|| DomainError::NotFound("work order".into()))?)
}

/// A refused attempt on an order is itself an audit event (scope and role violations).
fn denied(e: DomainError, work_order: Option<&str>, kind: Kind) -> Refusal {
    let detail = json!({ "attempted": kind.name(), "code": e.reason() });
    Refusal::audited(e, "access.denied", work_order.map(str::to_owned), detail)
}

/// The order changed between this step's read and its write (another request won the race;
/// on PostgreSQL the version-guarded UPDATE waited for it, then matched nothing). Answer as
/// the later request would have been answered: 409 if the state no longer allows the step,
/// 412 otherwise.
pub(super) fn lost_race(conn: &mut DbConn, current: &WorkOrder, kind: Kind) -> Refusal {
    match work_orders::get(conn, &current.id) {
        Ok(Some(fresh)) => match work_order::require_allowed(&fresh, kind) {
            Err(e) => e.into(),
            Ok(_) => DomainError::VersionConflict {
                given: current.version,
                current: fresh.version,
            }
            .into(),
        },
        Ok(None) => DomainError::NotFound("work order".into()).into(),
        Err(e) => e.into(),
    }
}

/// Writes the next state and its event; the version guard turns a concurrent change into
/// the answer the later request deserves (`lost_race`).
fn save(
    conn: &mut DbConn,
    actor: &Actor,
    kind: Kind,
    current: &WorkOrder,
    next: &WorkOrder,
    event: &work_order::Event,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !work_orders::update(conn, next, current.version)? {
        return Err(lost_race(conn, current, kind));
    }
    audit::append(
        conn,
        &recorder(actor),
        event.action,
        Some(&next.id),
        &event.detail,
        now,
    )?;
    Ok(())
}

fn view(conn: &mut DbConn, order: &WorkOrder, viewer: &Actor) -> Result<WorkOrderView> {
    let verification = match &order.verification_id {
        Some(id) => verification_results::get(conn, id)?,
        None => None,
    };
    Ok(WorkOrderView::new(order, verification.as_ref(), viewer))
}

impl Services {
    pub async fn open_work_order(&self, actor: Actor, req: OpenOrder) -> Result<WorkOrderView> {
        actor.require(Permission::OpenOrder)?;
        let home = actor
            .province
            .clone()
            .ok_or_else(|| Error::Internal("clerk without a province".into()))?;
        let sla = self.settings.sla.clone();
        self.change_late(recorder(&actor), move |tx, now| {
            let msisdn = parse_msisdn(&req.msisdn, "msisdn");
            // 409 outranks 422: a number with an active order is refused before the rest of
            // the body is judged.
            if let Ok(m) = &msisdn {
                if work_orders::has_active_order(tx, m.as_str())? {
                    return Err(DomainError::AlreadyExists {
                        what: "an active work order for this number".into(),
                        field: Some("msisdn".into()),
                    }
                    .into());
                }
            }
            let msisdn = msisdn?;
            let target = validate_target(
                tx,
                &req.target_province,
                &req.target_city,
                req.target_hall_id.as_deref(),
            )?;
            let reason = reason(&req.reason)?;
            let expected_name = match &req.expected_name {
                Some(n) => Some(require_text(n, "expected_name")?),
                None => None,
            };
            let day = now.format("%Y%m%d").to_string();
            let seq = work_orders::next_reference_seq(tx, &home, &day)?;
            let order = WorkOrder {
                id: uuid::Uuid::now_v7().to_string(),
                reference: work_order::reference(&home, now, seq),
                msisdn: msisdn.into_string(),
                home_province: home.clone(),
                target_province: target.province,
                target_city: target.city,
                target_hall_id: target.hall_id,
                state: State::Open,
                version: 1,
                reason,
                expected_name,
                opened_by: actor.username.clone(),
                claimed_by: None,
                claimed_hall_id: None,
                due_at: now + Duration::hours(sla.due_hours),
                deadline_at: now + Duration::hours(sla.deadline_hours),
                created_at: now,
                updated_at: now,
                verification_id: None,
                receipt: None,
            };
            match work_orders::insert(tx, &order) {
                Err(e) if e.is_unique_violation() => {
                    return Err(DomainError::AlreadyExists {
                        what: "an active work order for this number".into(),
                        field: Some("msisdn".into()),
                    }
                    .into())
                }
                other => other?,
            }
            subscribers::ensure(tx, &order.msisdn, &home, now.naive_utc())?;
            let event = work_order::opened_event(&order);
            audit::append(
                tx,
                &recorder(&actor),
                event.action,
                Some(&order.id),
                &event.detail,
                now,
            )?;
            Ok(WorkOrderView::new(&order, None, &actor))
        })
        .await
    }

    /// Any role may ask; an admin's scope holds no orders, so it gets 404 like any other
    /// caller outside scope.
    pub async fn get_work_order(&self, actor: Actor, id: String) -> Result<WorkOrderView> {
        self.store
            .read(move |c| {
                let order = load_visible(c, &id, &actor)?;
                view(c, &order, &actor)
            })
            .await
    }

    /// Any role may list; each sees only its scope (an admin's is empty).
    pub async fn list_work_orders(&self, actor: Actor, q: ListQuery) -> Result<WorkOrderPage> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::bad_request(
                Some("limit"),
                "limit must be between 1 and 200",
            ));
        }
        if let Some(s) = &q.state {
            if State::parse(s).is_none() {
                return Err(Error::bad_request(Some("state"), "unknown state"));
            }
        }
        let msisdn = q
            .msisdn
            .as_deref()
            .map(|m| parse_msisdn(m, "msisdn"))
            .transpose()?;
        let scope = scope_of(&actor);
        let filter = work_orders::ListFilter {
            state: q.state,
            msisdn: msisdn.map(Msisdn::into_string),
            hall_id: q.hall_id,
            home_province: q.home_province,
            target_province: q.target_province,
            after_id: q.cursor,
            limit: limit + 1,
        };
        self.store
            .read(move |c| {
                let mut orders = work_orders::list(c, &scope, &filter)?;
                let more = orders.len() as i64 > limit;
                orders.truncate(limit as usize);
                let ids: Vec<String> = orders
                    .iter()
                    .filter_map(|o| o.verification_id.clone())
                    .collect();
                let results = verification_results::get_many(c, &ids)?;
                let items = orders
                    .iter()
                    .map(|o| {
                        let v = o
                            .verification_id
                            .as_ref()
                            .and_then(|id| results.iter().find(|r| &r.id == id));
                        WorkOrderView::new(o, v, &actor)
                    })
                    .collect();
                let next_cursor = if more {
                    orders.last().map(|o| o.id.clone())
                } else {
                    None
                };
                Ok(WorkOrderPage { items, next_cursor })
            })
            .await
    }

    /// Claim, release, return, fail, cancel: the transitions that need nothing but a reason.
    pub async fn transition(
        &self,
        actor: Actor,
        id: String,
        if_match: Option<i64>,
        cmd: Command,
    ) -> Result<WorkOrderView> {
        if let Some(p) = cmd.kind().permission() {
            actor.require(p)?;
        }
        self.change_late(recorder(&actor), move |tx, now| {
            let current = load_for(tx, &id, cmd.kind(), &actor, if_match)?;
            let cmd = match cmd {
                Command::Release { reason: r } => Command::Release {
                    reason: reason(&r)?,
                },
                Command::Return { reason: r } => Command::Return {
                    reason: reason(&r)?,
                },
                Command::Fail { reason: r } => Command::Fail {
                    reason: reason(&r)?,
                },
                Command::Cancel { reason: r } => Command::Cancel {
                    reason: reason(&r)?,
                },
                Command::Reroute { target, reason: r } => {
                    let target = validate_target(
                        tx,
                        &target.province,
                        &target.city,
                        target.hall_id.as_deref(),
                    )?;
                    Command::Reroute {
                        target,
                        reason: reason(&r)?,
                    }
                }
                other => other,
            };
            let (next, event) = work_order::decide(&current, &cmd, &actor, now)?;
            save(tx, &actor, cmd.kind(), &current, &next, &event, now)?;
            Ok(view(tx, &next, &actor)?)
        })
        .await
    }

    /// Completes a submitted order whose result is a match: the subscriber's record is
    /// updated and the service signs a receipt, all in the one transaction.
    pub async fn complete(
        &self,
        actor: Actor,
        id: String,
        if_match: Option<i64>,
    ) -> Result<WorkOrderView> {
        actor.require(Permission::ActAsHomeClerk)?;
        let key = self.service_key.clone();
        self.change_late(recorder(&actor), move |tx, now| {
            let current = load_for(tx, &id, Kind::Complete, &actor, if_match)?;
            let result = current
                .verification_id
                .as_deref()
                .map(|v| verification_results::get(tx, v))
                .transpose()?
                .flatten()
                .ok_or_else(|| Error::Internal("submitted order without its result".into()))?;
            if result.outcome != "match" {
                return Err(DomainError::invalid(
                    Invalid::OutcomeNotMatch,
                    "verification.outcome",
                    "only a result whose outcome is match can complete; return or fail it instead",
                )
                .into());
            }
            let cmd = Command::Complete {
                outcome: result.outcome.clone(),
            };
            let (mut next, mut event) = work_order::decide(&current, &cmd, &actor, now)?;
            let claims = ReceiptClaims {
                iss: receipt::ISSUER.to_owned(),
                wo: current.id.clone(),
                reference: current.reference.clone(),
                msisdn: current.msisdn.clone(),
                outcome: result.outcome.clone(),
                result_sha256: result.result_sha256.clone(),
                completed_by: actor.username.clone(),
                iat: now.timestamp(),
            };
            let signed = receipt::sign(&key, &claims)?;
            if let Some(d) = event.detail.as_object_mut() {
                d.insert(
                    "receipt_sha256".into(),
                    json!(crate::domain::sha256_hex(signed.as_bytes())),
                );
                d.insert("result_sha256".into(), json!(result.result_sha256));
            }
            next.receipt = Some(signed);
            save(tx, &actor, Kind::Complete, &current, &next, &event, now)?;
            let mut subscriber = subscribers::get(tx, &current.msisdn)?
                .ok_or_else(|| Error::Internal("order without its subscriber".into()))?;
            // The province that completed the registration is the number's home from now on.
            subscriber.home_province = current.home_province.clone();
            subscriber.real_name_status = "verified".into();
            subscriber.document_type = result.document_type.clone();
            subscriber.document_number_masked = result.document_number_masked.clone();
            subscriber.document_name_masked = result.document_name_masked.clone();
            subscriber.verified_at = Some(now.naive_utc());
            subscriber.work_order_id = Some(current.id.clone());
            subscriber.updated_at = now.naive_utc();
            subscribers::save(tx, &subscriber)?;
            Ok(WorkOrderView::new(&next, Some(&result), &actor))
        })
        .await
    }

    pub async fn work_order_events(&self, actor: Actor, id: String) -> Result<EventList> {
        actor.require(Permission::ReadOrderEvents)?;
        self.store
            .read(move |c| {
                let order = load_visible(c, &id, &actor)?;
                let rows = storage::audit::for_work_order(c, &order.id)?;
                Ok(EventList {
                    items: rows.into_iter().map(Into::into).collect(),
                })
            })
            .await
    }
}

/// The list query's scope filter for a caller (mirrors `Actor::sees`).
pub fn scope_of(actor: &Actor) -> work_orders::Scope {
    use work_orders::Scope;
    match actor.role {
        Role::Clerk => actor
            .province
            .clone()
            .map_or(Scope::Nothing, Scope::HomeProvince),
        Role::HallStaff => actor.hall.as_ref().map_or(Scope::Nothing, |h| Scope::Hall {
            id: h.id.clone(),
            city: h.city.clone(),
        }),
        Role::Auditor => actor
            .province
            .clone()
            .map_or(Scope::All, Scope::HomeOrTargetProvince),
        Role::Admin => Scope::Nothing,
    }
}
