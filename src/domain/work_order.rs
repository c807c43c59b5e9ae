//! The work order and its life cycle: a pure state machine, time passed in. A transition is
//! decided whole here: the next order, its audit event, and what else it changes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::access::{Actor, Permission};
use super::audit_action::AuditAction;
use super::error::{Detail, DomainError, Invalid};
use super::ids::{HallId, Username, VerificationId, WorkOrderId};
use super::masking::mask_name;
use super::notice::{Audience, MailEvent, Notice};
use super::quality::Verdict;
use super::sla::SlaTimes;
use super::text::Reason;
use super::verification::{MaskedDocument, Outcome};

/// Where an order is in its life cycle. The strings are the contract's.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    IntoStaticStr,
    EnumString,
    EnumIter,
    serde::Serialize,
    utoipa::ToSchema,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum State {
    Open,
    Claimed,
    Submitted,
    /// A flagged result one clerk approved: a second clerk completes or returns it.
    AwaitingSecondApproval,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

impl State {
    /// The states that block another order for the same number.
    pub const ACTIVE: [State; 4] = [
        State::Open,
        State::Claimed,
        State::Submitted,
        State::AwaitingSecondApproval,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }
}

/// Where the identity check is to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub province: String,
    pub city: String,
    pub hall_id: Option<HallId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder {
    pub id: WorkOrderId,
    pub reference: String,
    pub msisdn: String,
    pub home_province: String,
    pub target_province: String,
    pub target_city: String,
    pub target_hall_id: Option<HallId>,
    pub state: State,
    pub version: i64,
    pub reason: String,
    /// The name the clerk expects, masked. The name itself is sealed at rest and opened by
    /// the service only where a role needs it (the home clerk's view, the name check).
    pub expected_name_masked: Option<String>,
    pub opened_by: Username,
    pub claimed_by: Option<Username>,
    pub claimed_hall_id: Option<HallId>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub verification_id: Option<VerificationId>,
    pub receipt: Option<String>,
    /// The date the number's service will be suspended (停机日期), when the clerk gave one.
    pub suspend_at: Option<DateTime<Utc>>,
    /// When the reminder is due; `reminded_at` and `escalated_at` say when those timers fired.
    pub remind_at: DateTime<Utc>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    /// When the hall last took the order on: its claim, or a return to it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// What the quality checks made of the current result, and its first approval.
    pub review: Review,
}

/// The quality checks' mark on the order's current result (`domain::quality`), and the
/// four-eyes completion it may need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// The current result raised at least one flag.
    pub flagged: bool,
    /// One of its flags has a severity that needs a second clerk to complete.
    pub needs_second_approval: bool,
    /// The clerk whose `complete` recorded the first approval.
    pub approved_by: Option<Username>,
}

/// What a clerk asks for when opening an order, already parsed.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub reference: String,
    pub msisdn: String,
    pub target: Target,
    pub reason: Reason,
    pub expected_name: Option<String>,
    pub suspend_at: Option<DateTime<Utc>>,
    pub deadlines: SlaTimes,
}

/// A new order, the event that records it and the mail that tells the hall.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub order: WorkOrder,
    pub event: Event,
    pub notices: Vec<Notice>,
}

impl WorkOrder {
    /// A new order, `open`, with its event and mail. The clerk's province is its home.
    pub fn open(new: NewOrder, by: &Actor, now: DateTime<Utc>) -> Result<Opening, DomainError> {
        by.require(Permission::OpenOrder)?;
        let home_province = by.province.clone().ok_or_else(|| {
            DomainError::Forbidden(Detail::new(
                "该受理员没有归属省份",
                "a clerk without a province",
            ))
        })?;
        let order = WorkOrder {
            id: WorkOrderId::new(),
            reference: new.reference,
            msisdn: new.msisdn,
            home_province,
            target_province: new.target.province,
            target_city: new.target.city,
            target_hall_id: new.target.hall_id,
            state: State::Open,
            version: 1,
            reason: new.reason.into_string(),
            expected_name_masked: new.expected_name.as_deref().map(mask_name),
            opened_by: by.username.clone(),
            claimed_by: None,
            claimed_hall_id: None,
            due_at: new.deadlines.due_at,
            deadline_at: new.deadlines.deadline_at,
            created_at: now,
            updated_at: now,
            verification_id: None,
            receipt: None,
            suspend_at: new.suspend_at,
            remind_at: new.deadlines.remind_at,
            reminded_at: None,
            escalated_at: None,
            claimed_at: None,
            review: Review::default(),
        };
        let event = Event {
            action: AuditAction::WorkOrderOpened,
            detail: json!({
                "reference": order.reference,
                "target_province": order.target_province,
                "target_city": order.target_city,
                "target_hall_id": order.target_hall_id,
                "expected_name": order.expected_name_masked,
                "reason": order.reason,
                "due_at": order.due_at,
                "deadline_at": order.deadline_at,
                "suspend_at": order.suspend_at,
            }),
        };
        let notices = vec![Notice::about(
            MailEvent::Opened,
            &order,
            now,
            order.target_audience(),
        )];
        Ok(Opening {
            order,
            event,
            notices,
        })
    }

    /// Whoever the order is routed to: its hall, or every hall of its city.
    fn target_audience(&self) -> Vec<Audience> {
        match &self.target_hall_id {
            Some(hall) => vec![Audience::Hall(hall.clone())],
            None => vec![Audience::HallsOfCity {
                province: self.target_province.clone(),
                city: self.target_city.clone(),
            }],
        }
    }

    /// The hall working on the order: the one that claimed it, else whoever it is routed to.
    fn hall_audience(&self) -> Vec<Audience> {
        match &self.claimed_hall_id {
            Some(hall) => vec![Audience::Hall(hall.clone())],
            None => self.target_audience(),
        }
    }

    fn clerk(&self) -> Audience {
        Audience::User(self.opened_by.clone())
    }

    /// The timers due at `now`, in the order they fire: each fires once, and only while the
    /// order waits on a hall (open or claimed).
    pub fn due_timers(&self, now: DateTime<Utc>) -> Vec<Kind> {
        if !matches!(self.state, State::Open | State::Claimed) {
            return Vec::new();
        }
        let mut due = Vec::new();
        if self.reminded_at.is_none() && self.remind_at <= now {
            due.push(Kind::Remind);
        }
        if self.escalated_at.is_none() && self.due_at <= now {
            due.push(Kind::Escalate);
        }
        if self.deadline_at <= now {
            due.push(Kind::Expire);
        }
        due
    }

    /// What a home clerk's `complete` does now: a result whose flags need four eyes is
    /// approved first (`Approve`), anything else completes.
    pub fn completion_step(&self) -> Kind {
        if self.state == State::Submitted && self.review.needs_second_approval {
            Kind::Approve
        } else {
            Kind::Complete
        }
    }

    /// The four-eyes rule: the second clerk is neither the opener nor the first approver.
    pub fn may_give_second_approval(&self, by: &Actor) -> bool {
        by.username != self.opened_by && self.review.approved_by.as_ref() != Some(&by.username)
    }

    /// The one "is this the claimer" rule: the staff member who claimed it, at the hall that
    /// claimed it.
    pub fn is_claimed_by(&self, by: &Actor) -> bool {
        self.claimed_by.as_ref() == Some(&by.username)
            && self
                .claimed_hall_id
                .as_ref()
                .is_some_and(|h| by.hall_id() == Some(h))
    }
}

/// What was accepted from a hall, as far as the state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedResult {
    pub verification_id: VerificationId,
    pub outcome: Outcome,
    pub kid: String,
    pub jti: String,
    pub result_sha256: String,
    /// What the quality checks made of it.
    pub verdict: Verdict,
}

/// The accepted result a completion rests on, and the receipt the service signed for it.
/// Built only through `Completion::of` (which holds the rule that only a match completes)
/// and `CompletableResult::signed`, so the rule is checked before anything is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    result: CompletableResult,
    receipt: String,
}

/// A result that may complete its order, not yet bound to a receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletableResult {
    outcome: Outcome,
    result_sha256: String,
    /// The document as the subscriber's record keeps it (masked), when the result has one.
    document: Option<MaskedDocument>,
}

impl Completion {
    /// Only a result whose outcome is `match` completes an order (422 `outcome_not_match`
    /// otherwise: the clerk returns or fails it instead).
    pub fn of(
        outcome: Outcome,
        result_sha256: String,
        document: Option<MaskedDocument>,
    ) -> Result<CompletableResult, DomainError> {
        if outcome != Outcome::Match {
            return Err(DomainError::invalid(
                Invalid::OutcomeNotMatch,
                "verification.outcome",
                Detail::new(
                    "只有核验结论为 match（一致）的结果才能办结；请退回或置为失败",
                    "only a result whose outcome is match can complete; return or fail it instead",
                ),
            ));
        }
        Ok(CompletableResult {
            outcome,
            result_sha256,
            document,
        })
    }
}

impl CompletableResult {
    /// Binds the receipt the service signed over this result (a compact JWS).
    pub fn signed(self, receipt: String) -> Completion {
        Completion {
            result: self,
            receipt,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Claim,
    Release {
        reason: Reason,
    },
    SubmitResult(AcceptedResult),
    /// The first of two approvals a flagged result needs: only a match is approved.
    Approve(Box<CompletableResult>),
    Complete(Box<Completion>),
    Return {
        reason: Reason,
    },
    Fail {
        reason: Reason,
    },
    Cancel {
        reason: Reason,
    },
    Reroute {
        target: Target,
        reason: Reason,
    },
    /// The clerk sets (or moves) the number's suspension date; the deadlines follow it.
    SetSuspension {
        suspend_at: DateTime<Utc>,
        deadlines: SlaTimes,
        reason: Reason,
    },
    /// The system's timers.
    Remind,
    Escalate,
    Expire,
}

impl Command {
    /// The commands that carry nothing but a reason; `None` for any other kind.
    pub fn with_reason(kind: Kind, reason: Reason) -> Option<Self> {
        match kind {
            Kind::Release => Some(Self::Release { reason }),
            Kind::Return => Some(Self::Return { reason }),
            Kind::Fail => Some(Self::Fail { reason }),
            Kind::Cancel => Some(Self::Cancel { reason }),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Self::Claim => Kind::Claim,
            Self::Release { .. } => Kind::Release,
            Self::SubmitResult(_) => Kind::SubmitResult,
            Self::Approve(_) => Kind::Approve,
            Self::Complete(_) => Kind::Complete,
            Self::Return { .. } => Kind::Return,
            Self::Fail { .. } => Kind::Fail,
            Self::Cancel { .. } => Kind::Cancel,
            Self::Reroute { .. } => Kind::Reroute,
            Self::SetSuspension { .. } => Kind::SetSuspension,
            Self::Remind => Kind::Remind,
            Self::Escalate => Kind::Escalate,
            Self::Expire => Kind::Expire,
        }
    }
}

/// A command without its data: what the state table is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Claim,
    Release,
    SubmitResult,
    Approve,
    Complete,
    Return,
    Fail,
    Cancel,
    Reroute,
    SetSuspension,
    Remind,
    Escalate,
    Expire,
}

impl Kind {
    /// The role a command needs; the timers are the system's own, fired by the scheduler.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Self::Claim | Self::Release | Self::SubmitResult => Some(Permission::ActAsHallStaff),
            Self::Approve
            | Self::Complete
            | Self::Return
            | Self::Fail
            | Self::Cancel
            | Self::Reroute
            | Self::SetSuspension => Some(Permission::ActAsHomeClerk),
            Self::Remind | Self::Escalate | Self::Expire => None,
        }
    }

    /// A timer's firing records that it fired but is no change by a person: the version (and
    /// so a client's `If-Match`) and `updated_at` stay as they were.
    pub fn is_timer_mark(self) -> bool {
        matches!(self, Self::Remind | Self::Escalate)
    }

    /// Only the claimer may act on a claimed order; anyone else of the hall is refused (403).
    fn needs_claimer(self) -> bool {
        matches!(self, Self::Release | Self::SubmitResult)
    }

    /// The steps that end an approved flagged order: only a second clerk takes them.
    fn needs_second_approver(self) -> bool {
        matches!(self, Self::Complete | Self::Return | Self::Fail)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Release => "release",
            Self::SubmitResult => "submit a result for",
            Self::Approve => "approve",
            Self::Complete => "complete",
            Self::Return => "return",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
            Self::Reroute => "reroute",
            Self::SetSuspension => "set the suspension date of",
            Self::Remind => "remind",
            Self::Escalate => "escalate",
            Self::Expire => "expire",
        }
    }

    /// What was attempted, in both languages, for an `invalid_state` refusal.
    pub fn action(self) -> Detail {
        let zh = match self {
            Self::Claim => "认领该工单",
            Self::Release => "释放该工单",
            Self::SubmitResult => "为该工单提交核验结果",
            Self::Approve => "审核通过该工单",
            Self::Complete => "办结该工单",
            Self::Return => "退回该工单",
            Self::Fail => "将该工单置为失败",
            Self::Cancel => "取消该工单",
            Self::Reroute => "改派该工单",
            Self::SetSuspension => "设置该工单的停机日期",
            Self::Remind => "催办该工单",
            Self::Escalate => "升级该工单",
            Self::Expire => "使该工单过期",
        };
        Detail::new(zh, self.name())
    }
}

impl State {
    /// The state as an `invalid_state` refusal names it: the code, and in Chinese its name
    /// with the code.
    pub fn as_detail(self) -> Detail {
        let zh = match self {
            Self::Open => "待认领",
            Self::Claimed => "已认领",
            Self::Submitted => "已提交核验结果",
            Self::AwaitingSecondApproval => "待第二位审核人办结",
            Self::Completed => "已办结",
            Self::Failed => "已失败",
            Self::Cancelled => "已取消",
            Self::Expired => "已过期",
        };
        Detail::new(
            format!("工单当前状态为{zh}（{}）", self.as_str()),
            self.as_str(),
        )
    }
}

/// The life cycle of the product brief: which command is allowed from which state, and where
/// it leads. Everything not listed is refused with `invalid_state`.
pub fn next_state(from: State, kind: Kind) -> Option<State> {
    use State::*;
    match (from, kind) {
        (Open, Kind::Claim) => Some(Claimed),
        (Claimed, Kind::Release) => Some(Open),
        (Claimed, Kind::SubmitResult) => Some(Submitted),
        (Submitted, Kind::Complete) => Some(Completed),
        (Submitted, Kind::Approve) => Some(AwaitingSecondApproval),
        (Submitted | AwaitingSecondApproval, Kind::Return) => Some(Claimed),
        (Submitted | AwaitingSecondApproval, Kind::Fail) => Some(Failed),
        (AwaitingSecondApproval, Kind::Complete) => Some(Completed),
        (Open | Claimed, Kind::Cancel) => Some(Cancelled),
        (Open, Kind::Reroute) => Some(Open),
        (Open | Claimed | Submitted | AwaitingSecondApproval, Kind::SetSuspension) => Some(from),
        (Open | Claimed, Kind::Remind | Kind::Escalate) => Some(from),
        (Open | Claimed, Kind::Expire) => Some(Expired),
        _ => None,
    }
}

/// Refuses a command the current state does not allow (409), before any field is validated.
pub fn require_allowed(order: &WorkOrder, kind: Kind) -> Result<State, DomainError> {
    next_state(order.state, kind).ok_or(DomainError::InvalidState {
        from: order.state.as_detail(),
        action: kind.action(),
    })
}

/// An audit event the transition produces; `detail` holds no unmasked personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub action: AuditAction,
    pub detail: Value,
}

/// What else a transition changes besides the order itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The number's real-name record is now verified by this order; the completing
    /// province is the number's home from now on.
    RecordVerified(VerifiedRecord),
}

/// A subscriber's record as a completion leaves it (the document masked).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedRecord {
    pub msisdn: String,
    pub home_province: String,
    pub document: Option<MaskedDocument>,
    pub verified_at: DateTime<Utc>,
    pub work_order_id: WorkOrderId,
}

/// A decided transition: built only by `decide`, so the only way to change an order is one
/// the state machine allowed, written against the version it was decided on.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    kind: Kind,
    expected_version: i64,
    next: WorkOrder,
    event: Event,
    /// Events recorded after `event` in the same step (`work_order.flagged`).
    also: Vec<Event>,
    effects: Vec<Effect>,
    notices: Vec<Notice>,
}

impl Transition {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The version the order had when this was decided; the write matches only that.
    pub fn expected_version(&self) -> i64 {
        self.expected_version
    }

    pub fn next(&self) -> &WorkOrder {
        &self.next
    }

    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Every event of the step, in the order they are recorded.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        std::iter::once(&self.event).chain(&self.also)
    }

    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// The mails this transition sends.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    pub fn into_next(self) -> WorkOrder {
        self.next
    }
}

/// Checks the caller in the contract's order: role (403) → scope (404) → claimer, or the
/// second approver of a flagged order (403).
pub fn authorize(order: &WorkOrder, kind: Kind, by: &Actor) -> Result<(), DomainError> {
    if let Some(permission) = kind.permission() {
        by.require(permission)?;
    }
    by.require_sees(order)?;
    if kind.needs_second_approver()
        && order.state == State::AwaitingSecondApproval
        && !order.may_give_second_approval(by)
    {
        return Err(DomainError::SecondApproverRequired);
    }
    if kind.needs_claimer()
        && matches!(order.state, State::Claimed | State::Submitted)
        && !order.is_claimed_by(by)
    {
        return Err(DomainError::Forbidden(Detail::new(
            "只有认领该工单的营业厅人员可以执行此操作",
            "only the staff member who claimed the order may do this",
        )));
    }
    Ok(())
}

/// A step a person can ask for, named as its API call (`POST /work-orders/{id}/<call>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Call {
    Claim,
    Release,
    Verification,
    /// Completes, or gives a flagged result its first approval (`WorkOrder::completion_step`).
    Complete,
    Return,
    Fail,
    Cancel,
    Reroute,
    Suspension,
}

impl Call {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The command the call takes on this order now.
    fn kind_on(self, order: &WorkOrder) -> Kind {
        match self {
            Self::Claim => Kind::Claim,
            Self::Release => Kind::Release,
            Self::Verification => Kind::SubmitResult,
            Self::Complete => order.completion_step(),
            Self::Return => Kind::Return,
            Self::Fail => Kind::Fail,
            Self::Cancel => Kind::Cancel,
            Self::Reroute => Kind::Reroute,
            Self::Suspension => Kind::SetSuspension,
        }
    }
}

/// The calls `by` may make on the order now: the state table and `authorize`, nothing more,
/// so a client offers exactly the buttons the service would accept.
pub fn calls_for(order: &WorkOrder, by: &Actor) -> Vec<Call> {
    use strum::IntoEnumIterator;
    Call::iter()
        .filter(|call| {
            let kind = call.kind_on(order);
            next_state(order.state, kind).is_some() && authorize(order, kind, by).is_ok()
        })
        .collect()
}

/// `If-Match` carries the version the caller last saw; a stale one is refused (412).
pub fn check_version(order: &WorkOrder, if_match: Option<i64>) -> Result<(), DomainError> {
    match if_match {
        Some(given) if given != order.version => Err(DomainError::VersionConflict {
            given,
            current: order.version,
        }),
        _ => Ok(()),
    }
}

/// The state machine: from the current order and a command, the whole transition. The
/// caller has already authorised the actor; this checks the state (a completion's own rule,
/// only a match, is held by the `Completion` type).
pub fn decide(
    order: &WorkOrder,
    cmd: &Command,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<Transition, DomainError> {
    transition(order, cmd, Some(by), now)
}

/// A timer firing (reminder, escalation or expiry): the system's own transition, by no person.
pub fn fire_timer(
    order: &WorkOrder,
    timer: Kind,
    now: DateTime<Utc>,
) -> Result<Transition, DomainError> {
    let cmd = match timer {
        Kind::Remind => Command::Remind,
        Kind::Escalate => Command::Escalate,
        Kind::Expire => Command::Expire,
        other => {
            return Err(DomainError::Forbidden(Detail::new(
                format!("{}（{}）不是定时操作", other.action().zh(), other.name()),
                format!("{} is not a timer", other.name()),
            )))
        }
    };
    transition(order, &cmd, None, now)
}

fn transition(
    order: &WorkOrder,
    cmd: &Command,
    by: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<Transition, DomainError> {
    let kind = cmd.kind();
    let to = require_allowed(order, kind)?;
    let mut next = order.clone();
    next.state = to;
    if !kind.is_timer_mark() {
        next.version = order.version + 1;
        next.updated_at = now;
    }
    let mut effects = Vec::new();
    let mut also = Vec::new();
    let mut mail_flags: &[super::quality::Flag] = &[];
    // Who hears of it, and what the mail adds to the order's own facts.
    let mut mail: Option<(MailEvent, Vec<Audience>)> = None;
    let mut mail_reason: Option<&Reason> = None;
    let mut mail_outcome: Option<&'static str> = None;
    let event = |action, detail| Event { action, detail };
    let event = match cmd {
        Command::Claim => {
            let by = by.ok_or_else(|| {
                DomainError::Forbidden(Detail::new("认领人缺失", "claimed by nobody"))
            })?;
            next.claimed_by = Some(by.username.clone());
            next.claimed_hall_id = by.hall_id().cloned();
            next.claimed_at = Some(now);
            mail = Some((MailEvent::Claimed, vec![order.clerk()]));
            event(
                AuditAction::WorkOrderClaimed,
                json!({ "hall_id": next.claimed_hall_id }),
            )
        }
        Command::Release { reason } => {
            next.claimed_by = None;
            next.claimed_hall_id = None;
            next.claimed_at = None;
            event(
                AuditAction::WorkOrderReleased,
                json!({ "hall_id": order.claimed_hall_id, "reason": reason }),
            )
        }
        Command::SubmitResult(result) => {
            next.verification_id = Some(result.verification_id.clone());
            let verdict = &result.verdict;
            next.review = Review {
                flagged: !verdict.flags.is_empty(),
                needs_second_approval: verdict.needs_second_approval,
                approved_by: None,
            };
            if next.review.flagged {
                // Codes only: a flag's reason is for the people reviewing the order.
                also.push(event(
                    AuditAction::WorkOrderFlagged,
                    json!({
                        "verification_id": result.verification_id,
                        "codes": verdict.codes(),
                        "needs_second_approval": verdict.needs_second_approval,
                    }),
                ));
            }
            mail = Some((MailEvent::Submitted, vec![order.clerk()]));
            mail_outcome = Some(result.outcome.as_str());
            mail_flags = &verdict.flags;
            event(
                AuditAction::ResultSubmitted,
                json!({
                    "verification_id": result.verification_id,
                    "outcome": result.outcome.as_str(),
                    "kid": result.kid,
                    "jti": result.jti,
                    "result_sha256": result.result_sha256,
                }),
            )
        }
        Command::Approve(result) => {
            let by = by.ok_or_else(|| {
                DomainError::Forbidden(Detail::new("无人审核", "approved by nobody"))
            })?;
            next.review.approved_by = Some(by.username.clone());
            event(
                AuditAction::WorkOrderApproved,
                json!({
                    "verification_id": order.verification_id,
                    "outcome": result.outcome.as_str(),
                    "result_sha256": result.result_sha256,
                }),
            )
        }
        Command::Complete(_) if order.completion_step() == Kind::Approve => {
            return Err(DomainError::SecondApproverRequired)
        }
        Command::Complete(completion) => {
            let Completion { result, receipt } = completion.as_ref();
            next.receipt = Some(receipt.clone());
            effects.push(Effect::RecordVerified(VerifiedRecord {
                msisdn: order.msisdn.clone(),
                home_province: order.home_province.clone(),
                document: result.document.clone(),
                verified_at: now,
                work_order_id: order.id.clone(),
            }));
            let mut audience = order.hall_audience();
            audience.push(order.clerk());
            mail = Some((MailEvent::Completed, audience));
            mail_outcome = Some(result.outcome.as_str());
            event(
                AuditAction::WorkOrderCompleted,
                json!({
                    "verification_id": order.verification_id,
                    "outcome": result.outcome.as_str(),
                    "receipt_sha256": super::sha256_hex(receipt.as_bytes()),
                    "result_sha256": result.result_sha256,
                    "first_approval_by": order.review.approved_by,
                }),
            )
        }
        Command::Return { reason } => {
            // Back to the same hall and staff member, who must submit a new result.
            next.verification_id = None;
            next.review = Review::default();
            next.claimed_at = Some(now);
            mail = Some((MailEvent::Returned, order.hall_audience()));
            mail_reason = Some(reason);
            event(
                AuditAction::WorkOrderReturned,
                json!({ "verification_id": order.verification_id, "reason": reason }),
            )
        }
        Command::Fail { reason } => {
            mail = Some((MailEvent::Failed, order.hall_audience()));
            mail_reason = Some(reason);
            event(
                AuditAction::WorkOrderFailed,
                json!({ "verification_id": order.verification_id, "reason": reason }),
            )
        }
        Command::Cancel { reason } => {
            mail = Some((MailEvent::Cancelled, order.hall_audience()));
            mail_reason = Some(reason);
            event(
                AuditAction::WorkOrderCancelled,
                json!({ "from": order.state.as_str(), "reason": reason }),
            )
        }
        Command::Reroute { target, reason } => {
            next.target_province = target.province.clone();
            next.target_city = target.city.clone();
            next.target_hall_id = target.hall_id.clone();
            let mut audience = next.target_audience();
            audience.extend(order.target_audience());
            mail = Some((MailEvent::Rerouted, audience));
            mail_reason = Some(reason);
            event(
                AuditAction::WorkOrderRerouted,
                json!({
                    "from": {
                        "province": order.target_province,
                        "city": order.target_city,
                        "hall_id": order.target_hall_id,
                    },
                    "to": { "province": target.province, "city": target.city, "hall_id": target.hall_id },
                    "reason": reason,
                }),
            )
        }
        Command::SetSuspension {
            suspend_at,
            deadlines,
            reason,
        } => {
            next.suspend_at = Some(*suspend_at);
            next.remind_at = deadlines.remind_at;
            next.due_at = deadlines.due_at;
            next.deadline_at = deadlines.deadline_at;
            event(
                AuditAction::WorkOrderSuspensionSet,
                json!({
                    "from": order.suspend_at,
                    "suspend_at": suspend_at,
                    "due_at": deadlines.due_at,
                    "deadline_at": deadlines.deadline_at,
                    "reason": reason,
                }),
            )
        }
        Command::Remind => {
            if order.reminded_at.is_some() {
                return Err(already_fired(order, kind));
            }
            next.reminded_at = Some(now);
            mail = Some((MailEvent::Reminder, order.hall_audience()));
            event(
                AuditAction::WorkOrderReminded,
                json!({ "due_at": order.due_at, "remind_at": order.remind_at }),
            )
        }
        Command::Escalate => {
            if order.escalated_at.is_some() {
                return Err(already_fired(order, kind));
            }
            next.escalated_at = Some(now);
            let mut audience = order.hall_audience();
            audience.push(Audience::Supervisor {
                province: order.home_province.clone(),
            });
            mail = Some((MailEvent::Escalation, audience));
            event(
                AuditAction::WorkOrderEscalated,
                json!({ "due_at": order.due_at }),
            )
        }
        Command::Expire => {
            let mut audience = order.hall_audience();
            audience.push(order.clerk());
            mail = Some((MailEvent::Expired, audience));
            event(
                AuditAction::WorkOrderExpired,
                json!({ "from": order.state.as_str(), "deadline_at": order.deadline_at }),
            )
        }
    };
    let notices = mail
        .map(|(what, audience)| {
            let mut notice = Notice::about(what, &next, now, audience);
            if let Some(reason) = mail_reason {
                notice = notice.with_reason(reason.as_str());
            }
            if let Some(outcome) = mail_outcome {
                notice = notice.with_outcome(outcome);
            }
            notice.with_flags(mail_flags)
        })
        .into_iter()
        .collect();
    Ok(Transition {
        kind,
        expected_version: order.version,
        next,
        event,
        also,
        effects,
        notices,
    })
}

/// The number's suspension date as a clerk gives it (RFC 3339): it must still be ahead, since
/// the order exists to finish the check before it.
pub fn suspension_date(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, DomainError> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| {
            DomainError::invalid(
                Invalid::Field,
                "suspend_at",
                Detail::new(
                    "suspend_at 不是 RFC 3339 时间（例如 2026-12-20T00:00:00+08:00）",
                    "not an RFC 3339 time such as 2026-12-20T00:00:00+08:00",
                ),
            )
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Err(DomainError::invalid(
            Invalid::Field,
            "suspend_at",
            Detail::new(
                "停机日期 suspend_at 已过",
                "the suspension date has already passed",
            ),
        ));
    }
    // Stored to the microsecond, like every other time.
    Ok(chrono::SubsecRound::trunc_subsecs(at, 6))
}

/// A timer that already fired is refused like any step its state does not allow.
fn already_fired(order: &WorkOrder, kind: Kind) -> DomainError {
    DomainError::InvalidState {
        from: order.state.as_detail(),
        action: kind.action(),
    }
}

/// `<home province>-<UTC date>-<6-digit daily sequence>`.
pub fn reference(home_province: &str, now: DateTime<Utc>, daily_seq: i64) -> String {
    format!(
        "{}-{}-{:06}",
        home_province,
        now.format("%Y%m%d"),
        daily_seq
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::{HallPost, Role};
    use chrono::TimeZone;
    use strum::IntoEnumIterator;

    fn reason() -> Reason {
        Reason::parse("r").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_state_serialises_as_its_contract_string() {
        for state in State::iter() {
            assert_eq!(
                serde_json::to_value(state).ok(),
                Some(Value::from(state.as_str()))
            );
        }
    }

    fn approval() -> Command {
        let result =
            Completion::of(Outcome::Match, "ab".repeat(32), None).unwrap_or_else(|e| panic!("{e}"));
        Command::Approve(Box::new(result))
    }

    fn completion() -> Command {
        let result =
            Completion::of(Outcome::Match, "ab".repeat(32), None).unwrap_or_else(|e| panic!("{e}"));
        Command::Complete(Box::new(result.signed("header.payload.signature".into())))
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn order(state: State) -> WorkOrder {
        let held = matches!(
            state,
            State::Claimed | State::Submitted | State::AwaitingSecondApproval
        );
        WorkOrder {
            id: "wo1".into(),
            reference: "53-20261124-000001".into(),
            msisdn: "18912345678".into(),
            home_province: "53".into(),
            target_province: "37".into(),
            target_city: "370100".into(),
            target_hall_id: Some("hall-a".into()),
            state,
            version: 3,
            reason: "moved".into(),
            expected_name_masked: Some("张*".into()),
            opened_by: "clerk".into(),
            claimed_by: held.then(|| "staff".into()),
            claimed_hall_id: held.then(|| "hall-a".into()),
            due_at: at(),
            deadline_at: at(),
            created_at: at(),
            updated_at: at(),
            verification_id: matches!(state, State::Submitted | State::AwaitingSecondApproval)
                .then(|| "vr1".into()),
            receipt: None,
            suspend_at: None,
            remind_at: at(),
            reminded_at: None,
            escalated_at: None,
            claimed_at: held.then(at),
            review: Review {
                flagged: state == State::AwaitingSecondApproval,
                needs_second_approval: state == State::AwaitingSecondApproval,
                approved_by: (state == State::AwaitingSecondApproval).then(|| "first".into()),
            },
        }
    }

    fn staff(name: &str, hall: &str, city: &str) -> Actor {
        Actor {
            username: name.into(),
            role: Role::HallStaff,
            province: None,
            hall: Some(HallPost {
                id: hall.into(),
                code: format!("code-{hall}"),
                province: "37".into(),
                city: city.into(),
            }),
        }
    }

    fn clerk(province: &str) -> Actor {
        clerk_named("clerk", province)
    }

    fn clerk_named(name: &str, province: &str) -> Actor {
        Actor {
            username: name.into(),
            role: Role::Clerk,
            province: Some(province.into()),
            hall: None,
        }
    }

    fn commands() -> Vec<Command> {
        let target = Target {
            province: "37".into(),
            city: "370200".into(),
            hall_id: None,
        };
        vec![
            Command::Claim,
            Command::Release { reason: reason() },
            accepted(Verdict::default()),
            approval(),
            completion(),
            Command::Return { reason: reason() },
            Command::Fail { reason: reason() },
            Command::Cancel { reason: reason() },
            Command::Reroute {
                target,
                reason: reason(),
            },
            Command::Expire,
        ]
    }

    /// The life cycle diagram of the product brief, written out independently of `next_state`.
    fn expected(from: State, cmd: &Command) -> Option<State> {
        use State::*;
        match (from, cmd) {
            (Open, Command::Claim) => Some(Claimed),
            (Claimed, Command::Release { .. }) => Some(Open),
            (Claimed, Command::SubmitResult(_)) => Some(Submitted),
            (Submitted, Command::Complete(_)) => Some(Completed),
            (Submitted, Command::Approve(_)) => Some(AwaitingSecondApproval),
            (AwaitingSecondApproval, Command::Complete(_)) => Some(Completed),
            (Submitted | AwaitingSecondApproval, Command::Return { .. }) => Some(Claimed),
            (Submitted | AwaitingSecondApproval, Command::Fail { .. }) => Some(Failed),
            (Open | Claimed, Command::Cancel { .. }) => Some(Cancelled),
            (Open, Command::Reroute { .. }) => Some(Open),
            (Open | Claimed, Command::Expire) => Some(Expired),
            _ => None,
        }
    }

    #[test]
    fn every_state_and_command_pair_follows_the_life_cycle() {
        let by = staff("staff", "hall-a", "370100");
        for from in State::iter() {
            for cmd in commands() {
                let result = decide(&order(from), &cmd, &by, at());
                match (expected(from, &cmd), result) {
                    (Some(to), Ok(t)) => {
                        assert_eq!(t.next().state, to, "{from:?} {cmd:?}");
                        assert_eq!(t.next().version, 4);
                        assert_eq!(t.expected_version(), 3);
                        assert!(t.event().action.as_str().starts_with("work_order."));
                    }
                    (None, Err(DomainError::InvalidState { from: f, .. })) => {
                        assert_eq!(f.en(), from.as_str())
                    }
                    (want, got) => panic!("{from:?} {cmd:?}: expected {want:?}, got {got:?}"),
                }
            }
        }
    }

    #[test]
    fn claim_records_the_claimer_and_release_forgets_it() {
        let by = staff("li", "hall-a", "370100");
        let claimed = decide(&order(State::Open), &Command::Claim, &by, at())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_next();
        assert_eq!(claimed.claimed_by, Some("li".into()));
        assert_eq!(claimed.claimed_hall_id, Some("hall-a".into()));
        assert!(claimed.is_claimed_by(&by));
        let released = decide(&claimed, &Command::Release { reason: reason() }, &by, at())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_next();
        assert_eq!(released.claimed_by, None);
        assert_eq!(released.state, State::Open);
    }

    #[test]
    fn return_keeps_the_claim_and_drops_the_result() {
        let by = clerk("53");
        let next = decide(
            &order(State::Submitted),
            &Command::Return { reason: reason() },
            &by,
            at(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .into_next();
        assert_eq!(next.state, State::Claimed);
        assert_eq!(next.claimed_by, Some("staff".into()));
        assert_eq!(next.verification_id, None);
    }

    #[test]
    fn only_a_match_completes_and_completing_records_the_subscriber_and_the_receipt() {
        let by = clerk("53");
        for outcome in [Outcome::Mismatch, Outcome::NoShow, Outcome::DocumentInvalid] {
            let err = Completion::of(outcome, "ab".repeat(32), None);
            assert_eq!(
                err.err().and_then(|e| e.what()),
                Some(Invalid::OutcomeNotMatch)
            );
        }
        let t = decide(&order(State::Submitted), &completion(), &by, at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.next().receipt.as_deref(),
            Some("header.payload.signature")
        );
        let detail = &t.event().detail;
        assert_eq!(
            detail["receipt_sha256"],
            crate::domain::sha256_hex(b"header.payload.signature")
        );
        assert_eq!(detail["result_sha256"], "ab".repeat(32));
        match t.effects() {
            [Effect::RecordVerified(r)] => {
                assert_eq!(r.msisdn, "18912345678");
                assert_eq!(r.home_province, "53");
                assert_eq!(r.work_order_id, t.next().id);
                assert_eq!(r.verified_at, at());
            }
            other => panic!("expected one subscriber record, got {other:?}"),
        }
    }

    #[test]
    fn opening_makes_an_open_order_at_version_one_homed_in_the_clerks_province() {
        let new = NewOrder {
            reference: "53-20261124-000001".into(),
            msisdn: "18912345678".into(),
            target: Target {
                province: "37".into(),
                city: "370100".into(),
                hall_id: None,
            },
            reason: reason(),
            expected_name: Some("张三".into()),
            suspend_at: None,
            deadlines: SlaTimes {
                remind_at: at(),
                due_at: at(),
                deadline_at: at(),
            },
        };
        let Opening {
            order: o,
            event,
            notices,
        } = WorkOrder::open(new.clone(), &clerk("53"), at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].facts.event, MailEvent::Opened);
        assert_eq!(
            notices[0].audience,
            [Audience::HallsOfCity {
                province: "37".into(),
                city: "370100".into()
            }],
            "no hall named: every hall of the city hears of it"
        );
        assert_eq!(notices[0].facts.msisdn_masked, "189****5678");
        assert_eq!(
            notices[0].facts.expected_name_masked.as_deref(),
            Some("张*")
        );
        assert_eq!(
            (o.state, o.version, o.home_province.as_str()),
            (State::Open, 1, "53")
        );
        assert_eq!(event.action, AuditAction::WorkOrderOpened);
        assert_eq!(event.detail["expected_name"], "张*", "masked in the trail");
        let staff = staff("li", "hall-a", "370100");
        assert!(matches!(
            WorkOrder::open(new, &staff, at()),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn the_calls_offered_are_those_the_state_and_the_caller_allow() {
        let names = |o: &WorkOrder, by: &Actor| -> Vec<&str> {
            calls_for(o, by).into_iter().map(Call::as_str).collect()
        };
        let home = clerk("53");
        let claimer = staff("staff", "hall-a", "370100");
        let colleague = staff("other", "hall-a", "370100");
        assert_eq!(
            names(&order(State::Open), &home),
            ["cancel", "reroute", "suspension"]
        );
        assert_eq!(names(&order(State::Open), &colleague), ["claim"]);
        assert_eq!(
            names(&order(State::Claimed), &claimer),
            ["release", "verification"]
        );
        // Only the claimer acts on a claimed order; another province's clerk sees nothing.
        assert!(names(&order(State::Claimed), &colleague).is_empty());
        assert!(names(&order(State::Submitted), &clerk("11")).is_empty());
        assert_eq!(
            names(&order(State::Submitted), &home),
            ["complete", "return", "fail", "suspension"]
        );
        assert!(names(&order(State::Completed), &home).is_empty());
    }

    #[test]
    fn authorize_checks_role_then_scope_then_claimer() {
        let o = order(State::Claimed);
        // A clerk may never claim: 403 even for another province's order.
        let err = authorize(&o, Kind::Claim, &clerk("11"));
        assert!(matches!(err, Err(DomainError::Forbidden(_))));
        // Staff of another city: out of scope.
        let err = authorize(&o, Kind::Release, &staff("x", "hall-z", "110100"));
        assert!(matches!(err, Err(DomainError::NotFound(_))));
        // Staff of the same hall who did not claim: 403.
        let err = authorize(&o, Kind::Release, &staff("other", "hall-a", "370100"));
        assert!(matches!(err, Err(DomainError::Forbidden(_))));
        assert!(authorize(&o, Kind::Release, &staff("staff", "hall-a", "370100")).is_ok());
        // Another province's clerk: 404.
        let err = authorize(&order(State::Submitted), Kind::Fail, &clerk("11"));
        assert!(matches!(err, Err(DomainError::NotFound(_))));
    }

    #[test]
    fn city_pool_orders_are_seen_by_every_hall_of_the_city() {
        let mut o = order(State::Open);
        o.target_hall_id = None;
        assert!(staff("a", "hall-b", "370100").sees(&o));
        assert!(!staff("a", "hall-c", "370200").sees(&o));
    }

    #[test]
    fn stale_if_match_is_a_version_conflict() {
        let o = order(State::Open);
        assert!(check_version(&o, None).is_ok());
        assert!(check_version(&o, Some(3)).is_ok());
        assert_eq!(
            check_version(&o, Some(2)),
            Err(DomainError::VersionConflict {
                given: 2,
                current: 3
            })
        );
    }

    #[test]
    fn references_carry_province_date_and_a_six_digit_sequence() {
        assert_eq!(reference("53", at(), 17), "53-20261124-000017");
    }

    fn hours(h: i64) -> chrono::Duration {
        chrono::Duration::hours(h)
    }

    /// An order whose reminder, due and deadline times are 1, 2 and 3 hours after `at()`.
    fn timed(state: State) -> WorkOrder {
        let mut o = order(state);
        o.remind_at = at() + hours(1);
        o.due_at = at() + hours(2);
        o.deadline_at = at() + hours(3);
        o
    }

    #[test]
    fn timers_fall_due_in_order_and_only_while_a_hall_holds_the_order() {
        let o = timed(State::Open);
        assert!(o.due_timers(at()).is_empty());
        assert_eq!(o.due_timers(at() + hours(1)), [Kind::Remind]);
        assert_eq!(
            o.due_timers(at() + hours(2)),
            [Kind::Remind, Kind::Escalate]
        );
        assert_eq!(
            timed(State::Claimed).due_timers(at() + hours(9)),
            [Kind::Remind, Kind::Escalate, Kind::Expire],
            "a jump past all three fires each"
        );
        for waiting_on_the_clerk in [State::Submitted, State::Completed, State::Expired] {
            assert!(timed(waiting_on_the_clerk)
                .due_timers(at() + hours(9))
                .is_empty());
        }
        let mut reminded = timed(State::Open);
        reminded.reminded_at = Some(at() + hours(1));
        assert_eq!(reminded.due_timers(at() + hours(2)), [Kind::Escalate]);
    }

    #[test]
    fn a_reminder_marks_the_order_once_without_touching_its_version() {
        let o = timed(State::Claimed);
        let now = at() + hours(1);
        let t = fire_timer(&o, Kind::Remind, now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.next().version,
            o.version,
            "a client's If-Match still holds"
        );
        assert_eq!(t.next().updated_at, o.updated_at);
        assert_eq!(t.next().reminded_at, Some(now));
        assert_eq!(t.event().action, AuditAction::WorkOrderReminded);
        assert_eq!(t.notices()[0].facts.event, MailEvent::Reminder);
        assert_eq!(
            t.notices()[0].audience,
            [Audience::Hall("hall-a".into())],
            "the claiming hall"
        );
        assert!(matches!(
            fire_timer(t.next(), Kind::Remind, now),
            Err(DomainError::InvalidState { .. })
        ));
    }

    #[test]
    fn an_escalation_also_reaches_the_home_provinces_supervisor() {
        let t = fire_timer(&timed(State::Open), Kind::Escalate, at() + hours(2))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.event().action, AuditAction::WorkOrderEscalated);
        assert_eq!(
            t.notices()[0].audience,
            [
                Audience::Hall("hall-a".into()),
                Audience::Supervisor {
                    province: "53".into()
                }
            ]
        );
    }

    #[test]
    fn expiry_ends_the_order_and_tells_the_hall_and_the_clerk() {
        let o = timed(State::Claimed);
        let t = fire_timer(&o, Kind::Expire, at() + hours(3)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.next().state, State::Expired);
        assert_eq!(t.next().version, o.version + 1);
        assert_eq!(t.event().action, AuditAction::WorkOrderExpired);
        assert_eq!(
            t.notices()[0].audience,
            [
                Audience::Hall("hall-a".into()),
                Audience::User("clerk".into())
            ]
        );
        assert!(fire_timer(&o, Kind::Claim, at()).is_err(), "not a timer");
    }

    #[test]
    fn each_step_tells_who_the_contract_and_our_table_name() {
        let staff = staff("staff", "hall-a", "370100");
        let clerk = clerk("53");
        let hall = || Audience::Hall("hall-a".into());
        let opener = || Audience::User("clerk".into());
        let cases: Vec<(State, Command, &Actor, MailEvent, Vec<Audience>)> = vec![
            (
                State::Open,
                Command::Claim,
                &staff,
                MailEvent::Claimed,
                vec![opener()],
            ),
            (
                State::Submitted,
                completion(),
                &clerk,
                MailEvent::Completed,
                vec![hall(), opener()],
            ),
            (
                State::Submitted,
                Command::Return { reason: reason() },
                &clerk,
                MailEvent::Returned,
                vec![hall()],
            ),
            (
                State::Submitted,
                Command::Fail { reason: reason() },
                &clerk,
                MailEvent::Failed,
                vec![hall()],
            ),
            (
                State::Claimed,
                Command::Cancel { reason: reason() },
                &clerk,
                MailEvent::Cancelled,
                vec![hall()],
            ),
        ];
        for (state, cmd, by, event, audience) in cases {
            let t = decide(&order(state), &cmd, by, at()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.notices().len(), 1, "{cmd:?}");
            assert_eq!(t.notices()[0].facts.event, event);
            assert_eq!(t.notices()[0].audience, audience, "{cmd:?}");
        }
        let released = decide(
            &order(State::Claimed),
            &Command::Release { reason: reason() },
            &staff,
            at(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(released.notices().is_empty(), "no mail for a release");
    }

    #[test]
    fn a_reroute_tells_the_new_target_and_the_old_one() {
        let cmd = Command::Reroute {
            target: Target {
                province: "37".into(),
                city: "370200".into(),
                hall_id: None,
            },
            reason: reason(),
        };
        let t =
            decide(&order(State::Open), &cmd, &clerk("53"), at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.notices()[0].audience,
            [
                Audience::HallsOfCity {
                    province: "37".into(),
                    city: "370200".into()
                },
                Audience::Hall("hall-a".into())
            ]
        );
        assert_eq!(t.notices()[0].facts.reason.as_deref(), Some("r"));
    }

    #[test]
    fn setting_the_suspension_date_moves_the_deadlines_as_a_clerks_change() {
        let o = timed(State::Submitted);
        let deadlines = SlaTimes {
            remind_at: at(),
            due_at: at() + hours(1),
            deadline_at: at() + hours(2),
        };
        let cmd = Command::SetSuspension {
            suspend_at: at() + hours(2),
            deadlines,
            reason: reason(),
        };
        let t = decide(&o, &cmd, &clerk("53"), at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.next().state, State::Submitted);
        assert_eq!(t.next().version, o.version + 1);
        assert_eq!(
            (t.next().suspend_at, t.next().due_at, t.next().deadline_at),
            (Some(at() + hours(2)), at() + hours(1), at() + hours(2))
        );
        assert_eq!(t.event().action, AuditAction::WorkOrderSuspensionSet);
        assert!(decide(&order(State::Completed), &cmd, &clerk("53"), at()).is_err());
    }

    /// A match from hall A with the quality checks' verdict on it.
    fn accepted(verdict: Verdict) -> Command {
        Command::SubmitResult(AcceptedResult {
            verification_id: "vr2".into(),
            outcome: Outcome::Match,
            kid: "k".into(),
            jti: "j".into(),
            result_sha256: "00".into(),
            verdict,
        })
    }

    fn flagged_result(needs_second_approval: bool) -> Command {
        use crate::domain::quality::{Flag, Reason, Severity};
        accepted(Verdict {
            flags: vec![Flag {
                code: "chip_not_read".into(),
                severity: Severity::High,
                reason: Reason {
                    zh: "未读取证件芯片".into(),
                    en: "the document's chip was not read".into(),
                },
            }],
            needs_second_approval,
        })
    }

    #[test]
    fn a_flagged_result_is_marked_audited_by_code_and_its_flags_go_in_the_clerks_mail() {
        let by = staff("staff", "hall-a", "370100");
        let t = decide(&order(State::Claimed), &flagged_result(true), &by, at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.next().review,
            Review {
                flagged: true,
                needs_second_approval: true,
                approved_by: None
            }
        );
        let events: Vec<_> = t.events().map(|e| e.action).collect();
        assert_eq!(
            events,
            [AuditAction::ResultSubmitted, AuditAction::WorkOrderFlagged]
        );
        let flagged = t.events().nth(1).map(|e| e.detail.clone());
        assert_eq!(
            flagged,
            Some(
                json!({"verification_id": "vr2", "codes": ["chip_not_read"], "needs_second_approval": true})
            )
        );
        assert_eq!(t.notices()[0].facts.flags[0].code, "chip_not_read");
        assert_eq!(t.next().completion_step(), Kind::Approve);
        let plain = decide(&order(State::Claimed), &commands()[2], &by, at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.events().count(), 1, "no flag, no flagged event");
        assert_eq!(plain.next().completion_step(), Kind::Complete);
    }

    #[test]
    fn a_flagged_order_needs_two_clerks_neither_of_them_twice_nor_the_opener() {
        let by = staff("staff", "hall-a", "370100");
        let submitted = decide(&order(State::Claimed), &flagged_result(true), &by, at())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_next();
        let first = clerk_named("first", "53");
        assert!(authorize(&submitted, Kind::Approve, &first).is_ok());
        assert_eq!(
            decide(&submitted, &completion(), &first, at()).err(),
            Some(DomainError::SecondApproverRequired),
            "completing at once is refused by the state machine too"
        );
        let t = decide(&submitted, &approval(), &first, at()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.event().action, AuditAction::WorkOrderApproved);
        assert!(t.notices().is_empty());
        let approved = t.into_next();
        assert_eq!(approved.state, State::AwaitingSecondApproval);
        assert_eq!(approved.review.approved_by, Some("first".into()));
        for kind in [Kind::Complete, Kind::Return, Kind::Fail] {
            for refused in [&first, &clerk_named("clerk", "53")] {
                assert_eq!(
                    authorize(&approved, kind, refused),
                    Err(DomainError::SecondApproverRequired),
                    "{kind:?} by {}",
                    refused.username
                );
            }
            assert!(authorize(&approved, kind, &clerk_named("second", "53")).is_ok());
        }
        assert!(matches!(
            authorize(&approved, Kind::Complete, &clerk_named("second", "11")),
            Err(DomainError::NotFound(_))
        ));
        let done = decide(&approved, &completion(), &clerk_named("second", "53"), at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done.next().state, State::Completed);
        assert_eq!(done.event().detail["first_approval_by"], "first");
    }

    #[test]
    fn an_unflagged_or_lightly_flagged_order_completes_at_once_and_a_return_clears_the_mark() {
        let by = staff("staff", "hall-a", "370100");
        let light = decide(&order(State::Claimed), &flagged_result(false), &by, at())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_next();
        assert!(light.review.flagged);
        assert_eq!(light.completion_step(), Kind::Complete);
        let returned = decide(
            &order(State::AwaitingSecondApproval),
            &Command::Return { reason: reason() },
            &clerk_named("second", "53"),
            at() + hours(1),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .into_next();
        assert_eq!(returned.review, Review::default());
        assert_eq!(returned.claimed_at, Some(at() + hours(1)));
        assert_eq!(returned.state, State::Claimed);
    }

    #[test]
    fn an_order_awaiting_its_second_approval_stays_active_and_runs_no_timers() {
        assert!(State::AwaitingSecondApproval.is_active());
        assert!(timed(State::AwaitingSecondApproval)
            .due_timers(at() + hours(9))
            .is_empty());
    }

    #[test]
    fn a_suspension_date_must_be_a_time_still_ahead() {
        let now = at();
        assert_eq!(
            suspension_date("2026-11-30T00:00:00+08:00", now).ok(),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 16, 0, 0).unwrap())
        );
        for bad in ["2026-11-24T07:00:00Z", "next tuesday", ""] {
            assert!(
                matches!(
                    suspension_date(bad, now),
                    Err(DomainError::Invalid {
                        what: Invalid::Field,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
