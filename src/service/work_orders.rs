//! Work-order actions: open, read, list, and every transition of the life cycle.

use crate::domain::text::ceiling::{Code, Id, Name, Prose};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::notices::Addressing;
use super::personal::{self, Crypto};
use super::views::{EventList, WorkOrderPage, WorkOrderView};
use super::{recorder, ChainLock, Error, Refusal, Result, Services};
use crate::audit::{self, AuditAction, Recorder};
use crate::crypto::index::IndexKind;
use crate::domain::access::{Actor, Permission};
use crate::domain::msisdn::Msisdn;
use crate::domain::text::{required_text, Reason as ReasonText};
use crate::domain::verification::Outcome;
use crate::domain::work_order::{
    self, Command, Completion, Effect, Kind, NewOrder, Opening, State, Target, Transition,
    WorkOrder,
};
use crate::domain::{region, Detail, DomainError, HallId, Invalid, WorkOrderId};
use crate::signing::receipt::{self, ReceiptClaims};
use crate::storage::work_orders::TimeKey;
use crate::storage::{self, halls, subscribers, verification_results, work_orders, DbConn};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrder {
    pub msisdn: Id,
    pub target_province: Code,
    pub target_city: Code,
    #[serde(default)]
    pub target_hall_id: Option<Id>,
    pub reason: Prose,
    #[serde(default)]
    pub expected_name: Option<Name>,
    /// The date the number's service will be suspended (停机日期), RFC 3339.
    #[serde(default)]
    pub suspend_at: Option<Name>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    /// RFC 3339; must be ahead.
    pub suspend_at: Name,
    pub reason: Prose,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: Prose,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reroute {
    pub target_province: Code,
    pub target_city: Code,
    #[serde(default)]
    pub target_hall_id: Option<Id>,
    pub reason: Prose,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub state: Option<Code>,
    pub msisdn: Option<Id>,
    pub hall_id: Option<Id>,
    pub home_province: Option<Code>,
    pub target_province: Option<Code>,
    /// Exact search by ID number (blind index): orders with a result whose document has it.
    pub document_number: Option<Name>,
    /// Exact search by name (blind index): orders expecting it or with a result naming it.
    pub name: Option<Name>,
    /// Only orders whose number is suspended by this time (RFC 3339).
    pub suspend_before: Option<Name>,
    /// `suspend_at`: only orders with a suspension date, the earliest first; `due_at`,
    /// `deadline_at`: every order, the earliest first; `id` (the default): opening order.
    pub sort: Option<Code>,
    /// `true`: only orders whose current result the quality checks flagged; `false`: only
    /// the others.
    pub flagged: Option<Code>,
    pub limit: Option<i64>,
    pub cursor: Option<Name>,
}

pub fn parse_msisdn(raw: &str, field: &str) -> Result<Msisdn, DomainError> {
    Msisdn::parse(raw).ok_or_else(|| {
        DomainError::invalid(
            Invalid::Msisdn,
            field,
            Detail::new(
                format!("{field} 不是有效的中国大陆手机号码（11 位数字，以 1[3-9] 开头）"),
                "not a mainland mobile number (11 digits, 1[3-9]…)",
            ),
        )
    })
}

/// Where an order may be routed: a known province, a city of it, and optionally a hall there.
fn validate_target(
    conn: &mut DbConn,
    province: &str,
    city: &str,
    hall_id: Option<&str>,
) -> Result<(Target, Option<String>), Refusal> {
    if region::province(province).is_none() {
        return Err(DomainError::invalid(
            Invalid::Province,
            "target_province",
            Detail::new("未知的省份代码 target_province", "unknown province code"),
        )
        .into());
    }
    if !region::city_in_province(city, province) {
        return Err(DomainError::invalid(
            Invalid::City,
            "target_city",
            Detail::new(
                "target_city 不是目标省份下的城市代码",
                "not a city code of the target province",
            ),
        )
        .into());
    }
    let mut hall_code = None;
    if let Some(id) = hall_id {
        let hall = halls::get(conn, &HallId::from(id))?
            .filter(|h| h.province == province && h.city == city);
        let Some(hall) = hall else {
            return Err(DomainError::invalid(
                Invalid::UnknownHall,
                "target_hall_id",
                Detail::new(
                    "目标城市中没有 target_hall_id 指定的营业厅",
                    "no such hall in the target city",
                ),
            )
            .into());
        };
        if hall.deactivated_at.is_some() {
            return Err(DomainError::invalid(
                Invalid::HallDeactivated,
                "target_hall_id",
                Detail::new(
                    "target_hall_id 指定的营业厅已停用，不再接收新工单",
                    "the hall is deactivated and takes no new orders",
                ),
            )
            .into());
        }
        hall_code = Some(hall.code);
    }
    let target = Target {
        province: province.to_owned(),
        city: city.to_owned(),
        hall_id: hall_id.map(HallId::from),
    };
    Ok((target, hall_code))
}

/// Loads the order and checks the caller for a command of this kind: role (403) → exists and in scope (404) → claimer
/// (403) → `If-Match` (412) → state (409), the contract's order.
pub(super) fn load_for(
    conn: &mut DbConn,
    id: &WorkOrderId,
    kind: Kind,
    actor: &Actor,
    if_match: Option<i64>,
) -> Result<WorkOrder, Refusal> {
    let found = work_orders::get(conn, id)?;
    check_for(found, kind, actor, if_match)
}

/// `load_for`'s checks of an order already read (`None`: there is none).
fn check_for(
    found: Option<WorkOrder>,
    kind: Kind,
    actor: &Actor,
    if_match: Option<i64>,
) -> Result<WorkOrder, Refusal> {
    let Some(order) = found else {
        return Err(denied(
            DomainError::NotFound(Detail::work_order()),
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
pub(super) fn load_visible(
    conn: &mut DbConn,
    id: &WorkOrderId,
    actor: &Actor,
) -> Result<WorkOrder> {
    Ok(work_orders::get(conn, id)?
        .filter(|o| actor.sees(o))
        .ok_or_else(|| DomainError::NotFound(Detail::work_order()))?)
}

/// A refused attempt on an order is itself an audit event (scope and role violations).
fn denied(e: DomainError, work_order: Option<&WorkOrderId>, kind: Kind) -> Refusal {
    let detail = json!({ "attempted": kind.name(), "code": e.reason() });
    Refusal::audited(e, AuditAction::AccessDenied, work_order.cloned(), detail)
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
        Ok(None) => DomainError::NotFound(Detail::work_order()).into(),
        Err(e) => e.into(),
    }
}

/// Writes a decided transition, its audit event, its effects and its mail: the one way every
/// step changes an order. The version guard turns a concurrent change into the answer the
/// later request deserves (`lost_race`).
pub(super) fn save(
    conn: &mut DbConn,
    by: &Recorder,
    mail: &Addressing,
    current: &WorkOrder,
    t: Transition,
    now: DateTime<Utc>,
) -> Result<WorkOrder, Refusal> {
    if !work_orders::update(conn, &t)? {
        return Err(lost_race(conn, current, t.kind()));
    }
    for effect in t.effects() {
        match effect {
            Effect::RecordVerified(record) => subscribers::record_verified(conn, record)?,
        }
    }
    mail.enqueue(conn, t.notices(), now)?;
    // Last before the commit: on PostgreSQL the queued event's wait for the sequencer is
    // measured from here.
    for event in t.events() {
        audit::append(
            conn,
            by,
            event.action,
            Some(&t.next().id),
            &event.detail,
            now,
        )?;
    }
    Ok(t.into_next())
}

pub(super) fn view(
    conn: &mut DbConn,
    crypto: &Crypto,
    order: &WorkOrder,
    viewer: &Actor,
) -> Result<WorkOrderView> {
    let verification = match &order.verification_id {
        Some(id) => verification_results::get(conn, id.as_str())?,
        None => None,
    };
    let name = opened_name(conn, crypto, order, viewer)?;
    Ok(WorkOrderView::new(
        order,
        verification.as_ref(),
        viewer,
        name,
    ))
}

/// The expected name unsealed, for the one role shown it (a home clerk); None for anyone
/// else, when unset, or once shredded.
pub(super) fn opened_name(
    conn: &mut DbConn,
    crypto: &Crypto,
    order: &WorkOrder,
    viewer: &Actor,
) -> Result<Option<String>> {
    if !viewer.is_home_clerk_of(order) || order.expected_name_masked.is_none() {
        return Ok(None);
    }
    let stored = work_orders::stored_names(conn, &[order.id.to_string()])?;
    match stored.first() {
        Some((id, sealed)) => crypto.open(conn, sealed, &personal::name_ad(id)),
        None => Ok(None),
    }
}

impl Services {
    pub(crate) async fn open_work_order(
        &self,
        actor: Actor,
        req: OpenOrder,
    ) -> Result<WorkOrderView> {
        actor.require(Permission::OpenOrder)?;
        let home = actor
            .province
            .clone()
            .ok_or_else(|| Error::Internal("clerk without a province".into()))?;
        let (levels, mail) = (self.levels.clone(), self.addressing.clone());
        let crypto = self.crypto.clone();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            let msisdn = parse_msisdn(&req.msisdn, "msisdn");
            // 409 outranks 422: a number with an active order is refused before the rest of
            // the body is judged.
            if let Ok(m) = &msisdn {
                if work_orders::has_active_order(tx, m.as_str())? {
                    return Err(already_active().into());
                }
            }
            let msisdn = msisdn?;
            let (target, hall_code) = validate_target(
                tx,
                &req.target_province,
                &req.target_city,
                req.target_hall_id.as_deref(),
            )?;
            let reason = ReasonText::parse(&req.reason)?;
            let expected_name = req
                .expected_name
                .as_deref()
                .map(|n| required_text(n, "expected_name"))
                .transpose()?;
            let suspend_at = req
                .suspend_at
                .as_deref()
                .map(|raw| work_order::suspension_date(raw, now))
                .transpose()?;
            let day = now.format("%Y%m%d").to_string();
            let seq = work_orders::next_reference_seq(tx, &home, &day)?;
            let new = NewOrder {
                reference: work_order::reference(&home, now, seq),
                msisdn: msisdn.into_string(),
                target,
                reason,
                expected_name: expected_name.clone(),
                suspend_at,
                deadlines: levels.deadlines(&home, hall_code.as_deref(), now, suspend_at),
            };
            let Opening {
                order,
                event,
                notices,
            } = WorkOrder::open(new, &actor, now)?;
            // Sealed under the subscriber's data key, made now if it has none.
            let stored_name = match &expected_name {
                Some(name) => {
                    let (key_id, key) = crypto.live_key(tx, &order.msisdn, now)?;
                    Some(crypto.seal_name(&key_id, &key, order.id.as_str(), name)?)
                }
                None => None,
            };
            match work_orders::insert(tx, &order, stored_name.as_ref()) {
                Err(e) if e.is_unique_violation() => return Err(already_active().into()),
                other => other?,
            }
            subscribers::ensure(tx, &order.msisdn, &home, now.naive_utc())?;
            audit::append(
                tx,
                &recorder(&actor),
                event.action,
                Some(&order.id),
                &event.detail,
                now,
            )?;
            mail.enqueue(tx, &notices, now)?;
            Ok(WorkOrderView::new(&order, None, &actor, expected_name))
        })
        .await
    }

    /// Any role may ask; an admin's scope holds no orders, so it gets 404 like any other
    /// caller outside scope.
    pub(crate) async fn get_work_order(
        &self,
        actor: Actor,
        id: WorkOrderId,
    ) -> Result<WorkOrderView> {
        let crypto = self.crypto.clone();
        self.store
            .read(move |c| {
                let order = load_visible(c, &id, &actor)?;
                view(c, &crypto, &order, &actor)
            })
            .await
    }

    /// Any role may list; each sees only its scope (an admin's is empty).
    pub(crate) async fn list_work_orders(
        &self,
        actor: Actor,
        q: ListQuery,
    ) -> Result<WorkOrderPage> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::bad_request(
                Some("limit"),
                Detail::new(
                    "limit 须在 1 到 200 之间",
                    "limit must be between 1 and 200",
                ),
            ));
        }
        let state = q
            .state
            .as_deref()
            .map(|s| {
                State::parse(s).ok_or_else(|| {
                    Error::bad_request(
                        Some("state"),
                        Detail::new("未知的状态 state", "unknown state"),
                    )
                })
            })
            .transpose()?;
        let msisdn = q
            .msisdn
            .as_deref()
            .map(|m| parse_msisdn(m, "msisdn"))
            .transpose()?;
        let suspend_before = q
            .suspend_before
            .as_deref()
            .map(|raw| {
                DateTime::parse_from_rfc3339(raw.trim())
                    .map(|t| t.with_timezone(&Utc).naive_utc())
                    .map_err(|_| {
                        Error::bad_request(
                            Some("suspend_before"),
                            Detail::new(
                                "suspend_before 不是 RFC 3339 时间",
                                "not an RFC 3339 time",
                            ),
                        )
                    })
            })
            .transpose()?;
        let flagged = match q.flagged.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(Error::bad_request(
                    Some("flagged"),
                    Detail::new("flagged 只能是 true 或 false", "flagged is true or false"),
                ))
            }
        };
        let by_time = match q.sort.as_deref() {
            None | Some("id") => None,
            Some("suspend_at") => Some(TimeKey::Suspension),
            Some("due_at") => Some(TimeKey::Due),
            Some("deadline_at") => Some(TimeKey::Deadline),
            Some(_) => {
                return Err(Error::bad_request(
                    Some("sort"),
                    Detail::new(
                        "sort 须为 id、due_at、deadline_at 或 suspend_at",
                        "sort is id, due_at, deadline_at or suspend_at",
                    ),
                ))
            }
        };
        let order = match (by_time, q.cursor.map(String::from)) {
            (None, None) => work_orders::ListOrder::Oldest,
            (None, Some(after)) => work_orders::ListOrder::AfterId(after),
            (Some(key), None) => work_orders::ListOrder::Soonest(key, None),
            (Some(key), Some(cursor)) => {
                let after = time_cursor(&cursor).ok_or_else(|| {
                    Error::bad_request(
                        Some("cursor"),
                        Detail::new("cursor 不是此列表的游标", "not a cursor of this list"),
                    )
                })?;
                work_orders::ListOrder::Soonest(key, Some(after))
            }
        };
        // Searched by blind index: the value itself is neither stored nor logged.
        let document_number_index = q
            .document_number
            .as_deref()
            .map(|raw| self.document_number_index(raw))
            .transpose()?;
        let name_index = q
            .name
            .as_deref()
            .map(|raw| {
                let trimmed = raw.trim();
                if trimmed.is_empty() || trimmed.chars().count() > 64 {
                    return Err(Error::bad_request(
                        Some("name"),
                        Detail::new("name 须为 1 到 64 个字符", "a name of 1 to 64 characters"),
                    ));
                }
                Ok(self.crypto.index(IndexKind::Name, trimmed))
            })
            .transpose()?;
        let scope = actor.scope();
        let crypto = self.crypto.clone();
        let filter = work_orders::ListFilter {
            state,
            msisdn: msisdn.map(Msisdn::into_string),
            hall_id: q.hall_id.map(String::from),
            home_province: q.home_province.map(String::from),
            target_province: q.target_province.map(String::from),
            suspend_before,
            document_number_index,
            name_index,
            flagged,
            order,
            limit: limit + 1,
        };
        self.store
            .read(move |c| {
                let mut orders = work_orders::list(c, &scope, &filter)?;
                let more = orders.len() as i64 > limit;
                orders.truncate(limit as usize);
                let ids: Vec<String> = orders
                    .iter()
                    .filter_map(|o| o.verification_id.as_ref().map(ToString::to_string))
                    .collect();
                let results = verification_results::get_many(c, &ids)?;
                // Names opened only for the orders the caller is the home clerk of, their
                // keys read in one query.
                let home: Vec<String> = orders
                    .iter()
                    .filter(|o| actor.is_home_clerk_of(o) && o.expected_name_masked.is_some())
                    .map(|o| o.id.to_string())
                    .collect();
                let stored = if home.is_empty() {
                    Vec::new()
                } else {
                    work_orders::stored_names(c, &home)?
                };
                let mut names = crypto.open_many(c, &stored, personal::name_ad)?;
                let items = orders
                    .iter()
                    .map(|o| {
                        let v = o
                            .verification_id
                            .as_ref()
                            .and_then(|id| results.iter().find(|r| id == r.id.as_str()));
                        let name = names
                            .iter_mut()
                            .find(|(id, _)| id == o.id.as_str())
                            .and_then(|(_, n)| n.take());
                        WorkOrderView::new(o, v, &actor, name)
                    })
                    .collect();
                let next_cursor = match (orders.last(), by_time) {
                    (Some(last), Some(key)) if more => match key {
                        TimeKey::Suspension => last.suspend_at,
                        TimeKey::Due => Some(last.due_at),
                        TimeKey::Deadline => Some(last.deadline_at),
                    }
                    .map(|at| format!("{}_{}", at.timestamp_micros(), last.id)),
                    (Some(last), None) if more => Some(last.id.to_string()),
                    _ => None,
                };
                Ok(WorkOrderPage { items, next_cursor })
            })
            .await
    }

    /// Claim, release, return, fail, cancel, reroute: the transitions that need nothing but
    /// what the caller sent. Reasons and targets are judged after the state (409 before 422).
    pub(crate) async fn transition(
        &self,
        actor: Actor,
        id: WorkOrderId,
        if_match: Option<i64>,
        step: Step,
    ) -> Result<WorkOrderView> {
        let kind = step.kind();
        if let Some(p) = kind.permission() {
            actor.require(p)?;
        }
        let (levels, mail) = (self.levels.clone(), self.addressing.clone());
        let crypto = self.crypto.clone();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            let current = load_for(tx, &id, kind, &actor, if_match)?;
            let cmd = match step {
                Step::Claim => {
                    refuse_claims_of_a_deactivated_hall(tx, &actor)?;
                    Command::Claim
                }
                Step::Reasoned(kind, r) => Command::with_reason(kind, ReasonText::parse(&r)?)
                    .ok_or_else(|| {
                        Error::Internal(format!("{} takes more than a reason", kind.name()))
                    })?,
                Step::Reroute(r) => Command::Reroute {
                    target: validate_target(
                        tx,
                        &r.target_province,
                        &r.target_city,
                        r.target_hall_id.as_deref(),
                    )?
                    .0,
                    reason: ReasonText::parse(&r.reason)?,
                },
                Step::Suspension(s) => {
                    let suspend_at = work_order::suspension_date(&s.suspend_at, now)?;
                    let reason = ReasonText::parse(&s.reason)?;
                    let hall_code = match &current.target_hall_id {
                        Some(id) => halls::get(tx, id)?.map(|h| h.code),
                        None => None,
                    };
                    // The deadlines are counted from the opening, as they were then.
                    let deadlines = levels.deadlines(
                        &current.home_province,
                        hall_code.as_deref(),
                        current.created_at,
                        Some(suspend_at),
                    );
                    Command::SetSuspension {
                        suspend_at,
                        deadlines,
                        reason,
                    }
                }
            };
            let t = work_order::decide(&current, &cmd, &actor, now)?;
            let next = save(tx, &recorder(&actor), &mail, &current, t, now)?;
            Ok(view(tx, &crypto, &next, &actor)?)
        })
        .await
    }

    /// Completes a submitted order: the service signs a receipt over the accepted result,
    /// and `decide` says whether it may complete (only a match) and what that changes.
    pub(crate) async fn complete(
        &self,
        actor: Actor,
        id: WorkOrderId,
        if_match: Option<i64>,
    ) -> Result<WorkOrderView> {
        actor.require(Permission::ActAsHomeClerk)?;
        let key = self.service_key.clone();
        let mail = self.addressing.clone();
        let crypto = self.crypto.clone();
        self.write(ChainLock::AtAppend, recorder(&actor), move |tx, now| {
            // A result whose flags need four eyes is approved by this call, not completed.
            let found = work_orders::get(tx, &id)?;
            let kind = found
                .as_ref()
                .map_or(Kind::Complete, WorkOrder::completion_step);
            let current = check_for(found, kind, &actor, if_match)?;
            let result = current
                .verification_id
                .as_ref()
                .map(|v| verification_results::get(tx, v.as_str()))
                .transpose()?
                .flatten()
                .ok_or_else(|| Error::Internal("submitted order without its result".into()))?;
            let outcome = Outcome::parse(&result.outcome).ok_or_else(|| {
                Error::Internal(format!("stored result has outcome {:?}", result.outcome))
            })?;
            // Checked before anything is approved or signed: only a match completes.
            let completable = Completion::of(
                outcome,
                result.result_sha256.clone(),
                result.masked_document(),
            )?;
            if kind == Kind::Approve {
                let cmd = Command::Approve(Box::new(completable));
                let t = work_order::decide(&current, &cmd, &actor, now)?;
                let next = save(tx, &recorder(&actor), &mail, &current, t, now)?;
                let name = opened_name(tx, &crypto, &next, &actor)?;
                return Ok(WorkOrderView::new(&next, Some(&result), &actor, name));
            }
            let claims = ReceiptClaims {
                iss: receipt::ISSUER.to_owned(),
                wo: current.id.to_string(),
                reference: current.reference.clone(),
                msisdn: current.msisdn.clone(),
                outcome: result.outcome.clone(),
                result_sha256: result.result_sha256.clone(),
                completed_by: actor.username.to_string(),
                iat: now.timestamp(),
            };
            let completion = completable.signed(receipt::sign(&key, &claims)?);
            let cmd = Command::Complete(Box::new(completion));
            let t = work_order::decide(&current, &cmd, &actor, now)?;
            let next = save(tx, &recorder(&actor), &mail, &current, t, now)?;
            let name = opened_name(tx, &crypto, &next, &actor)?;
            Ok(WorkOrderView::new(&next, Some(&result), &actor, name))
        })
        .await
    }

    pub(crate) async fn work_order_events(
        &self,
        actor: Actor,
        id: WorkOrderId,
    ) -> Result<EventList> {
        actor.require(Permission::ReadOrderEvents)?;
        self.settle_audit_of(Some(id.to_string())).await?;
        self.store
            .read(move |c| {
                let order = load_visible(c, &id, &actor)?;
                let rows = storage::audit::for_work_order(c, order.id.as_str())?;
                Ok(EventList {
                    items: rows.into_iter().map(Into::into).collect(),
                })
            })
            .await
    }
}

impl Services {
    /// The blind index of an ID number searched for; 400 when it is no resident ID number.
    pub(crate) fn document_number_index(&self, raw: &str) -> Result<String> {
        crate::domain::id_number::IdNumber::parse(raw.trim(), self.now().date_naive())
            .map(|n| self.crypto.index(IndexKind::DocumentNumber, n.as_str()))
            .map_err(|_| {
                Error::bad_request(
                    Some("document_number"),
                    Detail::new(
                        "document_number 不是有效的居民身份证号码（18 位，校验位正确）",
                        "not a resident ID number (18 characters, valid check digit)",
                    ),
                )
            })
    }
}

/// A deactivated hall takes no new orders, by any route: its staff finish what they hold
/// (release, evidence, results) but claim nothing more.
fn refuse_claims_of_a_deactivated_hall(tx: &mut DbConn, actor: &Actor) -> Result<(), Refusal> {
    let Some(post) = &actor.hall else {
        return Ok(());
    };
    match halls::get(tx, &post.id)? {
        Some(hall) if hall.deactivated_at.is_some() => Err(DomainError::InvalidState {
            from: Detail::new("该营业厅已停用", "at a deactivated hall"),
            action: Detail::new("认领该工单", "claim"),
        }
        .into()),
        _ => Ok(()),
    }
}

fn already_active() -> DomainError {
    DomainError::AlreadyExists {
        what: Detail::new(
            "该手机号码的在办工单",
            "an active work order for this number",
        ),
        field: Some("msisdn".into()),
    }
}

/// A transition as the caller asked for it, its fields not yet judged.
#[derive(Debug, Clone)]
pub enum Step {
    Claim,
    /// Release, return, fail or cancel: a kind and the reason given.
    Reasoned(Kind, String),
    Reroute(Reroute),
    Suspension(Suspension),
}

impl Step {
    fn kind(&self) -> Kind {
        match self {
            Self::Claim => Kind::Claim,
            Self::Reasoned(kind, _) => *kind,
            Self::Reroute(_) => Kind::Reroute,
            Self::Suspension(_) => Kind::SetSuspension,
        }
    }
}

/// A cursor of a list sorted by a time: `<microseconds>_<id>` of the page's last order.
fn time_cursor(cursor: &str) -> Option<(chrono::NaiveDateTime, String)> {
    let (micros, id) = cursor.split_once('_')?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at.naive_utc(), id.to_owned()))
}
