//! Stored responses of idempotent requests. They hold what the first request answered —
//! personal data among it (an order's number and expected name) — so they are sealed, and the
//! request's digest is keyed (a bare SHA-256 of a body carrying a password could be guessed).
//! The key is derived from the blind-index key, so it needs no row of its own and follows
//! the KEK through rotation with it.

use ring::hmac;
use zeroize::Zeroizing;

use super::keys::{open_bytes, seal_bytes, DataKey, KEY_LEN};
use super::CryptoError;

pub struct ReplayKey {
    seal: Zeroizing<[u8; KEY_LEN]>,
    digest: hmac::Key,
}

impl std::fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayKey(..)")
    }
}

/// HMAC-SHA-256 under `key` of a purpose label: a key of its own for each purpose.
fn derive(key: &[u8], purpose: &str) -> [u8; KEY_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), purpose.as_bytes());
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

impl ReplayKey {
    pub fn derive(from: &DataKey) -> Self {
        let seal = Zeroizing::new(derive(from.bytes(), "crossprov-idempotency-v1|seal"));
        let digest = derive(from.bytes(), "crossprov-idempotency-v1|digest");
        Self {
            seal,
            digest: hmac::Key::new(hmac::HMAC_SHA256, &digest),
        }
    }

    /// A digest of a request body fed as it streams in.
    pub fn digest(&self) -> BodyDigest {
        BodyDigest(hmac::Context::with_key(&self.digest))
    }

    pub fn seal(&self, ad: &str, plain: &[u8]) -> Result<String, CryptoError> {
        seal_bytes(&self.seal, ad.as_bytes(), plain)
    }

    pub fn open(&self, ad: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_bytes(&self.seal, ad.as_bytes(), sealed)
    }
}

/// The keyed digest of one request body, in progress.
#[derive(Clone)]
pub struct BodyDigest(hmac::Context);

impl BodyDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// Lowercase hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn digests_depend_on_the_key_and_every_byte_and_sealed_responses_open_for_their_row() {
        let base = DataKey::generate();
        let key = ReplayKey::derive(&base);
        let digest = |k: &ReplayKey, chunks: &[&[u8]]| {
            let mut d = k.digest();
            chunks.iter().for_each(|c| d.update(c));
            d.finish()
        };
        let whole = digest(&key, &[b"{\"reason\":\"x\"}"]);
        assert_eq!(whole, digest(&key, &[b"{\"reason\"", b":\"x\"}"]));
        assert_ne!(whole, digest(&key, &[b"{\"reason\":\"y\"}"]));
        let other = ReplayKey::derive(&DataKey::generate());
        assert_ne!(whole, digest(&other, &[b"{\"reason\":\"x\"}"]));
        let sealed = key.seal("row-1", "张三".as_bytes()).unwrap();
        assert!(!sealed.contains("张三"));
        assert_eq!(&key.open("row-1", &sealed).unwrap()[..], "张三".as_bytes());
        assert!(key.open("row-2", &sealed).is_err());
        assert!(other.open("row-1", &sealed).is_err());
    }
}
