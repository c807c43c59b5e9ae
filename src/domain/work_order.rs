//! The work order and its life cycle: a pure state machine, time passed in.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::access::{Actor, Permission};
use super::error::DomainError;
use super::masking::mask_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub const ALL: &'static [State] = &[
        State::Open,
        State::Claimed,
        State::Submitted,
        State::Completed,
        State::Failed,
        State::Cancelled,
        State::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Claimed => "claimed",
            Self::Submitted => "submitted",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Active orders block another order for the same number.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Claimed | Self::Submitted)
    }
}

/// Where the identity check is to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub province: String,
    pub city: String,
    pub hall_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder {
    pub id: String,
    pub reference: String,
    pub msisdn: String,
    pub home_province: String,
    pub target_province: String,
    pub target_city: String,
    pub target_hall_id: Option<String>,
    pub state: State,
    pub version: i64,
    pub reason: String,
    pub expected_name: Option<String>,
    pub opened_by: String,
    pub claimed_by: Option<String>,
    pub claimed_hall_id: Option<String>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub verification_id: Option<String>,
    pub receipt: Option<String>,
}

/// What was accepted from a hall, as far as the state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedResult {
    pub verification_id: String,
    pub outcome: String,
    pub kid: String,
    pub jti: String,
    pub result_sha256: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Claim,
    Release {
        reason: String,
    },
    SubmitResult(AcceptedResult),
    /// The receipt is signed by the service once the state allows completion.
    Complete {
        outcome: String,
    },
    Return {
        reason: String,
    },
    Fail {
        reason: String,
    },
    Cancel {
        reason: String,
    },
    Reroute {
        target: Target,
        reason: String,
    },
    Expire,
}

impl Command {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Claim => Kind::Claim,
            Self::Release { .. } => Kind::Release,
            Self::SubmitResult(_) => Kind::SubmitResult,
            Self::Complete { .. } => Kind::Complete,
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
    pub action: &'static str,
    pub detail: Value,
}

/// Checks the caller in the contract's order: role (403) → scope (404) → claimer (403).
pub fn authorize(order: &WorkOrder, kind: Kind, by: &Actor) -> Result<(), DomainError> {
    if let Some(permission) = kind.permission() {
        by.require(permission)?;
    }
    by.require_sees(order)?;
    if kind.needs_claimer() && matches!(order.state, State::Claimed | State::Submitted) {
        let is_claimer = order.claimed_by.as_deref() == Some(by.username.as_str())
            && order.claimed_hall_id.as_deref() == by.hall_id();
        if !is_claimer {
            return Err(DomainError::Forbidden(
                "only the staff member who claimed the order may do this".into(),
            ));
        }
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

/// The state machine: from the current order and a command, the next order and its event.
/// The caller has already authorised the actor; this checks only the state.
pub fn decide(
    order: &WorkOrder,
    cmd: &Command,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<(WorkOrder, Event), DomainError> {
    let to = require_allowed(order, cmd.kind())?;
    let mut next = order.clone();
    next.state = to;
    next.version = order.version + 1;
    next.updated_at = now;
    let event = match cmd {
        Command::Claim => {
            next.claimed_by = Some(by.username.clone());
            next.claimed_hall_id = by.hall_id().map(str::to_owned);
            Event {
                action: "work_order.claimed",
                detail: json!({ "hall_id": next.claimed_hall_id }),
            }
        }
        Command::Release { reason } => {
            next.claimed_by = None;
            next.claimed_hall_id = None;
            Event {
                action: "work_order.released",
                detail: json!({ "hall_id": order.claimed_hall_id, "reason": reason }),
            }
        }
        Command::SubmitResult(result) => {
            next.verification_id = Some(result.verification_id.clone());
            Event {
                action: "work_order.result_submitted",
                detail: json!({
                    "verification_id": result.verification_id,
                    "outcome": result.outcome,
                    "kid": result.kid,
                    "jti": result.jti,
                    "result_sha256": result.result_sha256,
                }),
            }
        }
        Command::Complete { outcome } => Event {
            action: "work_order.completed",
            detail: json!({ "verification_id": order.verification_id, "outcome": outcome }),
        },
        Command::Return { reason } => {
            // Back to the same hall and staff member, who must submit a new result.
            next.verification_id = None;
            Event {
                action: "work_order.returned",
                detail: json!({ "verification_id": order.verification_id, "reason": reason }),
            }
        }
        Command::Fail { reason } => Event {
            action: "work_order.failed",
            detail: json!({ "verification_id": order.verification_id, "reason": reason }),
        },
        Command::Cancel { reason } => Event {
            action: "work_order.cancelled",
            detail: json!({ "from": order.state.as_str(), "reason": reason }),
        },
        Command::Reroute { target, reason } => {
            next.target_province = target.province.clone();
            next.target_city = target.city.clone();
            next.target_hall_id = target.hall_id.clone();
            Event {
                action: "work_order.rerouted",
                detail: json!({
                    "from": {
                        "province": order.target_province,
                        "city": order.target_city,
                        "hall_id": order.target_hall_id,
                    },
                    "to": { "province": target.province, "city": target.city, "hall_id": target.hall_id },
                    "reason": reason,
                }),
            }
        }
        Command::Expire => Event {
            action: "work_order.expired",
            detail: json!({ "from": order.state.as_str(), "deadline_at": order.deadline_at }),
        },
    };
    Ok((next, event))
}

/// The event written when an order is opened.
pub fn opened_event(order: &WorkOrder) -> Event {
    Event {
        action: "work_order.opened",
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
            Command::Release { reason: "r".into() },
            Command::SubmitResult(AcceptedResult {
                verification_id: "vr2".into(),
                outcome: "match".into(),
                kid: "k".into(),
                jti: "j".into(),
                result_sha256: "00".into(),
            }),
            Command::Complete {
                outcome: "match".into(),
            },
            Command::Return { reason: "r".into() },
            Command::Fail { reason: "r".into() },
            Command::Cancel { reason: "r".into() },
            Command::Reroute {
                target,
                reason: "r".into(),
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
            (Submitted, Command::Complete { .. }) => Some(Completed),
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
        for &from in State::ALL {
            for cmd in commands() {
                let result = decide(&order(from), &cmd, &by, at());
                match (expected(from, &cmd), result) {
                    (Some(to), Ok((next, event))) => {
                        assert_eq!(next.state, to, "{from:?} {cmd:?}");
                        assert_eq!(next.version, 4);
                        assert!(event.action.starts_with("work_order."));
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
        let (claimed, _) = decide(&order(State::Open), &Command::Claim, &by, at())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claimed.claimed_by.as_deref(), Some("li"));
        assert_eq!(claimed.claimed_hall_id.as_deref(), Some("hall-a"));
        let (released, _) = decide(
            &claimed,
            &Command::Release { reason: "x".into() },
            &by,
            at(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(released.claimed_by, None);
        assert_eq!(released.state, State::Open);
    }

    #[test]
    fn return_keeps_the_claim_and_drops_the_result() {
        let by = clerk("53");
        let (next, _) = decide(
            &order(State::Submitted),
            &Command::Return {
                reason: "blurry".into(),
            },
            &by,
            at(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.state, State::Claimed);
        assert_eq!(next.claimed_by.as_deref(), Some("staff"));
        assert_eq!(next.verification_id, None);
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
