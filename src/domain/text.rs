//! Free-text and contact fields the domain checks where they are parsed: once a value has
//! one of these types, it is known good.

use serde::Serialize;

use super::error::{DomainError, Invalid};

/// A required free-text field must say something; `field` names it in the refusal.
pub fn required_text(value: &str, field: &str) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(
            Invalid::Field,
            field,
            format!("{field} must not be empty"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Why a step was taken, as a clerk or hall staff wrote it: trimmed, not empty, bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let r = required_text(raw, "reason")?;
        if r.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::invalid(
                Invalid::Field,
                "reason",
                format!("reason is longer than {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(r))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An address mail can be sent to: one `@`, a dotted domain, no white space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
        let e = raw.trim();
        let ok = e.len() <= 254
            && e.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !e.contains(char::is_whitespace);
        if ok {
            Ok(Self(e.to_owned()))
        } else {
            Err(DomainError::invalid(
                Invalid::Field,
                field,
                "not an email address",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_must_say_something_within_bounds() {
        assert_eq!(
            Reason::parse("  搬家 ").map(Reason::into_string),
            Ok("搬家".into())
        );
        assert_eq!(
            Reason::parse("   ").unwrap_err().what(),
            Some(Invalid::Field)
        );
        assert!(Reason::parse(&"长".repeat(500)).is_ok());
        assert_eq!(
            Reason::parse(&"长".repeat(501)).unwrap_err().field(),
            Some("reason")
        );
    }

    #[test]
    fn an_email_needs_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse(" lixia@halls.example.cn ", "email").is_ok());
        for bad in ["", "no-at", "@x.cn", "a@localhost", "a b@x.cn"] {
            assert_eq!(
                Email::parse(bad, "email").unwrap_err().field(),
                Some("email"),
                "{bad}"
            );
        }
    }
}
