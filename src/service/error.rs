//! The service layer's one error type; `http::problem` maps it to the contract's codes and statuses.

use crate::domain::{Detail, DomainError};
use crate::signing::KeyError;
use crate::storage::error::WriteRefusal;
use crate::storage::objects::ObjectError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("unauthenticated: {0}")]
    Unauthenticated(Detail),
    #[error("too many failed logins; try again in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{detail}")]
    BadRequest {
        field: Option<String>,
        detail: Detail,
    },
    #[error("an evidence file may be at most {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("signing: {0}")]
    Signing(#[from] KeyError),
    #[error(transparent)]
    Evidence(#[from] ObjectError),
    #[error("the stored evidence file {sha256} is missing or no longer matches its digest")]
    EvidenceCorrupted { sha256: String, missing: bool },
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The subscriber's data key was destroyed after the retention period: the value is gone.
    #[error("this personal data was erased after its retention period")]
    Shredded,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(StorageError::from(e))
    }
}

impl Error {
    pub fn bad_request(field: Option<&str>, detail: Detail) -> Self {
        Self::BadRequest {
            field: field.map(str::to_owned),
            detail,
        }
    }

    /// 401 with why, in both languages.
    pub fn unauthenticated(zh: &str, en: &str) -> Self {
        Self::Unauthenticated(Detail::new(zh, en))
    }

    /// Why a store refused the write, when that is what failed: the one rule that makes a
    /// full or read-only database or evidence store an answer (503 `storage_full`).
    pub fn write_refusal(&self) -> Option<WriteRefusal> {
        match self {
            Self::Storage(e) => e.write_refusal(),
            Self::Evidence(e) => e.write_refusal(),
            _ => None,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Domain(e) => e.field(),
            Self::BadRequest { field, .. } => field.as_deref(),
            Self::TooLarge { .. } => Some("body"),
            _ => None,
        }
    }

    /// Detail safe to show a caller, in both languages: internal causes stay in the logs.
    pub fn public_detail(&self) -> Option<Detail> {
        match self {
            Self::Domain(e) => Some(e.detail()),
            Self::Unauthenticated(why) => Some(why.clone()),
            Self::BadRequest { detail, .. } => Some(detail.clone()),
            Self::RateLimited {
                retry_after_seconds,
            } => Some(Detail::new(
                format!("登录失败次数过多，请在 {retry_after_seconds} 秒后重试"),
                self.to_string(),
            )),
            Self::TooLarge { limit } => Some(Detail::new(
                format!("核验材料文件不得超过 {limit} 字节"),
                self.to_string(),
            )),
            Self::Shredded => Some(Detail::new(
                "该个人信息已超过保存期限并被销毁",
                self.to_string(),
            )),
            Self::EvidenceCorrupted { missing: false, .. } => Some(Detail::new(
                "存储的文件与其 SHA-256 摘要不再一致；该文件不会提供，故障已记录",
                "the stored file no longer matches its SHA-256; it is not served, and the failure is recorded",
            )),
            Self::EvidenceCorrupted { missing: true, .. } | Self::Evidence(ObjectError::Missing(_)) => Some(Detail::new(
                "存储的文件已从核验材料存储中缺失；故障已记录",
                "the stored file is missing from the evidence store; the failure is recorded",
            )),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
