//! Mail during a run: the server's mail settings for `--mail`, the local SMTP server the `smtp`
//! mode delivers to, and how the outbox stood after the load (drained? how fast? how much?).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Api;
use crate::env::{free_port, r2};
use crate::{Mail, Res};

/// How long the SMTP server may take to accept connections.
const SINK_START: Duration = Duration::from_secs(15);
/// How often the drain is checked: often enough for a tenth-of-a-second drain time, rarely
/// enough not to compete with the worker.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// `python3 -m aiosmtpd` on a loopback port, accepting every message and keeping none
/// (`aiosmtpd.handlers.Sink`); stopped on drop.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
}

impl SmtpSink {
    /// Starts it and waits until it accepts connections; a clear error if it cannot.
    pub fn start(dir: &Path) -> Res<Self> {
        let port = free_port()?;
        let log_path = dir.join("smtp-sink.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &listen])
            .args(["-c", "aiosmtpd.handlers.Sink"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| {
                format!(
                    "--mail smtp needs python3 with aiosmtpd (pip install aiosmtpd): python3: {e}"
                )
            })?;
        let mut sink = Self {
            child,
            port,
            log_path,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = sink.child.try_wait() {
                return Err(format!(
                    "--mail smtp: the local SMTP server (python3 -m aiosmtpd) exited ({status}) \
                     at start; is aiosmtpd installed (pip install aiosmtpd)?\n{}",
                    sink.log()
                ));
            }
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(sink);
            }
            if started.elapsed() > SINK_START {
                return Err(format!(
                    "--mail smtp: the local SMTP server (python3 -m aiosmtpd) did not accept \
                     connections on {listen} within {SINK_START:?}\n{}",
                    sink.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's mail settings for a mode (environment, as `config.rs` reads it).
pub fn server_env(mail: Mail, sink: Option<&SmtpSink>) -> Vec<(&'static str, String)> {
    match (mail, sink) {
        // With no addresses there is nothing to deliver; the worker still polls, as in
        // production.
        (Mail::None | Mail::File, _) => vec![("CROSSPROV_MAIL__TRANSPORT", "file".into())],
        (Mail::Smtp, sink) => vec![
            ("CROSSPROV_MAIL__TRANSPORT", "smtp".into()),
            (
                "CROSSPROV_MAIL__SMTP_URL",
                sink.map(SmtpSink::url).unwrap_or_default(),
            ),
        ],
    }
}

/// `crossprov_mail_sent_total` from the server's `/metrics` (messages this instance delivered).
pub async fn sent_metric(api: &Api) -> Option<u64> {
    let (status, body) = api
        .send(Method::GET, "/metrics", None, None, None)
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("crossprov_mail_sent_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(|n| n as u64)
}

/// The outbox rows in `state`, counted by paging through the admin endpoint.
async fn count_rows(api: &Api, admin: &str, state: &str) -> Res<u64> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("state", state.to_owned()), ("limit", "200".to_owned())];
        if let Some(c) = cursor.take() {
            q.push(("cursor", c));
        }
        let q = serde_urlencoded::to_string(&q).map_err(|e| e.to_string())?;
        let page = api
            .expect(
                Method::GET,
                &format!("/api/v1/admin/outbox?{q}"),
                Some(admin),
                None,
                200,
            )
            .await?;
        count += page["items"].as_array().map(Vec::len).unwrap_or(0) as u64;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(count),
        }
    }
}

async fn any_pending(api: &Api, admin: &str) -> Res<bool> {
    let page = api
        .expect(
            Method::GET,
            "/api/v1/admin/outbox?state=pending&limit=1",
            Some(admin),
            None,
            200,
        )
        .await?;
    Ok(page["items"].as_array().is_some_and(|i| !i.is_empty()))
}

/// How the outbox stood after the load.
#[derive(Debug, Clone)]
pub struct Drained {
    pub mail: Mail,
    /// Seconds from the end of the load until no row was pending (None: not within the bound).
    pub drain_s: Option<f64>,
    pub bound_s: u64,
    /// Seconds from the end of the load until the wait ended (drained or the bound reached).
    pub waited_s: f64,
    pub sent: u64,
    pub failed: u64,
    pub pending: u64,
    /// `crossprov_mail_sent_total` when the load stopped and after the drain.
    pub sent_metric_at_load_end: Option<u64>,
    pub sent_metric_after: Option<u64>,
    /// `.eml` files in the server's outbox directory (file transport).
    pub eml_files: Option<u64>,
}

impl Drained {
    pub fn rows(&self) -> u64 {
        self.sent + self.failed + self.pending
    }

    /// Messages delivered per second after the load stopped, while there was a backlog.
    pub fn after_load_per_s(&self) -> Option<f64> {
        let (Some(a), Some(b)) = (self.sent_metric_at_load_end, self.sent_metric_after) else {
            return None;
        };
        (b > a && self.waited_s > 0.0).then(|| (b - a) as f64 / self.waited_s)
    }

    pub fn json(&self, steps: u64, cycles: u64) -> Value {
        let per = |n: u64| (n > 0).then(|| r2(self.rows() as f64 / n as f64));
        json!({
            "mode": self.mail.as_str(),
            "rows": self.rows(),
            "rows_per_step": per(steps),
            "rows_per_cycle": per(cycles),
            "sent": self.sent,
            "failed": self.failed,
            "pending_at_end": self.pending,
            "drained": self.drain_s.is_some(),
            "drain_s_after_load": self.drain_s.map(r2),
            "drain_bound_s": self.bound_s,
            "waited_s": r2(self.waited_s),
            "sent_per_s_after_load": self.after_load_per_s().map(r2),
            "sent_metric_at_load_end": self.sent_metric_at_load_end,
            "sent_metric_after_drain": self.sent_metric_after,
            "eml_files": self.eml_files,
        })
    }

    pub fn text(&self, steps: u64, cycles: u64) -> String {
        let per = |n: u64| {
            if n == 0 {
                "-".to_owned()
            } else {
                format!("{:.2}", self.rows() as f64 / n as f64)
            }
        };
        let metric = |m: Option<u64>| m.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        let mut t = format!(
            "mail ({}): {} outbox rows ({} per state-changing step, {} per life cycle); \
             sent {}, failed {}, still pending {}\n",
            self.mail.as_str(),
            self.rows(),
            per(steps),
            per(cycles),
            self.sent,
            self.failed,
            self.pending
        );
        if self.mail == Mail::None && self.rows() == 0 {
            return t;
        }
        t.push_str(&match self.drain_s {
            Some(s) => format!(
                "  outbox drained {s:.2} s after the load stopped; crossprov_mail_sent_total {} \
                 when the load stopped, {} after the drain\n",
                metric(self.sent_metric_at_load_end),
                metric(self.sent_metric_after)
            ),
            None => format!(
                "  outbox NOT drained within {} s of the load stopping; crossprov_mail_sent_total \
                 {} when the load stopped, {} at the end\n",
                self.bound_s,
                metric(self.sent_metric_at_load_end),
                metric(self.sent_metric_after)
            ),
        });
        if let Some(r) = self.after_load_per_s() {
            t.push_str(&format!(
                "  after the load: {r:.1} messages/s over {:.1} s\n",
                self.waited_s
            ));
        }
        if let Some(n) = self.eml_files {
            t.push_str(&format!(
                "  {n} .eml files in the server's outbox directory\n"
            ));
        }
        t
    }

    /// What makes the run's mail wrong: undrained, failed rows, rows with no addresses, or
    /// no mail at all when there should be some.
    pub fn problems(&self, backend: &str, cycles: u64) -> Vec<String> {
        let mut p = Vec::new();
        let tag = format!("mail {} on {backend}", self.mail.as_str());
        if self.drain_s.is_none() {
            p.push(format!(
                "{tag}: {} rows still pending {} s after the load",
                self.pending, self.bound_s
            ));
        }
        if self.failed > 0 {
            p.push(format!("{tag}: {} rows failed", self.failed));
        }
        match self.mail {
            Mail::None if self.rows() > 0 => p.push(format!(
                "{tag}: {} outbox rows written although nobody has an address",
                self.rows()
            )),
            Mail::File | Mail::Smtp if cycles > 0 && self.sent == 0 => {
                p.push(format!("{tag}: {cycles} life cycles but no mail sent"))
            }
            _ => {}
        }
        if let Some(n) = self.eml_files.filter(|&n| n != self.sent) {
            p.push(format!(
                "{tag}: {n} .eml files for {} rows marked sent",
                self.sent
            ));
        }
        p
    }
}

/// Waits (at most `bound`) until no outbox row is pending, then counts what was written.
/// `load_ended` is when the last client stopped; `data_dir` is the server's.
pub async fn drain(
    api: &Api,
    admin: &str,
    mail: Mail,
    load_ended: Instant,
    bound: Duration,
    data_dir: &Path,
) -> Res<Drained> {
    let sent_metric_at_load_end = sent_metric(api).await;
    let drain_s = loop {
        if !any_pending(api, admin).await? {
            break Some(load_ended.elapsed().as_secs_f64());
        }
        if load_ended.elapsed() > bound {
            break None;
        }
        actix_web::rt::time::sleep(DRAIN_POLL).await;
    };
    let waited_s = load_ended.elapsed().as_secs_f64();
    let sent_metric_after = sent_metric(api).await;
    let eml_files = (mail == Mail::File).then(|| count_eml(&data_dir.join("outbox")));
    Ok(Drained {
        mail,
        drain_s,
        bound_s: bound.as_secs(),
        waited_s,
        sent: count_rows(api, admin, "sent").await?,
        failed: count_rows(api, admin, "failed").await?,
        pending: count_rows(api, admin, "pending").await?,
        sent_metric_at_load_end,
        sent_metric_after,
        eml_files,
    })
}

fn count_eml(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count() as u64
        })
        .unwrap_or(0)
}
