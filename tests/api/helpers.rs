//! Spawns the real application on port 0 against a fresh database (a SQLite file, or a
//! PostgreSQL database created for the test and dropped after), and talks to it over HTTP.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crossprov::config::Settings;
use crossprov::domain::text::Text;
use crossprov::service::users::NewUser;
use crossprov::startup::Application;
use crossprov::storage::pg_url;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

/// The contract's codes, named through the crate root (wherever the enum itself lives).
pub use crossprov::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

/// Runs a scenario once per backend, as `<name>::sqlite` and `<name>::postgres`.
/// `on_both_backends!(with SETTINGS: …)` starts each app with the settings function
/// `SETTINGS` (a `fn(&mut Settings)` of the calling module) applied.
#[macro_export]
macro_rules! on_both_backends {
    (with $settings:ident: $($name:ident),* $(,)?) => {$(
        $crate::backend_tests!($name, None, $settings);
    )*};
    ($($name:ident),* $(,)?) => {$(
        $crate::backend_tests!($name, None);
    )*};
}

/// A table of scenarios, each declaring the code it provokes: run on both backends like
/// `on_both_backends!`, each fails unless it asserted a problem with its code, and `$table`
/// holds the declarations, so a test can walk `ErrorCode::iter()` against them.
/// `provokes!(TABLE with SETTINGS { … })` starts each app with the settings function
/// `SETTINGS` (a `fn(&mut Settings)` of the calling module) applied.
#[macro_export]
macro_rules! provokes {
    ($table:ident { $($code:ident => [$($name:ident),+ $(,)?]),+ $(,)? }) => {
        pub const $table: &[($crate::helpers::ErrorCode, &str)] =
            &[$($(($crate::helpers::ErrorCode::$code, stringify!($name)),)+)+];
        $($(
            $crate::backend_tests!($name, Some($crate::helpers::ErrorCode::$code));
        )+)+
    };
    ($table:ident with $settings:ident { $($code:ident => [$($name:ident),+ $(,)?]),+ $(,)? }) => {
        pub const $table: &[($crate::helpers::ErrorCode, &str)] =
            &[$($(($crate::helpers::ErrorCode::$code, stringify!($name)),)+)+];
        $($(
            $crate::backend_tests!($name, Some($crate::helpers::ErrorCode::$code), $settings);
        )+)+
    };
}

/// The two tests of one scenario (see `run`), on apps with `$settings` applied when given.
#[macro_export]
macro_rules! backend_tests {
    ($name:ident, $declared:expr) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let backend = $crate::helpers::Backend::Sqlite;
                $crate::helpers::run(super::$name, backend, $declared).await;
            }
            #[actix_web::test]
            async fn postgres() {
                let backend = $crate::helpers::Backend::Postgres;
                $crate::helpers::run(super::$name, backend, $declared).await;
            }
        }
    };
    ($name:ident, $declared:expr, $settings:ident) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let backend = $crate::helpers::Backend::Sqlite;
                let settings = std::sync::Arc::new(super::$settings);
                $crate::helpers::run_with(super::$name, backend, $declared, settings).await;
            }
            #[actix_web::test]
            async fn postgres() {
                let backend = $crate::helpers::Backend::Postgres;
                let settings = std::sync::Arc::new(super::$settings);
                $crate::helpers::run_with(super::$name, backend, $declared, settings).await;
            }
        }
    };
}

/// Runs one scenario on a fresh app of `backend` (when that backend is there) and, when it
/// declares a code, fails unless one of its problem assertions was that code.
pub async fn run<F, Fut>(scenario: F, backend: Backend, declared: Option<ErrorCode>)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(app) = spawn_app(backend).await {
        run_on(app, scenario, declared).await;
    }
}

/// As `run`, on an app whose settings `configure` adjusts.
pub async fn run_with<F, Fut>(
    scenario: F,
    backend: Backend,
    declared: Option<ErrorCode>,
    configure: Configure,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(app) = spawn_app_with(backend, configure).await {
        run_on(app, scenario, declared).await;
    }
}

pub async fn run_on<F, Fut>(app: TestApp, scenario: F, declared: Option<ErrorCode>)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let provoked = app.provoked.clone();
    scenario(app).await;
    if let Some(code) = declared {
        let seen = provoked.lock().expect("provoked codes").clone();
        assert!(
            seen.contains(&code),
            "declares {} but asserted only {:?}",
            code.as_str(),
            seen.iter().map(|c| c.as_str()).collect::<Vec<_>>()
        );
    }
}

fn pg_admin_url() -> String {
    std::env::var("CROSSPROV_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn pg_required() -> bool {
    std::env::var("CROSSPROV_TEST_PG_REQUIRED").is_ok_and(|v| v == "1" || v == "true")
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Says once per run, past the test harness's output capture (a direct write to stderr, not
/// `eprintln!`), that the PostgreSQL half of the suite did not run.
fn skipped_notice(url: &str, why: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: PostgreSQL tests (unreachable at {url}: {why}); set CROSSPROV_TEST_PG_URL to run them\n"
        );
    });
}

/// Runs `sql` as the PostgreSQL superuser the tests connect as (on the admin database).
pub fn pg_admin_execute(sql: &str) {
    let mut conn = diesel::PgConnection::establish(&pg_admin_url()).expect("PostgreSQL admin");
    conn.batch_execute(sql).expect("admin SQL");
}

/// A PostgreSQL database made for one test, dropped when the test ends.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// A fresh database, or None when PostgreSQL is not there (and not required).
    pub fn create() -> Option<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin = pg_admin_url();
        let mut conn = match diesel::PgConnection::establish(&admin) {
            Ok(c) => c,
            Err(e) if pg_required() => panic!(
                "PostgreSQL is required (CROSSPROV_TEST_PG_REQUIRED) but unreachable at {}: {e}",
                pg_url::redacted(&admin)
            ),
            Err(e) => {
                skipped_notice(&pg_url::redacted(&admin), &e.to_string());
                return None;
            }
        };
        let name = format!(
            "crossprov_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        // Another database on the same server, reached the same way (`sslmode` and all).
        let url = pg_url::naming_database(&admin, &name).expect("a PostgreSQL URL");
        Some(Self { url, name })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&pg_admin_url()) {
            let _ = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: awc::Client,
    pub database_url: String,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// Settings changes this app (and `another_instance`) was started with.
    configure: Configure,
    /// The running service, whose clock `advance_clock` moves; None for a `serve` process
    /// the test started (see `TestApp::of_process`).
    services: Option<crossprov::service::Services>,
    /// The codes of the problems asserted on this app's replies (see `run`).
    provoked: Provoked,
    /// The client side of HTTPS, for an app serving it (see `spawn_app_over_tls`).
    tls: Option<ClientTls>,
    _pg: Option<PgDatabase>,
}

/// How the test client talks to an app serving HTTPS.
pub type ClientTls = Arc<rustls::ClientConfig>;

type Provoked = Arc<Mutex<Vec<ErrorCode>>>;

/// A change to the test settings, applied before the app starts.
pub type Configure = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// A response: status, headers, and the body parsed as JSON (Null when not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
    provoked: Provoked,
}

/// The status the contract gives each code (`api.md`'s table; the 405 and the 5xx as the
/// service answers them), written here once rather than read from the service's own map.
pub fn contract_status(code: ErrorCode) -> u16 {
    use ErrorCode::*;
    match code {
        InvalidRequest | InvalidIdempotencyKey => 400,
        Unauthenticated => 401,
        Forbidden
        | ClientCertificateRequired
        | PasswordChangeRequired
        | SecondApproverRequired
        | CsrfRejected => 403,
        NotFound => 404,
        MethodNotAllowed => 405,
        InvalidState | AlreadyExists | IdempotencyKeyInFlight => 409,
        VersionConflict => 412,
        PayloadTooLarge => 413,
        UnsupportedMediaType => 415,
        InvalidMsisdn | InvalidIdNumber | InvalidDocument | InvalidProvince | InvalidCity
        | UnknownHall | InvalidKey | BadSignature | UnknownKey | RevokedKey | ClaimsMismatch
        | InvalidResult | StaleResult | ReplayedResult | MissingEvidence | NameMismatch
        | OutcomeNotMatch | HallDeactivated | InvalidField | IdempotencyKeyReused => 422,
        RateLimited => 429,
        Shredded => 410,
        Internal | EvidenceCorrupted => 500,
        Unavailable | StorageFull => 503,
    }
}

/// A reply checked to be a problem; `at` checks the member `field` too.
pub struct Problem<'a>(&'a Reply);

impl<'a> Problem<'a> {
    /// The problem names `field`.
    #[track_caller]
    pub fn at(self, field: &str) -> &'a Reply {
        assert_eq!(self.0.body["field"], field, "field of {}", self.0.body);
        self.0
    }
}

impl std::ops::Deref for Problem<'_> {
    type Target = Reply;
    fn deref(&self) -> &Reply {
        self.0
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The `Retry-After` seconds this reply carries (it must carry them).
    pub fn retry_after(&self) -> i64 {
        self.header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds")
    }

    /// Asserts this reply is the problem `code`: the contract's status for it, served as
    /// `application/problem+json`, with every member the contract names (`type`, `title`,
    /// `status`, `code`, `detail`).
    #[track_caller]
    pub fn problem(&self, code: ErrorCode) -> Problem<'_> {
        let status = contract_status(code);
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code.as_str())),
            "expected {status} {}, got {} {}",
            code.as_str(),
            self.status,
            self.body
        );
        self.assert_problem_members();
        self.provoked.lock().expect("provoked codes").push(code);
        Problem(self)
    }

    /// Asserts this reply is a problem document, whatever its code.
    #[track_caller]
    pub fn assert_problem_members(&self) {
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{} {}",
            self.status,
            self.body
        );
        for member in ["type", "title", "code", "detail"] {
            assert!(
                self.body[member].as_str().is_some_and(|s| !s.is_empty()),
                "problem without `{member}`: {}",
                self.body
            );
        }
        assert_eq!(self.body["status"], json!(self.status), "{}", self.body);
    }

    /// The `items` of a 200 list.
    #[track_caller]
    pub fn items(&self) -> Vec<Value> {
        self.assert_status(200)["items"]
            .as_array()
            .expect("items")
            .clone()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected reply: {}", self.body);
        &self.body
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, std::sync::Arc::new(|_: &mut Settings| {})).await
}

/// An app whose settings `configure` adjusts (a smaller limit, another evidence store…).
pub async fn spawn_app_with(backend: Backend, configure: Configure) -> Option<TestApp> {
    spawn(backend, configure, None).await
}

/// An app serving HTTPS: `configure` names its certificate files (`tls.*`); its `client`
/// (and that of `another_instance`) speaks TLS with `client_tls`, its `base` is https://.
pub async fn spawn_app_over_tls(
    backend: Backend,
    configure: Configure,
    client_tls: ClientTls,
) -> Option<TestApp> {
    spawn(backend, configure, Some(client_tls)).await
}

async fn spawn(backend: Backend, configure: Configure, tls: Option<ClientTls>) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = match backend {
        Backend::Postgres => Some(PgDatabase::create()?),
        Backend::Sqlite => None,
    };
    let database_url = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("crossprov.db").display()),
    };
    // Instances sharing a PostgreSQL database must be given one KEK (the embedded default of
    // a KEK generated per data_dir is refused there): the first app's, in its data_dir,
    // where the embedded default would put it, so the CLI finds it there too.
    let configure: Configure = match backend {
        Backend::Postgres => {
            let kek = dir.path().join("kek.hex");
            let text = format!("{}\n", hex::encode(rand_bytes()));
            std::fs::write(&kek, text).expect("write the test KEK");
            let given = configure;
            Arc::new(move |s: &mut Settings| {
                s.crypto.kek_file = kek.display().to_string();
                given(s);
            })
        }
        Backend::Sqlite => configure,
    };
    let app = start(backend, database_url, dir, pg, configure, tls);
    let admin = NewUser {
        username: Text::new(ADMIN).expect("a short name"),
        password: Text::new(PASSWORD).expect("a short password"),
        role: Text::new("admin").expect("a role"),
        province: None,
        hall_id: None,
        email: None,
    };
    app.1.add_cli_user(&admin).expect("seed admin");
    Some(app.0)
}

/// 32 random bytes (a test KEK).
pub fn rand_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; 32];
    SystemRandom::new().fill(&mut out).expect("random bytes");
    out
}

/// Starts an instance on `database_url` with its own data directory (and so its own key).
fn start(
    backend: Backend,
    database_url: String,
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
    configure: Configure,
    tls: Option<ClientTls>,
) -> (TestApp, crossprov::service::Services) {
    let mut settings = Settings::defaults().expect("default settings");
    settings.data_dir = dir.path().to_path_buf();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.database.url = database_url.clone().into();
    settings.database.pool_size = 4;
    // Scenarios claim and submit within milliseconds: the speed rule would flag every result.
    // The quality tests that mean to trip it set their own threshold.
    settings.quality.min_seconds_claim_to_submit = 0;
    configure(&mut settings);
    let app = Application::build(settings).expect("application starts");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://127.0.0.1:{}", app.port());
    let services = app.services().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = client(tls.clone());
    (
        TestApp {
            base,
            client,
            database_url,
            backend,
            dir,
            configure,
            services: Some(services.clone()),
            provoked: Provoked::default(),
            tls,
            _pg: pg,
        },
        services,
    )
}

/// A test client: plain HTTP, or TLS as `tls` says.
pub fn client(tls: Option<ClientTls>) -> awc::Client {
    let builder = awc::Client::builder().timeout(std::time::Duration::from_secs(60));
    match tls {
        Some(config) => builder
            .connector(awc::Connector::new().rustls_0_23(config))
            .finish(),
        None => builder.finish(),
    }
}

impl TestApp {
    /// A client of a `crossprov serve` process the test started, listening at `base`, on
    /// `database_url`, keeping its files in `dir`; `pg` is dropped with it.
    pub fn of_process(
        base: String,
        backend: Backend,
        database_url: String,
        dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
    ) -> TestApp {
        TestApp {
            base,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .finish(),
            database_url,
            backend,
            dir,
            configure: Arc::new(|_: &mut Settings| {}),
            services: None,
            provoked: Provoked::default(),
            tls: None,
            _pg: pg,
        }
    }

    /// A second instance sharing this one's database, as behind a load balancer.
    pub fn another_instance(&self) -> TestApp {
        self.another_instance_with(Arc::new(|_: &mut Settings| {}))
    }

    /// As `another_instance`, with `extra` applied to its settings last (another KEK…).
    pub fn another_instance_with(&self, extra: Configure) -> TestApp {
        // Instances on one database share its KEK: on SQLite the one this app generated.
        let kek = self.dir.path().join("kek.hex");
        let given = self.configure.clone();
        let configure: Configure = Arc::new(move |s: &mut Settings| {
            if s.crypto.kek_file.is_empty() {
                s.crypto.kek_file = kek.display().to_string();
            }
            given(s);
            extra(s);
        });
        start(
            self.backend,
            self.database_url.clone(),
            tempfile::tempdir().expect("tempdir"),
            None,
            configure,
            self.tls.clone(),
        )
        .0
    }

    async fn send(
        &self,
        mut req: awc::ClientRequest,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let sent = match body {
            Some(b) => req.send_body(b),
            None => req.send(),
        };
        self.reply(sent).await
    }

    /// Waits for the response and reads it whole.
    pub async fn reply(&self, sent: awc::SendClientRequest) -> Reply {
        let mut res = sent.await.expect("request sent");
        let raw = res
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .expect("body read")
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
            raw,
            provoked: self.provoked.clone(),
        }
    }

    /// The service's clock, in seconds since the epoch (moved by `advance_clock`).
    pub fn server_secs(&self) -> i64 {
        self.services
            .as_ref()
            .expect("an in-process app")
            .now()
            .timestamp()
    }

    /// Moves the service's clock `seconds` ahead (behind, when negative): what a test that
    /// would otherwise wait on real time does instead.
    pub fn advance_clock(&self, seconds: i64) {
        self.services
            .as_ref()
            .expect("an in-process app: a process's clock moves by POST /api/v1/admin/clock")
            .clock()
            .advance(seconds);
    }

    /// Caps the app's SQLite database at `pages` pages (None lifts the cap): a full disk.
    pub fn cap_sqlite_pages(&self, pages: Option<u64>) {
        self.services
            .as_ref()
            .expect("an in-process app")
            .cap_sqlite_pages(pages);
    }

    /// Sends one request described as data.
    pub async fn call(&self, call: &Call) -> Reply {
        let headers: Vec<(&str, &str)> =
            call.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.raw(
            call.method,
            &call.path,
            call.token.as_deref(),
            &headers,
            call.body.clone(),
        )
        .await
    }

    /// Sends each call in turn; every one must answer the problem `code`.
    pub async fn answers(&self, code: ErrorCode, calls: impl IntoIterator<Item = Call>) {
        for call in calls {
            let r = self.call(&call).await;
            assert_eq!(r.body["code"].as_str(), Some(code.as_str()), "{call:?}");
            r.problem(code);
        }
    }

    /// As `answers`, and every problem names `field`.
    pub async fn answers_at(
        &self,
        code: ErrorCode,
        field: &str,
        calls: impl IntoIterator<Item = Call>,
    ) {
        for call in calls {
            let r = self.call(&call).await;
            assert_eq!(r.body["code"].as_str(), Some(code.as_str()), "{call:?}");
            r.problem(code).at(field);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.get(self.url(path)), Some(token), None)
            .await
    }

    pub async fn get_anon(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path)), None, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.post_with(path, token, &[], body).await
    }

    pub async fn post_if_match(
        &self,
        path: &str,
        token: &str,
        version: &str,
        body: &Value,
    ) -> Reply {
        self.post_with(path, token, &[("If-Match", version)], body)
            .await
    }

    /// A JSON POST with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        self.send(
            req,
            Some(token),
            Some(serde_json::to_vec(body).expect("json")),
        )
        .await
    }

    /// An action on an order: `POST /api/v1/work-orders/{id}/{action}`.
    pub async fn act(&self, id: &str, action: &str, token: &str, body: &Value) -> Reply {
        self.post(&format!("/api/v1/work-orders/{id}/{action}"), token, body)
            .await
    }

    /// Uploads an evidence file: `POST /api/v1/work-orders/{id}/evidence?kind=K`.
    pub async fn upload(
        &self,
        id: &str,
        kind: &str,
        content_type: &str,
        bytes: Vec<u8>,
        token: &str,
    ) -> Reply {
        self.raw(
            "POST",
            &format!("/api/v1/work-orders/{id}/evidence?kind={kind}"),
            Some(token),
            &[("Content-Type", content_type)],
            Some(bytes),
        )
        .await
    }

    /// A request as raw as a client can make it: any method, headers, bytes.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        self.send(req, token, body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let req = self
            .client
            .post(self.url("/api/v1/auth/token"))
            .insert_header(("Content-Type", "application/json"));
        let body = json!({ "username": username, "password": password });
        self.send(req, None, Some(serde_json::to_vec(&body).expect("json")))
            .await
    }

    /// A client whose connections come from `address` (any of 127.0.0.0/8 on Linux), as a
    /// caller elsewhere on the network would: the service throttles logins by peer address.
    pub fn client_from(&self, address: &str) -> awc::Client {
        awc::Client::builder()
            .local_address(address.parse().expect("an IP address"))
            .timeout(std::time::Duration::from_secs(60))
            .finish()
    }

    /// `login`, from the client address `address`.
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> Reply {
        let body = json!({ "username": username, "password": password });
        self.post_from(address, "/api/v1/auth/token", None, &body)
            .await
    }

    /// A JSON POST from the client address `address`.
    pub async fn post_from(
        &self,
        address: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        let req = self
            .client_from(address)
            .post(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        self.send(req, token, Some(serde_json::to_vec(body).expect("json")))
            .await
    }

    pub async fn token(&self, username: &str) -> String {
        let r = self.login(username, PASSWORD).await;
        r.assert_status(200)["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    pub async fn admin(&self) -> String {
        self.token(ADMIN).await
    }

    pub async fn create_hall(&self, admin: &str, code: &str, province: &str, city: &str) -> String {
        let body = json!({
            "code": code, "name": format!("{code} 营业厅"), "province": province, "city": city,
            "address": "人民路 1 号", "email": format!("{code}@halls.example.cn"),
        });
        let r = self.post("/api/v1/halls", admin, &body).await;
        r.assert_status(201)["id"]
            .as_str()
            .expect("hall id")
            .to_owned()
    }

    pub async fn create_user(
        &self,
        admin: &str,
        username: &str,
        role: &str,
        province: Option<&str>,
        hall: Option<&str>,
    ) -> String {
        let body = json!({
            "username": username, "password": PASSWORD, "role": role,
            "province": province, "hall_id": hall, "email": format!("{username}@example.cn"),
        });
        self.post("/api/v1/users", admin, &body)
            .await
            .assert_status(201);
        self.token(username).await
    }

    pub async fn register_key(&self, admin: &str, hall_id: &str, signer: &Signer) {
        let body =
            json!({ "kid": signer.kid, "alg": signer.alg, "public_key_pem": signer.public_pem() });
        self.post(&format!("/api/v1/halls/{hall_id}/keys"), admin, &body)
            .await
            .assert_status(201);
    }
}

/// A request as data, so that a test can list the calls that must answer one problem.
#[derive(Clone)]
pub struct Call {
    method: &'static str,
    path: String,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Call {
    // The method, the path and the start of the body say which row failed; tokens do not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = self
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned());
        write!(
            f,
            "{} {} {:?} {body:?}",
            self.method, self.path, self.headers
        )
    }
}

/// A request with `method` to `path`, without a token or a body yet.
pub fn call(method: &'static str, path: impl Into<String>) -> Call {
    Call {
        method,
        path: path.into(),
        token: None,
        headers: vec![],
        body: None,
    }
}

pub fn get(path: impl Into<String>) -> Call {
    call("GET", path)
}

pub fn post(path: impl Into<String>) -> Call {
    call("POST", path)
}

impl Call {
    /// Sent with `Authorization: Bearer <token>`.
    pub fn by(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn if_match(self, version: &str) -> Self {
        self.header("If-Match", version)
    }

    /// A JSON body, sent as `application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.bytes(
            Some("application/json"),
            serde_json::to_vec(body).expect("json"),
        )
    }

    /// These bytes, sent as `application/json` whatever they hold.
    pub fn json_bytes(self, body: impl Into<Vec<u8>>) -> Self {
        self.bytes(Some("application/json"), body)
    }

    /// Exactly these bytes, with this `Content-Type` when there is one.
    pub fn bytes(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        if let Some(ct) = content_type {
            self = self.header("Content-Type", ct);
        }
        self.body = Some(body.into());
        self
    }
}

/// A hall terminal's signer written against ring directly, independent of the service's
/// own JWS code, so the service is tested against someone else's signatures.
pub struct Signer {
    pub kid: String,
    pub alg: &'static str,
    pair: TerminalKey,
}

/// The terminal's key pair, parsed once.
enum TerminalKey {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    pub fn new(kid: &str, alg: &'static str) -> Self {
        let rng = SystemRandom::new();
        let pair = match alg {
            "EdDSA" => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
                TerminalKey::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"))
            }
            _ => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("keygen");
                TerminalKey::Ec(
                    EcdsaKeyPair::from_pkcs8(
                        &ECDSA_P256_SHA256_FIXED_SIGNING,
                        pkcs8.as_ref(),
                        &rng,
                    )
                    .expect("key"),
                )
            }
        };
        Self {
            kid: kid.into(),
            alg,
            pair,
        }
    }

    fn raw_public(&self) -> Vec<u8> {
        match &self.pair {
            TerminalKey::Ed(k) => k.public_key().as_ref().to_vec(),
            TerminalKey::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }

    pub fn public_pem(&self) -> String {
        let prefix: &[u8] = match self.alg {
            "EdDSA" => &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ],
            _ => &[
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ],
        };
        let der = [prefix, &self.raw_public()].concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// Signs with an explicit header (to test odd headers).
    pub fn sign_with_header(&self, header: &Value, payload: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("json"));
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).expect("json"));
        let input = format!("{h}.{p}");
        let sig = match &self.pair {
            TerminalKey::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            TerminalKey::Ec(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("sign")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    pub fn sign(&self, payload: &Value) -> String {
        self.sign_with_header(
            &json!({ "alg": self.alg, "kid": self.kid, "typ": "JWT" }),
            payload,
        )
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The kinds a match needs by default (`verification.required_evidence`).
pub const REQUIRED_KINDS: [&str; 3] = ["id_front", "id_back", "live_photo"];

/// A small JPEG-typed file, different for each order and kind.
pub fn sample_jpeg(order: &str, kind: &str) -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    bytes.extend_from_slice(format!("{order}/{kind}").as_bytes());
    bytes
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The `evidence` entries for the files `upload_required` sends.
pub fn evidence_entries(order: &str) -> Value {
    Value::Array(
        REQUIRED_KINDS
            .iter()
            .map(|k| json!({ "kind": k, "sha256": sha256_hex(&sample_jpeg(order, k)) }))
            .collect(),
    )
}

/// A valid GB 11643 number and the name that goes with it in these tests.
pub const ID_NUMBER: &str = "11010519491231002X";
pub const NAME: &str = "张三";

/// A cast of users and halls most scenarios need: a Yunnan clerk, two halls in Jinan
/// (Shandong), staff at each, a Beijing clerk, a national auditor, and a key for hall A.
pub struct World {
    pub app: TestApp,
    pub admin: String,
    pub clerk: String,
    pub other_clerk: String,
    pub staff: String,
    pub staff_same_hall: String,
    pub staff_other_hall: String,
    pub auditor: String,
    pub hall_a: String,
    pub hall_b: String,
    pub signer: Signer,
}

static NUMBERS: AtomicU64 = AtomicU64::new(0);

impl World {
    pub async fn new(app: TestApp) -> Self {
        let admin = app.admin().await;
        let hall_a = app.create_hall(&admin, "JN-A", "37", "370100").await;
        let hall_b = app.create_hall(&admin, "JN-B", "37", "370100").await;
        let clerk = app
            .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
            .await;
        let other_clerk = app
            .create_user(&admin, "clerk.bj", "clerk", Some("11"), None)
            .await;
        let staff = app
            .create_user(&admin, "staff.a", "hall_staff", None, Some(&hall_a))
            .await;
        let staff_same_hall = app
            .create_user(&admin, "staff.a2", "hall_staff", None, Some(&hall_a))
            .await;
        let staff_other_hall = app
            .create_user(&admin, "staff.b", "hall_staff", None, Some(&hall_b))
            .await;
        let auditor = app
            .create_user(&admin, "auditor", "auditor", None, None)
            .await;
        let signer = Signer::new("hall-a-2026", "EdDSA");
        app.register_key(&admin, &hall_a, &signer).await;
        Self {
            app,
            admin,
            clerk,
            other_clerk,
            staff,
            staff_same_hall,
            staff_other_hall,
            auditor,
            hall_a,
            hall_b,
            signer,
        }
    }

    /// The audit events an auditor's query finds: `GET /api/v1/audit/events?{query}`.
    pub async fn audit_events(&self, query: &str) -> Vec<Value> {
        let path = format!("/api/v1/audit/events?{query}");
        self.app.get(&path, &self.auditor).await.items()
    }

    /// A fresh mobile number for each order a test opens.
    pub fn next_msisdn() -> String {
        format!(
            "1891234{:04}",
            NUMBERS.fetch_add(1, Ordering::Relaxed) % 10_000
        )
    }

    pub async fn open_order(&self) -> Value {
        self.open_order_to(Some(&self.hall_a)).await
    }

    pub async fn open_order_to(&self, hall: Option<&str>) -> Value {
        let body = json!({
            "msisdn": format!("+86 {}", Self::next_msisdn()), "target_province": "37", "target_city": "370100",
            "target_hall_id": hall, "reason": "用户长期在济南居住", "expected_name": NAME,
        });
        self.app
            .post("/api/v1/work-orders", &self.clerk, &body)
            .await
            .assert_status(201)
            .clone()
    }

    /// An order claimed by `staff.a`, with the evidence a match needs already uploaded.
    pub async fn claimed_order(&self) -> Value {
        let order = self.open_order().await;
        let id = order["id"].as_str().expect("id");
        let claimed = self
            .app
            .act(id, "claim", &self.staff, &json!({}))
            .await
            .assert_status(200)
            .clone();
        self.upload_required(&claimed).await;
        claimed
    }

    /// Uploads, as `staff.a`, the files `payload` names for this order.
    pub async fn upload_required(&self, order: &Value) {
        self.upload_required_by(order, &self.staff).await;
    }

    /// Uploads, as the claiming staff member `token`, the files `payload` names.
    pub async fn upload_required_by(&self, order: &Value, token: &str) {
        let id = order["id"].as_str().expect("id");
        for kind in REQUIRED_KINDS {
            self.app
                .upload(id, kind, "image/jpeg", sample_jpeg(id, kind), token)
                .await
                .assert_status(201);
        }
    }

    pub fn payload(&self, order: &Value, outcome: &str) -> Value {
        json!({
            "wo": order["id"], "hall": self.hall_a, "staff": "staff.a", "msisdn": order["msisdn"],
            "outcome": outcome,
            "document": { "type": "resident_id", "number": ID_NUMBER, "name": NAME, "valid_until": "2035-06-30" },
            "method": { "chip_read": true, "face_match_score": 0.97, "operator_checked": true },
            "evidence": evidence_entries(order["id"].as_str().expect("id")),
            "iat": now_secs(), "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    pub async fn submit(&self, order: &Value, jws: &str) -> Reply {
        let id = order["id"].as_str().expect("id");
        self.app
            .act(id, "verification", &self.staff, &json!({ "result": jws }))
            .await
    }

    pub async fn submitted_order(&self, outcome: &str) -> Value {
        let order = self.claimed_order().await;
        let jws = self.signer.sign(&self.payload(&order, outcome));
        self.submit(&order, &jws).await.assert_status(201).clone()
    }
}

/// Polls `check` every 100 ms until it yields a value, and fails naming `what` (and the last
/// thing `check` reported) once `within` has passed: waiting on something that happens in
/// the background, without a fixed sleep.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = std::time::Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= within => {
                panic!("{what}: not within {within:?}; last seen: {last}")
            }
            Err(_) => actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// A `crossprov serve` process the test started, killed when dropped.
pub struct Serve {
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Serve {
    /// Starts `crossprov serve --config CONFIG` on a fresh port and waits until it is ready.
    pub async fn start(config: &Path, name: &str) -> Serve {
        let port = free_port();
        let log = config.with_file_name(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("crossprov serve starts");
        let mut serve = Serve {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish();
        let start = Instant::now();
        loop {
            if let Some(status) = serve
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("serve {name} exited {status}: {}", serve.log_tail());
            }
            if let Ok(res) = client.get(format!("{}/readyz", serve.base)).send().await {
                if res.status().is_success() {
                    return serve;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "serve {name} not ready: {}",
                serve.log_tail()
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: no shutdown, no cleanup, leases left as they are.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as systemd and `docker stop` send it.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Waits up to `within` for the process to exit by itself: its status, or None.
    pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Everything the process logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A database and a folder for `serve` processes: the config file they share (each
/// instance's own `data_dir` comes from its name), the admin made with the CLI.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub database_url: String,
    pub pg: Option<PgDatabase>,
}

impl Deployment {
    pub fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("crossprov.db").display()),
                None,
            ),
            Backend::Postgres => {
                let pg = PgDatabase::create()?;
                (pg.url.clone(), Some(pg))
            }
        };
        Some(Self {
            dir,
            backend,
            database_url,
            pg,
        })
    }

    /// `crossprov user add` for the admin, as an operator makes the first one.
    pub fn add_admin(&self, config: &Path) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["user", "add", "--username", ADMIN, "--role", "admin"])
            .args(["--password-stdin", "--database-url", &self.database_url])
            .env("CROSSPROV_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("crossprov user add");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A client of `serve`, owning this deployment's files and database (dropped with it).
    pub fn client_of(self, serve: &Serve) -> TestApp {
        TestApp::of_process(
            serve.base.clone(),
            self.backend,
            self.database_url,
            self.dir,
            self.pg,
        )
    }
}
