//! A hall terminal's Ed25519 key, written against ring directly (as the API tests do), so the
//! service is measured verifying someone else's signatures.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use crate::Res;

pub struct HallKey {
    pub kid: String,
    pair: Ed25519KeyPair,
    header_b64: String,
}

impl HallKey {
    pub fn generate(kid: &str) -> Res<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| format!("keygen: {e}"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| format!("key: {e}"))?;
        let header = json!({ "alg": "EdDSA", "kid": kid, "typ": "JWT" });
        Ok(Self {
            kid: kid.to_owned(),
            pair,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
        })
    }

    /// SubjectPublicKeyInfo PEM of the public half.
    pub fn public_pem(&self) -> String {
        let prefix: [u8; 12] = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        let der = [&prefix[..], self.pair.public_key().as_ref()].concat();
        let b64 = STANDARD.encode(der);
        let mut lines = Vec::new();
        let mut rest = b64.as_str();
        while !rest.is_empty() {
            let (line, tail) = rest.split_at(rest.len().min(64));
            lines.push(line);
            rest = tail;
        }
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    pub fn register_body(&self) -> Value {
        json!({ "kid": self.kid, "alg": "EdDSA", "public_key_pem": self.public_pem() })
    }

    /// Compact JWS over the payload.
    pub fn sign(&self, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            self.header_b64,
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let sig = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}
