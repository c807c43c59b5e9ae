//! Who may do what, and what each user can see.

use super::error::{Detail, DomainError};
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
    /// The hall's `code`: what its TLS client certificate must name (see
    /// [`Actor::require_hall_certificate`]).
    pub code: String,
    pub province: String,
    pub city: String,
}

/// The names a verified TLS client certificate carries: its Subject CN and its DNS names
/// (subjectAltName). Read from the connection by the HTTP layer; judged here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertificate {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
}

impl ClientCertificate {
    /// Whether the certificate is bound to the hall with this `code`: its CN equals the code,
    /// or one of its DNS names does (DNS names compare without regard to ASCII case, as DNS
    /// does).
    pub fn names_hall(&self, code: &str) -> bool {
        !code.is_empty()
            && (self.common_name.as_deref() == Some(code)
                || self.dns_names.iter().any(|n| n.eq_ignore_ascii_case(code)))
    }
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
    /// Device-key enrolment requests: an admin reads all, a staff member their own.
    ReadDeviceKeys,
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
            ReadDeviceKeys => matches!(self.role, Role::Admin | Role::HallStaff),
            Administer => self.role == Role::Admin,
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::Forbidden(Detail::new(
                format!("角色 {} 不具备此权限", self.role.as_str()),
                format!("role {} may not do this", self.role.as_str()),
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
            Err(DomainError::NotFound(Detail::work_order()))
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

    /// With mutual TLS on, hall staff act only over a connection whose client certificate is
    /// bound to their own hall: a stolen password or token is useless away from the hall's
    /// terminals. Other roles connect with or without a certificate.
    pub fn require_hall_certificate(
        &self,
        presented: Option<&ClientCertificate>,
    ) -> Result<(), DomainError> {
        if self.role != Role::HallStaff {
            return Ok(());
        }
        let code = self.hall.as_ref().map(|h| h.code.as_str()).unwrap_or("");
        match presented {
            Some(cert) if cert.names_hall(code) => Ok(()),
            Some(_) => Err(DomainError::ClientCertificateRequired(Detail::new(
                "该客户端证书未绑定到调用者所在的营业厅",
                "the client certificate is not bound to the caller's hall",
            ))),
            None => Err(DomainError::ClientCertificateRequired(Detail::new(
                "营业厅人员须使用本营业厅的 TLS 客户端证书连接",
                "hall staff must connect with their hall's TLS client certificate",
            ))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_binds_a_hall_by_cn_or_dns_name() {
        let by_cn = ClientCertificate {
            common_name: Some("JN-A".into()),
            dns_names: vec![],
        };
        assert!(by_cn.names_hall("JN-A"));
        assert!(!by_cn.names_hall("jn-a"), "a CN is compared exactly");
        assert!(!by_cn.names_hall("JN-B"));
        assert!(!by_cn.names_hall(""));
        let by_dns = ClientCertificate {
            common_name: Some("terminal 7".into()),
            dns_names: vec!["jn-b".into()],
        };
        assert!(by_dns.names_hall("JN-B"), "DNS names ignore ASCII case");
        assert!(!by_dns.names_hall("JN-A"));
    }

    #[test]
    fn hall_staff_need_their_own_halls_certificate_and_nobody_else_needs_one() {
        let staff = Actor {
            username: "staff.a".into(),
            role: Role::HallStaff,
            province: None,
            hall: Some(HallPost {
                id: "hall-a".into(),
                code: "JN-A".into(),
                province: "37".into(),
                city: "370100".into(),
            }),
        };
        let own = ClientCertificate {
            common_name: Some("JN-A".into()),
            dns_names: vec![],
        };
        let other = ClientCertificate {
            common_name: Some("JN-B".into()),
            dns_names: vec![],
        };
        assert_eq!(staff.require_hall_certificate(Some(&own)), Ok(()));
        for presented in [None, Some(&other)] {
            assert!(matches!(
                staff.require_hall_certificate(presented),
                Err(DomainError::ClientCertificateRequired(_))
            ));
        }
        let clerk = Actor {
            username: "clerk".into(),
            role: Role::Clerk,
            province: Some("53".into()),
            hall: None,
        };
        assert_eq!(clerk.require_hall_certificate(None), Ok(()));
        assert_eq!(clerk.require_hall_certificate(Some(&other)), Ok(()));
    }
}
