//! Mainland China mobile numbers (MSISDN without the country code).

use std::fmt;

/// A normalised mainland mobile number: exactly 11 ASCII digits matching
/// `1[3-9]\d{9}`, without country code or separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses user input such as `+86 138-0013-8000`, `008613800138000` or
    /// `13800138000`. Returns `None` for anything that is not a mainland
    /// mobile number.
    pub fn parse(raw: &str) -> Option<Msisdn> {
        // Separators are common in pasted numbers; drop them wherever they are.
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        // Longest prefix first, so "0086" is not mistaken for a local number.
        let national = ["+86", "0086", "86"]
            .iter()
            .find_map(|prefix| compact.strip_prefix(prefix))
            .unwrap_or(&compact);
        let bytes = national.as_bytes();
        let well_formed = bytes.len() == 11
            && bytes.iter().all(u8::is_ascii_digit)
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1]);
        well_formed.then(|| Msisdn(national.to_owned()))
    }

    /// The 11-digit national number.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the number, returning the 11-digit national number.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Option<String> {
        Msisdn::parse(raw).map(Msisdn::into_string)
    }

    #[test]
    fn accepts_plain_numbers() {
        assert_eq!(parsed("13800138000").as_deref(), Some("13800138000"));
        for second in '3'..='9' {
            let n = format!("1{second}012345678");
            assert_eq!(parsed(&n).as_deref(), Some(n.as_str()));
        }
    }

    #[test]
    fn strips_country_code_variants() {
        for raw in ["+8613800138000", "8613800138000", "008613800138000"] {
            assert_eq!(parsed(raw).as_deref(), Some("13800138000"), "{raw}");
        }
    }

    #[test]
    fn removes_spaces_and_hyphens_and_trims() {
        for raw in [
            "  13800138000 ",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "0086 138-0013-8000",
            "86 13800138000",
            "\t+86 13800138000\n",
            "1-3-8-0-0-1-3-8-0-0-0",
            "+ 8 6 13800138000",
        ] {
            assert_eq!(parsed(raw).as_deref(), Some("13800138000"), "{raw:?}");
        }
    }

    #[test]
    fn rejects_bad_prefixes_and_operators() {
        for raw in [
            "10800138000",
            "11800138000",
            "12800138000",
            "23800138000",
            "03800138000",
            "+8513800138000",
            "+008613800138000",
            "+86+8613800138000",
            "868613800138000",
        ] {
            assert!(Msisdn::parse(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn rejects_wrong_lengths() {
        for raw in [
            "",
            " ",
            "+86",
            "86",
            "1380013800",
            "138001380001",
            "+86138001380",
        ] {
            assert!(Msisdn::parse(raw).is_none(), "{raw:?}");
        }
    }

    #[test]
    fn rejects_non_ascii_and_other_characters() {
        for raw in [
            "1380013800a",
            "138.0013.8000",
            "(138)00138000",
            "１３８００１３８０００",
            "13800138000x",
            "+86_13800138000",
        ] {
            assert!(Msisdn::parse(raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn accessors_and_display_agree() {
        let Some(m) = Msisdn::parse("+86 139-1234-5678") else {
            panic!("should parse");
        };
        assert_eq!(m.as_str(), "13912345678");
        assert_eq!(m.to_string(), "13912345678");
        assert_eq!(m.clone().into_string(), "13912345678");
        assert_eq!(Msisdn::parse("13912345678"), Some(m));
    }
}

/// Any text a caller sends: parsed or refused, never a panic, and only 11 digits kept.
#[cfg(test)]
mod properties {
    use super::Msisdn;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused(raw in any::<String>()) {
            if let Some(m) = Msisdn::parse(&raw) {
                prop_assert_eq!(m.as_str().len(), 11);
                prop_assert!(m.as_str().bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(Msisdn::parse(m.as_str()), Some(m.clone()));
            }
        }

        #[test]
        fn a_number_survives_the_ways_people_write_it(
            second in 3u8..=9,
            rest in proptest::collection::vec(0u8..=9, 9),
            prefix in prop::sample::select(vec!["", "+86", "0086", "86", "+86 ", " "]),
            sep in prop::sample::select(vec!["", " ", "-"]),
        ) {
            let digits: String = std::iter::once(1u8)
                .chain(std::iter::once(second))
                .chain(rest)
                .map(|d| char::from(b'0' + d))
                .collect();
            let written = format!("{prefix}{}{sep}{}{sep}{}", &digits[..3], &digits[3..7], &digits[7..]);
            prop_assert_eq!(Msisdn::parse(&written).map(|m| m.as_str().to_owned()), Some(digits));
        }
    }
}
