//! Who may do what, and what each user can see.

use super::error::DomainError;
use super::ids::{HallId, Username};
use super::work_order::WorkOrder;
use strum::{EnumIter, EnumString, IntoStaticStr};

/// What a user is for. The strings are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Clerk,
    HallStaff,
    Auditor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The hall a staff member works at, as far as scope needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HallPost {
    pub id: HallId,
    pub province: String,
    pub city: String,
}

/// An authenticated caller (or the CLI / the system itself for background work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: Username,
    pub role: Role,
    /// Clerk: their home province. Auditor: their province, or None for national.
    pub province: Option<String>,
    pub hall: Option<HallPost>,
}

/// The things a caller can ask for, each allowed to exactly one kind of role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    OpenOrder,
    ActAsHomeClerk,
    ActAsHallStaff,
    ReadOrderEvents,
    ReadSubscriber,
    ReadAudit,
    Administer,
}

impl Actor {
    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }

    /// Role check first: a role that may never do a thing gets 403 whatever the scope.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        use Permission::*;
        let allowed = match permission {
            OpenOrder | ActAsHomeClerk => self.role == Role::Clerk,
            ActAsHallStaff => self.role == Role::HallStaff,
            ReadOrderEvents => {
                matches!(self.role, Role::Clerk | Role::HallStaff | Role::Auditor)
            }
            ReadSubscriber => matches!(self.role, Role::Clerk | Role::Auditor),
            ReadAudit => self.role == Role::Auditor,
            Administer => self.role == Role::Admin,
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "role {} may not do this",
                self.role.as_str()
            )))
        }
    }

    /// What this caller may see: the contract's "in scope", written once.
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Clerk => self
                .province
                .clone()
                .map_or(Scope::Nothing, Scope::HomeProvince),
            Role::HallStaff => self.hall.as_ref().map_or(Scope::Nothing, |h| Scope::Hall {
                id: h.id.clone(),
                city: h.city.clone(),
            }),
            Role::Auditor => self
                .province
                .clone()
                .map_or(Scope::All, Scope::HomeOrTargetProvince),
            Role::Admin => Scope::Nothing,
        }
    }

    /// Whether the order is in this caller's scope.
    pub fn sees(&self, order: &WorkOrder) -> bool {
        self.scope().admits(order)
    }

    /// Out of scope answers exactly like absent, so existence is not revealed.
    pub fn require_sees(&self, order: &WorkOrder) -> Result<(), DomainError> {
        if self.sees(order) {
            Ok(())
        } else {
            Err(DomainError::NotFound("work order".into()))
        }
    }

    /// Whether a subscriber of `home_province` is in scope (clerks of it, auditors in scope).
    pub fn sees_subscriber(&self, home_province: &str) -> bool {
        match self.role {
            Role::Clerk => self.province.as_deref() == Some(home_province),
            Role::Auditor => self.province.as_deref().is_none_or(|p| p == home_province),
            _ => false,
        }
    }

    /// Whether unmasked personal data of the order may be shown (the home clerks).
    pub fn is_home_clerk_of(&self, order: &WorkOrder) -> bool {
        self.role == Role::Clerk && self.province.as_deref() == Some(order.home_province.as_str())
    }

    pub fn hall_id(&self) -> Option<&HallId> {
        self.hall.as_ref().map(|h| &h.id)
    }
}

/// The orders a caller may see. `admits` judges one order; storage turns the same value into
/// the list query's filter, and a test holds the two to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    HomeProvince(String),
    /// Orders for the hall, city-pool orders (no hall) of its city, and those it claimed.
    Hall {
        id: HallId,
        city: String,
    },
    HomeOrTargetProvince(String),
    Nothing,
}

impl Scope {
    pub fn admits(&self, order: &WorkOrder) -> bool {
        match self {
            Self::All => true,
            Self::HomeProvince(p) => &order.home_province == p,
            Self::Hall { id, city } => {
                order.target_hall_id.as_ref() == Some(id)
                    || (order.target_hall_id.is_none() && &order.target_city == city)
                    || order.claimed_hall_id.as_ref() == Some(id)
            }
            Self::HomeOrTargetProvince(p) => {
                &order.home_province == p || &order.target_province == p
            }
            Self::Nothing => false,
        }
    }
}
