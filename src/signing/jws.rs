//! Compact JWS (RFC 7515) parsing and verification, independent of any web or database type.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::keys::{Alg, HallPublicKey};

/// Why a compact JWS was refused before any claim was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("the JWS header does not decode or names an algorithm that is never accepted")]
    BadHeader,
    #[error("the payload is not JSON")]
    BadPayload,
    #[error("the algorithm is not the registered key's")]
    WrongAlg,
    #[error("the signature does not verify")]
    BadSignature,
}

impl JwsError {
    /// What a caller is told, in both languages (the English is `Display`).
    pub fn detail(&self) -> crate::domain::Detail {
        let zh = match self {
            Self::Malformed => "不是紧凑格式的 JWS",
            Self::BadHeader => "JWS 头无法解码，或指定了不被接受的算法",
            Self::BadPayload => "载荷不是 JSON",
            Self::WrongAlg => "算法与登记的密钥不一致",
            Self::BadSignature => "签名校验不通过",
        };
        crate::domain::Detail::new(zh, self.to_string())
    }
}

/// A compact JWS split into its parts; nothing verified yet.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    signature: &'a str,
    pub alg: Option<Alg>,
    pub kid: Option<String>,
    pub payload: Vec<u8>,
    /// A fault found past the header (empty signature, undecodable payload). Kept, not
    /// raised, so the key checks that come first in the contract still answer first.
    defect: Option<JwsError>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes header and payload. An `alg` outside ES256/EdDSA (`none`, HS*, RS*)
    /// leaves `alg` empty so the signature check refuses it.
    pub fn parse(jws: &'a str) -> Result<Self, JwsError> {
        let jws = jws.trim();
        let mut parts = jws.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        if h.is_empty() {
            return Err(JwsError::Malformed);
        }
        let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwsError::BadHeader)?;
        let header: serde_json::Value =
            serde_json::from_slice(&header_bytes).map_err(|_| JwsError::BadHeader)?;
        let header = header.as_object().ok_or(JwsError::BadHeader)?;
        let alg = header
            .get("alg")
            .and_then(|a| a.as_str())
            .and_then(Alg::parse);
        let kid = header
            .get("kid")
            .and_then(|k| k.as_str())
            .map(str::to_owned);
        let (payload, mut defect) = match URL_SAFE_NO_PAD.decode(p) {
            Ok(bytes) => (bytes, None),
            Err(_) => (Vec::new(), Some(JwsError::BadPayload)),
        };
        if s.is_empty() {
            defect = defect.or(Some(JwsError::BadSignature));
        }
        let signing_input = &jws[..h.len() + 1 + p.len()];
        Ok(Self {
            signing_input,
            signature: s,
            alg,
            kid,
            payload,
            defect,
        })
    }

    /// Verifies with the registered key: the header's `alg` must be exactly the key's.
    pub fn verify(&self, key: &HallPublicKey) -> Result<(), JwsError> {
        if let Some(defect) = &self.defect {
            return Err(defect.clone());
        }
        if self.alg != Some(key.alg) {
            return Err(JwsError::WrongAlg);
        }
        let decoding = key.decoding_key().map_err(|_| JwsError::BadSignature)?;
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &decoding,
            key.alg.jsonwebtoken(),
        ) {
            Ok(true) => Ok(()),
            _ => Err(JwsError::BadSignature),
        }
    }

    /// The payload as JSON, for reading `iat` before the signature is checked (the contract
    /// checks a revoked key before the signature).
    pub fn payload_json(&self) -> Option<serde_json::Value> {
        if self.defect == Some(JwsError::BadPayload) {
            return None;
        }
        serde_json::from_slice(&self.payload).ok()
    }
}

/// Any text submitted as a result: parsed or refused, never a panic, whatever its segments
/// decode to.
#[cfg(test)]
mod properties {
    use super::CompactJws;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_parsed_or_refused(raw in any::<String>()) {
            let _ = CompactJws::parse(&raw);
        }

        #[test]
        fn any_three_segments_are_parsed_or_refused(
            header in proptest::collection::vec(any::<u8>(), 0..64),
            payload in proptest::collection::vec(any::<u8>(), 0..256),
            signature in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let jws = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(signature)
            );
            let _ = CompactJws::parse(&jws);
        }

        #[test]
        fn any_header_json_is_parsed_or_refused(
            alg in any::<String>(),
            kid in proptest::option::of(any::<String>()),
            payload in any::<String>(),
        ) {
            let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"});
            let jws = format!(
                "{}.{}.c2ln",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(payload)
            );
            if let Ok(parsed) = CompactJws::parse(&jws) {
                // Only the two algorithms the contract allows survive parsing.
                prop_assert!(parsed.alg.is_none() || alg == "ES256" || alg == "EdDSA");
            }
        }
    }
}
