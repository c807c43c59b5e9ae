//! Evidence objects: the plain file sealed in 64 KiB chunks with the STREAM construction
//! (BE32 counter, last-chunk flag) over XChaCha20-Poly1305, so upload and download hold one
//! chunk at a time whatever the file's size, and a truncated, reordered or altered object
//! fails to open.
//!
//! Layout: `CPEV` ‖ version 1 ‖ key id length (1 byte) ‖ data key id ‖ nonce prefix (19) ‖
//! chunks (each the plain chunk + 16-byte tag). Every chunk's associated data binds the
//! order and the data key; the last one's also the plain file's SHA-256, so an object moved
//! under another order or digest does not open.

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;

use super::keys::DataKey;
use super::{random, CryptoError};

pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"CPEV";
const VERSION: u8 = 1;
const PREFIX_LEN: usize = 19;

fn chunk_ad(order_id: &str, key_id: &str) -> String {
    format!("crossprov-evidence-v1|{order_id}|{key_id}")
}

fn last_ad(order_id: &str, key_id: &str, sha256: &str) -> String {
    format!("{}|{sha256}", chunk_ad(order_id, key_id))
}

/// Seals a file as it streams in: `header()` first, then what each `push` returns, then
/// `finish` once the digest is known.
pub struct Sealer {
    enc: EncryptorBE32<XChaCha20Poly1305>,
    header: Vec<u8>,
    buf: Vec<u8>,
    order_id: String,
    key_id: String,
}

impl Sealer {
    pub fn new(key: &DataKey, key_id: &str, order_id: &str) -> Result<Self, CryptoError> {
        let id_len = u8::try_from(key_id.len()).map_err(|_| CryptoError::Seal)?;
        let prefix: [u8; PREFIX_LEN] = random();
        let cipher = XChaCha20Poly1305::new(key.bytes().into());
        let enc = EncryptorBE32::from_aead(cipher, (&prefix).into());
        let mut header = Vec::with_capacity(6 + key_id.len() + PREFIX_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.push(id_len);
        header.extend_from_slice(key_id.as_bytes());
        header.extend_from_slice(&prefix);
        Ok(Self {
            enc,
            header,
            buf: Vec::with_capacity(2 * CHUNK),
            order_id: order_id.to_owned(),
            key_id: key_id.to_owned(),
        })
    }

    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The sealed chunks now complete. A full chunk is held back until more bytes follow,
    /// since the last chunk is sealed differently.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        if self.buf.len() > CHUNK {
            let ad = chunk_ad(&self.order_id, &self.key_id);
            let mut start = 0;
            while self.buf.len() - start > CHUNK {
                let msg = &self.buf[start..start + CHUNK];
                let sealed = self
                    .enc
                    .encrypt_next(Payload {
                        msg,
                        aad: ad.as_bytes(),
                    })
                    .map_err(|_| CryptoError::Seal)?;
                out.extend_from_slice(&sealed);
                start += CHUNK;
            }
            self.buf.drain(..start);
        }
        Ok(out)
    }

    /// The last chunk, bound to the plain file's digest.
    pub fn finish(self, sha256: &str) -> Result<Vec<u8>, CryptoError> {
        let ad = last_ad(&self.order_id, &self.key_id, sha256);
        self.enc
            .encrypt_last(Payload {
                msg: &self.buf,
                aad: ad.as_bytes(),
            })
            .map_err(|_| CryptoError::Seal)
    }
}

/// The data key id a sealed object's header names (read before its key is looked up).
pub fn header_key_id(head: &[u8]) -> Option<String> {
    if head.len() < 6 || &head[..4] != MAGIC || head[4] != VERSION {
        return None;
    }
    let len = usize::from(head[5]);
    let id = head.get(6..6 + len)?;
    String::from_utf8(id.to_vec()).ok()
}

/// Opens an object as it streams out. Errors say only that the object does not open.
pub struct Opener {
    key: XChaCha20Poly1305,
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    buf: Vec<u8>,
    order_id: String,
    key_id: String,
    sha256: String,
}

impl Opener {
    pub fn new(key: &DataKey, key_id: &str, order_id: &str, sha256: &str) -> Self {
        Self {
            key: XChaCha20Poly1305::new(key.bytes().into()),
            dec: None,
            buf: Vec::with_capacity(2 * (CHUNK + TAG)),
            order_id: order_id.to_owned(),
            key_id: key_id.to_owned(),
            sha256: sha256.to_owned(),
        }
    }

    fn header_len(&self) -> usize {
        6 + self.key_id.len() + PREFIX_LEN
    }

    /// The plain bytes now complete (all but the last chunk, held back until the end).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        if self.dec.is_none() {
            let len = self.header_len();
            if self.buf.len() < len {
                return Ok(Vec::new());
            }
            if header_key_id(&self.buf).as_deref() != Some(self.key_id.as_str()) {
                return Err(CryptoError::Stream("header names another key or format"));
            }
            let prefix = &self.buf[len - PREFIX_LEN..len];
            self.dec = Some(DecryptorBE32::from_aead(self.key.clone(), prefix.into()));
            start = len;
        }
        let mut out = Vec::new();
        let ad = chunk_ad(&self.order_id, &self.key_id);
        if let Some(dec) = self.dec.as_mut() {
            while self.buf.len() - start > CHUNK + TAG {
                let msg = &self.buf[start..start + CHUNK + TAG];
                let plain = dec
                    .decrypt_next(Payload {
                        msg,
                        aad: ad.as_bytes(),
                    })
                    .map_err(|_| CryptoError::Stream("a chunk does not open"))?;
                out.extend_from_slice(&plain);
                start += CHUNK + TAG;
            }
        }
        self.buf.drain(..start);
        Ok(out)
    }

    pub fn finish(self) -> Result<Vec<u8>, CryptoError> {
        let dec = self.dec.ok_or(CryptoError::Stream("truncated header"))?;
        let ad = last_ad(&self.order_id, &self.key_id, &self.sha256);
        dec.decrypt_last(Payload {
            msg: &self.buf,
            aad: ad.as_bytes(),
        })
        .map_err(|_| CryptoError::Stream("the last chunk does not open (truncated or altered)"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn seal_all(key: &DataKey, plain: &[u8], piece: usize) -> Vec<u8> {
        let mut s = Sealer::new(key, "dk-1", "wo-1").unwrap();
        let mut out = s.header().to_vec();
        for part in plain.chunks(piece.max(1)) {
            out.extend(s.push(part).unwrap());
        }
        out.extend(s.finish("sha").unwrap());
        out
    }

    fn open_all(
        key: &DataKey,
        sealed: &[u8],
        piece: usize,
        order: &str,
        sha: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut o = Opener::new(key, "dk-1", order, sha);
        let mut out = Vec::new();
        for part in sealed.chunks(piece.max(1)) {
            out.extend(o.push(part)?);
        }
        out.extend(o.finish()?);
        Ok(out)
    }

    #[test]
    fn files_of_every_size_round_trip_in_any_pieces() {
        let key = DataKey::generate();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for piece in [1000, 7919, CHUNK, 200_000] {
                let sealed = seal_all(&key, &plain, piece);
                assert_eq!(header_key_id(&sealed).as_deref(), Some("dk-1"));
                assert_eq!(
                    open_all(&key, &sealed, piece + 3, "wo-1", "sha").unwrap(),
                    plain,
                    "{len}/{piece}"
                );
            }
        }
    }

    #[test]
    fn wrong_key_order_digest_or_altered_truncated_reordered_chunks_fail() {
        let key = DataKey::generate();
        let plain: Vec<u8> = (0..3 * CHUNK + 5).map(|i| (i % 13) as u8).collect();
        let sealed = seal_all(&key, &plain, 4096);
        assert!(
            open_all(&DataKey::generate(), &sealed, 4096, "wo-1", "sha").is_err(),
            "wrong key"
        );
        assert!(
            open_all(&key, &sealed, 4096, "wo-2", "sha").is_err(),
            "another order"
        );
        assert!(
            open_all(&key, &sealed, 4096, "wo-1", "other").is_err(),
            "another digest"
        );
        let mut altered = sealed.clone();
        altered[100] ^= 1;
        assert!(
            open_all(&key, &altered, 4096, "wo-1", "sha").is_err(),
            "altered"
        );
        let header = 6 + 4 + PREFIX_LEN;
        let ct = CHUNK + TAG;
        // Cut at a chunk boundary: the last remaining chunk was not sealed as the last.
        let cut = &sealed[..header + 2 * ct];
        assert!(
            open_all(&key, cut, 4096, "wo-1", "sha").is_err(),
            "truncated at a boundary"
        );
        assert!(
            open_all(&key, &sealed[..sealed.len() - 1], 4096, "wo-1", "sha").is_err(),
            "truncated"
        );
        assert!(
            open_all(&key, &sealed[..10], 4096, "wo-1", "sha").is_err(),
            "header only"
        );
        // Swap the first two chunks.
        let mut swapped = sealed[..header].to_vec();
        swapped.extend_from_slice(&sealed[header + ct..header + 2 * ct]);
        swapped.extend_from_slice(&sealed[header..header + ct]);
        swapped.extend_from_slice(&sealed[header + 2 * ct..]);
        assert!(
            open_all(&key, &swapped, 4096, "wo-1", "sha").is_err(),
            "reordered"
        );
        // A chunk dropped from the middle.
        let mut dropped = sealed[..header + ct].to_vec();
        dropped.extend_from_slice(&sealed[header + 2 * ct..]);
        assert!(
            open_all(&key, &dropped, 4096, "wo-1", "sha").is_err(),
            "dropped"
        );
    }
}
