//! Typed identifiers: a work order's id cannot be passed where a hall's is expected. On the
//! wire and in the database they are plain strings.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, fresh) => {
        id_type!($(#[$doc])* $name);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id_type!(
    /// A work order's id (a UUIDv7, so ids sort by creation time).
    WorkOrderId,
    fresh
);
id_type!(
    /// A business hall's id; `hall_id` everywhere in the contract.
    HallId
);
id_type!(
    /// A user's login name, also the actor named in audit events.
    Username
);
id_type!(
    /// An accepted verification result's id.
    VerificationId,
    fresh
);
id_type!(
    /// A device-key enrolment request's id.
    EnrolmentId,
    fresh
);

impl Username {
    /// A new user's name: 1–64 letters, digits and `. _ - @` (names already stored or carried
    /// in a token were checked when the user was made).
    pub fn parse(raw: &str) -> Result<Self, super::DomainError> {
        let name = raw.trim();
        let valid = !name.is_empty()
            && name.chars().count() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(super::DomainError::invalid(
                super::Invalid::Field,
                "username",
                super::Detail::new(
                    "用户名须为 1 至 64 个字母、数字或 . _ - @ 字符",
                    "1-64 characters of letters, digits and . _ - @",
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_letters_digits_and_a_few_marks() {
        assert_eq!(
            Username::parse(" clerk.yn ").map(|u| u.into_string()),
            Ok("clerk.yn".into())
        );
        assert!(Username::parse("staff-01@jn_lx").is_ok());
        for bad in ["", "   ", "张三", "a b", &"x".repeat(65)] {
            assert_eq!(
                Username::parse(bad).unwrap_err().field(),
                Some("username"),
                "{bad:?}"
            );
        }
    }
}
