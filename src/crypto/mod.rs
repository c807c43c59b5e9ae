//! Encryption of personal data at rest (infrastructure, not domain): the key-encryption keys
//! (KEKs) from files, the per-subscriber data keys they wrap, sealed field values, the chunked
//! evidence format, and the keyed blind index that makes sealed values searchable.
//!
//! Nothing here touches the database or HTTP: storage keeps wrapped keys and sealed text,
//! `service` decides when a value is opened (only where a role needs it).

pub mod field;
pub mod index;
pub mod keys;
pub mod replay;
pub mod stream;

pub use index::BlindIndex;
pub use keys::{DataKey, Kek, Keyring};

/// Why something did not seal or open. Never carries key material or plain values.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("KEK file {file}: {why}")]
    KekFile { file: String, why: String },
    #[error("no configured KEK has id {0} (crypto.kek_file, crypto.previous_kek_files)")]
    UnknownKek(String),
    #[error("a sealed value does not open: {0}")]
    Open(&'static str),
    #[error("an evidence object does not open: {0}")]
    Stream(&'static str),
    #[error("encryption failed")]
    Seal,
}

/// Fresh random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}
