//! HTTPS and mutual TLS through rustls (ring only): the server's TLS configuration from
//! `tls.*`, a certificate (and client CA) that reload while connections stay open, and the
//! client certificate a connection presented. What a hall-staff caller must present is a
//! domain rule (`Actor::require_hall_certificate`); this module only reads certificates.

mod files;
pub mod peer;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::config::TlsSettings;
pub use files::TlsError;
pub use reload::Reloader;
use reload::{CurrentCertificate, CurrentClientRoots};

/// The server's TLS, built from the settings: what actix listens with, and what reloads it.
pub struct ServerTls {
    config: ServerConfig,
    reloader: Arc<Reloader>,
}

/// The crypto provider of every TLS object here: ring, as the rest of the tree uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A setting's file, when the setting is set at all.
fn path_of(value: &str) -> Option<PathBuf> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| PathBuf::from(trimmed))
}

impl ServerTls {
    /// HTTPS when `tls.cert_pem` and `tls.key_pem` are both set (None: plain HTTP, neither
    /// set); a half-set pair, a client CA without HTTPS, or any file that is not what it must
    /// be refuses to start, naming the file.
    pub fn from_settings(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        let cert = path_of(&settings.cert_pem);
        let key = path_of(&settings.key_pem);
        let client_ca = path_of(&settings.client_ca_pem);
        let (cert, key) = match (cert, key) {
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) => return Err(TlsError::Incomplete("tls.cert_pem", "tls.key_pem")),
            (None, Some(_)) => return Err(TlsError::Incomplete("tls.key_pem", "tls.cert_pem")),
            (None, None) if client_ca.is_some() => return Err(TlsError::ClientCaWithoutHttps),
            (None, None) => return Ok(None),
        };
        let provider = provider();
        let certified = files::certified_key(&cert, &key, &provider)?;
        let resolver = Arc::new(CurrentCertificate::new(certified));
        let roots = match &client_ca {
            Some(ca) => Some(Arc::new(CurrentClientRoots::new(client_verifier(
                ca, &provider,
            )?))),
            None => None,
        };
        let verifier: Arc<dyn ClientCertVerifier> = match &roots {
            Some(roots) => roots.clone(),
            None => WebPkiClientVerifier::no_client_auth(),
        };
        // TLS 1.3 and 1.2 only, with rustls' default (modern, forward-secret AEAD) suites.
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver.clone());
        // actix adds these too; set here so the configuration says what it offers.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let reloader = Arc::new(Reloader::new(
            cert, key, client_ca, resolver, roots, provider,
        ));
        Ok(Some(Self { config, reloader }))
    }

    /// Whether client certificates are asked for (`tls.client_ca_pem`).
    pub fn mutual(&self) -> bool {
        self.reloader.mutual()
    }

    pub fn config(&self) -> ServerConfig {
        self.config.clone()
    }

    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }
}

/// Client certificates verified against the CA file: a connection may present none (clerks,
/// auditors, admins, the web console), but one it presents must chain to this CA or the
/// handshake fails.
fn client_verifier(
    ca: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let roots = files::root_store(ca)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::BadCa {
            file: ca.to_owned(),
            why: e.to_string(),
        })
}
