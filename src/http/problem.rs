//! The one map from errors to HTTP: RFC 9457 problem+json with the contract's `code`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::{ErrorCode, Lang};
use crate::service;

tokio::task_local! {
    /// The language of the request being served, set by the `language` middleware.
    pub static LANG: Lang;
}

pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidRequest => StatusCode::BAD_REQUEST,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        InvalidState | AlreadyExists => StatusCode::CONFLICT,
        VersionConflict => StatusCode::PRECONDITION_FAILED,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        InvalidMsisdn | InvalidIdNumber | InvalidDocument | InvalidProvince | InvalidCity
        | UnknownHall | InvalidKey | BadSignature | UnknownKey | RevokedKey | ClaimsMismatch
        | InvalidResult | StaleResult | ReplayedResult | MissingEvidence | NameMismatch
        | OutcomeNotMatch | InvalidField => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Internal | EvidenceCorrupted => StatusCode::INTERNAL_SERVER_ERROR,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The problem document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
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
    /// English detail; never personal data, never an internal cause.
    pub detail: Option<String>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, field: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            code,
            field: field.map(str::to_owned),
            detail: Some(detail.into()),
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
        let code = e.code();
        if status(code).is_server_error() {
            // The cause goes to the log only; the caller gets the generic title.
            tracing::error!(error = %e, "request failed");
        }
        let retry_after = match &e {
            service::Error::RateLimited {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
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
        let detail = match (lang, &self.detail, &self.field) {
            (Lang::En, Some(d), _) => d.clone(),
            (Lang::Zh, _, Some(field)) => format!("{title}（字段：{field}）"),
            _ => title.clone(),
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
