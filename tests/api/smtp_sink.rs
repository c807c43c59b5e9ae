//! A real SMTP server for the mail tests (`tests/support/smtp_sink.py`, on aiosmtpd) on a
//! loopback port, and the messages it kept, parsed. The tests speak to it exactly as the
//! service would to a mail relay: no stub transport anywhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mailparse::MailHeaderMap;

use crate::helpers::eventually;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");

/// A running (or stopped) sink: its port stays the same across `stop` and `start_again`, so
/// the service keeps one `mail.smtp_url` through an outage.
pub struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn smtp_required() -> bool {
    std::env::var("CROSSPROV_TEST_SMTP_REQUIRED").is_ok_and(|v| v == "1" || v == "true")
}

/// Says once per run, past the harness's capture, that the SMTP tests did not run.
fn skipped_notice(why: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: SMTP mail tests ({why}); python3 -m pip install aiosmtpd to run them\n"
        );
    });
}

/// A loopback port below the kernel's ephemeral range: while the sink is stopped, no socket
/// another test binds to port 0 (nor any outgoing connection) can take it.
fn quiet_port() -> u16 {
    use rand::Rng;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(20000..ephemeral_low.max(20001));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral_low}");
}

impl SmtpSink {
    /// A sink on a fresh port, listening when this returns; None when aiosmtpd is not
    /// installed and `CROSSPROV_TEST_SMTP_REQUIRED` is not set (CI sets it).
    pub async fn start() -> Option<Self> {
        let mut sink = Self {
            port: quiet_port(),
            dir: tempfile::tempdir().expect("sink dir"),
            child: None,
        };
        match sink.spawn().await {
            Ok(()) => Some(sink),
            Err(why) if smtp_required() => {
                panic!("CROSSPROV_TEST_SMTP_REQUIRED is set but the SMTP sink cannot start: {why}")
            }
            Err(why) => {
                skipped_notice(&why);
                None
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let ready = self.dir.path().join("ready");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::File::create(self.dir.path().join("sink.log")).expect("sink log");
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("python3 does not start: {e}"))?;
        let start = std::time::Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default();
                return Err(format!("smtp_sink.py exited {status}: {}", log.trim()));
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("smtp_sink.py did not listen on {}", self.port));
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    /// `mail.smtp_url` for the service.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, as a crash would): connections refused from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and folder, keeping what it received before.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the sink is running");
        self.spawn().await.expect("the sink starts again");
    }

    fn marker(&self, name: &str, on: bool) {
        let path = self.dir.path().join(name);
        if on {
            std::fs::write(path, b"").expect("marker");
        } else {
            let _ = std::fs::remove_file(path);
        }
    }

    /// While on, every message is refused with a 550 reply.
    pub fn refuse(&self, on: bool) {
        self.marker("refuse", on);
    }

    /// While on, a message that reached the end of DATA gets no reply (the sender waits);
    /// once off it is answered 451, so it never counts as received.
    pub fn hang(&self, on: bool) {
        self.marker("hang", on);
    }

    /// Every message accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Mail> {
        read_messages(&self.dir.path().join("received"))
    }

    /// The messages held at DATA while hanging (never received).
    pub fn hung(&self) -> Vec<Mail> {
        read_messages(&self.dir.path().join("hung"))
    }

    /// The received messages once `done` holds for them; fails after `within`, listing them.
    pub async fn received_when(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Mail]) -> bool,
    ) -> Vec<Mail> {
        eventually(within, what, || {
            let mails = self.received();
            let ok = done(&mails);
            async move {
                if ok {
                    Ok(mails)
                } else {
                    Err(summary(&mails))
                }
            }
        })
        .await
    }
}

/// The messages (`*.eml`) of a folder in name order, each parsed; a file the writer had not
/// finished would fail to parse here, which is how the tests see that writes are atomic.
pub fn read_messages(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files.iter().map(|f| Mail::from_file(f)).collect()
}

/// One line per message: event, recipients, order, for failure messages.
pub fn summary(mails: &[Mail]) -> String {
    let lines: Vec<String> = mails
        .iter()
        .map(|m| format!("{} → {:?} ({})", m.event, m.recipients, m.work_order))
        .collect();
    format!("{} messages: [{}]", mails.len(), lines.join("; "))
}

/// A message as a mail client shows it: headers decoded (RFC 2047), parts decoded from
/// their transfer encoding and charset.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub raw: Vec<u8>,
    /// Who it was delivered to: the SMTP envelope's recipients when it came through the
    /// sink, the `To` addresses for a file the file transport wrote; lowercase.
    pub recipients: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub work_order: String,
    pub event: String,
    /// The `text/plain` part, decoded ("" when there is none).
    pub text: String,
    /// The `text/html` part, decoded ("" when there is none).
    pub html: String,
    /// The MIME types of the leaf parts, in order.
    pub part_types: Vec<String>,
}

impl Mail {
    pub fn from_file(path: &Path) -> Self {
        let raw = std::fs::read(path).expect("message file");
        let mut mail = Self::parse(&raw);
        mail.file = path.to_path_buf();
        mail
    }

    pub fn parse(raw: &[u8]) -> Self {
        let parsed = mailparse::parse_mail(raw).unwrap_or_else(|e| {
            panic!(
                "not an RFC 5322 message ({e}): {}",
                String::from_utf8_lossy(raw)
            )
        });
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| (h.get_key(), h.get_value()))
            .collect();
        let first = |name: &str| parsed.headers.get_first_value(name).unwrap_or_default();
        let to = first("To");
        let envelope = first("X-Sink-Rcpt-To");
        let recipients = if envelope.is_empty() {
            addresses(&to)
        } else {
            envelope
                .split(',')
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty())
                .collect()
        };
        let mut text = String::new();
        let mut html = String::new();
        let mut part_types = vec![];
        collect_parts(&parsed, &mut text, &mut html, &mut part_types);
        Self {
            file: PathBuf::new(),
            raw: raw.to_vec(),
            recipients,
            from: first("From"),
            to,
            subject: first("Subject"),
            message_id: first("Message-ID").trim().to_owned(),
            work_order: first("X-Crossprov-Work-Order").trim().to_owned(),
            event: first("X-Crossprov-Event").trim().to_owned(),
            headers,
            text,
            html,
            part_types,
        }
    }

    /// Every value of the header `name` (case-insensitive), decoded.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one recipient of this message (the contract: one row, so one message, per
    /// recipient).
    #[track_caller]
    pub fn recipient(&self) -> &str {
        assert_eq!(
            self.recipients.len(),
            1,
            "one recipient per message: {:?} in {}",
            self.recipients,
            self.file.display()
        );
        &self.recipients[0]
    }

    /// Everything a reader sees: subject, text and HTML, decoded.
    pub fn readable(&self) -> String {
        format!("{}\n{}\n{}", self.subject, self.text, self.html)
    }
}

/// The addresses of an address-list header, lowercase.
fn addresses(header: &str) -> Vec<String> {
    let Ok(list) = mailparse::addrparse(header) else {
        return vec![];
    };
    list.iter()
        .flat_map(|a| match a {
            mailparse::MailAddr::Single(s) => vec![s.addr.to_lowercase()],
            mailparse::MailAddr::Group(g) => {
                g.addrs.iter().map(|s| s.addr.to_lowercase()).collect()
            }
        })
        .collect()
}

fn collect_parts(
    part: &mailparse::ParsedMail<'_>,
    text: &mut String,
    html: &mut String,
    types: &mut Vec<String>,
) {
    if part.subparts.is_empty() {
        let mime = part.ctype.mimetype.to_lowercase();
        let body = part.get_body().expect("a decodable part");
        match mime.as_str() {
            "text/plain" => text.push_str(&body),
            "text/html" => html.push_str(&body),
            _ => {}
        }
        types.push(mime);
    } else {
        for sub in &part.subparts {
            collect_parts(sub, text, html, types);
        }
    }
}
