//! The world around a run: a temp directory, a scratch PostgreSQL database, the `crossprov`
//! binary run as a child process (serve, user add, audit verify), and /proc readings.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossprov::storage::pg_url;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;

use crate::client::Api;
use crate::mail::{self, SmtpSink};
use crate::{Backend, Mail, Res, ServerArgs};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Every user the bench makes has this password.
pub const PASSWORD: &str = "bench-passphrase-2026";

pub fn pg_admin_url() -> String {
    std::env::var("CROSSPROV_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into())
}

/// Eight hex digits, different every call.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// A directory under the system temp dir, removed on drop unless kept.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(tag: &str, keep: bool) -> Res<Self> {
        let path = std::env::temp_dir().join(format!(
            "crossprov-bench-{tag}-{}-{}",
            std::process::id(),
            short_id()
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// True when the PostgreSQL admin URL answers.
pub fn pg_reachable() -> Result<(), String> {
    diesel::PgConnection::establish(&pg_admin_url())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A PostgreSQL database made for one run, dropped on drop unless kept.
pub struct PgDb {
    pub name: String,
    pub url: String,
    keep: bool,
}

impl PgDb {
    pub fn create(tag: &str, keep: bool) -> Res<Self> {
        let admin = pg_admin_url();
        let mut conn = diesel::PgConnection::establish(&admin)
            .map_err(|e| format!("PostgreSQL at {}: {e}", pg_url::redacted(&admin)))?;
        let name = format!("crossprov_bench_{tag}_{}", short_id());
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        // The same server reached the same way: TLS parameters and all.
        let url = pg_url::naming_database(&admin, &name).ok_or_else(|| {
            let shown = pg_url::redacted(&admin);
            format!("cannot derive a database URL from {shown}")
        })?;
        Ok(Self { url, name, keep })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if self.keep {
            let shown = pg_url::redacted(&self.url);
            eprintln!("kept PostgreSQL database {} ({shown})", self.name);
            return;
        }
        if let Ok(mut conn) = diesel::PgConnection::establish(&pg_admin_url()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The `crossprov` binary: explicit, or next to this one in the same target directory.
pub fn server_bin(args: &ServerArgs) -> Res<PathBuf> {
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("locating this binary: {e}"))?
            .parent()
            .ok_or("this binary has no parent directory")?
            .join("crossprov"),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it (cargo build [--release] --bin crossprov) or pass --server-bin",
            bin.display()
        ))
    }
}

/// A fresh database plus a temp directory for one run; both go away on drop.
pub struct BenchEnv {
    pub backend: Backend,
    pub bin: PathBuf,
    pub database_url: String,
    pub args: ServerArgs,
    // Dropped after any server (declared later in callers), so the database outlives it.
    pg: Option<PgDb>,
    pub dir: TempDir,
}

impl BenchEnv {
    /// Makes the database and the first admin (`crossprov user add`, as an operator would).
    pub fn prepare(backend: Backend, args: &ServerArgs, tag: &str) -> Res<Self> {
        let bin = server_bin(args)?;
        let dir = TempDir::new(tag, args.keep)?;
        let pg = match backend {
            Backend::Postgres => Some(PgDb::create(tag, args.keep)?),
            Backend::Sqlite => None,
        };
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("crossprov.db").display()),
        };
        write_kek(dir.path())?;
        let env = Self {
            backend,
            bin,
            database_url,
            args: args.clone(),
            pg,
            dir,
        };
        env.user_add("admin", "admin", &[])?;
        Ok(env)
    }

    /// An environment around an existing database (the audit measurement).
    pub fn existing(database_url: &str, args: &ServerArgs, tag: &str) -> Res<Self> {
        let backend = match crossprov::storage::DatabaseUrl::parse(database_url).backend() {
            crossprov::storage::Backend::Postgres => Backend::Postgres,
            crossprov::storage::Backend::Sqlite => Backend::Sqlite,
        };
        let dir = TempDir::new(tag, args.keep)?;
        // A database a server has sealed values in needs that server's KEK: name it with
        // --server-env CROSSPROV_CRYPTO__KEK_FILE=… (a fresh one serves a database seeded here).
        write_kek(dir.path())?;
        Ok(Self {
            backend,
            bin: server_bin(args)?,
            database_url: database_url.to_owned(),
            args: args.clone(),
            pg: None,
            dir,
        })
    }

    pub fn pg_name(&self) -> Option<&str> {
        self.pg.as_ref().map(|p| p.name.as_str())
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_remove("RUST_LOG")
            .env_remove("CROSSPROV_CONFIG")
            .env("CROSSPROV_DATA_DIR", self.dir.path())
            // Every server of a run (and the CLI) shares one KEK, as instances on one database
            // must; PostgreSQL refuses to start without one given.
            .env(
                "CROSSPROV_CRYPTO__KEK_FILE",
                self.dir.path().join("kek.hex"),
            )
            .env("CROSSPROV_LOG__LEVEL", &self.args.server_log_level);
        cmd
    }

    /// `crossprov user add … --password-stdin` straight into the database.
    pub fn user_add(&self, username: &str, role: &str, extra: &[&str]) -> Res<()> {
        let mut child = self
            .command()
            .env("CROSSPROV_LOG__LEVEL", "warn")
            .args(["user", "add", "--username", username, "--role", role])
            .args(extra)
            .args(["--password-stdin", "--database-url", &self.database_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{PASSWORD}").map_err(|e| format!("user add: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("user add: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "crossprov user add {username}: {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `crossprov audit verify`: (report, seconds it took).
    pub fn verify_chain(&self) -> Res<(ChainReport, f64)> {
        let started = Instant::now();
        let out = self
            .command()
            .env("CROSSPROV_LOG__LEVEL", "warn")
            .args(["audit", "verify", "--database-url", &self.database_url])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("audit verify: {e}"))?;
        let secs = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| {
            format!(
                "audit verify printed no JSON ({e}): {} {}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        Ok((
            ChainReport {
                ok: out.status.success() && v["ok"] == Value::Bool(true),
                checked: v["checked"].as_u64().unwrap_or(0),
                raw: v,
            },
            secs,
        ))
    }

    /// The contract requires a hall's email, so `--mail none` takes the halls' addresses away
    /// here, in the database, after the setup made them; the server looks addresses up at each
    /// step, so from then on it finds none. Returns the halls changed.
    pub fn clear_hall_emails(&self) -> Res<usize> {
        use diesel::RunQueryDsl;
        const CLEAR: &str = "UPDATE halls SET email = NULL";
        let shown = pg_url::redacted(&self.database_url);
        let fail = |e: String| format!("clearing the halls' emails ({shown}): {e}");
        match self.backend {
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&self.database_url)
                    .map_err(|e| fail(e.to_string()))?;
                diesel::sql_query(CLEAR)
                    .execute(&mut c)
                    .map_err(|e| fail(e.to_string()))
            }
            Backend::Sqlite => {
                let path = self
                    .database_url
                    .strip_prefix("sqlite://")
                    .unwrap_or(&self.database_url);
                let mut c =
                    diesel::SqliteConnection::establish(path).map_err(|e| fail(e.to_string()))?;
                c.batch_execute("PRAGMA busy_timeout = 10000")
                    .map_err(|e| fail(e.to_string()))?;
                diesel::sql_query(CLEAR)
                    .execute(&mut c)
                    .map_err(|e| fail(e.to_string()))
            }
        }
    }

    /// Starts `crossprov serve` on a free loopback port (and, for `--mail smtp`, the SMTP
    /// server it delivers to); call `Server::wait_ready` next.
    pub fn start_server(&self, extra_env: &[(&str, String)]) -> Res<Server> {
        let sink = match self.args.mail {
            Mail::Smtp => Some(SmtpSink::start(self.dir.path())?),
            Mail::None | Mail::File => None,
        };
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log_path = self.dir.path().join(format!("server-{port}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut cmd = self.command();
        // Log in once per user and keep the token for the whole run.
        cmd.env("CROSSPROV_AUTH__TOKEN_TTL_SECONDS", "86400");
        for (k, v) in mail::server_env(self.args.mail, sink.as_ref()) {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        for (k, v) in &self.args.server_env {
            cmd.env(k, v);
        }
        let child = cmd
            .args([
                "serve",
                "--listen",
                &listen,
                "--database-url",
                &self.database_url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        Ok(Server {
            pid: child.id(),
            child,
            base: format!("http://{listen}"),
            log_path,
            _sink: sink,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ChainReport {
    pub ok: bool,
    pub checked: u64,
    pub raw: Value,
}

pub fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// The server child; killed on drop (and its SMTP server after it).
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub log_path: PathBuf,
    // Declared last: dropped after `Drop::drop` has stopped the server.
    _sink: Option<SmtpSink>,
}

impl Server {
    /// Polls `/readyz` until 200 (migrations done, database answering).
    pub async fn wait_ready(&mut self, api: &Api, timeout: Duration) -> Res<()> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited ({status}) before it was ready:\n{}",
                    self.log_tail(30)
                ));
            }
            if let Ok((200, _)) = api
                .send(reqwest::Method::GET, "/readyz", None, None, None)
                .await
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "the server was not ready after {timeout:?}:\n{}",
                    self.log_tail(30)
                ));
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of the log at WARN or ERROR (text format), at most `max`.
    pub fn log_warnings(&self, max: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .take(max)
            .map(|l| l.chars().take(400).collect())
            .collect()
    }

    pub fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid, field)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM, …).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// utime + stime of a process (or "self"), in clock ticks (USER_HZ, 100 on Linux).
pub fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Machine-wide CPU counters from /proc/stat: (busy, iowait, total), in ticks.
pub fn machine_cpu() -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let iowait = get(4);
    Some((busy, iowait, busy + get(3) + iowait))
}

pub const TICKS_PER_SEC: f64 = 100.0;

/// How busy the machine is with nothing of ours running: % of all cores over `over`.
/// Other work on the machine (a compiler, another benchmark) skews every number here.
pub fn machine_busy_pct(over: Duration) -> Option<f64> {
    let a = machine_cpu()?;
    std::thread::sleep(over);
    let b = machine_cpu()?;
    let total = b.2.saturating_sub(a.2).max(1) as f64;
    Some(r1(b.0.saturating_sub(a.0) as f64 / total * 100.0))
}

/// Measures idleness and warns (on standard error) when the machine is not idle.
pub fn idle_check(what: &str) -> Option<f64> {
    let busy = machine_busy_pct(Duration::from_secs(1));
    if let Some(b) = busy.filter(|&b| b > 15.0) {
        eprintln!(
            "WARNING: the machine is {b:.0}% busy before the {what} run (other processes); \
             its numbers will be low"
        );
    }
    busy
}

/// CPU readings at one moment: server, this process, the machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    at: Instant,
    server: Option<u64>,
    bench: Option<u64>,
    machine: Option<(u64, u64, u64)>,
}

impl CpuSnap {
    pub fn take(server_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            server: proc_cpu_ticks(&server_pid.to_string()),
            bench: proc_cpu_ticks("self"),
            machine: machine_cpu(),
        }
    }

    /// Where the CPU went between two snapshots, in % of one core (server, bench) and % of
    /// the whole machine (busy, iowait).
    pub fn usage(&self, later: &CpuSnap) -> Value {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => {
                Some(r1(b.saturating_sub(a) as f64 / TICKS_PER_SEC / wall * 100.0))
            }
            _ => None,
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (busy, iowait, other) = match (self.machine, later.machine) {
            (Some(a), Some(b)) => {
                let total = b.2.saturating_sub(a.2).max(1) as f64;
                let busy = b.0.saturating_sub(a.0) as f64;
                let server = match (self.server, later.server) {
                    (Some(x), Some(y)) => y.saturating_sub(x) as f64,
                    _ => 0.0,
                };
                let bench = match (self.bench, later.bench) {
                    (Some(x), Some(y)) => y.saturating_sub(x) as f64,
                    _ => 0.0,
                };
                (
                    Some(r1(busy / total * 100.0)),
                    Some(r1(b.1.saturating_sub(a.1) as f64 / total * 100.0)),
                    // Everything else busy (the database server's processes, the kernel, …),
                    // in % of one core like the two above.
                    Some(r1((busy - server - bench).max(0.0) / total
                        * 100.0
                        * cores as f64)),
                )
            }
            _ => (None, None, None),
        };
        serde_json::json!({
            "server_pct_of_one_core": pct(self.server, later.server),
            "bench_pct_of_one_core": pct(self.bench, later.bench),
            "other_pct_of_one_core": other,
            "machine_busy_pct": busy,
            "machine_iowait_pct": iowait,
            "cores": cores,
        })
    }
}

pub fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Samples the server's VmRSS every 200 ms until `stop` is set: (min, avg, max) in KiB.
pub async fn sample_rss(pid: u32, stop: &std::cell::Cell<bool>) -> Vec<u64> {
    let mut samples = Vec::new();
    while !stop.get() {
        if let Some(kib) = proc_status_kib(pid, "VmRSS") {
            samples.push(kib);
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    samples
}

pub fn rss_summary(samples: &[u64]) -> Value {
    let n = samples.len().max(1) as f64;
    serde_json::json!({
        "samples": samples.len(),
        "min_kib": samples.iter().min(),
        "avg_kib": (samples.iter().sum::<u64>() as f64 / n).round() as u64,
        "max_kib": samples.iter().max(),
    })
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_else(|| "?".into())
}

/// `pgbench`: explicit, on PATH, or under /usr/lib/postgresql/*/bin (newest version first).
pub fn find_pgbench(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("pgbench");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let p = e.path().join("bin/pgbench");
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// A fresh key-encryption key in `dir/kek.hex` (mode 0600), unless one is there.
fn write_kek(dir: &std::path::Path) -> Res<()> {
    use rand::RngCore;
    let path = dir.join("kek.hex");
    if path.exists() {
        return Ok(());
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(hex::encode(key).as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
