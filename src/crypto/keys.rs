//! Key-encryption keys (from files, never the database), the keyring of the current and
//! previous KEKs, and the 32-byte data keys they wrap.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{random, CryptoError};

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Seals `plain` under `key`: base64url(nonce(24) ‖ ciphertext ‖ tag).
pub(super) fn seal_bytes(
    key: &[u8; KEY_LEN],
    ad: &[u8],
    plain: &[u8],
) -> Result<String, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE_LEN] = random();
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: ad,
            },
        )
        .map_err(|_| CryptoError::Seal)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(B64.encode(out))
}

/// Opens what `seal_bytes` sealed with the same key and associated data.
pub(super) fn open_bytes(
    key: &[u8; KEY_LEN],
    ad: &[u8],
    text: &str,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let raw = B64
        .decode(text)
        .map_err(|_| CryptoError::Open("not base64url"))?;
    if raw.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Open("too short"));
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Open("wrong key, wrong associated data, or altered"))
}

/// A key-encryption key: 32 bytes kept in a file as 64 hex digits.
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Kek {
    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        // The id names the key without revealing it: the first 16 hex digits of its SHA-256.
        let id = hex::encode(Sha256::digest(bytes))[..16].to_owned();
        Self {
            id,
            key: Zeroizing::new(bytes),
        }
    }

    /// 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, &'static str> {
        let text = Zeroizing::new(text.trim().to_owned());
        if text.len() != 2 * KEY_LEN {
            return Err("must hold exactly 64 hex digits (32 bytes)");
        }
        let mut bytes = [0u8; KEY_LEN];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(|_| "not hex")?;
        let kek = Self::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(kek)
    }

    pub fn generate() -> Self {
        Self::from_bytes(random())
    }

    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let failed = |why: String| CryptoError::KekFile {
            file: path.display().to_string(),
            why,
        };
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
        Self::from_hex(&text).map_err(|why| failed(why.to_owned()))
    }

    /// The embedded default: the file if it is there, else a new KEK written to it (0600).
    pub fn load_or_generate(path: &Path) -> Result<Self, CryptoError> {
        if path.exists() {
            return Self::load(path);
        }
        let kek = Self::generate();
        kek.write_new(path)?;
        Ok(kek)
    }

    /// Writes the key to a file that must not exist yet, readable by its owner only.
    pub fn write_new(&self, path: &Path) -> Result<(), CryptoError> {
        use std::io::Write;
        let failed = |e: std::io::Error| CryptoError::KekFile {
            file: path.display().to_string(),
            why: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(failed)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(*self.key)));
        file.write_all(text.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A subscriber's data key: 32 random bytes, stored only wrapped by a KEK.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(random()))
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn from_slice(raw: &[u8]) -> Option<Self> {
        let bytes: [u8; KEY_LEN] = raw.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }
}

/// The associated data a data key is wrapped with: its id and the KEK's, so a wrapped key
/// copied to another row, or relabelled with another KEK id, does not open.
fn data_key_ad(id: &str, kek_id: &str) -> String {
    format!("crossprov-data-key-v1|{id}|{kek_id}")
}

fn secret_ad(name: &str, kek_id: &str) -> String {
    format!("crossprov-secret-v1|{name}|{kek_id}")
}

/// The KEK new keys are wrapped with, and the older ones still read during a rotation.
#[derive(Debug)]
pub struct Keyring {
    current: Kek,
    previous: Vec<Kek>,
}

impl Keyring {
    pub fn new(current: Kek, previous: Vec<Kek>) -> Self {
        // The current KEK listed again as a previous one changes nothing.
        let previous = previous
            .into_iter()
            .filter(|k| k.id != current.id)
            .collect();
        Self { current, previous }
    }

    /// A keyring whose current KEK is `new`, every KEK of this one still readable.
    pub fn rotated_to(self, new: Kek) -> Self {
        let mut previous = vec![self.current];
        previous.extend(self.previous);
        Self::new(new, previous)
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    fn kek(&self, id: &str) -> Result<&Kek, CryptoError> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKek(id.to_owned()))
    }

    /// Wraps a data key under the current KEK: (KEK id, wrapped text).
    pub fn wrap(&self, id: &str, key: &DataKey) -> Result<(String, String), CryptoError> {
        let kek_id = self.current.id().to_owned();
        let wrapped = seal_bytes(
            &self.current.key,
            data_key_ad(id, &kek_id).as_bytes(),
            key.bytes(),
        )?;
        Ok((kek_id, wrapped))
    }

    pub fn unwrap(&self, id: &str, kek_id: &str, wrapped: &str) -> Result<DataKey, CryptoError> {
        let kek = self.kek(kek_id)?;
        let raw = open_bytes(&kek.key, data_key_ad(id, kek_id).as_bytes(), wrapped)?;
        DataKey::from_slice(&raw).ok_or(CryptoError::Open("a data key is 32 bytes"))
    }

    /// A named secret (the blind-index key) sealed under the current KEK, as
    /// `<kek id>:<wrapped>`, so it survives KEK rotation by re-wrapping.
    pub fn wrap_secret(&self, name: &str, secret: &DataKey) -> Result<String, CryptoError> {
        let kek_id = self.current.id();
        let wrapped = seal_bytes(
            &self.current.key,
            secret_ad(name, kek_id).as_bytes(),
            secret.bytes(),
        )?;
        Ok(format!("{kek_id}:{wrapped}"))
    }

    pub fn unwrap_secret(&self, name: &str, stored: &str) -> Result<DataKey, CryptoError> {
        let (kek_id, wrapped) = stored
            .split_once(':')
            .ok_or(CryptoError::Open("a wrapped secret is <kek id>:<text>"))?;
        let kek = self.kek(kek_id)?;
        let raw = open_bytes(&kek.key, secret_ad(name, kek_id).as_bytes(), wrapped)?;
        DataKey::from_slice(&raw).ok_or(CryptoError::Open("a secret is 32 bytes"))
    }

    /// The KEK id a stored secret is wrapped under.
    pub fn secret_kek_id(stored: &str) -> Option<&str> {
        stored.split_once(':').map(|(id, _)| id)
    }

    /// The keyring of these files. `generate_if_missing` only for the embedded default: in
    /// production or on a shared (PostgreSQL) database a generated per-instance KEK would
    /// strand every value another instance sealed.
    pub fn from_files(
        current: &Path,
        generate_if_missing: bool,
        previous: &[PathBuf],
    ) -> Result<Self, CryptoError> {
        let current = if generate_if_missing {
            Kek::load_or_generate(current)?
        } else {
            Kek::load(current)?
        };
        let previous = previous
            .iter()
            .map(|p| Kek::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(current, previous))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_kek_reads_back_from_its_file_with_the_same_id_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.hex");
        let made = Kek::load_or_generate(&path).unwrap();
        let again = Kek::load_or_generate(&path).unwrap();
        assert_eq!(made.id(), again.id());
        assert_eq!(made.id().len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{made:?}").contains(&std::fs::read_to_string(&path).unwrap()[..20]));
    }

    #[test]
    fn a_malformed_kek_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.hex");
        for text in ["", "abcd", &"zz".repeat(32), &"ab".repeat(33)] {
            std::fs::write(&path, text).unwrap();
            let err = Kek::load(&path).unwrap_err().to_string();
            assert!(err.contains("bad.hex"), "{err}");
        }
        let err = Kek::load(&dir.path().join("absent.hex"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.hex"), "{err}");
    }

    #[test]
    fn a_wrapped_data_key_opens_only_with_its_id_and_a_known_kek() {
        let old = Kek::generate();
        let old_id = old.id().to_owned();
        let ring = Keyring::new(old, vec![]);
        let key = DataKey::generate();
        let (kek_id, wrapped) = ring.wrap("k1", &key).unwrap();
        assert_eq!(kek_id, old_id);
        assert_eq!(
            ring.unwrap("k1", &kek_id, &wrapped).unwrap().bytes(),
            key.bytes()
        );
        assert!(
            ring.unwrap("k2", &kek_id, &wrapped).is_err(),
            "another row's id"
        );
        assert!(matches!(
            ring.unwrap("k1", "0000000000000000", &wrapped),
            Err(CryptoError::UnknownKek(_))
        ));
        // A new KEK with the old one as previous still opens it; the new one alone does not.
        let text = hex::encode(*ring.current.key);
        let rotated = Keyring::new(Kek::generate(), vec![Kek::from_hex(&text).unwrap()]);
        assert!(rotated.unwrap("k1", &kek_id, &wrapped).is_ok());
        let (new_id, rewrapped) = rotated.wrap("k1", &key).unwrap();
        assert_ne!(new_id, kek_id);
        let only_new = Keyring::new(
            Kek::from_hex(&hex::encode(*rotated.current.key)).unwrap(),
            vec![],
        );
        assert!(only_new.unwrap("k1", &kek_id, &wrapped).is_err());
        assert!(only_new.unwrap("k1", &new_id, &rewrapped).is_ok());
    }

    #[test]
    fn a_wrapped_secret_names_its_kek() {
        let ring = Keyring::new(Kek::generate(), vec![]);
        let secret = DataKey::generate();
        let stored = ring.wrap_secret("blind_index_key", &secret).unwrap();
        assert_eq!(Keyring::secret_kek_id(&stored), Some(ring.current_id()));
        let back = ring.unwrap_secret("blind_index_key", &stored).unwrap();
        assert_eq!(back.bytes(), secret.bytes());
        assert!(ring.unwrap_secret("other", &stored).is_err());
    }
}
