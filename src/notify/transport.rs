//! Delivering one message: to a file under `data_dir/outbox/` or to an SMTP server.
//!
//! The worker needs to know only whether the message left, was refused (charged as an
//! attempt, retried with backoff) or could not be handed over at all (an outage: not
//! charged, probed again soon). [`Delivery`] says which.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
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
    Folder(Arc<Folder>),
    Smtp {
        builder: Box<AsyncSmtpTransportBuilder>,
        /// Built on the first delivery, inside the worker's runtime: its connection pool
        /// starts a task there, and its connections belong to that runtime.
        transport: Arc<OnceLock<AsyncSmtpTransport<Tokio1Executor>>>,
        /// The whole conversation, on top of lettre's limit on each step of it.
        timeout: Duration,
    },
}

/// Connections kept open between messages: as many as the worker has conversations at once,
/// so a busy outbox reuses them instead of greeting the server for every message.
const SMTP_POOL_SIZE: u32 = super::worker::IN_FLIGHT as u32;

impl std::fmt::Debug for Mailer {
    // The transport holds the SMTP credentials: say only where mail goes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.route {
            Route::Folder(folder) => f.debug_tuple("Mailer::Folder").field(&folder.dir).finish(),
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
        // The contract's two promises: a dead worker's rows go to another within 60 s (the
        // lease, then the next poll), and mail flows within 60 s of the server's return (the
        // probe, then the next poll).
        let poll_ms = mail.poll_interval_ms as i64;
        if mail.lease_seconds < 1 || mail.lease_seconds * 1000 + poll_ms > 60_000 {
            return Err(NotifyError::Delivery(
                "mail.lease_seconds (plus mail.poll_interval_ms) must be at least 1 s and at most 60 s",
            ));
        }
        if mail.outage_probe_seconds < 1
            || mail.outage_probe_seconds as i64 * 1000 + poll_ms > 60_000
        {
            return Err(NotifyError::Delivery(
                "mail.outage_probe_seconds (plus mail.poll_interval_ms) must be at least 1 s and at most 60 s",
            ));
        }
        // A conversation must end inside the lease that covers it.
        if mail.timeout_seconds as i64 >= mail.lease_seconds {
            return Err(NotifyError::Delivery(
                "mail.timeout_seconds must be shorter than mail.lease_seconds",
            ));
        }
        if mail.max_attempts < 1 || mail.batch_size < 1 || mail.retry_base_seconds < 1 {
            return Err(NotifyError::Delivery(
                "mail.max_attempts, mail.batch_size and mail.retry_base_seconds must be at least 1",
            ));
        }
        if !(mail.retry_base_seconds..=7 * 24 * 3600).contains(&mail.retry_max_seconds) {
            return Err(NotifyError::Delivery(
                "mail.retry_max_seconds must be between mail.retry_base_seconds and one week",
            ));
        }
        let timeout = Duration::from_secs(mail.timeout_seconds);
        let route = match mail.transport {
            MailTransport::File => Route::Folder(Arc::new(Folder {
                dir: settings.data_dir.join("outbox"),
                staged: std::sync::Mutex::new(Vec::new()),
            })),
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
                    builder: Box::new(
                        builder
                            .timeout(Some(timeout))
                            .pool_config(PoolConfig::new().max_size(SMTP_POOL_SIZE)),
                    ),
                    transport: Arc::new(OnceLock::new()),
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
            Route::Folder(folder) => folder.stage(id, message.formatted()).await,
            Route::Smtp {
                builder,
                transport,
                timeout,
            } => {
                let transport = transport.get_or_init(|| builder.as_ref().clone().build());
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

impl Mailer {
    /// Ends the kept SMTP connections politely (`QUIT`), when shutting down: deliveries
    /// through this mailer fail afterwards.
    pub async fn close(&self) {
        if let Route::Smtp {
            transport: built, ..
        } = &self.route
        {
            if let Some(transport) = built.get() {
                transport.shutdown().await;
            }
        }
    }

    /// Makes a batch's deliveries final. The file transport's messages are written to
    /// temporary files as they are delivered; here their data is synced once for the whole
    /// batch, then they are renamed into place and the folder is synced. An error means no
    /// message of the batch may be counted as sent (the rows are sent again later).
    pub async fn finish_batch(&self) -> Result<(), String> {
        match &self.route {
            Route::Folder(folder) => folder.publish().await,
            Route::Smtp { .. } => Ok(()),
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
    if let Some(code) = e.status() {
        // The server's own words; the code travels beside them.
        let reply = std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string());
        let code: u16 = code.into();
        // 421: the server is closing the channel (restarting, overloaded). That is about the
        // server, not this message: an outage, charged to no row.
        if code == 421 {
            return Delivery::Unreachable {
                detail: bounded(format!("{code} {reply}")),
            };
        }
        return Delivery::Refused {
            code: Some(code),
            detail: bounded(reply),
        };
    }
    let detail = bounded(e.to_string());
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

/// The file transport's folder and the messages of the current batch written there but not
/// yet published. One worker per instance delivers through it, a batch at a time.
struct Folder {
    dir: PathBuf,
    staged: std::sync::Mutex<Vec<Staged>>,
}

/// A message written to a hidden temporary file, to be renamed to `name` once synced.
struct Staged {
    temp: PathBuf,
    name: PathBuf,
}

impl Folder {
    /// Writes the message of row `id` to a temporary file in the folder, unsynced.
    async fn stage(&self, id: &str, bytes: Vec<u8>) -> Delivery {
        if let Err(e) = super::messages::check_row_id(id) {
            return Delivery::Refused {
                code: None,
                detail: e.to_string(),
            };
        }
        let dir = self.dir.clone();
        let name = format!("{id}.eml");
        let written = tokio::task::spawn_blocking(move || write_temp(&dir, &name, &bytes)).await;
        match written {
            Ok(Ok(staged)) => {
                match self.staged.lock() {
                    Ok(mut list) => list.push(staged),
                    Err(_) => {
                        return Delivery::Unreachable {
                            detail: "the outbox folder's batch list is unusable".to_owned(),
                        }
                    }
                }
                Delivery::Sent
            }
            Ok(Err(e)) => Delivery::Unreachable {
                detail: format!("writing the outbox file failed: {e}"),
            },
            Err(e) => Delivery::Unreachable {
                detail: format!("writing the outbox file did not finish: {e}"),
            },
        }
    }

    /// Syncs, renames and syncs the folder for everything staged since the last call.
    async fn publish(&self) -> Result<(), String> {
        let staged = match self.staged.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => return Err("the outbox folder's batch list is unusable".to_owned()),
        };
        if staged.is_empty() {
            return Ok(());
        }
        let dir = self.dir.clone();
        match tokio::task::spawn_blocking(move || publish_staged(&dir, staged)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("publishing the outbox files failed: {e}")),
            Err(e) => Err(format!("publishing the outbox files did not finish: {e}")),
        }
    }
}

/// Readers of the folder see the whole message or none: each message goes to a hidden temp
/// file in the same folder and is renamed over `<name>` only after its data is on disk.
fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<Staged> {
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    // Kept: `publish_staged` renames it, or removes it if the batch fails.
    let (_, temp) = temp.keep().map_err(|e| e.error)?;
    Ok(Staged {
        temp,
        name: dir.join(name),
    })
}

/// One data sync for the batch (instead of one per file), the renames, then the folder sync
/// that makes the renames survive a crash. A repeat of a row replaces its file.
fn publish_staged(dir: &Path, staged: Vec<Staged>) -> std::io::Result<()> {
    let result = sync_data_of(dir, &staged).and_then(|()| {
        for s in &staged {
            std::fs::rename(&s.temp, &s.name)?;
        }
        sync_folder(dir)
    });
    if result.is_err() {
        for s in &staged {
            let _ = std::fs::remove_file(&s.temp);
        }
    }
    result
}

/// Puts the staged files' data on disk: on Linux one `syncfs` of the folder's file system;
/// elsewhere an fsync per file.
#[cfg(target_os = "linux")]
fn sync_data_of(dir: &Path, _staged: &[Staged]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let folder = std::fs::File::open(dir)?;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open for the call.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_data_of(_dir: &Path, staged: &[Staged]) -> std::io::Result<()> {
    for s in staged {
        std::fs::File::open(&s.temp)?.sync_all()?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notice::{MailEvent, MailFacts};
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::mpsc;

    const ROW: &str = "0192f3a4-5b6c-7d8e-9f00-112233445566";
    const RECIPIENT: &str = "hall-km@example.cn";

    fn facts() -> MailFacts {
        let at = chrono::DateTime::parse_from_rfc3339("2026-10-09T02:30:00Z")
            .unwrap()
            .to_utc();
        MailFacts {
            event: MailEvent::Opened,
            work_order_id: "0192f3a4-0000-7000-8000-00000000abcd".into(),
            reference: "53-20261124-000017".to_owned(),
            msisdn_masked: "189****5678".to_owned(),
            home_province: "53".to_owned(),
            target_province: "53".to_owned(),
            target_city: "530100".to_owned(),
            state: "open".to_owned(),
            expected_name_masked: Some("张**".to_owned()),
            due_at: at,
            deadline_at: at,
            suspend_at: None,
            reason: None,
            outcome: None,
            flags: Vec::new(),
            at,
        }
    }

    fn settings(data_dir: &Path) -> Settings {
        let mut s = Settings::defaults().unwrap();
        s.data_dir = data_dir.to_path_buf();
        s
    }

    fn smtp_settings(url: &str) -> Settings {
        let mut s = Settings::defaults().unwrap();
        s.mail.transport = MailTransport::Smtp;
        s.mail.smtp_url = url.into();
        s.mail.timeout_seconds = 2;
        s
    }

    fn message(s: &Settings, event: MailEvent) -> Message {
        let mut f = facts();
        f.event = event;
        super::super::render(ROW, RECIPIENT, &f, &s.mail).unwrap()
    }

    fn folder_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_file_transport_writes_one_eml_per_row_and_replaces_it_on_a_repeat() {
        let data = tempfile::tempdir().unwrap();
        let s = settings(data.path());
        let mailer = Mailer::from_settings(&s).unwrap();
        let opened = message(&s, MailEvent::Opened);
        assert_eq!(mailer.deliver(ROW, &opened).await, Delivery::Sent);
        let outbox = data.path().join("outbox");
        assert!(
            !outbox.join(format!("{ROW}.eml")).exists(),
            "nothing is published before the batch is finished"
        );
        mailer.finish_batch().await.unwrap();
        let file = outbox.join(format!("{ROW}.eml"));
        assert_eq!(std::fs::read(&file).unwrap(), opened.formatted());
        assert_eq!(
            folder_entries(&outbox),
            [format!("{ROW}.eml")],
            "no temp file left"
        );

        let reminder = message(&s, MailEvent::Reminder);
        assert_eq!(mailer.deliver(ROW, &reminder).await, Delivery::Sent);
        mailer.finish_batch().await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), reminder.formatted());
        assert_eq!(folder_entries(&outbox), [format!("{ROW}.eml")]);

        let other = message(&s, MailEvent::Opened);
        assert_eq!(mailer.deliver("another-row", &other).await, Delivery::Sent);
        mailer.finish_batch().await.unwrap();
        assert_eq!(
            folder_entries(&outbox),
            [format!("{ROW}.eml"), "another-row.eml".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_published_fails_whole_and_leaves_no_temp_file() {
        let data = tempfile::tempdir().unwrap();
        let s = settings(data.path());
        let mailer = Mailer::from_settings(&s).unwrap();
        let outbox = data.path().join("outbox");
        assert_eq!(
            mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await,
            Delivery::Sent
        );
        assert_eq!(
            mailer
                .deliver("another-row", &message(&s, MailEvent::Opened))
                .await,
            Delivery::Sent
        );
        // One staged file vanishes before the batch is published.
        let gone = folder_entries(&outbox)
            .into_iter()
            .find(|n| n.starts_with(".another-row"))
            .unwrap();
        std::fs::remove_file(outbox.join(gone)).unwrap();
        assert!(mailer.finish_batch().await.is_err());
        assert!(
            folder_entries(&outbox).iter().all(|n| !n.ends_with(".tmp")),
            "{:?}",
            folder_entries(&outbox)
        );
        // The next batch starts clean.
        assert_eq!(
            mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await,
            Delivery::Sent
        );
        mailer.finish_batch().await.unwrap();
        assert!(outbox.join(format!("{ROW}.eml")).exists());
    }

    #[tokio::test]
    async fn an_outbox_folder_that_cannot_be_made_is_an_outage() {
        let data = tempfile::tempdir().unwrap();
        // A file where the outbox folder should be.
        std::fs::write(data.path().join("outbox"), b"in the way").unwrap();
        let s = settings(data.path());
        let mailer = Mailer::from_settings(&s).unwrap();
        let delivery = mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await;
        assert!(
            matches!(delivery, Delivery::Unreachable { .. }),
            "{delivery:?}"
        );
        assert_eq!(delivery.summary(), "unreachable");
    }

    #[tokio::test]
    async fn the_file_transport_refuses_a_row_id_that_is_no_file_name() {
        let data = tempfile::tempdir().unwrap();
        let s = settings(data.path());
        let mailer = Mailer::from_settings(&s).unwrap();
        let delivery = mailer
            .deliver("../../etc/x", &message(&s, MailEvent::Opened))
            .await;
        assert!(
            matches!(delivery, Delivery::Refused { code: None, .. }),
            "{delivery:?}"
        );
        assert!(!data.path().join("etc").exists());
    }

    #[test]
    fn start_up_refuses_a_from_that_is_no_mailbox() {
        for from in ["", "crossprov", "crossprov <noreply>", "<@example.cn>"] {
            let mut s = Settings::defaults().unwrap();
            s.mail.from = from.to_owned();
            let err = Mailer::from_settings(&s).unwrap_err();
            assert!(matches!(err, NotifyError::From { .. }), "{from:?}: {err:?}");
            assert!(err.to_string().contains("mail.from"), "{err}");
        }
    }

    #[test]
    fn start_up_refuses_smtp_without_a_usable_url_and_never_prints_the_password() {
        let err = Mailer::from_settings(&smtp_settings("")).unwrap_err();
        assert!(matches!(err, NotifyError::MissingSmtpUrl), "{err:?}");
        assert!(err.to_string().contains("mail.smtp_url"), "{err}");
        for url in [
            "ftp://mailer:hunter2@mail.example.cn",
            "smtp://mailer:hunter2@",
            "smtp://mailer:hunter2@mail.example.cn:99999",
            "smtp://mailer:hunter2@mail.example.cn?tls=maybe",
            "mailer:hunter2 at mail.example.cn",
        ] {
            let err = Mailer::from_settings(&smtp_settings(url)).unwrap_err();
            assert!(matches!(err, NotifyError::SmtpUrl(_)), "{url}: {err:?}");
            let printed = format!("{err} {err:?}");
            assert!(printed.contains("mail.smtp_url"), "{printed}");
            assert!(!printed.contains("hunter2"), "{printed}");
        }
        let mut s = smtp_settings("smtp://127.0.0.1:2525");
        s.mail.lease_seconds = 61;
        assert!(matches!(
            Mailer::from_settings(&s),
            Err(NotifyError::Delivery(m)) if m.contains("lease_seconds")
        ));
        s.mail.lease_seconds = 50;
        s.mail.timeout_seconds = 0;
        assert!(matches!(
            Mailer::from_settings(&s).unwrap_err(),
            NotifyError::Timeout
        ));
    }

    #[test]
    fn start_up_accepts_every_documented_smtp_form_and_does_not_print_credentials() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.cn:587?tls=required",
            "smtps://mailer:hunter2@mail.example.cn:465",
            "smtps://mail.example.cn",
        ] {
            let mailer = Mailer::from_settings(&smtp_settings(url)).unwrap();
            assert!(!format!("{mailer:?}").contains("hunter2"));
        }
        let data = tempfile::tempdir().unwrap();
        let file = Mailer::from_settings(&settings(data.path())).unwrap();
        assert!(format!("{file:?}").contains("outbox"));
    }

    /// What a fake SMTP server answers.
    struct Script {
        /// None: never says a word.
        greeting: Option<&'static str>,
        /// The reply to RCPT; empty: hang up instead.
        rcpt: &'static str,
    }

    const ACCEPTING: Script = Script {
        greeting: Some("220 fake ESMTP\r\n"),
        rcpt: "250 2.1.5 ok\r\n",
    };

    /// A one-connection SMTP server on a std thread; it sends what it heard when it is done.
    fn fake_smtp(script: Script) -> (u16, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (heard_tx, heard) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream);
            let mut transcript = String::new();
            let Some(greeting) = script.greeting else {
                // Hold the connection open, silent, until the client gives up.
                let mut rest = String::new();
                let _ = lines.read_line(&mut rest);
                return;
            };
            out.write_all(greeting.as_bytes()).unwrap();
            if !greeting.starts_with("220") {
                return;
            }
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                transcript.push_str(&line);
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        out.write_all(b"250 2.0.0 queued\r\n").unwrap();
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                if verb == "RCPT" && script.rcpt.is_empty() {
                    break; // hangs up mid-conversation
                }
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-fake\r\n250 AUTH PLAIN\r\n",
                    "AUTH" => b"235 2.7.0 ok\r\n",
                    "MAIL" => b"250 2.1.0 ok\r\n",
                    "RCPT" => script.rcpt.as_bytes(),
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        out.write_all(b"221 bye\r\n").unwrap();
                        break;
                    }
                    "RSET" | "NOOP" => b"250 ok\r\n",
                    _ => b"500 what\r\n",
                };
                out.write_all(reply).unwrap();
            }
            let _ = heard_tx.send(transcript);
        });
        (port, heard)
    }

    #[tokio::test]
    async fn smtp_hands_the_message_to_a_server_that_accepts_it() {
        let (port, heard) = fake_smtp(ACCEPTING);
        let mut s = smtp_settings(&format!("smtp://urlmailer:url-pass@127.0.0.1:{port}"));
        s.mail.smtp_password = "settings-pass".into();
        let mailer = Mailer::from_settings(&s).unwrap();
        let delivery = mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await;
        assert_eq!(delivery, Delivery::Sent);
        // Pooled connections stay open between messages; closing the mailer says QUIT (from
        // a task of this runtime, so wait for the transcript off it).
        mailer.close().await;
        let transcript = tokio::task::spawn_blocking(move || heard.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            transcript.contains(&format!("RCPT TO:<{RECIPIENT}>")),
            "{transcript}"
        );
        assert!(transcript.contains(&format!("Message-ID: <{ROW}@crossprov.invalid>")));
        assert!(transcript.contains("X-Crossprov-Event: opened"));
        // The password from settings replaced the URL's, the URL's user name stayed.
        use base64::Engine;
        let auth = transcript
            .lines()
            .find_map(|l| l.strip_prefix("AUTH PLAIN "))
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .unwrap();
        assert_eq!(decoded, b"\0urlmailer\0settings-pass");
    }

    #[tokio::test]
    async fn a_username_in_settings_replaces_the_urls_credentials() {
        let (port, heard) = fake_smtp(ACCEPTING);
        let mut s = smtp_settings(&format!("smtp://urlmailer:url-pass@127.0.0.1:{port}"));
        s.mail.smtp_username = "notify".to_owned();
        s.mail.smtp_password = "settings-pass".into();
        let mailer = Mailer::from_settings(&s).unwrap();
        assert_eq!(
            mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await,
            Delivery::Sent
        );
        // Pooled connections stay open between messages; closing the mailer says QUIT (from
        // a task of this runtime, so wait for the transcript off it).
        mailer.close().await;
        let transcript = tokio::task::spawn_blocking(move || heard.recv())
            .await
            .unwrap()
            .unwrap();
        // base64 of "\0notify\0settings-pass"
        assert!(
            transcript.contains("AUTH PLAIN AG5vdGlmeQBzZXR0aW5ncy1wYXNz"),
            "{transcript}"
        );
    }

    #[tokio::test]
    async fn an_error_reply_is_a_refusal_with_its_code_and_the_summary_names_no_address() {
        for (rcpt, code) in [
            ("550 5.1.1 <hall-km@example.cn>: no such user\r\n", 550),
            (
                "451 4.7.1 <hall-km@example.cn>: greylisted, try later\r\n",
                451,
            ),
        ] {
            let (port, _heard) = fake_smtp(Script {
                greeting: Some("220 fake ESMTP\r\n"),
                rcpt,
            });
            let s = smtp_settings(&format!("smtp://127.0.0.1:{port}"));
            let mailer = Mailer::from_settings(&s).unwrap();
            let delivery = mailer.deliver(ROW, &message(&s, MailEvent::Opened)).await;
            let Delivery::Refused {
                code: Some(got),
                detail,
            } = &delivery
            else {
                panic!("{delivery:?}");
            };
            assert_eq!(*got, code);
            assert!(
                detail.contains("no such user") || detail.contains("greylisted"),
                "{detail}"
            );
            let summary = delivery.summary();
            assert_eq!(summary, format!("refused ({code})"));
            assert!(!summary.contains('@'));
        }
    }

    #[tokio::test]
    async fn a_server_refusing_at_the_greeting_is_a_refusal() {
        let (port, _heard) = fake_smtp(Script {
            greeting: Some("554 5.3.2 not accepting mail\r\n"),
            rcpt: "250 ok\r\n",
        });
        let s = smtp_settings(&format!("smtp://127.0.0.1:{port}"));
        let delivery = Mailer::from_settings(&s)
            .unwrap()
            .deliver(ROW, &message(&s, MailEvent::Opened))
            .await;
        assert!(
            matches!(
                delivery,
                Delivery::Refused {
                    code: Some(554),
                    ..
                }
            ),
            "{delivery:?}"
        );
    }

    #[tokio::test]
    async fn nobody_listening_is_an_outage() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let s = smtp_settings(&format!("smtp://127.0.0.1:{port}"));
        let delivery = Mailer::from_settings(&s)
            .unwrap()
            .deliver(ROW, &message(&s, MailEvent::Opened))
            .await;
        assert!(
            matches!(delivery, Delivery::Unreachable { .. }),
            "{delivery:?}"
        );
        assert_eq!(delivery.summary(), "unreachable");
    }

    #[tokio::test]
    async fn a_connection_dropped_mid_conversation_is_an_outage() {
        let (port, _heard) = fake_smtp(Script {
            greeting: Some("220 fake ESMTP\r\n"),
            rcpt: "",
        });
        let s = smtp_settings(&format!("smtp://127.0.0.1:{port}"));
        let delivery = Mailer::from_settings(&s)
            .unwrap()
            .deliver(ROW, &message(&s, MailEvent::Opened))
            .await;
        assert!(
            matches!(delivery, Delivery::Unreachable { .. }),
            "{delivery:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_an_outage_once_the_timeout_passes() {
        let (port, _heard) = fake_smtp(Script {
            greeting: None,
            rcpt: "",
        });
        let mut s = smtp_settings(&format!("smtp://127.0.0.1:{port}"));
        s.mail.timeout_seconds = 1;
        let started = std::time::Instant::now();
        let delivery = Mailer::from_settings(&s)
            .unwrap()
            .deliver(ROW, &message(&s, MailEvent::Opened))
            .await;
        assert!(
            matches!(delivery, Delivery::Unreachable { .. }),
            "{delivery:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_long_reply_is_cut_on_a_character_boundary() {
        let cut = bounded("拒".repeat(400));
        assert!(cut.len() <= 503 && cut.ends_with('…'));
        assert_eq!(bounded("short".to_owned()), "short");
    }
}
