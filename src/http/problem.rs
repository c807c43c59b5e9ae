//! The one map from errors to HTTP: RFC 9457 problem+json with the contract's `code`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use strum::{EnumIter, IntoStaticStr};

use crate::domain::error::Invalid;
use crate::domain::{Detail, DomainError};
use crate::service;
use crate::storage::objects::ObjectError;
use crate::storage::StorageError;

/// Every `code` the API can answer with; the strings are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    ClientCertificateRequired,
    PasswordChangeRequired,
    SecondApproverRequired,
    CsrfRejected,
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
    HallDeactivated,
    InvalidField,
    RateLimited,
    MethodNotAllowed,
    InvalidIdempotencyKey,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    EvidenceCorrupted,
    Shredded,
    Internal,
    Unavailable,
    StorageFull,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status this code answers with (the test holding `docs/api.md` to it reads it).
    pub fn status(self) -> StatusCode {
        status(self)
    }

    /// Short titles, Simplified Chinese first.
    pub fn title(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            Self::InvalidRequest => ("请求格式错误", "Malformed request"),
            Self::Unauthenticated => ("未登录或凭据无效", "Not authenticated"),
            Self::Forbidden => ("无权执行此操作", "Not allowed for this role"),
            Self::ClientCertificateRequired => (
                "营业厅人员须使用本营业厅的客户端证书连接",
                "Hall staff must connect with their hall's client certificate",
            ),
            Self::PasswordChangeRequired => (
                "密码已被管理员重置，请先修改密码",
                "Your password was reset: change it first",
            ),
            Self::SecondApproverRequired => (
                "该工单有质量标记，须由另一位审核人（非发起人、非首次审核人）办结",
                "A flagged order needs a second clerk, neither its opener nor its first approver",
            ),
            Self::CsrfRejected => (
                "页面已过期或请求并非来自本控制台，请刷新页面后重试",
                "The page is stale or the request did not come from this console: reload and retry",
            ),
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
            Self::HallDeactivated => (
                "营业厅已停用，不再接收新工单",
                "The hall is deactivated and takes no new orders",
            ),
            Self::InvalidField => ("字段取值无效", "Invalid field value"),
            Self::RateLimited => ("请求过于频繁，请稍后再试", "Too many requests"),
            Self::MethodNotAllowed => ("不支持的请求方法", "Method not allowed"),
            Self::InvalidIdempotencyKey => (
                "幂等键（Idempotency-Key）格式错误",
                "Malformed Idempotency-Key",
            ),
            Self::IdempotencyKeyInFlight => (
                "使用同一幂等键的请求仍在处理中，请稍后重试",
                "A request with this Idempotency-Key is still in progress",
            ),
            Self::IdempotencyKeyReused => (
                "该幂等键已用于另一个不同的请求",
                "This Idempotency-Key was used for a different request",
            ),
            Self::EvidenceCorrupted => (
                "核验材料文件校验失败",
                "Stored evidence file failed its integrity check",
            ),
            Self::Shredded => (
                "个人信息已超过保存期限并被销毁",
                "Personal data erased after its retention period",
            ),
            Self::Internal => ("服务内部错误", "Internal error"),
            Self::Unavailable => ("服务暂不可用", "Service unavailable"),
            Self::StorageFull => (
                "存储空间已满或只读，暂时无法写入，请稍后重试",
                "Storage is full or read-only: nothing can be written now, try again later",
            ),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

tokio::task_local! {
    /// The language of the request being served, set by the `language` middleware.
    pub static LANG: Lang;
}

impl From<Invalid> for ErrorCode {
    fn from(what: Invalid) -> Self {
        match what {
            Invalid::Msisdn => Self::InvalidMsisdn,
            Invalid::IdNumber => Self::InvalidIdNumber,
            Invalid::Document => Self::InvalidDocument,
            Invalid::Province => Self::InvalidProvince,
            Invalid::City => Self::InvalidCity,
            Invalid::UnknownHall => Self::UnknownHall,
            Invalid::Key => Self::InvalidKey,
            Invalid::BadSignature => Self::BadSignature,
            Invalid::UnknownKey => Self::UnknownKey,
            Invalid::RevokedKey => Self::RevokedKey,
            Invalid::ClaimsMismatch => Self::ClaimsMismatch,
            Invalid::MalformedResult => Self::InvalidResult,
            Invalid::StaleResult => Self::StaleResult,
            Invalid::ReplayedResult => Self::ReplayedResult,
            Invalid::MissingEvidence => Self::MissingEvidence,
            Invalid::NameMismatch => Self::NameMismatch,
            Invalid::OutcomeNotMatch => Self::OutcomeNotMatch,
            Invalid::HallDeactivated => Self::HallDeactivated,
            Invalid::Field => Self::InvalidField,
        }
    }
}

impl From<&DomainError> for ErrorCode {
    fn from(e: &DomainError) -> Self {
        match e {
            DomainError::Forbidden(_) => Self::Forbidden,
            DomainError::ClientCertificateRequired(_) => Self::ClientCertificateRequired,
            DomainError::PasswordChangeRequired => Self::PasswordChangeRequired,
            DomainError::SecondApproverRequired => Self::SecondApproverRequired,
            DomainError::NotFound(_) => Self::NotFound,
            DomainError::VersionConflict { .. } => Self::VersionConflict,
            DomainError::InvalidState { .. } => Self::InvalidState,
            DomainError::AlreadyExists { .. } => Self::AlreadyExists,
            DomainError::MislabelledFile(_) => Self::UnsupportedMediaType,
            DomainError::Invalid { what, .. } => (*what).into(),
        }
    }
}

impl From<&service::Error> for ErrorCode {
    fn from(e: &service::Error) -> Self {
        use service::Error as E;
        // One rule for every store: a write refused for space or read-only is this answer.
        if e.write_refusal().is_some() {
            return Self::StorageFull;
        }
        match e {
            E::Domain(e) => e.into(),
            E::Unauthenticated(_) => Self::Unauthenticated,
            E::RateLimited { .. } => Self::RateLimited,
            E::BadRequest { .. } => Self::InvalidRequest,
            E::TooLarge { .. } => Self::PayloadTooLarge,
            E::Storage(StorageError::Connect(_) | StorageError::Pool(_)) => Self::Unavailable,
            E::Storage(e) if e.is_connection_lost() => Self::Unavailable,
            E::Evidence(ObjectError::Missing(_) | ObjectError::Unreadable(_))
            | E::EvidenceCorrupted { .. } => Self::EvidenceCorrupted,
            E::Evidence(_) => Self::Unavailable,
            E::Shredded => Self::Shredded,
            E::Storage(_) | E::Signing(_) | E::Crypto(_) | E::Internal(_) => Self::Internal,
        }
    }
}

pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidRequest | InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden
        | ClientCertificateRequired
        | PasswordChangeRequired
        | SecondApproverRequired
        | CsrfRejected => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        InvalidState | AlreadyExists | IdempotencyKeyInFlight => StatusCode::CONFLICT,
        VersionConflict => StatusCode::PRECONDITION_FAILED,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        InvalidMsisdn | InvalidIdNumber | InvalidDocument | InvalidProvince | InvalidCity
        | UnknownHall | InvalidKey | BadSignature | UnknownKey | RevokedKey | ClaimsMismatch
        | InvalidResult | StaleResult | ReplayedResult | MissingEvidence | NameMismatch
        | OutcomeNotMatch | HallDeactivated | InvalidField | IdempotencyKeyReused => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Shredded => StatusCode::GONE,
        Internal | EvidenceCorrupted => StatusCode::INTERNAL_SERVER_ERROR,
        Unavailable | StorageFull => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The problem document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[schema(schema_with = super::openapi::error_code_schema)]
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way out: a contract code, the field at fault, and a safe detail.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub field: Option<String>,
    /// The detail in both languages; never personal data, never an internal cause.
    pub detail: Option<Detail>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, field: Option<&str>, detail: Detail) -> Self {
        Self {
            code,
            field: field.map(str::to_owned),
            detail: Some(detail),
            retry_after: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        let code = ErrorCode::from(&e);
        if status(code).is_server_error() {
            // The cause goes to the log only; the caller gets the generic title.
            tracing::error!(error = %e, "request failed");
        }
        let retry_after = match &e {
            service::Error::RateLimited {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ if code == ErrorCode::StorageFull => Some(service::STORAGE_FULL_RETRY_SECONDS),
            _ => None,
        };
        Self {
            code,
            field: e.field().map(str::to_owned),
            detail: e.public_detail(),
            retry_after,
        }
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        service::Error::from(e).into()
    }
}

impl ApiError {
    pub fn problem(&self, lang: Lang) -> Problem {
        let title = self.code.title(lang).to_owned();
        // Both languages carry the same specifics; without a detail, the title says it.
        let detail = match (lang, &self.detail) {
            (Lang::Zh, Some(d)) => d.zh().to_owned(),
            (Lang::En, Some(d)) => d.en().to_owned(),
            (_, None) => title.clone(),
        };
        Problem {
            type_uri: format!("https://crossprov.invalid/problems/{}", self.code.as_str()),
            title,
            status: status(self.code).as_u16(),
            code: self.code.as_str().to_owned(),
            detail,
            field: self.field.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        let lang = LANG.try_with(|l| *l).unwrap_or_default();
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.code == ErrorCode::Unauthenticated {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(serde_json::to_vec(&self.problem(lang)).unwrap_or_default())
    }
}

/// Reads the caller's preferred language: English when it comes first, Chinese otherwise.
pub fn negotiate(accept_language: Option<&str>) -> Lang {
    let first = accept_language
        .and_then(|h| h.split(',').next())
        .map(|l| l.trim().to_ascii_lowercase());
    match first {
        Some(l) if l.starts_with("en") => Lang::En,
        _ => Lang::Zh,
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    /// Audit details record the domain's reason; it must be the code the caller was answered.
    #[test]
    fn every_domain_reason_is_the_code_it_answers_with() {
        for what in Invalid::iter() {
            assert_eq!(what.as_str(), ErrorCode::from(what).as_str(), "{what:?}");
        }
    }

    /// `DomainError::reason` (what audit details record) is the code the caller gets, for
    /// every variant: the match below stops compiling when a variant is added.
    #[test]
    fn every_domain_error_records_the_code_it_answers_with() {
        let mut all = vec![
            DomainError::Forbidden(Detail::new("禁", "f")),
            DomainError::ClientCertificateRequired(Detail::new("证", "c")),
            DomainError::PasswordChangeRequired,
            DomainError::SecondApproverRequired,
            DomainError::NotFound(Detail::new("无", "n")),
            DomainError::VersionConflict {
                given: 1,
                current: 2,
            },
            DomainError::InvalidState {
                from: Detail::new("待认领", "open"),
                action: Detail::new("办结", "complete"),
            },
            DomainError::AlreadyExists {
                what: Detail::new("某物", "w"),
                field: None,
            },
            DomainError::MislabelledFile(Detail::new("错", "m")),
        ];
        all.extend(Invalid::iter().map(|w| DomainError::invalid(w, "f", Detail::new("错", "d"))));
        for e in &all {
            match e {
                DomainError::Forbidden(_)
                | DomainError::ClientCertificateRequired(_)
                | DomainError::PasswordChangeRequired
                | DomainError::SecondApproverRequired
                | DomainError::NotFound(_)
                | DomainError::VersionConflict { .. }
                | DomainError::InvalidState { .. }
                | DomainError::AlreadyExists { .. }
                | DomainError::MislabelledFile(_)
                | DomainError::Invalid { .. } => {}
            }
            assert_eq!(e.reason(), ErrorCode::from(e).as_str(), "{e:?}");
        }
    }

    /// Whether `s` holds a CJK character: Chinese text, not English passed off as it.
    fn has_chinese(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    /// The runs of digits in `s` (limits, versions, line and column, seconds…).
    fn numbers(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The rule for one problem: the Chinese detail is specific exactly when the English one
    /// is (differs from its title), is Chinese, and carries every number the English does.
    #[track_caller]
    fn assert_bilingual(e: &ApiError) {
        let (zh, en) = (e.problem(Lang::Zh), e.problem(Lang::En));
        assert_eq!(
            zh.detail != zh.title,
            en.detail != en.title,
            "{}: zh {:?} / en {:?}",
            e.code,
            zh.detail,
            en.detail
        );
        assert!(has_chinese(&zh.detail), "{}: {:?}", e.code, zh.detail);
        for n in numbers(&en.detail) {
            assert!(
                zh.detail.contains(&n),
                "{}: {n} is in {:?} but not in {:?}",
                e.code,
                en.detail,
                zh.detail
            );
        }
    }

    fn domain_samples() -> Vec<DomainError> {
        use crate::domain::evidence::MediaType;
        use crate::domain::text::{required_text, Email, Reason};
        use crate::domain::work_order::{suspension_date, Kind, State};
        let now = chrono::Utc::now();
        let kinds = [
            Kind::Claim,
            Kind::Release,
            Kind::SubmitResult,
            Kind::Complete,
            Kind::Return,
            Kind::Fail,
            Kind::Cancel,
            Kind::Reroute,
            Kind::SetSuspension,
            Kind::Remind,
            Kind::Escalate,
            Kind::Expire,
        ];
        let mut all = vec![
            DomainError::PasswordChangeRequired,
            DomainError::VersionConflict {
                given: 3,
                current: 5,
            },
            DomainError::NotFound(Detail::work_order()),
        ];
        for state in State::iter() {
            for kind in kinds {
                all.push(DomainError::InvalidState {
                    from: state.as_detail(),
                    action: kind.action(),
                });
            }
        }
        // The real messages, from the functions that refuse.
        let refused = [
            required_text("  ", "reason").map(drop),
            Reason::parse(&"x".repeat(Reason::MAX_CHARS + 1)).map(drop),
            Email::parse("no-at-sign", "email").map(drop),
            crate::domain::Username::parse("bad name!").map(drop),
            crate::domain::verification::check_fresh(0, now, 300),
            suspension_date("tomorrow", now).map(drop),
            suspension_date("2000-01-01T00:00:00Z", now).map(drop),
            MediaType::Png.check_label(b"%PDF-1.7").map(drop),
            crate::service::users::check_password("password", "short"),
            crate::service::users::check_password("new_password", &"x".repeat(200)),
        ];
        all.extend(refused.into_iter().filter_map(Result::err));
        all.extend(
            [
                crate::signing::jws::JwsError::Malformed,
                crate::signing::jws::JwsError::BadHeader,
                crate::signing::jws::JwsError::BadPayload,
                crate::signing::jws::JwsError::WrongAlg,
                crate::signing::jws::JwsError::BadSignature,
            ]
            .iter()
            .map(|e| DomainError::invalid(Invalid::BadSignature, "result", e.detail())),
        );
        all.extend(
            [
                crate::signing::KeyError::NotPem,
                crate::signing::KeyError::NotOfAlg("ES256"),
            ]
            .iter()
            .map(|e| DomainError::invalid(Invalid::Key, "public_key_pem", e.detail())),
        );
        all
    }

    /// A message added without its Chinese fails here: every domain refusal, every service
    /// error a caller is told about, every code, and the JSON and query refusals.
    #[test]
    fn every_specific_english_detail_has_a_specific_chinese_one() {
        let domain = domain_samples();
        assert!(domain.len() > 90, "{}", domain.len());
        for e in domain {
            assert_eq!(e.to_string(), e.detail().en(), "Display stays the English");
            assert_bilingual(&ApiError::from(e));
        }
        // Every variant, also those no function above produces.
        for e in [
            DomainError::Forbidden(Detail::new("只有认领人可以执行", "only the claimer may")),
            DomainError::ClientCertificateRequired(Detail::new("需要证书", "certificate")),
            DomainError::SecondApproverRequired,
            DomainError::AlreadyExists {
                what: Detail::new("该代码的营业厅", "a hall with this code"),
                field: Some("code".into()),
            },
        ] {
            match &e {
                DomainError::Forbidden(_)
                | DomainError::ClientCertificateRequired(_)
                | DomainError::PasswordChangeRequired
                | DomainError::SecondApproverRequired
                | DomainError::NotFound(_)
                | DomainError::VersionConflict { .. }
                | DomainError::InvalidState { .. }
                | DomainError::AlreadyExists { .. }
                | DomainError::MislabelledFile(_)
                | DomainError::Invalid { .. } => {}
            }
            assert_bilingual(&ApiError::from(e));
        }
        use service::Error as E;
        for e in [
            E::unauthenticated("令牌已过期", "the token has expired"),
            E::RateLimited {
                retry_after_seconds: 42,
            },
            E::bad_request(
                Some("limit"),
                Detail::new(
                    "limit 须在 1 到 200 之间",
                    "limit must be between 1 and 200",
                ),
            ),
            E::TooLarge { limit: 1_048_576 },
            E::EvidenceCorrupted {
                sha256: "ab".repeat(32),
                missing: false,
            },
            E::EvidenceCorrupted {
                sha256: "ab".repeat(32),
                missing: true,
            },
            E::Evidence(ObjectError::Missing("x".into())),
            E::Shredded,
            E::Internal("a cause for the log only".into()),
        ] {
            assert_bilingual(&ApiError::from(e));
        }
        // Every code, even with no detail at all (the title then speaks for both).
        for code in ErrorCode::iter() {
            let bare = ApiError {
                code,
                field: None,
                detail: None,
                retry_after: None,
            };
            assert_bilingual(&bare);
        }
        // What the extractors say about bodies and query strings.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            name: crate::domain::text::Text<3>,
            count: u32,
        }
        for body in [
            &br#"{"name": "ab", "count": }"#[..],
            br#"{"name": "ab", "count": 1"#,
            br#"{"name": "ab", "count": 1} trailing"#,
            br#"{"name": "ab", "count": 1, "extra": 2}"#,
            br#"{"name": "ab"}"#,
            br#"{"name": "ab", "count": "many"}"#,
            br#"{"name": "abcd", "count": 1}"#,
        ] {
            let Err(e) = super::super::extract::parse_json::<Body>(body) else {
                panic!("{body:?} was accepted")
            };
            assert_bilingual(&e);
        }
        let deep = "[".repeat(70) + &"]".repeat(70);
        let Err(e) = super::super::extract::parse_json::<serde_json::Value>(deep.as_bytes()) else {
            panic!("deep JSON was accepted")
        };
        assert_bilingual(&e);
    }

    /// Every `Detail::new` in the source starts with Chinese: a literal with a CJK character
    /// (or a `zh` binding made from one), so no message is added in English alone.
    #[test]
    fn every_detail_in_the_source_is_written_in_chinese_too() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        // Spelt in two so this test's own text is not taken for a call.
        let needle = concat!("Detail", "::new(");
        let mut seen = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            for (at, _) in text.match_indices(needle) {
                let rest = text[at + needle.len()..].trim_start();
                let rest = rest.strip_prefix("format!(").unwrap_or(rest).trim_start();
                if rest.starts_with("zh") {
                    continue;
                }
                let first = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: {needle}{}",
                            file.display(),
                            &rest[..40.min(rest.len())]
                        )
                    });
                assert!(
                    has_chinese(first),
                    "{}: {needle}\"{first}\" …) has no Chinese",
                    file.display()
                );
                seen += 1;
            }
        }
        assert!(seen > 100, "{seen}");
    }

    #[test]
    fn every_code_has_a_status_and_titles_in_both_languages() {
        for code in ErrorCode::iter() {
            assert!(status(code).is_client_error() || status(code).is_server_error());
            assert_ne!(code.title(Lang::Zh), code.title(Lang::En), "{code}");
        }
    }
}
