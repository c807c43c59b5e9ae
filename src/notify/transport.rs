//! Delivering one message: to a file under `data_dir/outbox/` or to an SMTP server.
//!
//! The worker needs to know only whether the message left, was refused (charged as an
//! attempt, retried with backoff) or could not be handed over at all (an outage: not
//! charged, probed again soon). [`Delivery`] says which.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

pub use super::NotifyError;
use crate::config::{MailTransport, Settings};

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The server answered with an error reply (or could not take this message): charged as
    /// an attempt. `detail` may echo the server's words, recipient included.
    Refused {
        code: Option<u16>,
        detail: String,
    },
    /// Nothing was handed over: no connection, TLS failed, no answer in time, the connection
    /// dropped, or the outbox folder could not be written. An outage, not charged.
    Unreachable {
        detail: String,
    },
}

impl Delivery {
    /// What may go into a log line: the class and the reply code, never the detail, which can
    /// carry the recipient's address.
    pub fn summary(&self) -> String {
        match self {
            Delivery::Sent => "sent".to_owned(),
            Delivery::Refused {
                code: Some(code), ..
            } => format!("refused ({code})"),
            Delivery::Refused { code: None, .. } => "refused".to_owned(),
            Delivery::Unreachable { .. } => "unreachable".to_owned(),
        }
    }
}

/// Sends the outbox's messages the way `mail.transport` says. Cheap to clone; built once at
/// start, where a setting it cannot use stops the service.
#[derive(Clone)]
pub struct Mailer {
    route: Route,
}

#[derive(Clone)]
enum Route {
    /// One `<row id>.eml` per message in this folder.
    Folder(PathBuf),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The whole conversation, on top of lettre's limit on each step of it.
        timeout: Duration,
    },
}

impl std::fmt::Debug for Mailer {
    // The transport holds the SMTP credentials: say only where mail goes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.route {
            Route::Folder(dir) => f.debug_tuple("Mailer::Folder").field(dir).finish(),
            Route::Smtp { timeout, .. } => f
                .debug_struct("Mailer::Smtp")
                .field("timeout", timeout)
                .finish_non_exhaustive(),
        }
    }
}

impl Mailer {
    /// Checks the mail settings and builds the transport. Connects to nothing: a server that
    /// is down at start is an outage like any other, handled by the worker.
    pub fn from_settings(settings: &Settings) -> Result<Mailer, NotifyError> {
        let mail = &settings.mail;
        super::messages::parse_from(&mail.from)?;
        if mail.timeout_seconds == 0 {
            return Err(NotifyError::Timeout);
        }
        let timeout = Duration::from_secs(mail.timeout_seconds);
        let route = match mail.transport {
            MailTransport::File => Route::Folder(settings.data_dir.join("outbox")),
            MailTransport::Smtp => {
                let url = mail.smtp_url.expose_secret().trim();
                if url.is_empty() {
                    return Err(NotifyError::MissingSmtpUrl);
                }
                // lettre's errors here name the scheme or the parser's complaint, not the URL.
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| NotifyError::SmtpUrl(e.to_string()))?;
                if let Some(credentials) = replaced_credentials(url, mail)? {
                    builder = builder.credentials(credentials);
                }
                Route::Smtp {
                    transport: builder.timeout(Some(timeout)).build(),
                    timeout,
                }
            }
        };
        Ok(Mailer { route })
    }

    /// Delivers the message of outbox row `id`. Never panics and never returns an error:
    /// every failure is a [`Delivery`] the worker knows how to charge.
    pub async fn deliver(&self, id: &str, message: &Message) -> Delivery {
        match &self.route {
            Route::Folder(dir) => write_to_folder(dir, id, message.formatted()).await,
            Route::Smtp { transport, timeout } => {
                let envelope = message.envelope();
                let bytes = message.formatted();
                let sending = transport.send_raw(envelope, &bytes);
                match tokio::time::timeout(*timeout, sending).await {
                    Ok(Ok(_)) => Delivery::Sent,
                    Ok(Err(e)) => classify(&e, envelope),
                    Err(_) => Delivery::Unreachable {
                        detail: format!(
                            "the SMTP conversation took longer than {} s",
                            timeout.as_secs()
                        ),
                    },
                }
            }
        }
    }
}

/// `mail.smtp_username` / `mail.smtp_password`, when set, replace what the URL carries; a
/// password alone goes with the URL's user name (so the URL may name the user and leave the
/// secret to the environment).
fn replaced_credentials(
    url: &str,
    mail: &crate::config::MailSettings,
) -> Result<Option<Credentials>, NotifyError> {
    let username = mail.smtp_username.trim();
    let password = mail.smtp_password.expose_secret();
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    let parsed = url::Url::parse(url).map_err(|e| NotifyError::SmtpUrl(e.to_string()))?;
    let decode = |s: &str| -> Result<String, NotifyError> {
        percent_decode(s).ok_or_else(|| {
            NotifyError::SmtpUrl("the credentials in it are not valid UTF-8".to_owned())
        })
    };
    let username = if username.is_empty() {
        decode(parsed.username())?
    } else {
        username.to_owned()
    };
    let password = if password.is_empty() {
        decode(parsed.password().unwrap_or_default())?
    } else {
        password.to_owned()
    };
    Ok(Some(Credentials::new(username, password)))
}

fn percent_decode(s: &str) -> Option<String> {
    // url keeps user info percent-encoded; lettre decodes the URL's the same way.
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// A reply code is the server refusing; anything short of one is the server out of reach.
fn classify(e: &lettre::transport::smtp::Error, envelope: &Envelope) -> Delivery {
    let detail = bounded(e.to_string());
    if let Some(code) = e.status() {
        return Delivery::Refused {
            code: Some(code.into()),
            detail,
        };
    }
    // lettre's own refusals are about the server (no STARTTLS, no common login method), except
    // a non-ASCII address the server cannot take: that one is about this message alone.
    let non_ascii = envelope
        .to()
        .iter()
        .chain(envelope.from())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if e.is_client() && non_ascii {
        return Delivery::Refused { code: None, detail };
    }
    Delivery::Unreachable { detail }
}

/// Kept for the outbox row's `last_error`: a long multi-line reply is cut.
fn bounded(mut detail: String) -> String {
    const MAX: usize = 500;
    if detail.len() > MAX {
        let mut end = MAX;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    detail
}

async fn write_to_folder(dir: &Path, id: &str, bytes: Vec<u8>) -> Delivery {
    if let Err(e) = super::messages::check_row_id(id) {
        return Delivery::Refused {
            code: None,
            detail: e.to_string(),
        };
    }
    let dir = dir.to_path_buf();
    let name = format!("{id}.eml");
    let written = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes)).await;
    match written {
        Ok(Ok(())) => Delivery::Sent,
        Ok(Err(e)) => Delivery::Unreachable {
            detail: format!("writing the outbox file failed: {e}"),
        },
        Err(e) => Delivery::Unreachable {
            detail: format!("writing the outbox file did not finish: {e}"),
        },
    }
}

/// Readers of the folder see the whole message or none: a hidden temp file in the same folder,
/// written and synced, renamed over `<name>`, then the folder synced so the rename survives a
/// crash. A repeat replaces the file.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    // On error the temp file is removed when `persist`'s error drops it.
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    sync_folder(dir)
}

#[cfg(unix)]
fn sync_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_folder(_dir: &Path) -> std::io::Result<()> {
    // Only Unix syncs a directory through a handle; elsewhere the rename is as durable as it gets.
    Ok(())
}
