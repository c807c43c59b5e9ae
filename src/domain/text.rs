//! Free-text and contact fields the domain checks where they are parsed: once a value has
//! one of these types, it is known good.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::error::{Detail, DomainError, Invalid};

/// A text field as it arrives in a request body or query string, refused while it is read
/// when longer than `MAX` characters: the ceiling on what a caller can make the service parse,
/// hash, index, store or mail. Rules of the domain that are tighter (a reason's 500
/// characters, a username's 64, a password's 128) are checked later and answer with their own
/// codes. The document shows `MAX` as the field's `maxLength`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

/// How a [`Text`] refusal starts, so the HTTP layer can tell it from other wrong values.
pub const TOO_LONG: &str = "longer than the most characters allowed: ";

/// The ceilings, by kind of field (`docs/api.md`, "Length bounds").
pub mod ceiling {
    /// Codes and enumerations: provinces, cities, states, roles, algorithms, kinds, formats.
    pub type Code = super::Text<32>;
    /// Identifiers and mobile numbers as typed: ids, cursors, hall codes, `msisdn`.
    pub type Id = super::Text<64>;
    /// Names and short values: user and key names, actors, actions, ID numbers, times.
    pub type Name = super::Text<256>;
    /// Free text people write: reasons, addresses, hall names, email addresses.
    pub type Prose = super::Text<2000>;
    /// Passwords (hashing time grows with their length).
    pub type Secret = super::Text<1024>;
    /// A public key in PEM.
    pub type Pem = super::Text<16384>;
    /// A signed verification result (compact JWS).
    pub type Jws = super::Text<65536>;
}

impl<const MAX: usize> Text<MAX> {
    pub const MAX_CHARS: usize = MAX;

    /// The value, or `None` when it is longer than the ceiling.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (value.chars().count() <= MAX).then_some(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> std::ops::Deref for Text<MAX> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(t: Text<MAX>) -> Self {
        t.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        // The message names the bound, never the value (it may be a name or an ID number).
        Self::new(value).ok_or_else(|| serde::de::Error::custom(format!("{TOO_LONG}{MAX}")))
    }
}

impl<const MAX: usize> utoipa::PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX))
            .into()
    }
}

impl<const MAX: usize> utoipa::ToSchema for Text<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MAX}"))
    }
}

/// A required free-text field must say something; `field` names it in the refusal.
pub fn required_text(value: &str, field: &str) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(
            Invalid::Field,
            field,
            Detail::new(
                format!("{field} 不能为空"),
                format!("{field} must not be empty"),
            ),
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
                Detail::new(
                    format!("reason 超过 {} 个字符", Self::MAX_CHARS),
                    format!("reason is longer than {} characters", Self::MAX_CHARS),
                ),
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
                Detail::new(
                    format!("{field} 不是有效的电子邮件地址"),
                    "not an email address",
                ),
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
    fn text_is_refused_past_its_ceiling_in_characters_not_bytes() {
        let ok: Text<3> = serde_json::from_str("\"张三丰\"").unwrap();
        assert_eq!(ok.as_str(), "张三丰");
        let err = serde_json::from_str::<Text<3>>("\"张三丰四\"").unwrap_err();
        assert!(err.to_string().starts_with(TOO_LONG), "{err}");
        assert!(!err.to_string().contains('张'), "values are never echoed");
    }

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
