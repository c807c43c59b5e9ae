//! Certificates that change under a running server. New handshakes take whatever is current;
//! connections already open keep the keys they agreed, so nothing is dropped. A reload that
//! fails keeps the old certificate and logs why, naming the file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

use super::files::{self, TlsError};

/// How often the files' modification times are looked at.
const POLL: Duration = Duration::from_secs(2);

/// The server certificate every new handshake gets.
#[derive(Debug)]
pub struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(key))
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The client-certificate verifier of the current client CA file.
#[derive(Debug)]
pub struct CurrentClientRoots(RwLock<Arc<dyn ClientCertVerifier>>);

impl CurrentClientRoots {
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Self(RwLock::new(verifier))
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = verifier;
    }
}

impl ClientCertVerifier for CurrentClientRoots {
    fn offer_client_auth(&self) -> bool {
        true
    }

    // Clerks, auditors, admins and the web console connect without a certificate.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    // No CA names are hinted: they would borrow from a verifier a reload may replace, and a
    // hall terminal sends the one certificate it has whatever the hint.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// What a file looked like when last read: a change in either means read it again.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(file: &Path) -> Stamp {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the certificate and key (and the client CA) on SIGHUP and when their files change.
pub struct Reloader {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    resolver: Arc<CurrentCertificate>,
    roots: Option<Arc<CurrentClientRoots>>,
    provider: Arc<CryptoProvider>,
    stamps: std::sync::Mutex<[Stamp; 3]>,
}

impl Reloader {
    pub(super) fn new(
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
        resolver: Arc<CurrentCertificate>,
        roots: Option<Arc<CurrentClientRoots>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        let stamps = [
            stamp(&cert),
            stamp(&key),
            client_ca.as_deref().and_then(stamp),
        ];
        Self {
            cert,
            key,
            client_ca,
            resolver,
            roots,
            provider,
            stamps: std::sync::Mutex::new(stamps),
        }
    }

    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Watches for SIGHUP and for changed files, for as long as the server runs.
    pub async fn run(self: Arc<Self>) {
        #[cfg(unix)]
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => {
                tracing::info!("TLS: listening for SIGHUP to reload the certificate");
                Some(signal)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are reloaded when they change only");
                None
            }
        };
        loop {
            #[cfg(unix)]
            let signalled = match hangup.as_mut() {
                Some(signal) => tokio::time::timeout(POLL, signal.recv())
                    .await
                    .is_ok_and(|got| got.is_some()),
                None => {
                    tokio::time::sleep(POLL).await;
                    false
                }
            };
            #[cfg(not(unix))]
            let signalled = {
                tokio::time::sleep(POLL).await;
                false
            };
            // The files are a few kilobytes: read on this thread, as a log line would be written.
            if signalled {
                tracing::info!("SIGHUP: reloading the TLS certificate");
                self.note_stamps();
                self.reload_certificate();
                self.reload_client_ca();
            } else {
                self.reload_changed();
            }
        }
    }

    /// Records the files' current stamps; returns which changed: (certificate or key, CA).
    fn note_stamps(&self) -> (bool, bool) {
        let now = [
            stamp(&self.cert),
            stamp(&self.key),
            self.client_ca.as_deref().and_then(stamp),
        ];
        let mut seen = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = (now[0] != seen[0] || now[1] != seen[1], now[2] != seen[2]);
        *seen = now;
        changed
    }

    /// Reloads what changed since the last look. A file caught half-written fails to load and
    /// is logged; the write that completes it changes its stamp again, and that load succeeds.
    pub fn reload_changed(&self) {
        let (certificate, ca) = self.note_stamps();
        if certificate {
            self.reload_certificate();
        }
        if ca {
            self.reload_client_ca();
        }
    }

    fn reload_certificate(&self) {
        match files::certified_key(&self.cert, &self.key, &self.provider) {
            Ok(key) => {
                let fingerprint = key
                    .end_entity_cert()
                    .map(|c| hex::encode(Sha256::digest(c.as_ref())))
                    .unwrap_or_default();
                self.resolver.replace(key);
                tracing::info!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    sha256 = %fingerprint,
                    "TLS certificate reloaded; new connections get it"
                );
            }
            Err(e) => failed(&e),
        }
    }

    fn reload_client_ca(&self) {
        let (Some(ca), Some(roots)) = (&self.client_ca, &self.roots) else {
            return;
        };
        match super::client_verifier(ca, &self.provider) {
            Ok(verifier) => {
                roots.replace(verifier);
                tracing::info!(client_ca = %ca.display(), "TLS client CA reloaded; new connections are verified against it");
            }
            Err(e) => failed(&e),
        }
    }
}

fn failed(e: &TlsError) {
    tracing::error!(error = %e, "TLS reload failed; still serving the previous certificate and client CA");
}
