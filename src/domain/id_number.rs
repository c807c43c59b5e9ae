//! GB 11643 citizen identity numbers (居民身份证号码).
//!
//! Layout: 6-digit address code, 8-digit birth date, 3-digit sequence and an
//! ISO 7064 MOD 11-2 check character.

use std::fmt;

use chrono::NaiveDate;

/// A validated 18-character resident identity number. The check character is
/// always stored upper-case.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

/// Why a resident identity number was rejected, in the order checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    /// Not exactly 18 characters after trimming.
    Length,
    /// Not 17 ASCII digits followed by a digit or `X`.
    Characters,
    /// The first two digits are not a provincial-level code.
    Region,
    /// Digits 7–14 are not a calendar date between 1900-01-01 and today.
    BirthDate,
    /// The MOD 11-2 check character does not match.
    Checksum,
}

impl fmt::Display for IdNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "identity number must be 18 characters",
            Self::Characters => "identity number must be 17 digits followed by a digit or X",
            Self::Region => "identity number has an unknown region code",
            Self::BirthDate => "identity number has an invalid birth date",
            Self::Checksum => "identity number check character does not match",
        })
    }
}

impl std::error::Error for IdNumberError {}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Computes the ISO 7064 MOD 11-2 check character (`b'0'..=b'9'` or `b'X'`)
/// for the first 17 characters of a GB 11643 number. Returns `None` unless
/// given exactly 17 ASCII digits.
pub(crate) fn check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != WEIGHTS.len() || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    // `sum % 11` is always below 11, so the lookup cannot miss.
    CHECK_CHARS.get((sum % 11) as usize).copied()
}

/// Parses an 8-digit `YYYYMMDD` birth date and accepts it only if it lies
/// between 1900-01-01 and `today` inclusive (shared with other GB 11643-style
/// documents).
pub(crate) fn birth_date(yyyymmdd: &[u8], today: NaiveDate) -> Option<NaiveDate> {
    if yyyymmdd.len() != 8 || !yyyymmdd.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        yyyymmdd[range]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(num(0..4)).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(4..6), num(6..8))?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1)?;
    (earliest..=today).contains(&date).then_some(date)
}

impl IdNumber {
    /// Validates a resident identity number. Surrounding whitespace is
    /// ignored and a lower-case `x` check character is accepted; the stored
    /// value is upper-case. `today` bounds the birth date (passed in so that
    /// callers and tests control the clock).
    ///
    /// # Errors
    ///
    /// Returns the first failed check, in the order of [`IdNumberError`]'s
    /// variants.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() != 18 {
            return Err(IdNumberError::Length);
        }
        // 18 chars that are not 18 bytes means non-ASCII content.
        let bytes = trimmed.as_bytes();
        let (first17, last) = match bytes {
            [first17 @ .., last] if bytes.len() == 18 => (first17, *last),
            _ => return Err(IdNumberError::Characters),
        };
        if !first17.iter().all(u8::is_ascii_digit)
            || !(last.is_ascii_digit() || last == b'X' || last == b'x')
        {
            return Err(IdNumberError::Characters);
        }
        if super::region::province(&trimmed[..2]).is_none() {
            return Err(IdNumberError::Region);
        }
        if birth_date(&first17[6..14], today).is_none() {
            return Err(IdNumberError::BirthDate);
        }
        let last = last.to_ascii_uppercase();
        if check_char(first17) != Some(last) {
            return Err(IdNumberError::Checksum);
        }
        Ok(IdNumber(trimmed.to_ascii_uppercase()))
    }

    /// The full 18-character number. Handle with care: this is personal data.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with the middle eight characters hidden, for display and
    /// logs.
    #[must_use]
    pub fn masked(&self) -> String {
        super::masking::mask_id(&self.0)
    }
}

impl fmt::Debug for IdNumber {
    // Debug output ends up in logs and panics, so it never shows the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        match NaiveDate::from_ymd_opt(y, m, d) {
            Some(date) => date,
            None => panic!("bad test date {y}-{m}-{d}"),
        }
    }

    fn today() -> NaiveDate {
        date(2024, 6, 1)
    }

    /// Appends the correct check character to 17 digits.
    fn with_check(first17: &str) -> String {
        match check_char(first17.as_bytes()) {
            Some(c) => format!("{first17}{}", char::from(c)),
            None => panic!("not 17 digits: {first17}"),
        }
    }

    /// Appends a check character that is guaranteed to be wrong.
    fn with_wrong_check(first17: &str) -> String {
        let good = check_char(first17.as_bytes());
        let wrong = if good == Some(b'0') { '1' } else { '0' };
        format!("{first17}{wrong}")
    }

    fn parse(raw: &str) -> Result<IdNumber, IdNumberError> {
        IdNumber::parse(raw, today())
    }

    #[test]
    fn check_char_matches_known_numbers() {
        assert_eq!(check_char(b"11010519491231002"), Some(b'X'));
        assert_eq!(check_char(b"44052418800101001"), Some(b'4'));
        assert_eq!(check_char(b"11010119900307387"), Some(b'X'));
    }

    #[test]
    fn check_char_covers_all_remainders() {
        // Walk the sequence digits until every check character has appeared.
        let mut seen = std::collections::BTreeSet::new();
        for seq in 0..1000 {
            let first17 = format!("53010219900101{seq:03}");
            if let Some(c) = check_char(first17.as_bytes()) {
                seen.insert(c);
            }
        }
        assert_eq!(seen.len(), 11);
        assert!(seen.contains(&b'X'));
    }

    #[test]
    fn check_char_rejects_bad_input() {
        assert_eq!(check_char(b""), None);
        assert_eq!(check_char(b"1101051949123100"), None);
        assert_eq!(check_char(b"110105194912310021"), None);
        assert_eq!(check_char(b"1101051949123100A"), None);
    }

    #[test]
    fn accepts_known_valid_number() {
        let Ok(id) = parse("11010519491231002X") else {
            panic!("should be valid");
        };
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn accepts_computed_samples() {
        for first17 in [
            "37010219850612331",
            "53010219900101123",
            "44030519991231001",
            "65010220000229002",
            "81000019700101003",
            "71000019800101004",
            "11010519000101005",
            "11010520240601006",
        ] {
            let full = with_check(first17);
            assert_eq!(
                parse(&full).map(|id| id.as_str().to_owned()),
                Ok(full.clone()),
                "{full}"
            );
        }
    }

    #[test]
    fn lowercase_x_is_upper_cased_and_whitespace_trimmed() {
        let Ok(id) = parse("  11010519491231002x\n") else {
            panic!("should be valid");
        };
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(parse("11010519491231002X"), Ok(id));
    }

    #[test]
    fn length_errors() {
        for raw in [
            "",
            "   ",
            "11010519491231002",
            "11010519491231002X1",
            "110105 19491231002X",
        ] {
            assert_eq!(parse(raw), Err(IdNumberError::Length), "{raw:?}");
        }
    }

    #[test]
    fn character_errors() {
        for raw in [
            "11010519491231002Y",
            "1101051949123100XX",
            "A1010519491231002X",
            "110105-9491231002X",
            "11010519491231002*",
            // Full-width digits: right char count, not ASCII.
            "１１０１０５１９４９１２３１００２Ｘ",
            "11010519491231002١",
        ] {
            assert_eq!(parse(raw), Err(IdNumberError::Characters), "{raw}");
        }
    }

    #[test]
    fn region_errors() {
        for prefix in ["00", "10", "16", "39", "66", "70", "83", "90", "99"] {
            let raw = with_check(&format!("{prefix}010519800101001"));
            assert_eq!(parse(&raw), Err(IdNumberError::Region), "{raw}");
        }
    }

    #[test]
    fn birth_date_errors() {
        for birth in [
            "18991231", "19000001", "19000100", "19001301", "19010229", "19000229", "20230229",
            "19800431", "20240602", "21000101", "00000000",
        ] {
            let raw = with_check(&format!("110105{birth}001"));
            assert_eq!(parse(&raw), Err(IdNumberError::BirthDate), "{raw}");
        }
    }

    #[test]
    fn birth_date_bounds_are_inclusive() {
        assert!(parse(&with_check("11010519000101001")).is_ok());
        assert!(parse(&with_check("11010520000229001")).is_ok());
        assert!(parse(&with_check("11010520240601001")).is_ok());
        let later = IdNumber::parse(&with_check("11010520240602001"), date(2024, 6, 2));
        assert!(later.is_ok());
    }

    #[test]
    fn checksum_errors() {
        assert_eq!(parse("110105194912310021"), Err(IdNumberError::Checksum));
        assert_eq!(parse("110105194912310020"), Err(IdNumberError::Checksum));
        for first17 in [
            "37010219850612331",
            "44030519991231001",
            "11010519491231002",
        ] {
            let raw = with_wrong_check(first17);
            assert_eq!(parse(&raw), Err(IdNumberError::Checksum), "{raw}");
        }
        // Two swapped sequence digits are caught.
        assert_eq!(parse("11010519491231020X"), Err(IdNumberError::Checksum));
    }

    #[test]
    fn errors_are_reported_in_check_order() {
        // Bad region and bad date: region wins.
        assert_eq!(
            parse(&with_wrong_check("99010518991301001")),
            Err(IdNumberError::Region)
        );
        // Bad date and bad checksum: date wins.
        assert_eq!(
            parse(&with_wrong_check("11010518991301001")),
            Err(IdNumberError::BirthDate)
        );
    }

    #[test]
    fn masked_and_debug_hide_the_middle() {
        let Ok(id) = parse("11010519491231002X") else {
            panic!("should be valid");
        };
        assert_eq!(id.masked(), "110105********002X");
        let debug = format!("{id:?}");
        assert_eq!(debug, "IdNumber(\"110105********002X\")");
        assert!(!debug.contains("19491231"));
    }

    #[test]
    fn birth_date_helper() {
        assert_eq!(birth_date(b"19491231", today()), Some(date(1949, 12, 31)));
        assert_eq!(birth_date(b"1949123", today()), None);
        assert_eq!(birth_date(b"1949123a", today()), None);
        assert_eq!(birth_date(b"18991231", today()), None);
        assert_eq!(birth_date(b"20240602", today()), None);
    }

    #[test]
    fn error_display_is_human_readable() {
        assert!(IdNumberError::Checksum
            .to_string()
            .contains("check character"));
        assert!(IdNumberError::Length.to_string().contains("18"));
    }
}

/// Any text a caller (or a signed result) carries: a verdict, never a panic.
#[cfg(test)]
mod properties {
    use super::IdNumber;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default()
    }

    proptest! {
        #[test]
        fn any_text_gets_a_verdict(raw in any::<String>()) {
            let _ = IdNumber::parse(&raw, today());
        }

        #[test]
        fn any_eighteen_id_characters_get_a_verdict(
            chars in proptest::collection::vec(prop::sample::select(b"0123456789Xx ".to_vec()), 16..20)
        ) {
            let raw: String = chars.into_iter().map(char::from).collect();
            if let Ok(id) = IdNumber::parse(&raw, today()) {
                // What is kept is 18 characters, upper case, and parses again to itself.
                prop_assert_eq!(id.as_str().len(), 18);
                prop_assert!(!id.as_str().contains('x'));
                // (No Debug on purpose: a failing case must not print a number.)
                prop_assert!(IdNumber::parse(id.as_str(), today()).ok() == Some(id.clone()));
            }
        }
    }
}
