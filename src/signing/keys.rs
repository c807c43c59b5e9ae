//! Keys: hall public keys (registered by admins), private keys of hall terminals (CLI),
//! and the service's own signing key with its JWKS entry.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;
use serde_json::{json, Value};

/// The only algorithms accepted or produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM document")]
    NotPem,
    #[error("not a {0} public key (SubjectPublicKeyInfo)")]
    NotOfAlg(&'static str),
    #[error("not a PKCS#8 Ed25519 or P-256 private key")]
    BadPrivateKey,
    #[error("key file: {0}")]
    Io(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

impl KeyError {
    /// What a caller is told about a refused key, in both languages (the English is `Display`).
    pub fn detail(&self) -> crate::domain::Detail {
        let zh = match self {
            Self::NotPem => "不是 PEM 文档".to_owned(),
            Self::NotOfAlg(alg) => format!("不是 {alg} 公钥（SubjectPublicKeyInfo）"),
            Self::BadPrivateKey => "不是 PKCS#8 格式的 Ed25519 或 P-256 私钥".to_owned(),
            Self::Io(_) => "密钥文件无法读取".to_owned(),
            Self::Signing(_) => "签名失败".to_owned(),
        };
        crate::domain::Detail::new(zh, self.to_string())
    }
}

// DER prefixes of SubjectPublicKeyInfo for the two key types; what follows is the raw key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A public key of a given algorithm, checked to be exactly that kind of key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HallPublicKey {
    pub alg: Alg,
    /// Raw key: 32 bytes for Ed25519, the 65-byte uncompressed point for P-256.
    raw: Vec<u8>,
}

impl HallPublicKey {
    pub fn from_pem(alg: Alg, pem_text: &str) -> Result<Self, KeyError> {
        let doc = pem::parse(pem_text.trim()).map_err(|_| KeyError::NotPem)?;
        if doc.tag() != "PUBLIC KEY" {
            return Err(KeyError::NotOfAlg(alg.as_str()));
        }
        Self::from_spki_der(alg, doc.contents())
    }

    pub fn from_spki_der(alg: Alg, der: &[u8]) -> Result<Self, KeyError> {
        let raw = match alg {
            Alg::EdDsa => der
                .strip_prefix(&ED25519_SPKI_PREFIX[..])
                .filter(|k| k.len() == 32),
            Alg::Es256 => der
                .strip_prefix(&P256_SPKI_PREFIX[..])
                .filter(|k| k.len() == 65 && k[0] == 0x04),
        };
        let raw = raw.ok_or(KeyError::NotOfAlg(alg.as_str()))?.to_vec();
        let key = Self { alg, raw };
        // Coordinates at or above the field prime can never be a point: refuse them now
        // rather than at the first verification.
        if alg == Alg::Es256 && !p256_coordinates_in_range(&key.raw[1..]) {
            return Err(KeyError::NotOfAlg(alg.as_str()));
        }
        Ok(key)
    }

    pub fn spki_der(&self) -> Vec<u8> {
        let prefix: &[u8] = match self.alg {
            Alg::EdDsa => &ED25519_SPKI_PREFIX,
            Alg::Es256 => &P256_SPKI_PREFIX,
        };
        [prefix, &self.raw].concat()
    }

    pub fn to_pem(&self) -> String {
        to_pem_text("PUBLIC KEY", self.spki_der())
    }

    pub fn decoding_key(&self) -> Result<DecodingKey, KeyError> {
        let pem_text = self.to_pem();
        match self.alg {
            Alg::Es256 => DecodingKey::from_ec_pem(pem_text.as_bytes()),
            Alg::EdDsa => DecodingKey::from_ed_pem(pem_text.as_bytes()),
        }
        .map_err(|e| KeyError::Signing(e.to_string()))
    }

    /// The raw 32-byte key of an Ed25519 public key (what signed notes name).
    pub fn ed25519_raw(&self) -> Option<[u8; 32]> {
        match self.alg {
            Alg::EdDsa => self.raw.as_slice().try_into().ok(),
            Alg::Es256 => None,
        }
    }

    /// The JWK (RFC 7517/8037) form, for `/.well-known/jwks.json`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self.alg {
            Alg::EdDsa => json!({
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&self.raw),
                "kid": kid, "alg": "EdDSA", "use": "sig",
            }),
            Alg::Es256 => json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&self.raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&self.raw[33..65]),
                "kid": kid, "alg": "ES256", "use": "sig",
            }),
        }
    }

    /// Rebuilds a key from its JWK (keys of other instances, read from the database).
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        let get = |k: &str| jwk.get(k).and_then(Value::as_str);
        match (get("kty")?, get("crv")?) {
            ("OKP", "Ed25519") => {
                let raw = URL_SAFE_NO_PAD.decode(get("x")?).ok()?;
                (raw.len() == 32).then_some(Self {
                    alg: Alg::EdDsa,
                    raw,
                })
            }
            ("EC", "P-256") => {
                let x = URL_SAFE_NO_PAD.decode(get("x")?).ok()?;
                let y = URL_SAFE_NO_PAD.decode(get("y")?).ok()?;
                (x.len() == 32 && y.len() == 32).then(|| Self {
                    alg: Alg::Es256,
                    raw: [&[0x04][..], &x, &y].concat(),
                })
            }
            _ => None,
        }
    }
}

/// PEM with Unix line endings, as every tool that reads our files expects.
fn to_pem_text(tag: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der), config)
}

/// P-256's field prime, big-endian.
const P256_P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

fn p256_coordinates_in_range(xy: &[u8]) -> bool {
    xy.len() == 64 && xy[..32] < P256_P[..] && xy[32..] < P256_P[..]
}

/// A private signing key: a hall terminal's or the service's own (PKCS#8).
pub struct PrivateKey {
    pub alg: Alg,
    pkcs8_der: Vec<u8>,
    public: HallPublicKey,
}

impl PrivateKey {
    /// Generates a fresh key pair.
    pub fn generate(alg: Alg) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Alg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Signing("key generation".into()))?
                .as_ref()
                .to_vec(),
            Alg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| KeyError::Signing("key generation".into()))?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8_der(&der)
    }

    /// Reads a PKCS#8 key of either type; the type decides the algorithm.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let public = HallPublicKey {
                alg: Alg::EdDsa,
                raw: pair.public_key().as_ref().to_vec(),
            };
            return Ok(Self {
                alg: Alg::EdDsa,
                pkcs8_der: der.to_vec(),
                public,
            });
        }
        let rng = SystemRandom::new();
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            let public = HallPublicKey {
                alg: Alg::Es256,
                raw: pair.public_key().as_ref().to_vec(),
            };
            return Ok(Self {
                alg: Alg::Es256,
                pkcs8_der: der.to_vec(),
                public,
            });
        }
        Err(KeyError::BadPrivateKey)
    }

    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let doc = pem::parse(text.trim()).map_err(|_| KeyError::NotPem)?;
        if doc.tag() != "PRIVATE KEY" {
            return Err(KeyError::BadPrivateKey);
        }
        Self::from_pkcs8_der(doc.contents())
    }

    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?;
        Self::from_pem(&text)
    }

    pub fn to_pem(&self) -> String {
        to_pem_text("PRIVATE KEY", self.pkcs8_der.clone())
    }

    pub fn public(&self) -> &HallPublicKey {
        &self.public
    }

    /// The raw 32-byte public key of an Ed25519 key (what signed notes name); `None` for P-256.
    pub fn ed25519_public(&self) -> Option<[u8; 32]> {
        match self.alg {
            Alg::EdDsa => self.public.raw.as_slice().try_into().ok(),
            Alg::Es256 => None,
        }
    }

    /// A bare Ed25519 signature over `message` (signed notes and cosignatures); a P-256 key
    /// cannot make one.
    pub fn sign_ed25519(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8_der)
            .map_err(|_| KeyError::Signing("signed notes need an Ed25519 key".into()))?;
        Ok(pair.sign(message).as_ref().to_vec())
    }

    /// Signs `claims` as a compact JWS with `typ: JWT` and the given `kid`.
    pub fn sign<T: Serialize>(&self, kid: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.jsonwebtoken());
        header.kid = Some(kid.to_owned());
        header.typ = Some("JWT".into());
        let key = match self.alg {
            Alg::EdDsa => EncodingKey::from_ed_der(&self.pkcs8_der),
            Alg::Es256 => EncodingKey::from_ec_der(&self.pkcs8_der),
        };
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// The service's own key: signs receipts and checkpoints; published in the JWKS.
pub struct ServiceKey {
    pub kid: String,
    pub key: PrivateKey,
}

impl ServiceKey {
    /// Loads the key file, or generates an Ed25519 key there on first start.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        let key = if path.exists() {
            PrivateKey::from_file(path)?
        } else {
            let key = PrivateKey::generate(Alg::EdDsa)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| KeyError::Io(e.to_string()))?;
            }
            write_private(path, &key.to_pem())?;
            key
        };
        Ok(Self::from_key(key))
    }

    pub fn from_key(key: PrivateKey) -> Self {
        // The kid is derived from the public key, so every instance names the same key alike.
        let digest = crate::domain::sha256_hex(&key.public().spki_der());
        Self {
            kid: format!("svc-{}", &digest[..16]),
            key,
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        self.key.sign(&self.kid, claims)
    }

    pub fn jwk(&self) -> Value {
        self.key.public().jwk(&self.kid)
    }
}

/// Writes a private key readable by its owner only.
pub fn write_private(path: &Path, pem_text: &str) -> Result<(), KeyError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| KeyError::Io(format!("{}: {e}", path.display())))?;
    file.write_all(pem_text.as_bytes())
        .map_err(|e| KeyError::Io(e.to_string()))?;
    file.sync_all().map_err(|e| KeyError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_and_jwk() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let key = PrivateKey::generate(alg).unwrap();
            let again = PrivateKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again.public(), key.public());
            let public = HallPublicKey::from_pem(alg, &key.public().to_pem()).unwrap();
            assert_eq!(&public, key.public());
            assert_eq!(
                HallPublicKey::from_jwk(&public.jwk("k")).as_ref(),
                Some(&public)
            );
        }
    }

    #[test]
    fn a_key_of_the_other_algorithm_is_refused() {
        let ed = PrivateKey::generate(Alg::EdDsa).unwrap();
        assert_eq!(
            HallPublicKey::from_pem(Alg::Es256, &ed.public().to_pem()),
            Err(KeyError::NotOfAlg("ES256"))
        );
        assert_eq!(
            HallPublicKey::from_pem(Alg::EdDsa, "hello"),
            Err(KeyError::NotPem)
        );
    }

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        for alg in [Alg::EdDsa, Alg::Es256] {
            let key = PrivateKey::generate(alg).unwrap();
            let jws = key.sign("k1", &json!({"a": 1})).unwrap();
            let parsed = super::super::jws::CompactJws::parse(&jws).unwrap();
            assert_eq!(parsed.kid.as_deref(), Some("k1"));
            assert!(parsed.verify(key.public()).is_ok());
            let other = PrivateKey::generate(alg).unwrap();
            assert!(parsed.verify(other.public()).is_err());
        }
    }
}
