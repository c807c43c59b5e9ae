//! Evidence files the hall sends back: their kinds, the media types accepted, and how a
//! file's first bytes prove its type. Pure: the bytes come in, a verdict goes out.

use strum::{EnumIter, EnumString, IntoStaticStr};

use super::access::{Actor, Permission, Role};
use super::error::{Detail, DomainError, Invalid};
use super::verification::EvidenceClaim;
use super::work_order::{State, WorkOrder};

/// What a file shows; part of the public contract (the strings are the contract's).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter, serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    IdFront,
    IdBack,
    LivePhoto,
    RegistrationForm,
    Other,
}

impl EvidenceKind {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The media types an evidence file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Jpeg,
    Png,
    Pdf,
}

/// Enough leading bytes to recognise every accepted type.
pub const SNIFF_LEN: usize = 8;

impl MediaType {
    /// From a `Content-Type` header value; parameters are ignored, case is not significant.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        [Self::Jpeg, Self::Png, Self::Pdf]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(essence))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }

    /// What the file's magic bytes say it is (JPEG SOI marker, PNG signature, `%PDF-`).
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(Self::Png)
        } else if head.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// A file is accepted only when its bytes are what its label says.
    pub fn check_label(self, head: &[u8]) -> Result<(), DomainError> {
        if Self::sniff(head) == Some(self) {
            Ok(())
        } else {
            Err(DomainError::MislabelledFile(Detail::new(
                format!("文件内容不是 {}", self.as_str()),
                format!("the file's bytes are not {}", self.as_str()),
            )))
        }
    }
}

/// A SHA-256 as the contract writes it: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A file on record for an order: enough to bind a signed result's entries to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub kind: String,
    pub sha256: String,
}

/// Uploading: the claiming staff member, while the order is claimed. Checked in the
/// contract's order: role (403) → scope (404) → claimer (403) → state (409).
pub fn authorize_upload(order: &WorkOrder, by: &Actor) -> Result<(), DomainError> {
    by.require(Permission::ActAsHallStaff)?;
    by.require_sees(order)?;
    if matches!(order.state, State::Claimed | State::Submitted) && !order.is_claimed_by(by) {
        return Err(DomainError::Forbidden(Detail::new(
            "只有认领该工单的营业厅人员可以上传其核验材料",
            "only the staff member who claimed the order may upload its evidence",
        )));
    }
    if order.state != State::Claimed {
        return Err(DomainError::InvalidState {
            from: order.state.as_detail(),
            action: Detail::new("向该工单上传核验材料", "upload evidence to"),
        });
    }
    Ok(())
}

/// Downloading: home clerks, auditors in scope, and staff of the hall that claimed the order.
pub fn authorize_download(order: &WorkOrder, by: &Actor) -> Result<(), DomainError> {
    by.require(Permission::ReadOrderEvents)?;
    by.require_sees(order)?;
    if by.role == Role::HallStaff && order.claimed_hall_id.as_ref() != by.hall_id() {
        return Err(DomainError::Forbidden(Detail::new(
            "只有认领该工单的营业厅可以查看其核验材料",
            "only the hall that claimed the order may read its evidence",
        )));
    }
    Ok(())
}

/// Hall staff read only the files their own hall uploaded (a hall that takes over an order
/// does not see the scans another hall made).
pub fn authorize_file(uploaded_by_hall: &str, by: &Actor) -> Result<(), DomainError> {
    if by.role == Role::HallStaff && by.hall_id().is_none_or(|h| h != uploaded_by_hall) {
        return Err(DomainError::Forbidden(Detail::new(
            "营业厅人员只能查看本营业厅上传的文件",
            "hall staff may read only their own hall's uploads",
        )));
    }
    Ok(())
}

fn missing(field: String, detail: Detail) -> DomainError {
    DomainError::invalid(Invalid::MissingEvidence, field, detail)
}

/// Every entry of the result must name a file uploaded to this order (same kind and digest),
/// and a `match` must carry every required kind.
pub fn check_binding(
    claimed: &[EvidenceClaim],
    uploaded: &[UploadedFile],
    is_match: bool,
    required: &[EvidenceKind],
) -> Result<(), DomainError> {
    for (i, entry) in claimed.iter().enumerate() {
        let on_record = uploaded
            .iter()
            .any(|f| f.kind == entry.kind && f.sha256 == entry.sha256);
        if !on_record {
            return Err(missing(format!("evidence[{i}]"), {
                let kind = EvidenceKind::parse(&entry.kind).map(|k| k.as_str());
                Detail::new(
                    format!(
                        "该工单没有上传过此 sha256 的{}文件",
                        kind.map_or("此类".to_owned(), |k| format!(" {k} "))
                    ),
                    format!(
                        "no {} file with this sha256 was uploaded to the order",
                        kind.unwrap_or("such")
                    ),
                )
            }));
        }
    }
    if is_match {
        if let Some(absent) = required
            .iter()
            .find(|kind| !claimed.iter().any(|e| e.kind == kind.as_str()))
        {
            return Err(missing(
                "evidence".into(),
                Detail::new(
                    format!("结论为 match（一致）时必须包含 {} 文件", absent.as_str()),
                    format!("a match must include a {} file", absent.as_str()),
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn claim(kind: &str, sha: &str) -> EvidenceClaim {
        EvidenceClaim {
            kind: kind.into(),
            sha256: sha.into(),
        }
    }

    fn file(kind: &str, sha: &str) -> UploadedFile {
        UploadedFile {
            kind: kind.into(),
            sha256: sha.into(),
        }
    }

    #[test]
    fn magic_bytes_decide_the_type() {
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::sniff(b"\x89PNG\r\n\x1a\n"), Some(MediaType::Png));
        assert_eq!(MediaType::sniff(b"%PDF-1.7\n"), Some(MediaType::Pdf));
        assert_eq!(MediaType::sniff(b"GIF89a"), None);
        assert_eq!(MediaType::sniff(b""), None);
        assert!(MediaType::Png.check_label(b"%PDF-1.4").is_err());
        assert!(MediaType::Pdf.check_label(b"%PDF-1.4").is_ok());
    }

    #[test]
    fn content_types_ignore_parameters_and_case() {
        assert_eq!(
            MediaType::from_content_type("Image/JPEG; q=1"),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::from_content_type("image/gif"), None);
        assert_eq!(MediaType::from_content_type(""), None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in EvidenceKind::iter() {
            assert_eq!(EvidenceKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EvidenceKind::parse("selfie"), None);
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex("../etc/passwd"));
    }

    #[test]
    fn binding_needs_every_entry_on_record_and_the_required_kinds() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let required = [EvidenceKind::IdFront, EvidenceKind::LivePhoto];
        let uploaded = vec![file("id_front", &a), file("live_photo", &b)];
        let both = [claim("id_front", &a), claim("live_photo", &b)];
        assert!(check_binding(&both, &uploaded, true, &required).is_ok());

        // Same digest under another kind is not the uploaded file.
        let wrong_kind = [claim("id_back", &a), claim("live_photo", &b)];
        let err = check_binding(&wrong_kind, &uploaded, true, &required).unwrap_err();
        assert_eq!(err.what(), Some(Invalid::MissingEvidence));
        assert_eq!(err.field(), Some("evidence[0]"));

        // A match without a required kind is refused; other outcomes need none.
        let only_front = [claim("id_front", &a)];
        let err = check_binding(&only_front, &uploaded, true, &required).unwrap_err();
        assert_eq!(err.field(), Some("evidence"));
        assert!(check_binding(&only_front, &uploaded, false, &required).is_ok());
        assert!(check_binding(&[], &[], false, &required).is_ok());
    }
}

/// Any bytes a hall uploads: sniffing never panics, and a label passes exactly when the bytes
/// are what it says.
#[cfg(test)]
mod properties {
    use super::MediaType;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_label_passes_exactly_when_the_bytes_agree(
            head in proptest::collection::vec(any::<u8>(), 0..64),
            magic in prop::sample::select(vec![&b""[..], b"\xFF\xD8\xFF", b"\x89PNG\r\n\x1A\n", b"%PDF-"]),
        ) {
            let bytes: Vec<u8> = magic.iter().chain(head.iter()).copied().collect();
            let sniffed = MediaType::sniff(&bytes);
            for label in [MediaType::Jpeg, MediaType::Png, MediaType::Pdf] {
                prop_assert_eq!(label.check_label(&bytes).is_ok(), sniffed == Some(label));
            }
        }
    }
}
