//! Who may do what, and what each user can see.

use super::error::DomainError;
use super::work_order::WorkOrder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Clerk,
    HallStaff,
    Auditor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "clerk" => Some(Self::Clerk),
            "hall_staff" => Some(Self::HallStaff),
            "auditor" => Some(Self::Auditor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clerk => "clerk",
            Self::HallStaff => "hall_staff",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

/// The hall a staff member works at, as far as scope needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HallPost {
    pub id: String,
    pub province: String,
    pub city: String,
}

/// An authenticated caller (or the CLI / the system itself for background work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
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

    /// Whether the order is in this caller's scope (the contract's "in scope").
    pub fn sees(&self, order: &WorkOrder) -> bool {
        match self.role {
            Role::Clerk => self.province.as_deref() == Some(order.home_province.as_str()),
            Role::HallStaff => self.hall.as_ref().is_some_and(|hall| {
                order.target_hall_id.as_deref() == Some(hall.id.as_str())
                    || (order.target_hall_id.is_none() && order.target_city == hall.city)
                    || order.claimed_hall_id.as_deref() == Some(hall.id.as_str())
            }),
            Role::Auditor => match &self.province {
                None => true,
                Some(p) => &order.home_province == p || &order.target_province == p,
            },
            Role::Admin => false,
        }
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

    pub fn hall_id(&self) -> Option<&str> {
        self.hall.as_ref().map(|h| h.id.as_str())
    }
}
