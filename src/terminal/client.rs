//! The hall terminal's HTTP client: logs in (or takes a token) and streams evidence files to
//! an order, as the service's own upload endpoint expects them.

use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{sniff_file, EvidenceArg};

/// TLS beyond the system's roots: a CA to trust too (a private CA's server certificate), and
/// the hall's client certificate and key for mutual TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// An HTTP client trusting the system's roots and `cacert`, presenting `cert`/`key`.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("{}: cannot read it: {e}", path.display()))
        };
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.cacert {
            let pem = read(ca)?;
            // reqwest takes the first certificate only: add each one of a bundle.
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: not a PEM certificate: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate in it", ca.display()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                // reqwest reads one PEM holding the key and the chain.
                let mut pem = read(key)?;
                pem.push(b'\n');
                pem.extend(read(cert)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!(
                        "{} with {}: not a certificate and its private key: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err("--cert and --key go together".into()),
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// How the terminal reaches the service and proves who it is.
pub struct Session {
    pub url: String,
    pub token: String,
    client: reqwest::Client,
}

impl Session {
    pub async fn open(
        url: &str,
        token: Option<String>,
        username: Option<String>,
        password: Option<String>,
        tls: &ClientTls,
    ) -> Result<Self, String> {
        let client = tls.client()?;
        let url = url.trim_end_matches('/').to_owned();
        let token = match (token, username, password) {
            (Some(t), _, _) => t,
            (None, Some(username), Some(password)) => {
                let res = client
                    .post(format!("{url}/api/v1/auth/token"))
                    .header("Content-Type", "application/json")
                    .body(json!({ "username": username, "password": password }).to_string())
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let body = answer(res).await?;
                body["access_token"]
                    .as_str()
                    .ok_or("the login answer has no access_token")?
                    .to_owned()
            }
            _ => {
                return Err(
                    "give --token (or CROSSPROV_TOKEN), or --username with --password-stdin".into(),
                )
            }
        };
        Ok(Self { url, token, client })
    }

    /// Streams one file to the order; the answer is the service's evidence object. The upload
    /// carries an `Idempotency-Key` and is sent again with it (the file read again from the
    /// start) after a network error or while the service still runs an earlier attempt, so a
    /// retry never stores the file twice.
    pub async fn upload(&self, order: &str, file: &EvidenceArg) -> Result<Value, String> {
        let path = &file.file;
        let media = sniff_file(path)?;
        let key = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = match self.send_file(order, file, media, &key).await {
                Err(SendError::Network(e)) if attempt < ATTEMPTS => {
                    tracing::warn!(file = %path.display(), attempt, error = %e, "upload failed; retrying");
                    backoff(attempt)
                }
                Err(SendError::Network(e)) => return Err(format!("{}: {e}", self.url)),
                Err(SendError::Local(e)) => return Err(e),
                Ok(res) if in_flight(&res) && attempt < ATTEMPTS => retry_after(&res),
                Ok(res) => {
                    return answer(res)
                        .await
                        .map_err(|e| format!("{}: {e}", path.display()))
                }
            };
            tokio::time::sleep(retry).await;
        }
    }

    async fn send_file(
        &self,
        order: &str,
        file: &EvidenceArg,
        media: crate::domain::evidence::MediaType,
        key: &str,
    ) -> Result<reqwest::Response, SendError> {
        let path = &file.file;
        let local = |e: std::io::Error| SendError::Local(format!("{}: {e}", path.display()));
        let size = std::fs::metadata(path).map_err(local)?.len();
        let handle = std::fs::File::open(path).map_err(local)?;
        let chunks = futures_util::stream::unfold(Some(handle), |f| async move {
            let mut f = f?;
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf) {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        self.client
            .post(format!(
                "{}/api/v1/work-orders/{}/evidence?kind={}",
                self.url,
                url_segment(order),
                file.kind.as_str()
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", media.as_str())
            .header("Content-Length", size)
            .header("Idempotency-Key", key)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(SendError::Network)
    }
}

/// How many times an upload is sent before its error is reported.
const ATTEMPTS: u32 = 4;

enum SendError {
    /// The request did not get an answer (connection refused or dropped, timeout).
    Network(reqwest::Error),
    /// The file could not be read here.
    Local(String),
}

/// 0.5 s, 1 s, 2 s, … after the first, second, third failed attempt.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(500 << (attempt - 1).min(6))
}

/// 409 `idempotency_key_in_flight`: an earlier attempt of this upload is still running.
fn in_flight(res: &reqwest::Response) -> bool {
    res.status() == reqwest::StatusCode::CONFLICT && res.headers().contains_key("retry-after")
}

fn retry_after(res: &reqwest::Response) -> std::time::Duration {
    let seconds = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1);
    std::time::Duration::from_secs(seconds.clamp(1, 30))
}

/// An order id as one path segment (ids are UUIDs; anything else is escaped, not trusted).
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The JSON body of a 2xx, or the problem's code and detail.
async fn answer(res: reqwest::Response) -> Result<Value, String> {
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!(
            "{} {}: {}",
            status.as_u16(),
            body["code"].as_str().unwrap_or("error"),
            body["detail"].as_str().unwrap_or(&text)
        ))
    }
}

/// One GET of `url` within `timeout`: its status (`crossprov probe`, a container's health
/// check, where no curl is installed).
pub async fn probe(
    url: &str,
    tls: &ClientTls,
    timeout: std::time::Duration,
) -> Result<reqwest::StatusCode, String> {
    let client = tls.client()?;
    let res = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(res.status())
}
