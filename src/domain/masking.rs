//! Masking rules for personal data shown in responses and logs.
//!
//! Lengths are counted in Unicode scalar values, not bytes, so that names and
//! numbers containing non-ASCII characters keep their visible length.

/// Masks a document number: values of 10 characters or fewer are fully
/// starred (keeping 6 + 4 would reveal almost everything); longer values keep
/// the first 6 and the last 4 characters.
#[must_use]
pub fn mask_id(s: &str) -> String {
    const HEAD: usize = 6;
    const TAIL: usize = 4;
    let len = s.chars().count();
    if len <= HEAD + TAIL {
        return "*".repeat(len);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < HEAD || i >= len - TAIL { c } else { '*' })
        .collect()
}

/// Masks a personal name: only the first character (usually the surname)
/// stays visible.
#[must_use]
pub fn mask_name(s: &str) -> String {
    let len = s.chars().count();
    match s.chars().next() {
        None => String::new(),
        // A one-character name would be shown in full otherwise.
        Some(_) if len == 1 => "*".to_owned(),
        Some(first) => format!("{first}{}", "*".repeat(len - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_id_resident_id() {
        assert_eq!(mask_id("53010219900101123X"), "530102********123X");
        assert_eq!(mask_id("11010519491231002X"), "110105********002X");
    }

    #[test]
    fn mask_id_short_values_are_fully_masked() {
        assert_eq!(mask_id(""), "");
        assert_eq!(mask_id("1"), "*");
        assert_eq!(mask_id("E1234567"), "********");
        assert_eq!(mask_id("1234567890"), "**********");
    }

    #[test]
    fn mask_id_boundary_eleven_chars() {
        assert_eq!(mask_id("12345678901"), "123456*8901");
    }

    #[test]
    fn mask_id_other_documents() {
        assert_eq!(mask_id("ABC123456789012"), "ABC123*****9012");
        assert_eq!(mask_id("H1234567890"), "H12345*7890");
    }

    #[test]
    fn mask_id_counts_unicode_chars() {
        assert_eq!(mask_id("一二三四五六七八九十"), "**********");
        assert_eq!(mask_id("一二三四五六七八九十甲"), "一二三四五六*八九十甲");
        let masked = mask_id("ＡＢＣＤＥＦＧＨＩＪＫＬ");
        assert_eq!(masked.chars().count(), 12);
        assert_eq!(masked, "ＡＢＣＤＥＦ**ＩＪＫＬ");
    }

    #[test]
    fn mask_name_rules() {
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("李小龙"), "李**");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("a"), "*");
        assert_eq!(mask_name("John Smith"), "J*********");
    }

    #[test]
    fn mask_name_handles_non_bmp_chars() {
        // U+20BB7 is outside the BMP; it must count as one character.
        assert_eq!(mask_name("\u{20BB7}"), "*");
        assert_eq!(mask_name("\u{20BB7}三"), "\u{20BB7}*");
    }
}

/// Any text, any script: masking never panics and never shows more than it should.
#[cfg(test)]
mod properties {
    use super::{mask_id, mask_name};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn masks_keep_the_length_and_hide_the_middle(raw in any::<String>()) {
            let id = mask_id(&raw);
            prop_assert_eq!(id.chars().count(), raw.chars().count());
            // At most the first 6 and the last 4 characters show.
            prop_assert!(id.chars().filter(|c| *c != '*').count() <= 10);
            let name = mask_name(&raw);
            prop_assert_eq!(name.chars().count(), raw.chars().count());
            // A name shows at most its first character.
            prop_assert!(name.chars().skip(1).all(|c| c == '*'));
        }
    }
}
