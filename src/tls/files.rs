//! Reading the PEM files `tls.*` names. Every refusal names the file and what is wrong with
//! it, so an operator can fix it from the one line `serve` prints.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0} is set but {1} is not: HTTPS needs both the certificate and its private key")]
    Incomplete(&'static str, &'static str),
    #[error(
        "tls.client_ca_pem is set but tls.cert_pem and tls.key_pem are not: mutual TLS needs HTTPS"
    )]
    ClientCaWithoutHttps,
    #[error("{}: cannot read it: {source}", file.display())]
    Unreadable {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no certificate in it (expected PEM, -----BEGIN CERTIFICATE-----)", file.display())]
    NoCertificate { file: PathBuf },
    #[error("{}: not a valid certificate: {why}", file.display())]
    InvalidCertificate { file: PathBuf, why: String },
    #[error("{}: no private key in it (expected PEM: PKCS#8, RSA or EC)", file.display())]
    NoPrivateKey { file: PathBuf },
    #[error("{}: not a usable private key: {why}", file.display())]
    InvalidKey { file: PathBuf, why: String },
    #[error("{}: the private key does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: not a usable client CA file: {why}", file.display())]
    BadCa { file: PathBuf, why: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(file: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(file).map_err(|source| TlsError::Unreadable {
        file: file.to_owned(),
        source,
    })
}

/// Every certificate of a PEM file, in order; an empty list when there is none.
fn certificates(file: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| TlsError::InvalidCertificate {
            file: file.to_owned(),
            why: format!("bad PEM: {e}"),
        })
}

/// The chain in `cert` (end-entity first) with the private key in `key`, checked to belong
/// together.
pub fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert, &read(cert)?)?;
    let end_entity = chain.first().ok_or_else(|| TlsError::NoCertificate {
        file: cert.to_owned(),
    })?;
    webpki::EndEntityCert::try_from(end_entity).map_err(|e| TlsError::InvalidCertificate {
        file: cert.to_owned(),
        why: e.to_string(),
    })?;
    let der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            file: key.to_owned(),
        },
        other => TlsError::InvalidKey {
            file: key.to_owned(),
            why: format!("bad PEM: {other}"),
        },
    })?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| TlsError::InvalidKey {
                file: key.to_owned(),
                why: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            })
        }
        // ring can always tell its keys' public halves; "unknown" would mean another provider.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(e) => Err(TlsError::InvalidCertificate {
            file: cert.to_owned(),
            why: e.to_string(),
        }),
    }
}

/// The CA certificates client certificates must chain to.
pub fn root_store(file: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |why: String| TlsError::BadCa {
        file: file.to_owned(),
        why,
    };
    let bytes = read(file)?;
    let cas = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| bad(format!("bad PEM: {e}")))?;
    if cas.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM, -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| bad(format!("a certificate that is not a usable CA: {e}")))?;
    }
    Ok(roots)
}
