//! The contract's stable error codes and the domain's refusals. Statuses live in `http::problem`.

use std::fmt;

/// Every `code` the API can answer with; the strings are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    InvalidState,
    AlreadyExists,
    VersionConflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidMsisdn,
    InvalidIdNumber,
    InvalidDocument,
    InvalidProvince,
    InvalidCity,
    UnknownHall,
    InvalidKey,
    BadSignature,
    UnknownKey,
    RevokedKey,
    ClaimsMismatch,
    InvalidResult,
    StaleResult,
    ReplayedResult,
    MissingEvidence,
    NameMismatch,
    OutcomeNotMatch,
    InvalidField,
    RateLimited,
    MethodNotAllowed,
    EvidenceCorrupted,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::InvalidState,
        Self::AlreadyExists,
        Self::VersionConflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::InvalidMsisdn,
        Self::InvalidIdNumber,
        Self::InvalidDocument,
        Self::InvalidProvince,
        Self::InvalidCity,
        Self::UnknownHall,
        Self::InvalidKey,
        Self::BadSignature,
        Self::UnknownKey,
        Self::RevokedKey,
        Self::ClaimsMismatch,
        Self::InvalidResult,
        Self::StaleResult,
        Self::ReplayedResult,
        Self::MissingEvidence,
        Self::NameMismatch,
        Self::OutcomeNotMatch,
        Self::InvalidField,
        Self::RateLimited,
        Self::MethodNotAllowed,
        Self::EvidenceCorrupted,
        Self::Internal,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidState => "invalid_state",
            Self::AlreadyExists => "already_exists",
            Self::VersionConflict => "version_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidMsisdn => "invalid_msisdn",
            Self::InvalidIdNumber => "invalid_id_number",
            Self::InvalidDocument => "invalid_document",
            Self::InvalidProvince => "invalid_province",
            Self::InvalidCity => "invalid_city",
            Self::UnknownHall => "unknown_hall",
            Self::InvalidKey => "invalid_key",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::ClaimsMismatch => "claims_mismatch",
            Self::InvalidResult => "invalid_result",
            Self::StaleResult => "stale_result",
            Self::ReplayedResult => "replayed_result",
            Self::MissingEvidence => "missing_evidence",
            Self::NameMismatch => "name_mismatch",
            Self::OutcomeNotMatch => "outcome_not_match",
            Self::InvalidField => "invalid_field",
            Self::RateLimited => "rate_limited",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::EvidenceCorrupted => "evidence_corrupted",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// Short titles, Simplified Chinese first.
    pub fn title(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            Self::InvalidRequest => ("请求格式错误", "Malformed request"),
            Self::Unauthenticated => ("未登录或凭据无效", "Not authenticated"),
            Self::Forbidden => ("无权执行此操作", "Not allowed for this role"),
            Self::NotFound => ("未找到", "Not found"),
            Self::InvalidState => ("当前状态不允许此操作", "Not allowed in the current state"),
            Self::AlreadyExists => ("已存在", "Already exists"),
            Self::VersionConflict => ("数据已被他人修改，请刷新后重试", "Version is stale"),
            Self::PayloadTooLarge => ("请求体过大", "Payload too large"),
            Self::UnsupportedMediaType => ("不支持的内容类型", "Unsupported media type"),
            Self::InvalidMsisdn => ("手机号码无效", "Invalid mobile number"),
            Self::InvalidIdNumber => ("身份证号码无效", "Invalid resident ID number"),
            Self::InvalidDocument => ("证件信息无效", "Invalid identity document"),
            Self::InvalidProvince => ("省份代码无效", "Invalid province code"),
            Self::InvalidCity => ("城市代码无效", "Invalid city code"),
            Self::UnknownHall => ("营业厅不存在或不在目标城市", "Unknown hall"),
            Self::InvalidKey => ("公钥无效", "Invalid public key"),
            Self::BadSignature => ("签名校验失败", "Bad signature"),
            Self::UnknownKey => ("签名密钥未登记", "Unknown signing key"),
            Self::RevokedKey => ("签名密钥已吊销", "Signing key revoked"),
            Self::ClaimsMismatch => ("核验结果与工单不符", "Result does not match the order"),
            Self::InvalidResult => (
                "核验结果内容不完整或格式错误",
                "Malformed verification result",
            ),
            Self::StaleResult => ("核验结果签发时间超出允许范围", "Result is stale"),
            Self::ReplayedResult => ("核验结果已被提交过", "Result was already submitted"),
            Self::MissingEvidence => ("缺少核验材料", "Missing evidence"),
            Self::NameMismatch => ("证件姓名与登记姓名不符", "Name does not match"),
            Self::OutcomeNotMatch => ("核验结论不是“一致”，不能办结", "Outcome is not match"),
            Self::InvalidField => ("字段取值无效", "Invalid field value"),
            Self::RateLimited => ("请求过于频繁，请稍后再试", "Too many requests"),
            Self::MethodNotAllowed => ("不支持的请求方法", "Method not allowed"),
            Self::EvidenceCorrupted => (
                "核验材料文件校验失败",
                "Stored evidence file failed its integrity check",
            ),
            Self::Internal => ("服务内部错误", "Internal error"),
            Self::Unavailable => ("服务暂不可用", "Service unavailable"),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Language of user-facing text: Simplified Chinese unless English is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// A refusal decided by domain rules. `detail` is English and never holds personal data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("forbidden: {0}")]
    Forbidden(String),
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
    #[error("{detail}")]
    Invalid {
        code: ErrorCode,
        field: Option<String>,
        detail: String,
    },
}

impl DomainError {
    pub fn invalid(code: ErrorCode, field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            field: Some(field.into()),
            detail: detail.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::VersionConflict { .. } => ErrorCode::VersionConflict,
            Self::InvalidState { .. } => ErrorCode::InvalidState,
            Self::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Self::Invalid { code, .. } => *code,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::AlreadyExists { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}
