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

/// A message for the caller in both languages. Each is built at one site from the same
/// values (field names, limits, versions, states…), so the two say the same thing; the
/// HTTP layer picks one by `Accept-Language`. `Display` is the English (for logs). Never
/// holds personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    zh: String,
    en: String,
}

impl Detail {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// Simplified Chinese.
    pub fn zh(&self) -> &str {
        &self.zh
    }

    pub fn en(&self) -> &str {
        &self.en
    }

    /// The noun most `not_found` refusals name.
    pub fn work_order() -> Self {
        Self::new("工单", "work order")
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.en)
    }
}

/// A refusal decided by domain rules. Every message is a [`Detail`] (both languages, no
/// personal data); `Display` is the English one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("forbidden: {0}")]
    Forbidden(Detail),
    /// Hall staff without their hall's TLS client certificate, with mutual TLS on.
    #[error("client certificate required: {0}")]
    ClientCertificateRequired(Detail),
    /// An admin reset the caller's password: nothing but changing it until they do.
    #[error("your password was reset by an administrator: change it with POST /api/v1/me/password first")]
    PasswordChangeRequired,
    /// A flagged order's second approval asked of its opener or its first approver.
    #[error("a flagged order needs a second clerk: neither the one who opened it nor the one who approved it first")]
    SecondApproverRequired,
    /// What was not found (a noun: "work order" / "工单").
    #[error("not found: {0}")]
    NotFound(Detail),
    #[error("version {given} is stale; the current version is {current}")]
    VersionConflict { given: i64, current: i64 },
    /// `action` is what was attempted, as a verb phrase ("complete" / "办结"); `from` what
    /// stands in the way ("submitted" / "当前状态为已提交（submitted）").
    #[error("cannot {action}: it is {from}")]
    InvalidState { from: Detail, action: Detail },
    /// `what` already exists (a noun phrase: "a hall with this code" / "该代码的营业厅").
    #[error("{what} already exists")]
    AlreadyExists { what: Detail, field: Option<String> },
    /// A file whose bytes are not what its label says (evidence uploads).
    #[error("{0}")]
    MislabelledFile(Detail),
    #[error("{detail}")]
    Invalid {
        what: Invalid,
        field: Option<String>,
        detail: Detail,
    },
}

impl DomainError {
    pub fn invalid(what: Invalid, field: impl Into<String>, detail: Detail) -> Self {
        Self::Invalid {
            what,
            field: Some(field.into()),
            detail,
        }
    }

    /// What the caller is told, in both languages; the English is this error's `Display`.
    pub fn detail(&self) -> Detail {
        match self {
            Self::Forbidden(why) => {
                Detail::new(format!("无权执行此操作：{}", why.zh()), self.to_string())
            }
            Self::ClientCertificateRequired(why) => {
                Detail::new(format!("需要客户端证书：{}", why.zh()), self.to_string())
            }
            Self::PasswordChangeRequired => Detail::new(
                "您的密码已被管理员重置：请先通过 POST /api/v1/me/password 修改密码".to_owned(),
                self.to_string(),
            ),
            Self::SecondApproverRequired => Detail::new(
                "该工单有质量标记，须由另一位审核人办结：不能是发起人，也不能是首次审核人"
                    .to_owned(),
                self.to_string(),
            ),
            Self::NotFound(what) => Detail::new(format!("未找到：{}", what.zh()), self.to_string()),
            Self::VersionConflict { given, current } => Detail::new(
                format!("版本 {given} 已过期，当前版本为 {current}，请刷新后重试"),
                self.to_string(),
            ),
            Self::InvalidState { from, action } => Detail::new(
                format!("无法{}：{}", action.zh(), from.zh()),
                self.to_string(),
            ),
            Self::AlreadyExists { what, .. } => {
                Detail::new(format!("{}已存在", what.zh()), self.to_string())
            }
            Self::MislabelledFile(d) | Self::Invalid { detail: d, .. } => d.clone(),
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
