//! Device keys: a hall staff member's signing key made in their browser (WebCrypto; the
//! private half never leaves the device), enrolled by its public half. An admin approves the
//! request, which registers the key as one of the hall's keys, or rejects it. The key itself
//! is judged where every hall key is (`service::halls`); this module holds the request's life.

use chrono::{DateTime, Utc};
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::access::{Actor, Role};
use super::error::{Detail, DomainError};
use super::ids::{EnrolmentId, HallId, Username};
use super::text::Reason;

/// Where an enrolment request stands. The strings are the API's `state` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum EnrolmentState {
    /// Waiting for an admin.
    Pending,
    /// Registered as a hall key.
    Approved,
    Rejected,
}

impl EnrolmentState {
    /// The states that hold their `kid`: no other request may ask for it meanwhile (a unique
    /// index over the same states settles a race).
    pub const HOLDING_KID: [Self; 2] = [Self::Pending, Self::Approved];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// What stands in the way of a decision, for `invalid_state`.
    fn standing(self) -> Detail {
        let zh = match self {
            Self::Pending => "待审批",
            Self::Approved => "已批准",
            Self::Rejected => "已拒绝",
        };
        Detail::new(format!("该申请{zh}（{}）", self.as_str()), self.as_str())
    }
}

/// An admin's answer to a pending request. A rejection's reason arrives as written and is
/// judged after the state, as 409 outranks 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    Approve,
    Reject { reason: &'a str },
}

impl Decision<'_> {
    fn action(&self) -> Detail {
        match self {
            Self::Approve => Detail::new("批准该设备密钥申请", "approve the device key request"),
            Self::Reject { .. } => {
                Detail::new("拒绝该设备密钥申请", "reject the device key request")
            }
        }
    }
}

/// A request to enrol a device key as one of the requester's hall's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub id: EnrolmentId,
    pub kid: String,
    /// `ES256` or `EdDSA`, as the key was checked to be.
    pub alg: String,
    /// The requester's hall: the hall the key is registered for when approved.
    pub hall_id: HallId,
    pub username: Username,
    pub state: EnrolmentState,
    /// The public key, as the key check normalised it.
    pub public_key_pem: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<Username>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

impl Enrolment {
    /// A pending request by `by`, for their own hall. `kid`, `alg` and the key are judged
    /// before (the hall-key rule); only hall staff with a hall may ask.
    pub fn request(
        by: &Actor,
        kid: String,
        alg: &str,
        public_key_pem: String,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let hall = by
            .hall
            .as_ref()
            .filter(|_| by.role == Role::HallStaff)
            .ok_or_else(|| {
                DomainError::Forbidden(Detail::new(
                    "只有营业厅人员可以为本营业厅申请设备密钥",
                    "only hall staff may enrol a device key for their hall",
                ))
            })?;
        Ok(Self {
            id: EnrolmentId::new(),
            kid,
            alg: alg.to_owned(),
            hall_id: hall.id.clone(),
            username: by.username.clone(),
            state: EnrolmentState::Pending,
            public_key_pem,
            requested_at: now,
            decided_by: None,
            decided_at: None,
            reason: None,
        })
    }

    /// The request once `by` decided it. Only a pending request is decided
    /// (`invalid_state`); then a rejection needs a reason (`invalid_field`).
    pub fn decide(
        &self,
        decision: Decision<'_>,
        by: &Username,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        if self.state != EnrolmentState::Pending {
            return Err(DomainError::InvalidState {
                from: self.state.standing(),
                action: decision.action(),
            });
        }
        let (state, reason) = match decision {
            Decision::Approve => (EnrolmentState::Approved, None),
            Decision::Reject { reason } => (
                EnrolmentState::Rejected,
                Some(Reason::parse(reason)?.into_string()),
            ),
        };
        Ok(Self {
            state,
            reason,
            decided_by: Some(by.clone()),
            decided_at: Some(now),
            ..self.clone()
        })
    }
}

/// The requests a caller may see: an admin all, a staff member their own. `admits` judges one
/// request; storage turns the same value into the list's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentScope {
    All,
    Requester(Username),
    Nothing,
}

impl EnrolmentScope {
    pub fn of(actor: &Actor) -> Self {
        match actor.role {
            Role::Admin => Self::All,
            Role::HallStaff => Self::Requester(actor.username.clone()),
            Role::Clerk | Role::Auditor => Self::Nothing,
        }
    }

    pub fn admits(&self, request: &Enrolment) -> bool {
        match self {
            Self::All => true,
            Self::Requester(name) => &request.username == name,
            Self::Nothing => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;
    use crate::domain::access::HallPost;

    fn actor(name: &str, role: Role, hall: Option<&str>) -> Actor {
        Actor {
            username: name.into(),
            role,
            province: None,
            hall: hall.map(|id| HallPost {
                id: id.into(),
                code: "JN-A".into(),
                province: "37".into(),
                city: "370100".into(),
            }),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_000_000, 0).unwrap_or_default()
    }

    fn pending() -> Enrolment {
        let staff = actor("staff.a", Role::HallStaff, Some("hall-a"));
        Enrolment::request(&staff, "browser-1".into(), "ES256", "PEM".into(), now()).unwrap()
    }

    fn reject() -> Decision<'static> {
        Decision::Reject {
            reason: " 不是本人设备 ",
        }
    }

    #[test]
    fn a_request_is_pending_for_the_requesters_own_hall() {
        let r = pending();
        assert_eq!(r.state, EnrolmentState::Pending);
        assert_eq!(r.hall_id, HallId::from("hall-a"));
        assert_eq!(r.username, Username::from("staff.a"));
        assert_eq!((r.decided_by, r.decided_at, r.reason), (None, None, None));
    }

    #[test]
    fn only_hall_staff_with_a_hall_may_request() {
        for who in [
            actor("staff.x", Role::HallStaff, None),
            actor("clerk", Role::Clerk, None),
            actor("admin", Role::Admin, None),
        ] {
            let r = Enrolment::request(&who, "k".into(), "ES256", "PEM".into(), now());
            assert!(matches!(r, Err(DomainError::Forbidden(_))), "{who:?}");
        }
    }

    #[test]
    fn only_a_pending_request_is_decided_and_a_decision_says_who_and_when() {
        let admin = Username::from("admin");
        let later = now() + chrono::Duration::seconds(60);
        let approved = pending().decide(Decision::Approve, &admin, later).unwrap();
        assert_eq!(approved.state, EnrolmentState::Approved);
        assert_eq!(approved.decided_by.as_ref(), Some(&admin));
        assert_eq!(approved.decided_at, Some(later));
        assert_eq!(approved.reason, None);
        let rejected = pending().decide(reject(), &admin, later).unwrap();
        assert_eq!(rejected.state, EnrolmentState::Rejected);
        assert_eq!(rejected.reason.as_deref(), Some("不是本人设备"));
        // Every decided state × every decision: invalid_state, naming the state, before
        // the reason is looked at.
        let unreasoned = Decision::Reject { reason: "  " };
        for decided in [approved, rejected] {
            for decision in [Decision::Approve, reject(), unreasoned] {
                let e = decided.decide(decision, &admin, later).unwrap_err();
                assert_eq!(e.reason(), "invalid_state");
                assert!(e.detail().en().contains(decided.state.as_str()), "{e}");
            }
        }
        let e = pending().decide(unreasoned, &admin, later).unwrap_err();
        assert_eq!((e.reason(), e.field()), ("invalid_field", Some("reason")));
    }

    #[test]
    fn admins_see_every_request_staff_their_own_and_nobody_else_any() {
        let r = pending();
        let seen = |a: &Actor| EnrolmentScope::of(a).admits(&r);
        assert!(seen(&actor("admin", Role::Admin, None)));
        assert!(seen(&actor("staff.a", Role::HallStaff, Some("hall-a"))));
        assert!(!seen(&actor("staff.a2", Role::HallStaff, Some("hall-a"))));
        assert!(!seen(&actor("clerk", Role::Clerk, None)));
        assert!(!seen(&actor("auditor", Role::Auditor, None)));
    }

    #[test]
    fn every_state_reads_back_from_its_string() {
        for s in EnrolmentState::iter() {
            assert_eq!(EnrolmentState::parse(s.as_str()), Some(s));
        }
        assert_eq!(EnrolmentState::parse("Pending"), None);
    }
}
