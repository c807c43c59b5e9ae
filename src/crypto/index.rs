//! The blind index: HMAC-SHA-256 under a key of its own (stored wrapped by the KEK), so an
//! exact search by ID number or name needs no plain text, and the index alone reveals nothing
//! to whoever lacks the key.

use ring::hmac;

use super::keys::DataKey;

/// The kinds of value indexed, each with its own domain-separation prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// ID numbers: trimmed, upper-cased (a trailing `x` check digit is `X`).
    DocumentNumber,
    /// Names (the document's and the expected one alike): trimmed.
    Name,
}

impl IndexKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::DocumentNumber => "crossprov-bidx-v1|document_number|",
            Self::Name => "crossprov-bidx-v1|name|",
        }
    }

    fn normalise(self, raw: &str) -> String {
        match self {
            Self::DocumentNumber => raw.trim().to_uppercase(),
            Self::Name => raw.trim().to_owned(),
        }
    }
}

pub struct BlindIndex(hmac::Key);

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(..)")
    }
}

impl BlindIndex {
    pub fn new(key: &DataKey) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key.bytes()))
    }

    /// Lowercase hex of the HMAC of the normalised value.
    pub fn of(&self, kind: IndexKind, raw: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(kind.prefix().as_bytes());
        ctx.update(kind.normalise(raw).as_bytes());
        hex::encode(ctx.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_index_normalises_separates_kinds_and_depends_on_the_key() {
        let key = DataKey::generate();
        let index = BlindIndex::new(&key);
        let a = index.of(IndexKind::DocumentNumber, "11010519491231002x ");
        assert_eq!(a, index.of(IndexKind::DocumentNumber, "11010519491231002X"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, index.of(IndexKind::Name, "11010519491231002X"));
        assert_eq!(
            index.of(IndexKind::Name, " 张三"),
            index.of(IndexKind::Name, "张三")
        );
        let other = BlindIndex::new(&DataKey::generate());
        assert_ne!(a, other.of(IndexKind::DocumentNumber, "11010519491231002X"));
    }
}
