//! The work order and its life cycle: a pure state machine, time passed in. A transition is
//! decided whole here: the next order, its audit event, and what else it changes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::access::{Actor, Permission};
use super::audit_action::AuditAction;
use super::error::{DomainError, Invalid};
use super::ids::{HallId, Username, VerificationId, WorkOrderId};
use super::masking::mask_name;
use super::text::Reason;
use super::verification::{MaskedDocument, Outcome};

/// Where an order is in its life cycle. The strings are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum State {
    Open,
    Claimed,
    Submitted,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

impl State {
    /// The states that block another order for the same number.
    pub const ACTIVE: [State; 3] = [State::Open, State::Claimed, State::Submitted];

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
    pub expected_name: Option<String>,
    pub opened_by: Username,
    pub claimed_by: Option<Username>,
    pub claimed_hall_id: Option<HallId>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub verification_id: Option<VerificationId>,
    pub receipt: Option<String>,
}

/// What a clerk asks for when opening an order, already parsed.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub reference: String,
    pub msisdn: String,
    pub target: Target,
    pub reason: Reason,
    pub expected_name: Option<String>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
}

impl WorkOrder {
    /// A new order, `open`, and the event that records it. The clerk's province is its home.
    pub fn open(
        new: NewOrder,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(WorkOrder, Event), DomainError> {
        by.require(Permission::OpenOrder)?;
        let home_province = by
            .province
            .clone()
            .ok_or_else(|| DomainError::Forbidden("a clerk without a province".into()))?;
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
            expected_name: new.expected_name,
            opened_by: by.username.clone(),
            claimed_by: None,
            claimed_hall_id: None,
            due_at: new.due_at,
            deadline_at: new.deadline_at,
            created_at: now,
            updated_at: now,
            verification_id: None,
            receipt: None,
        };
        let event = Event {
            action: AuditAction::WorkOrderOpened,
            detail: json!({
                "reference": order.reference,
                "target_province": order.target_province,
                "target_city": order.target_city,
                "target_hall_id": order.target_hall_id,
                "expected_name": order.expected_name.as_deref().map(mask_name),
                "reason": order.reason,
                "due_at": order.due_at,
                "deadline_at": order.deadline_at,
            }),
        };
        Ok((order, event))
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
                "only a result whose outcome is match can complete; return or fail it instead",
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
    Release { reason: Reason },
    SubmitResult(AcceptedResult),
    Complete(Box<Completion>),
    Return { reason: Reason },
    Fail { reason: Reason },
    Cancel { reason: Reason },
    Reroute { target: Target, reason: Reason },
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
            Self::Complete(_) => Kind::Complete,
            Self::Return { .. } => Kind::Return,
            Self::Fail { .. } => Kind::Fail,
            Self::Cancel { .. } => Kind::Cancel,
            Self::Reroute { .. } => Kind::Reroute,
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
    Complete,
    Return,
    Fail,
    Cancel,
    Reroute,
    Expire,
}

impl Kind {
    /// The role a command needs; `Expire` is the system's own and checked by its caller.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Self::Claim | Self::Release | Self::SubmitResult => Some(Permission::ActAsHallStaff),
            Self::Complete | Self::Return | Self::Fail | Self::Cancel | Self::Reroute => {
                Some(Permission::ActAsHomeClerk)
            }
            Self::Expire => None,
        }
    }

    /// Only the claimer may act on a claimed order; anyone else of the hall is refused (403).
    fn needs_claimer(self) -> bool {
        matches!(self, Self::Release | Self::SubmitResult)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Release => "release",
            Self::SubmitResult => "submit a result for",
            Self::Complete => "complete",
            Self::Return => "return",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
            Self::Reroute => "reroute",
            Self::Expire => "expire",
        }
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
        (Submitted, Kind::Return) => Some(Claimed),
        (Submitted, Kind::Fail) => Some(Failed),
        (Open | Claimed, Kind::Cancel) => Some(Cancelled),
        (Open, Kind::Reroute) => Some(Open),
        (Open | Claimed, Kind::Expire) => Some(Expired),
        _ => None,
    }
}

/// Refuses a command the current state does not allow (409), before any field is validated.
pub fn require_allowed(order: &WorkOrder, kind: Kind) -> Result<State, DomainError> {
    next_state(order.state, kind).ok_or(DomainError::InvalidState {
        from: order.state.as_str(),
        action: kind.name(),
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
    effects: Vec<Effect>,
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

    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    pub fn into_next(self) -> WorkOrder {
        self.next
    }
}

/// Checks the caller in the contract's order: role (403) → scope (404) → claimer (403).
pub fn authorize(order: &WorkOrder, kind: Kind, by: &Actor) -> Result<(), DomainError> {
    if let Some(permission) = kind.permission() {
        by.require(permission)?;
    }
    by.require_sees(order)?;
    if kind.needs_claimer()
        && matches!(order.state, State::Claimed | State::Submitted)
        && !order.is_claimed_by(by)
    {
        return Err(DomainError::Forbidden(
            "only the staff member who claimed the order may do this".into(),
        ));
    }
    Ok(())
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
    let to = require_allowed(order, cmd.kind())?;
    let mut next = order.clone();
    next.state = to;
    next.version = order.version + 1;
    next.updated_at = now;
    let mut effects = Vec::new();
    let event = |action, detail| Event { action, detail };
    let event = match cmd {
        Command::Claim => {
            next.claimed_by = Some(by.username.clone());
            next.claimed_hall_id = by.hall_id().cloned();
            event(
                AuditAction::WorkOrderClaimed,
                json!({ "hall_id": next.claimed_hall_id }),
            )
        }
        Command::Release { reason } => {
            next.claimed_by = None;
            next.claimed_hall_id = None;
            event(
                AuditAction::WorkOrderReleased,
                json!({ "hall_id": order.claimed_hall_id, "reason": reason }),
            )
        }
        Command::SubmitResult(result) => {
            next.verification_id = Some(result.verification_id.clone());
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
            event(
                AuditAction::WorkOrderCompleted,
                json!({
                    "verification_id": order.verification_id,
                    "outcome": result.outcome.as_str(),
                    "receipt_sha256": super::sha256_hex(receipt.as_bytes()),
                    "result_sha256": result.result_sha256,
                }),
            )
        }
        Command::Return { reason } => {
            // Back to the same hall and staff member, who must submit a new result.
            next.verification_id = None;
            event(
                AuditAction::WorkOrderReturned,
                json!({ "verification_id": order.verification_id, "reason": reason }),
            )
        }
        Command::Fail { reason } => event(
            AuditAction::WorkOrderFailed,
            json!({ "verification_id": order.verification_id, "reason": reason }),
        ),
        Command::Cancel { reason } => event(
            AuditAction::WorkOrderCancelled,
            json!({ "from": order.state.as_str(), "reason": reason }),
        ),
        Command::Reroute { target, reason } => {
            next.target_province = target.province.clone();
            next.target_city = target.city.clone();
            next.target_hall_id = target.hall_id.clone();
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
        Command::Expire => event(
            AuditAction::WorkOrderExpired,
            json!({ "from": order.state.as_str(), "deadline_at": order.deadline_at }),
        ),
    };
    Ok(Transition {
        kind: cmd.kind(),
        expected_version: order.version,
        next,
        event,
        effects,
    })
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
            expected_name: Some("张三".into()),
            opened_by: "clerk".into(),
            claimed_by: matches!(state, State::Claimed | State::Submitted).then(|| "staff".into()),
            claimed_hall_id: matches!(state, State::Claimed | State::Submitted)
                .then(|| "hall-a".into()),
            due_at: at(),
            deadline_at: at(),
            created_at: at(),
            updated_at: at(),
            verification_id: (state == State::Submitted).then(|| "vr1".into()),
            receipt: None,
        }
    }

    fn staff(name: &str, hall: &str, city: &str) -> Actor {
        Actor {
            username: name.into(),
            role: Role::HallStaff,
            province: None,
            hall: Some(HallPost {
                id: hall.into(),
                province: "37".into(),
                city: city.into(),
            }),
        }
    }

    fn clerk(province: &str) -> Actor {
        Actor {
            username: "clerk".into(),
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
            Command::SubmitResult(AcceptedResult {
                verification_id: "vr2".into(),
                outcome: Outcome::Match,
                kid: "k".into(),
                jti: "j".into(),
                result_sha256: "00".into(),
            }),
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
            (Submitted, Command::Return { .. }) => Some(Claimed),
            (Submitted, Command::Fail { .. }) => Some(Failed),
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
                        assert_eq!(f, from.as_str())
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
            due_at: at(),
            deadline_at: at(),
        };
        let (o, event) =
            WorkOrder::open(new.clone(), &clerk("53"), at()).unwrap_or_else(|e| panic!("{e}"));
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
}
