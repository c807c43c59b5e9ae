//! The domain's refusals: each says what went wrong. `http::problem` turns them into the
//! contract's codes and statuses.

use strum::{EnumIter, IntoStaticStr};

/// A value the domain judged and refused, named for what is wrong with it. The string is
/// the stable reason written into audit details (`detail.code`); it equals the contract's
/// code for the same refusal (a test in `http::problem` holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumIter)]
pub enum Invalid {
    #[strum(serialize = "invalid_msisdn")]
    Msisdn,
    #[strum(serialize = "invalid_id_number")]
    IdNumber,
    #[strum(serialize = "invalid_document")]
    Document,
    #[strum(serialize = "invalid_province")]
    Province,
    #[strum(serialize = "invalid_city")]
    City,
    #[strum(serialize = "unknown_hall")]
    UnknownHall,
    #[strum(serialize = "invalid_key")]
    Key,
    #[strum(serialize = "bad_signature")]
    BadSignature,
    #[strum(serialize = "unknown_key")]
    UnknownKey,
    #[strum(serialize = "revoked_key")]
    RevokedKey,
    #[strum(serialize = "claims_mismatch")]
    ClaimsMismatch,
    /// A signed payload that is not a verification result (a field wrong, missing or malformed).
    #[strum(serialize = "invalid_result")]
    MalformedResult,
    #[strum(serialize = "stale_result")]
    StaleResult,
    #[strum(serialize = "replayed_result")]
    ReplayedResult,
    #[strum(serialize = "missing_evidence")]
    MissingEvidence,
    #[strum(serialize = "name_mismatch")]
    NameMismatch,
    #[strum(serialize = "outcome_not_match")]
    OutcomeNotMatch,
    /// A deactivated hall named as an order's target: it takes no new orders.
    #[strum(serialize = "hall_deactivated")]
    HallDeactivated,
    /// Any other field whose value the domain refuses (an empty reason, a bad email…).
    #[strum(serialize = "invalid_field")]
    Field,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A refusal decided by domain rules. `detail` is English and never holds personal data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Hall staff without their hall's TLS client certificate, with mutual TLS on.
    #[error("client certificate required: {0}")]
    ClientCertificateRequired(String),
    /// An admin reset the caller's password: nothing but changing it until they do.
    #[error("your password was reset by an administrator: change it with POST /api/v1/me/password first")]
    PasswordChangeRequired,
    /// A flagged order's second approval asked of its opener or its first approver.
    #[error("a flagged order needs a second clerk: neither the one who opened it nor the one who approved it first")]
    SecondApproverRequired,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("version {given} is stale; the current version is {current}")]
    VersionConflict { given: i64, current: i64 },
    #[error("cannot {action}: it is {from}")]
    InvalidState {
        from: &'static str,
        action: &'static str,
    },
    #[error("{what} already exists")]
    AlreadyExists { what: String, field: Option<String> },
    /// A file whose bytes are not what its label says (evidence uploads).
    #[error("{0}")]
    MislabelledFile(String),
    #[error("{detail}")]
    Invalid {
        what: Invalid,
        field: Option<String>,
        detail: String,
    },
}

impl DomainError {
    pub fn invalid(what: Invalid, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    /// The stable reason recorded in audit details, the contract's code for the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden(_) => "forbidden",
            Self::ClientCertificateRequired(_) => "client_certificate_required",
            Self::PasswordChangeRequired => "password_change_required",
            Self::SecondApproverRequired => "second_approver_required",
            Self::NotFound(_) => "not_found",
            Self::VersionConflict { .. } => "version_conflict",
            Self::InvalidState { .. } => "invalid_state",
            Self::AlreadyExists { .. } => "already_exists",
            Self::MislabelledFile(_) => "unsupported_media_type",
            Self::Invalid { what, .. } => what.as_str(),
        }
    }

    /// What was wrong with a refused value, when that is the refusal.
    pub fn what(&self) -> Option<Invalid> {
        match self {
            Self::Invalid { what, .. } => Some(*what),
            _ => None,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::AlreadyExists { field, .. } => field.as_deref(),
            Self::MislabelledFile(_) => Some("Content-Type"),
            _ => None,
        }
    }
}
