//! What a hall's signed verification result claims, and the checks on it that need no crypto.
//! The signature itself is checked in `signing::jws`; the order of all checks is the
//! contract's and lives in `service::verification`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::access::Actor;
use super::document::{self, DocumentType};
use super::error::{Detail, DomainError, Invalid};
use super::masking::{mask_id, mask_name};
use super::work_order::WorkOrder;

/// What the hall found. The strings are the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Match,
    Mismatch,
    NoShow,
    DocumentInvalid,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The payload of the JWS, as the hall terminal writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultClaims {
    pub wo: String,
    pub hall: String,
    pub staff: String,
    pub msisdn: String,
    pub outcome: String,
    #[serde(default)]
    pub document: Option<DocumentClaims>,
    #[serde(default)]
    pub method: Value,
    #[serde(default)]
    pub evidence: Vec<EvidenceClaim>,
    pub iat: i64,
    pub jti: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentClaims {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub number: String,
    pub name: String,
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EvidenceClaim {
    pub kind: String,
    pub sha256: String,
}

/// A document as it may be shown: both personal fields masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaskedDocument {
    #[serde(rename = "type")]
    pub doc_type: String,
    pub number: String,
    pub name: String,
}

impl DocumentClaims {
    pub fn masked(&self) -> MaskedDocument {
        MaskedDocument {
            doc_type: self.doc_type.clone(),
            number: mask_id(&self.number),
            name: mask_name(&self.name),
        }
    }
}

/// `what` is what the claim should name: (Chinese, English).
fn mismatch(field: &str, what: (&str, &str)) -> DomainError {
    DomainError::invalid(
        Invalid::ClaimsMismatch,
        field.to_owned(),
        Detail::new(
            format!("核验结果中的 {field} 与{}不符", what.0),
            format!("the result's {field} does not agree with {}", what.1),
        ),
    )
}

/// `wo`/`hall`/`staff`/`msisdn` must name this order, the claiming hall and the caller.
pub fn check_claims(
    claims: &ResultClaims,
    order: &WorkOrder,
    caller: &Actor,
) -> Result<(), DomainError> {
    if order.id != *claims.wo.as_str() {
        return Err(mismatch("wo", ("本工单", "the order")));
    }
    if order
        .claimed_hall_id
        .as_ref()
        .is_none_or(|h| h != claims.hall.as_str())
    {
        return Err(mismatch("hall", ("认领营业厅", "the claiming hall")));
    }
    if caller.username != *claims.staff.as_str() || !order.is_claimed_by(caller) {
        return Err(mismatch(
            "staff",
            ("认领的营业厅人员", "the claiming staff member"),
        ));
    }
    let msisdn = super::msisdn::Msisdn::parse(&claims.msisdn);
    if msisdn.as_ref().map(|m| m.as_str()) != Some(order.msisdn.as_str()) {
        return Err(mismatch("msisdn", ("工单的手机号码", "the order's number")));
    }
    Ok(())
}

/// The outcome must be one the contract knows.
pub fn parse_outcome(claims: &ResultClaims) -> Result<Outcome, DomainError> {
    Outcome::parse(&claims.outcome).ok_or_else(|| {
        DomainError::invalid(
            Invalid::MalformedResult,
            "outcome",
            Detail::new("未知的核验结论 outcome", "unknown outcome"),
        )
    })
}

/// `iat` within the allowed skew either way of the server's clock.
pub fn check_fresh(iat: i64, now: DateTime<Utc>, max_skew_seconds: i64) -> Result<(), DomainError> {
    if (now.timestamp() - iat).abs() > max_skew_seconds {
        return Err(DomainError::invalid(
            Invalid::StaleResult,
            "iat",
            Detail::new(
                format!("iat 与服务器时钟相差超过 {max_skew_seconds} 秒"),
                format!("iat is more than {max_skew_seconds} s away from the server's clock"),
            ),
        ));
    }
    Ok(())
}

/// The document must be present and valid for a match or mismatch; for a no-show it may be
/// absent, and a hall reporting the document invalid is not second-guessed on its format.
pub fn check_document(
    outcome: Outcome,
    doc: Option<&DocumentClaims>,
    today: NaiveDate,
) -> Result<(), DomainError> {
    let Some(doc) = doc else {
        return match outcome {
            Outcome::Match | Outcome::Mismatch => Err(DomainError::invalid(
                Invalid::MalformedResult,
                "document",
                Detail::new(
                    "结论为 match 或 mismatch 时必须注明所核验的证件 document",
                    "a match or mismatch must name the document checked",
                ),
            )),
            _ => Ok(()),
        };
    };
    if outcome == Outcome::DocumentInvalid {
        return Ok(());
    }
    let Some(doc_type) = DocumentType::parse(&doc.doc_type) else {
        return Err(DomainError::invalid(
            Invalid::Document,
            "document.type",
            Detail::new("未知的证件类型 document.type", "unknown document type"),
        ));
    };
    if !document::number_is_valid(doc_type, &doc.number, today) {
        let code = if doc_type == DocumentType::ResidentId {
            Invalid::IdNumber
        } else {
            Invalid::Document
        };
        return Err(DomainError::invalid(
            code,
            "document.number",
            Detail::new(
                "证件号码 document.number 与其证件类型不符",
                "the document number is not valid for its type",
            ),
        ));
    }
    if doc.name.trim().is_empty() {
        return Err(DomainError::invalid(
            Invalid::Document,
            "document.name",
            Detail::new("证件姓名 document.name 为空", "the document name is empty"),
        ));
    }
    if let Some(valid_until) = &doc.valid_until {
        // "长期" (long-term) resident IDs carry no end date.
        if valid_until != "long_term" && valid_until != "长期" {
            let until = NaiveDate::parse_from_str(valid_until, "%Y-%m-%d").map_err(|_| {
                DomainError::invalid(
                    Invalid::Document,
                    "document.valid_until",
                    Detail::new(
                        "有效期 valid_until 须为 YYYY-MM-DD 格式",
                        "valid_until must be YYYY-MM-DD",
                    ),
                )
            })?;
            if outcome == Outcome::Match && until < today {
                return Err(DomainError::invalid(
                    Invalid::Document,
                    "document.valid_until",
                    Detail::new("证件已过有效期 valid_until", "the document has expired"),
                ));
            }
        }
    }
    Ok(())
}

/// For a match, the document's name must equal the name the clerk expects, when one is set:
/// equal as people write names (`person_name::same`: traditional or simplified characters,
/// spaces and middle dots aside). A name equal only so is flagged (`name_variant`).
pub fn check_name(
    outcome: Outcome,
    doc: Option<&DocumentClaims>,
    expected_name: Option<&str>,
) -> Result<(), DomainError> {
    if outcome != Outcome::Match {
        return Ok(());
    }
    match (expected_name, doc) {
        (Some(expected), Some(doc)) if !super::person_name::same(&doc.name, expected) => {
            Err(DomainError::invalid(
                Invalid::NameMismatch,
                "document.name",
                Detail::new(
                    "证件 document.name 上的姓名与登记姓名不符",
                    "the name on the document differs from the expected name",
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn doc(number: &str, name: &str) -> DocumentClaims {
        DocumentClaims {
            doc_type: "resident_id".into(),
            number: number.into(),
            name: name.into(),
            valid_until: Some("2035-06-30".into()),
        }
    }

    #[test]
    fn freshness_allows_the_skew_either_way_and_no_more() {
        let now = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        assert!(check_fresh(1_764_000_300, now, 300).is_ok());
        assert!(check_fresh(1_763_999_700, now, 300).is_ok());
        let err = check_fresh(1_763_999_699, now, 300).unwrap_err();
        assert_eq!(err.what(), Some(Invalid::StaleResult));
        assert_eq!(
            check_fresh(1_764_000_301, now, 300).unwrap_err().what(),
            Some(Invalid::StaleResult)
        );
    }

    #[test]
    fn a_bad_resident_id_is_invalid_id_number() {
        let err = check_document(
            Outcome::Match,
            Some(&doc("530102199001011230", "张三")),
            today(),
        )
        .unwrap_err();
        assert_eq!(err.what(), Some(Invalid::IdNumber));
        assert_eq!(err.field(), Some("document.number"));
    }

    #[test]
    fn a_no_show_needs_no_document_but_a_match_does() {
        assert!(check_document(Outcome::NoShow, None, today()).is_ok());
        assert_eq!(
            check_document(Outcome::Match, None, today())
                .unwrap_err()
                .what(),
            Some(Invalid::MalformedResult)
        );
    }

    #[test]
    fn an_expired_document_cannot_match() {
        let mut d = doc("11010519491231002X", "张三");
        d.valid_until = Some("2020-01-01".into());
        assert_eq!(
            check_document(Outcome::Match, Some(&d), today())
                .unwrap_err()
                .what(),
            Some(Invalid::Document)
        );
    }

    #[test]
    fn name_must_match_only_for_a_match_with_an_expected_name() {
        let d = doc("11010519491231002X", "张三");
        assert!(check_name(Outcome::Match, Some(&d), Some("张三")).is_ok());
        assert!(check_name(Outcome::Match, Some(&d), Some("張 三")).is_ok());
        assert!(check_name(Outcome::Match, Some(&d), None).is_ok());
        assert!(check_name(Outcome::Mismatch, Some(&d), Some("李四")).is_ok());
        assert_eq!(
            check_name(Outcome::Match, Some(&d), Some("李四"))
                .unwrap_err()
                .what(),
            Some(Invalid::NameMismatch)
        );
    }

    #[test]
    fn masked_document_keeps_only_what_the_contract_allows() {
        let m = doc("53010219900101123X", "欧阳娜娜").masked();
        assert_eq!(m.number, "530102********123X");
        assert_eq!(m.name, "欧***");
    }
}
