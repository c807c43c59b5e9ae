//! Identity document types accepted by the service and the format check for
//! each document number.
//!
//! These are format checks only: they catch typos and wrong document types
//! before a number is sent to an authority, they do not prove a document
//! exists.

use std::fmt;
use strum::{EnumIter, EnumString, IntoStaticStr};

use chrono::NaiveDate;

use super::id_number::{birth_date, check_char, IdNumber};

/// The identity document a subscriber registers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum DocumentType {
    /// 居民身份证 (GB 11643).
    ResidentId,
    /// Chinese or foreign passport.
    Passport,
    /// 港澳居民来往内地通行证.
    HkMacauPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanPermit,
    /// 外国人永久居留身份证.
    ForeignPermanentResidence,
    /// 港澳台居民居住证.
    #[strum(serialize = "hmt_residence_permit")]
    HkMacauTaiwanResidencePermit,
}

impl DocumentType {
    /// Parses the wire name (exact, case-sensitive, as the API contract
    /// defines it).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for DocumentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks that `raw` is well-formed for a document of type `ty`. Surrounding
/// whitespace is ignored and lower-case letters are accepted. `today` bounds
/// birth dates embedded in the number.
#[must_use]
pub fn number_is_valid(ty: DocumentType, raw: &str, today: NaiveDate) -> bool {
    // ASCII-only upper-casing: full Unicode case mapping could turn a
    // non-ASCII letter into an ASCII one and let it pass.
    let number = raw.trim().to_ascii_uppercase();
    let b = number.as_bytes();
    match ty {
        DocumentType::ResidentId => IdNumber::parse(&number, today).is_ok(),
        DocumentType::Passport => is_chinese_passport(b) || is_foreign_passport(b),
        DocumentType::HkMacauPermit => {
            matches!(b.first(), Some(b'H' | b'M'))
                && matches!(b.len(), 9 | 11)
                && all_digits(&b[1..])
        }
        DocumentType::TaiwanPermit => matches!(b.len(), 8 | 10) && all_digits(b),
        DocumentType::ForeignPermanentResidence => {
            is_foreign_residence_2017(b) || is_foreign_residence_2023(b)
        }
        DocumentType::HkMacauTaiwanResidencePermit => is_hmt_residence_permit(b, today),
    }
}

fn all_digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// The last character of a GB 11643-style number matches its check char.
fn check_char_matches(b: &[u8]) -> bool {
    match b {
        [first17 @ .., last] if b.len() == 18 => check_char(first17) == Some(*last),
        _ => false,
    }
}

/// Ordinary (E, EA–EZ without I/O, G), public affairs (P), service (S) and
/// diplomatic (D) passports of the PRC.
fn is_chinese_passport(b: &[u8]) -> bool {
    match b {
        [b'E' | b'G', rest @ ..] if rest.len() == 8 && all_digits(rest) => true,
        [b'E', letter, rest @ ..] => {
            letter.is_ascii_uppercase()
                && !matches!(letter, b'I' | b'O')
                && rest.len() == 7
                && all_digits(rest)
        }
        [b'P' | b'S' | b'D', rest @ ..] => rest.len() == 7 && all_digits(rest),
        _ => false,
    }
}

/// Foreign passports vary by country; ICAO 9303 allows up to 9 characters in
/// the MRZ field but some states issue longer numbers, so only a loose shape
/// is enforced. Requiring a digit rejects names typed into the number field.
fn is_foreign_passport(b: &[u8]) -> bool {
    (5..=17).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b.iter().any(u8::is_ascii_digit)
}

/// 2017 card: three-letter nationality code followed by 12 digits.
fn is_foreign_residence_2017(b: &[u8]) -> bool {
    b.len() == 15 && b[..3].iter().all(u8::is_ascii_uppercase) && all_digits(&b[3..])
}

/// 2023 card: an 18-character GB 11643-style number starting with `9`, then
/// the issuing province's code, with a MOD 11-2 check character.
fn is_foreign_residence_2023(b: &[u8]) -> bool {
    b.len() == 18
        && b[0] == b'9'
        && std::str::from_utf8(&b[1..3]).is_ok_and(|code| super::region::province(code).is_some())
        && check_char_matches(b)
}

/// 港澳台居民居住证: a GB 11643 number whose address code is 810000 (Hong
/// Kong), 820000 (Macau) or 830000 (Taiwan). 83 is not a GB/T 2260 province,
/// so the region table is deliberately not consulted.
fn is_hmt_residence_permit(b: &[u8], today: NaiveDate) -> bool {
    b.len() == 18
        && matches!(&b[..6], b"810000" | b"820000" | b"830000")
        && birth_date(&b[6..14], today).is_some()
        && check_char_matches(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn today() -> NaiveDate {
        match NaiveDate::from_ymd_opt(2024, 6, 1) {
            Some(d) => d,
            None => panic!("bad test date"),
        }
    }

    fn valid(ty: DocumentType, raw: &str) -> bool {
        number_is_valid(ty, raw, today())
    }

    fn with_check(first17: &str) -> String {
        match check_char(first17.as_bytes()) {
            Some(c) => format!("{first17}{}", char::from(c)),
            None => panic!("not 17 digits: {first17}"),
        }
    }

    fn with_wrong_check(first17: &str) -> String {
        let wrong = if check_char(first17.as_bytes()) == Some(b'0') {
            '1'
        } else {
            '0'
        };
        format!("{first17}{wrong}")
    }

    #[test]
    fn wire_names_round_trip() {
        assert_eq!(DocumentType::iter().count(), 6);
        for ty in DocumentType::iter() {
            assert_eq!(DocumentType::parse(ty.as_str()), Some(ty));
            assert_eq!(ty.to_string(), ty.as_str());
        }
        let names: Vec<&str> = DocumentType::iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "resident_id",
                "passport",
                "hk_macau_permit",
                "taiwan_permit",
                "foreign_permanent_residence",
                "hmt_residence_permit"
            ]
        );
    }

    #[test]
    fn unknown_wire_names_are_rejected() {
        for s in [
            "",
            "Passport",
            "PASSPORT",
            " passport",
            "id",
            "hk_macao_permit",
            "residence",
        ] {
            assert_eq!(DocumentType::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn resident_id() {
        let ty = DocumentType::ResidentId;
        assert!(valid(ty, "11010519491231002X"));
        assert!(valid(ty, " 11010519491231002x "));
        assert!(valid(ty, &with_check("37010219850612331")));
        assert!(!valid(ty, "110105194912310021"));
        assert!(!valid(ty, "11010519491231002"));
        assert!(!valid(ty, &with_check("99010519800101001")));
        assert!(!valid(ty, &with_check("11010520240602001")));
        assert!(!valid(ty, "E12345678"));
    }

    #[test]
    fn chinese_passports() {
        let ty = DocumentType::Passport;
        for raw in [
            "E12345678",
            "EA1234567",
            "EZ1234567",
            "G12345678",
            "P1234567",
            "S1234567",
            "D1234567",
            "e12345678",
            "ea1234567",
            " G12345678 ",
        ] {
            assert!(valid(ty, raw), "{raw}");
            assert!(
                is_chinese_passport(raw.trim().to_ascii_uppercase().as_bytes()),
                "{raw}"
            );
        }
    }

    #[test]
    fn chinese_passport_shapes_are_strict() {
        for raw in [
            "EI1234567",
            "EO1234567",
            "E1234567",
            "E123456789",
            "G1234567",
            "GA1234567",
            "P12345678",
            "D123456",
            "E",
        ] {
            assert!(!is_chinese_passport(raw.as_bytes()), "{raw}");
        }
    }

    #[test]
    fn foreign_passports() {
        let ty = DocumentType::Passport;
        for raw in [
            "123456789",
            "X1234",
            "C01X00T47",
            "AB1234567CD",
            "12345678901234567",
            "k1234567a",
        ] {
            assert!(valid(ty, raw), "{raw}");
        }
    }

    #[test]
    fn invalid_passports() {
        let ty = DocumentType::Passport;
        for raw in [
            "",
            "   ",
            "1234",
            "ABCDEFGH",
            "123456789012345678",
            "E1234 5678",
            "E-12345678",
            "E12345678!",
            "Ｅ12345678",
            "É12345678",
        ] {
            assert!(!valid(ty, raw), "{raw:?}");
        }
    }

    #[test]
    fn hk_macau_permits() {
        let ty = DocumentType::HkMacauPermit;
        for raw in [
            "H12345678",
            "M12345678",
            "H1234567890",
            "M0123456789",
            "h12345678",
            " m12345678 ",
        ] {
            assert!(valid(ty, raw), "{raw}");
        }
        for raw in [
            "",
            "H",
            "H1234567",
            "H123456789",
            "H123456789012",
            "12345678",
            "A12345678",
            "T12345678",
            "HH1234567",
            "H1234567X",
            "H１２３４５６７８",
        ] {
            assert!(!valid(ty, raw), "{raw}");
        }
    }

    #[test]
    fn taiwan_permits() {
        let ty = DocumentType::TaiwanPermit;
        for raw in ["12345678", "0123456789", " 87654321 "] {
            assert!(valid(ty, raw), "{raw}");
        }
        for raw in [
            "",
            "1234567",
            "123456789",
            "12345678901",
            "T12345678",
            "1234567A",
            "1234 5678",
            "１２３４５６７８",
        ] {
            assert!(!valid(ty, raw), "{raw}");
        }
    }

    #[test]
    fn foreign_permanent_residence_2017() {
        let ty = DocumentType::ForeignPermanentResidence;
        for raw in ["USA110012345678", "GBR440000000001", "deu310012345678"] {
            assert!(valid(ty, raw), "{raw}");
        }
        for raw in [
            "US1100123456789",
            "USA11001234567",
            "USA1100123456789",
            "USA11001234567X",
            "U5A110012345678",
            "1USA10012345678",
        ] {
            assert!(!valid(ty, raw), "{raw}");
        }
    }

    #[test]
    fn foreign_permanent_residence_2023() {
        let ty = DocumentType::ForeignPermanentResidence;
        for first17 in [
            "93184019850612001",
            "91184019900101123",
            "94484019700101001",
        ] {
            let raw = with_check(first17);
            assert!(valid(ty, &raw), "{raw}");
            assert!(valid(ty, &raw.to_ascii_lowercase()), "{raw}");
        }
        // Wrong leading digit, unknown province, bad checksum, bad length.
        for raw in [
            with_check("83184019850612001"),
            with_check("11010519491231002"),
            with_check("99984019850612001"),
            with_check("90084019850612001"),
            with_wrong_check("93184019850612001"),
            with_check("93184019850612001")[..17].to_owned(),
            format!("{}0", with_check("93184019850612001")),
            "9318401985061200AX".to_owned(),
        ] {
            assert!(!valid(ty, &raw), "{raw}");
        }
    }

    #[test]
    fn hmt_residence_permits() {
        let ty = DocumentType::HkMacauTaiwanResidencePermit;
        for first17 in [
            "81000019850612001",
            "82000019900101123",
            "83000019700101001",
            "83000020240601002",
        ] {
            let raw = with_check(first17);
            assert!(valid(ty, &raw), "{raw}");
        }
        // The lower-case x form is accepted too.
        let mut seq = 0;
        let with_x = loop {
            let candidate = with_check(&format!("83000019800101{seq:03}"));
            if candidate.ends_with('X') {
                break candidate;
            }
            seq += 1;
        };
        assert!(valid(ty, &with_x.to_ascii_lowercase()), "{with_x}");
    }

    #[test]
    fn invalid_hmt_residence_permits() {
        let ty = DocumentType::HkMacauTaiwanResidencePermit;
        for raw in [
            // A plain resident ID is not a residence permit.
            "11010519491231002X".to_owned(),
            with_check("81010019850612001"),
            with_check("84000019850612001"),
            with_check("71000019850612001"),
            // Impossible and future birth dates.
            with_check("81000019850230001"),
            with_check("81000018991231001"),
            with_check("81000020240602001"),
            with_wrong_check("82000019900101123"),
            with_check("82000019900101123")[..17].to_owned(),
            "82000019900101A23X".to_owned(),
        ] {
            assert!(!valid(ty, &raw), "{raw}");
        }
    }

    #[test]
    fn validators_keep_document_types_apart() {
        let resident = "11010519491231002X";
        let hmt = with_check("81000019850612001");
        // The reverse direction holds: 81 is a province code, so a Hong Kong
        // residence permit number is also a well-formed resident ID.
        assert!(valid(DocumentType::ResidentId, &hmt));
        assert!(!valid(DocumentType::HkMacauTaiwanResidencePermit, resident));
        assert!(!valid(DocumentType::ForeignPermanentResidence, resident));
        assert!(!valid(DocumentType::TaiwanPermit, "H12345678"));
        assert!(!valid(DocumentType::HkMacauPermit, "12345678"));
    }
}
