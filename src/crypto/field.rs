//! Sealed field values: `v1:<data key id>:<base64url(nonce(24) ‖ ciphertext)>`, sealed with
//! XChaCha20-Poly1305 under the subscriber's data key, the row's identity as associated data.

use super::keys::{open_bytes, seal_bytes, DataKey};
use super::CryptoError;

const PREFIX: &str = "v1:";

/// A stored value is sealed iff it starts with `v1:` (values written before encryption at
/// rest are plain and are sealed at start).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The associated data of a column of a row: a value copied to another row does not open.
pub fn field_ad(table: &str, column: &str, row_id: &str) -> String {
    format!("{table}.{column}|{row_id}")
}

/// The id of the data key a sealed value names.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX)?;
    rest.split_once(':').map(|(id, _)| id)
}

pub fn seal(key: &DataKey, key_id: &str, ad: &str, plain: &str) -> Result<String, CryptoError> {
    let body = seal_bytes(key.bytes(), ad.as_bytes(), plain.as_bytes())?;
    Ok(format!("{PREFIX}{key_id}:{body}"))
}

pub fn open(key: &DataKey, stored: &str, ad: &str) -> Result<String, CryptoError> {
    let rest = stored
        .strip_prefix(PREFIX)
        .ok_or(CryptoError::Open("not a sealed value"))?;
    let (_, body) = rest.split_once(':').ok_or(CryptoError::Open("no key id"))?;
    let plain = open_bytes(key.bytes(), ad.as_bytes(), body)?;
    String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Open("not UTF-8"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_sealed_value_names_its_key_and_opens_only_for_its_row_and_key() {
        let key = DataKey::generate();
        let ad = field_ad("work_orders", "expected_name", "wo-1");
        let sealed = seal(&key, "dk-1", &ad, "张三").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("张三"));
        assert_eq!(sealed_key_id(&sealed), Some("dk-1"));
        assert_eq!(open(&key, &sealed, &ad).unwrap(), "张三");
        // Another row, another column, another key: refused.
        let other_row = field_ad("work_orders", "expected_name", "wo-2");
        assert!(open(&key, &sealed, &other_row).is_err());
        assert!(open(
            &key,
            &sealed,
            &field_ad("verification_results", "jws", "wo-1")
        )
        .is_err());
        assert!(open(&DataKey::generate(), &sealed, &ad).is_err());
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(seal(&key, "dk-1", &ad, "张三").unwrap(), sealed);
        // An altered or truncated value is refused.
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(open(&key, &String::from_utf8(altered).unwrap(), &ad).is_err());
        assert!(open(&key, &sealed[..sealed.len() - 4], &ad).is_err());
        assert!(!is_sealed("张三"));
    }
}

/// Whatever a column holds (a damaged or foreign value): opening refuses it, never panics,
/// and a value sealed for one row never opens as anything but itself.
#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_stored_text_opens_or_is_refused(stored in any::<String>(), ad in any::<String>()) {
            let key = DataKey::generate();
            let _ = sealed_key_id(&stored);
            prop_assert!(open(&key, &stored, &ad).is_err() || is_sealed(&stored));
        }

        #[test]
        fn any_value_round_trips_and_any_flipped_byte_is_refused(
            plain in any::<String>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let key = DataKey::generate();
            let ad = field_ad("work_orders", "expected_name", "wo-1");
            let sealed = seal(&key, "dk-1", &ad, &plain).unwrap();
            prop_assert_eq!(open(&key, &sealed, &ad).unwrap(), plain);
            // Change one character of the sealed body: refused, whichever it is.
            let body_start = sealed.rfind(':').unwrap() + 1;
            let i = body_start + flip.index(sealed.len() - body_start);
            let mut altered = sealed.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            prop_assert!(open(&key, &altered, &ad).is_err());
        }
    }
}
