//! HTTPS and mutual TLS: the real application serving rustls, with a CA, a server certificate
//! and hall client certificates made at test time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{json, Value};

use crate::helpers::{
    client, eventually, run_on, sample_jpeg, spawn_app_over_tls, Backend, ClientTls, ErrorCode,
    Reply, TestApp, World, ADMIN, PASSWORD,
};

// ---------------------------------------------------------------------------------------
// Certificates

/// A test CA and the files the service and its clients read.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, as PEM.
pub(crate) struct Pair {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            ca,
        }
    }

    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn sign(&self, mut params: CertificateParams, serial: u64) -> Pair {
        params.serial_number = Some(serial.into());
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// The service's certificate: valid for 127.0.0.1 and localhost.
    pub(crate) fn server(&self, serial: u64) -> Pair {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "crossprov");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, serial)
    }

    /// A hall terminal's certificate with this Subject CN and these DNS names.
    pub(crate) fn terminal(&self, common_name: &str, dns_names: &[&str]) -> Pair {
        let names: Vec<String> = dns_names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, rand_serial())
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes a pair as `<name>.pem` and `<name>.key`.
    pub(crate) fn write_pair(&self, name: &str, pair: &Pair) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.pem"), &pair.cert),
            self.write(&format!("{name}.key"), &pair.key),
        )
    }

    /// A client trusting this CA offering HTTP/1.1 only (for `Raw::get`).
    fn http1_tls(&self) -> ClientTls {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        client_config(roots, None, &[b"http/1.1"], None)
    }

    /// A client trusting this CA, presenting `identity` when given, offering h2 and HTTP/1.1.
    fn client_tls(&self, identity: Option<&Pair>) -> ClientTls {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        client_config(roots, identity, &[b"h2", b"http/1.1"], None)
    }
}

fn rand_serial() -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(1..u64::MAX / 2)
}

fn client_config(
    roots: RootCertStore,
    identity: Option<&Pair>,
    alpn: &[&[u8]],
    version: Option<&'static rustls::SupportedProtocolVersion>,
) -> ClientTls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match version {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(pair) => builder
            .with_client_auth_cert(certs(&pair.cert), key(&pair.key))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn key(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Running scenarios on an app serving HTTPS

/// An app serving HTTPS, with the CA that made its certificate and the files it reads.
struct Tls {
    app: TestApp,
    pki: Pki,
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Mode {
    /// HTTPS only.
    Https,
    /// HTTPS with client certificates verified against the test CA.
    Mutual,
}

async fn run<F, Fut>(scenario: F, backend: Backend, mode: Mode, declared: Option<ErrorCode>)
where
    F: FnOnce(Tls) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let pki = Pki::new("crossprov");
    let (cert, key) = pki.write_pair("server", &pki.server(1));
    let ca = match mode {
        Mode::Mutual => Some(pki.write("client-ca.pem", &pki.ca_pem())),
        Mode::Https => None,
    };
    let (c, k, a) = (cert.clone(), key.clone(), ca.clone());
    let configure = Arc::new(move |s: &mut crossprov::config::Settings| {
        s.tls.cert_pem = c.display().to_string();
        s.tls.key_pem = k.display().to_string();
        s.tls.client_ca_pem = a
            .as_ref()
            .map(|a| a.display().to_string())
            .unwrap_or_default();
    });
    let Some(app) = spawn_app_over_tls(backend, configure, pki.client_tls(None)).await else {
        return;
    };
    let provoked = |app: TestApp| async move {
        scenario(Tls {
            app,
            pki,
            cert,
            key,
            ca,
        })
        .await
    };
    run_on(app, provoked, declared).await;
}

/// Each scenario on both backends, as `<name>::sqlite` and `<name>::postgres`, on an app in
/// `$mode`; `provokes CODE` fails a scenario that asserted no problem with that code.
macro_rules! over_tls {
    ($mode:ident provokes $code:ident: $($name:ident),+ $(,)?) => {
        over_tls!(@ $mode, Some(crate::helpers::ErrorCode::$code), $($name),+);
    };
    ($mode:ident: $($name:ident),+ $(,)?) => {
        over_tls!(@ $mode, None, $($name),+);
    };
    (@ $mode:ident, $declared:expr, $($name:ident),+) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let backend = crate::helpers::Backend::Sqlite;
                super::run(super::$name, backend, super::Mode::$mode, $declared).await;
            }
            #[actix_web::test]
            async fn postgres() {
                let backend = crate::helpers::Backend::Postgres;
                super::run(super::$name, backend, super::Mode::$mode, $declared).await;
            }
        }
    )+};
}

fn port(app: &TestApp) -> u16 {
    app.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// A TLS connection to the app, made on a blocking thread, its handshake complete.
async fn connect(port: u16, config: ClientTls) -> Result<Raw, String> {
    actix_web::rt::task::spawn_blocking(move || {
        let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Raw(stream))
    })
    .await
    .unwrap()
}

/// A raw TLS connection, for what a client library hides: the protocol, the certificate, one
/// connection kept across a reload.
struct Raw(StreamOwned<ClientConnection, TcpStream>);

impl Raw {
    fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.0.conn.protocol_version()
    }

    fn alpn(&self) -> Option<Vec<u8>> {
        self.0.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The server's end-entity certificate.
    fn server_certificate(&self) -> Vec<u8> {
        self.0.conn.peer_certificates().unwrap()[0].to_vec()
    }

    /// `GET path` over HTTP/1.1, keeping the connection open; the status and body.
    async fn get(self, path: &str) -> (Self, u16, String) {
        let path = path.to_owned();
        actix_web::rt::task::spawn_blocking(move || {
            let mut raw = self;
            let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            raw.0.write_all(request.as_bytes()).unwrap();
            raw.0.flush().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                raw.0.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let status = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a Content-Length");
            let mut body = vec![0u8; length];
            raw.0.read_exact(&mut body).unwrap();
            (raw, status, String::from_utf8(body).unwrap())
        })
        .await
        .unwrap()
    }

    /// Sends the HTTP/2 connection preface and an empty SETTINGS frame; the type of the first
    /// frame the server sends back (4 = SETTINGS for a server that speaks HTTP/2).
    async fn h2_first_frame_type(self) -> u8 {
        actix_web::rt::task::spawn_blocking(move || {
            let mut raw = self;
            raw.0
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                .unwrap();
            raw.0.flush().unwrap();
            let mut header = [0u8; 9];
            raw.0.read_exact(&mut header).unwrap();
            header[3]
        })
        .await
        .unwrap()
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    certs(pem)[0].to_vec()
}

// ---------------------------------------------------------------------------------------
// HTTPS

async fn a_tls_client_completes_handshakes_in_tls_1_3_and_1_2_and_speaks_h2(t: Tls) {
    let port = port(&t.app);
    let roots = || {
        let mut roots = RootCertStore::empty();
        roots.add(t.pki.ca.der().clone()).unwrap();
        roots
    };
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let config = client_config(roots(), None, &[b"http/1.1"], Some(version));
        let raw = connect(port, config).await.unwrap();
        assert_eq!(raw.version(), Some(expected));
        if expected == rustls::ProtocolVersion::TLSv1_2 {
            // Only forward-secret AEAD suites: ECDHE with AES-GCM or ChaCha20-Poly1305.
            let suite = format!(
                "{:?}",
                raw.0.conn.negotiated_cipher_suite().unwrap().suite()
            );
            assert!(suite.starts_with("TLS_ECDHE_"), "{suite}");
            assert!(
                suite.contains("GCM") || suite.contains("CHACHA20"),
                "{suite}"
            );
        }
        let (_, status, body) = raw.get("/healthz").await;
        assert_eq!(status, 200, "{body}");
    }
    // ALPN: a client offering h2 gets it, and the server answers the HTTP/2 preface.
    let config = client_config(roots(), None, &[b"h2", b"http/1.1"], None);
    let raw = connect(port, config).await.unwrap();
    assert_eq!(raw.alpn().as_deref(), Some(&b"h2"[..]));
    assert_eq!(raw.h2_first_frame_type().await, 4, "a SETTINGS frame");
    // A client offering only HTTP/1.1 gets that.
    let config = client_config(roots(), None, &[b"http/1.1"], None);
    let raw = connect(port, config).await.unwrap();
    assert_eq!(raw.alpn().as_deref(), Some(&b"http/1.1"[..]));
    // And the service works over it end to end (the test client negotiates h2).
    let me = t.app.login(ADMIN, PASSWORD).await;
    me.assert_status(200);
}

async fn plain_http_to_the_https_port_fails(t: Tls) {
    let plain = format!("http://127.0.0.1:{}/healthz", port(&t.app));
    let sent = client(None)
        .get(&plain)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(
        sent.is_err(),
        "plain HTTP was answered: {:?}",
        sent.map(|r| r.status())
    );
    // A TLS client trusting another CA refuses the service's certificate.
    let stranger = Pki::new("stranger");
    let err = connect(port(&t.app), stranger.client_tls(None)).await;
    assert!(err.is_err());
}

/// The headers every answer carries; `hsts` when served over HTTPS.
#[track_caller]
fn assert_security_headers(r: &Reply, hsts: bool) {
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(
        r.header("content-security-policy").as_deref(),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
    let expected = hsts.then_some("max-age=31536000; includeSubDomains");
    assert_eq!(r.header("strict-transport-security").as_deref(), expected);
}

async fn every_answer_over_https_carries_hsts_and_the_security_headers(t: Tls) {
    let w = World::new(t.app).await;
    let order = w.open_order().await;
    let path = format!("/api/v1/work-orders/{}", order["id"].as_str().unwrap());
    let read = w.app.get(&path, &w.clerk).await;
    read.assert_status(200);
    // Data from the API is never stored by caches; the ETag still carries the version.
    assert_eq!(read.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));
    let stale = w
        .app
        .post_if_match(&format!("{path}/claim"), &w.staff, "\"0\"", &json!({}))
        .await;
    stale.problem(ErrorCode::VersionConflict);
    let claimed = w
        .app
        .post_if_match(&format!("{path}/claim"), &w.staff, "\"1\"", &json!({}))
        .await;
    claimed.assert_status(200);
    let answers = [
        read,
        stale,
        claimed,
        w.app.get_anon("/healthz").await,
        w.app.get_anon("/api/v1/me").await,
        w.app.get_anon("/api/v1/no-such-thing").await,
        w.app.get_anon("/api/v1/openapi.json").await,
        w.app.login(ADMIN, "wrong password").await,
    ];
    for r in &answers {
        assert_security_headers(r, true);
    }
    let [_, _, _, health, me, missing, openapi, login] = answers;
    assert_eq!(health.header("cache-control"), None);
    assert_eq!(me.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(missing.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        openapi.header("cache-control"),
        None,
        "the public document may be cached"
    );
    assert_eq!(login.header("cache-control").as_deref(), Some("no-store"));
}

async fn plain_http_answers_carry_the_security_headers_but_no_hsts(app: TestApp) {
    let me = app.get_anon("/api/v1/me").await;
    me.problem(ErrorCode::Unauthenticated);
    assert_security_headers(&me, false);
    assert_eq!(me.header("cache-control").as_deref(), Some("no-store"));
    let health = app.get_anon("/healthz").await;
    assert_security_headers(&health, false);
}

async fn a_certificate_changed_on_disk_reaches_new_connections_while_open_ones_keep_answering(
    t: Tls,
) {
    let port = port(&t.app);
    let old = pem_der(&std::fs::read_to_string(&t.cert).unwrap());
    let before = connect(port, t.pki.http1_tls()).await.unwrap();
    assert_eq!(before.server_certificate(), old);
    let (before, status, _) = before.get("/healthz").await;
    assert_eq!(status, 200);

    // A renewed certificate with a new key, written over the old files (the key first: a
    // look between the two writes finds them mismatched, logs it and keeps the old one).
    let renewed = t.pki.server(2);
    std::fs::write(&t.key, &renewed.key).unwrap();
    std::fs::write(&t.cert, &renewed.cert).unwrap();
    let new = pem_der(&renewed.cert);
    eventually(
        Duration::from_secs(15),
        "new connections get the renewed certificate",
        || {
            let config = t.pki.http1_tls();
            let new = new.clone();
            async move {
                let raw = connect(port, config).await?;
                let served = raw.server_certificate();
                if served == new {
                    Ok(())
                } else {
                    Err("the old certificate".to_owned())
                }
            }
        },
    )
    .await;
    // The keep-alive connection made before the reload is still open and still answers.
    let (before, status, _) = before.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(before.server_certificate(), old);

    // A broken file is not loaded: the renewed certificate stays in service.
    std::fs::write(&t.cert, "not a certificate").unwrap();
    actix_web::rt::time::sleep(Duration::from_secs(5)).await;
    let raw = connect(port, t.pki.http1_tls()).await.unwrap();
    assert_eq!(raw.server_certificate(), new);
}

over_tls!(Https:
    a_tls_client_completes_handshakes_in_tls_1_3_and_1_2_and_speaks_h2,
    plain_http_to_the_https_port_fails,
    every_answer_over_https_carries_hsts_and_the_security_headers,
    a_certificate_changed_on_disk_reaches_new_connections_while_open_ones_keep_answering,
);

crate::on_both_backends!(plain_http_answers_carry_the_security_headers_but_no_hsts);

// ---------------------------------------------------------------------------------------
// Mutual TLS

/// Halls JN-A and JN-B in Jinan with a staff member each, a Yunnan clerk, and clients for the
/// terminals of each hall: JN-A's certificate names the hall by its Subject CN, JN-B's by a
/// DNS name.
struct Halls {
    t: Tls,
    clerk: String,
    hall_a: String,
    at_a: awc::Client,
    at_b: awc::Client,
    a: Pair,
}

impl Halls {
    async fn new(t: Tls) -> Self {
        let app = &t.app;
        let admin = app.admin().await;
        let hall_a = app.create_hall(&admin, "JN-A", "37", "370100").await;
        let hall_b = app.create_hall(&admin, "JN-B", "37", "370100").await;
        for (name, hall) in [("staff.a", &hall_a), ("staff.b", &hall_b)] {
            let body = json!({
                "username": name, "password": PASSWORD, "role": "hall_staff",
                "hall_id": hall, "email": format!("{name}@example.cn"),
            });
            app.post("/api/v1/users", &admin, &body)
                .await
                .assert_status(201);
        }
        // A clerk needs no certificate, to be made or to log in.
        let clerk = app
            .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
            .await;
        let a = t.pki.terminal("JN-A", &[]);
        let b = t.pki.terminal("terminal 7", &["jn-b"]);
        Self {
            at_a: client(Some(t.pki.client_tls(Some(&a)))),
            at_b: client(Some(t.pki.client_tls(Some(&b)))),
            a,
            clerk,
            hall_a,
            t,
        }
    }

    fn app(&self) -> &TestApp {
        &self.t.app
    }

    /// `POST /api/v1/auth/token` through `client`.
    async fn login_via(&self, client: &awc::Client, username: &str) -> Reply {
        let body = json!({ "username": username, "password": PASSWORD });
        let req = client
            .post(self.app().url("/api/v1/auth/token"))
            .insert_header(("Content-Type", "application/json"));
        self.app().reply(req.send_body(body.to_string())).await
    }

    async fn token_via(&self, client: &awc::Client, username: &str) -> String {
        let r = self.login_via(client, username).await;
        r.assert_status(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn get_via(&self, client: &awc::Client, path: &str, token: &str) -> Reply {
        let req = client
            .get(self.app().url(path))
            .insert_header(("Authorization", format!("Bearer {token}")));
        self.app().reply(req.send()).await
    }

    async fn post_via(&self, client: &awc::Client, path: &str, token: &str, body: &[u8]) -> Reply {
        let req = client
            .post(self.app().url(path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "application/json"));
        self.app().reply(req.send_body(body.to_vec())).await
    }

    async fn open_order(&self) -> Value {
        let body = json!({
            "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
            "target_hall_id": self.hall_a, "reason": "用户长期在济南居住",
        });
        self.app()
            .post("/api/v1/work-orders", &self.clerk, &body)
            .await
            .assert_status(201)
            .clone()
    }
}

async fn hall_staff_without_a_certificate_are_refused(t: Tls) {
    let h = Halls::new(t).await;
    // The login itself: refused before the password is judged.
    let login = h.app().login("staff.a", PASSWORD).await;
    login.problem(ErrorCode::ClientCertificateRequired);
    let wrong = h.app().login("staff.a", "wrong password").await;
    wrong.problem(ErrorCode::ClientCertificateRequired);
    // A token got at the hall, used from a connection without the certificate.
    let token = h.token_via(&h.at_a, "staff.a").await;
    let me = h.app().get("/api/v1/me", &token).await;
    me.problem(ErrorCode::ClientCertificateRequired);
    assert!(me.header("strict-transport-security").is_some());
    let order = h.open_order().await;
    let claim = format!(
        "/api/v1/work-orders/{}/claim",
        order["id"].as_str().unwrap()
    );
    h.app()
        .post(&claim, &token, &json!({}))
        .await
        .problem(ErrorCode::ClientCertificateRequired);
    let upload = h
        .app()
        .upload(
            order["id"].as_str().unwrap(),
            "id_front",
            "image/jpeg",
            sample_jpeg("x", "y"),
            &token,
        )
        .await;
    upload.problem(ErrorCode::ClientCertificateRequired);
    // In the contract's order: a malformed body is 400 before the certificate's 403, and a
    // bad token 401.
    h.app()
        .post_with(&claim, &token, &[], &json!({"unknown": 1}))
        .await
        .problem(ErrorCode::InvalidRequest);
    h.app()
        .get("/api/v1/me", "not-a-token")
        .await
        .problem(ErrorCode::Unauthenticated);
    // English detail for the new code too.
    let en = h
        .app()
        .raw(
            "GET",
            "/api/v1/me",
            Some(&token),
            &[("Accept-Language", "en")],
            None,
        )
        .await;
    en.problem(ErrorCode::ClientCertificateRequired);
    assert!(en.body["title"].as_str().unwrap().is_ascii());
}

async fn hall_staff_with_another_halls_certificate_are_refused(t: Tls) {
    let h = Halls::new(t).await;
    h.login_via(&h.at_b, "staff.a")
        .await
        .problem(ErrorCode::ClientCertificateRequired);
    let token = h.token_via(&h.at_a, "staff.a").await;
    h.get_via(&h.at_b, "/api/v1/me", &token)
        .await
        .problem(ErrorCode::ClientCertificateRequired);
    let token_b = h.token_via(&h.at_b, "staff.b").await;
    h.get_via(&h.at_a, "/api/v1/me", &token_b)
        .await
        .problem(ErrorCode::ClientCertificateRequired);
}

async fn hall_staff_with_their_own_halls_certificate_work(t: Tls) {
    let h = Halls::new(t).await;
    // JN-A's certificate names the hall by its CN.
    let token = h.token_via(&h.at_a, "staff.a").await;
    let me = h.get_via(&h.at_a, "/api/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["hall_id"], h.hall_a.as_str());
    let order = h.open_order().await;
    let claim = format!(
        "/api/v1/work-orders/{}/claim",
        order["id"].as_str().unwrap()
    );
    let claimed = h.post_via(&h.at_a, &claim, &token, b"{}").await;
    assert_eq!(claimed.assert_status(200)["state"], "claimed");
    // JN-B's by a DNS name.
    let token_b = h.token_via(&h.at_b, "staff.b").await;
    h.get_via(&h.at_b, "/api/v1/me", &token_b)
        .await
        .assert_status(200);
}

async fn a_client_certificate_from_another_ca_is_refused_at_the_handshake(t: Tls) {
    let h = Halls::new(t).await;
    let stranger = Pki::new("stranger");
    let forged = stranger.terminal("JN-A", &[]);
    // Trusts the service's CA, presents a certificate of another.
    let mut roots = RootCertStore::empty();
    roots.add(h.t.pki.ca.der().clone()).unwrap();
    let config = client_config(roots, Some(&forged), &[b"http/1.1"], None);
    let refused = match connect(port(h.app()), config.clone()).await {
        // TLS 1.3: the client finishes first; the server's alert comes with the first read.
        Ok(raw) => actix_web::rt::task::spawn_blocking(move || {
            let mut raw = raw;
            let _ = raw.0.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut buf = [0u8; 16];
            raw.0.read(&mut buf).map(|n| n == 0).unwrap_or(true)
        })
        .await
        .unwrap(),
        Err(_) => true,
    };
    assert!(refused, "a certificate from another CA was accepted");
    let sent = client(Some(config))
        .get(h.app().url("/healthz"))
        .send()
        .await;
    assert!(sent.is_err());
    // A clerk without a certificate is served.
    let me = h.app().get("/api/v1/me", &h.clerk).await;
    assert_eq!(me.assert_status(200)["role"], "clerk");
}

async fn the_evidence_upload_command_uploads_over_mutual_tls(t: Tls) {
    let h = Halls::new(t).await;
    let token = h.token_via(&h.at_a, "staff.a").await;
    let order = h.open_order().await;
    let id = order["id"].as_str().unwrap().to_owned();
    h.post_via(
        &h.at_a,
        &format!("/api/v1/work-orders/{id}/claim"),
        &token,
        b"{}",
    )
    .await
    .assert_status(200);
    let file = h.t.pki.write("front.jpg", "");
    std::fs::write(&file, sample_jpeg(&id, "id_front")).unwrap();
    let (cert, key) = h.t.pki.write_pair("terminal-a", &h.a);
    let ca = h.t.pki.write("ca.pem", &h.t.pki.ca_pem());
    let upload = |identity: bool| {
        let mut args = vec![
            "evidence".to_owned(),
            "upload".into(),
            "--url".into(),
            h.app().base.clone(),
            "--order".into(),
            id.clone(),
            "--username".into(),
            "staff.a".into(),
            "--password-stdin".into(),
            "--cacert".into(),
            ca.display().to_string(),
        ];
        if identity {
            args.extend([
                "--cert".into(),
                cert.display().to_string(),
                "--key".into(),
                key.display().to_string(),
            ]);
        }
        args.push(format!("id_front={}", file.display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::cli::crossprov(h.app(), &args, Some(&format!("{PASSWORD}\n")))
    };
    let refused = upload(false);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("client_certificate_required"), "{stderr}");
    let done = upload(true);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let printed: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(printed["uploaded"][0]["kind"], "id_front");
    let listed = h
        .get_via(
            &h.at_a,
            &format!("/api/v1/work-orders/{id}/evidence"),
            &token,
        )
        .await;
    assert_eq!(listed.items().len(), 1);
}

async fn a_changed_client_ca_file_verifies_new_connections(t: Tls) {
    let h = Halls::new(t).await;
    let token = h.token_via(&h.at_a, "staff.a").await;
    // The halls' certificates are reissued by a new CA, whose certificate replaces the file.
    let next = Pki::new("next");
    let reissued = next.terminal("JN-A", &[]);
    let mut roots = RootCertStore::empty();
    roots.add(h.t.pki.ca.der().clone()).unwrap();
    let at_a_reissued = client(Some(client_config(
        roots,
        Some(&reissued),
        &[b"http/1.1"],
        None,
    )));
    std::fs::write(h.t.ca.as_ref().unwrap(), next.ca_pem()).unwrap();
    eventually(
        Duration::from_secs(15),
        "the new CA's certificates are accepted",
        || {
            let req = at_a_reissued
                .get(h.app().url("/api/v1/me"))
                .insert_header(("Authorization", format!("Bearer {token}")));
            async move {
                match req.send().await {
                    Ok(res) if res.status() == 200 => Ok(()),
                    other => Err(format!("{:?}", other.map(|r| r.status()))),
                }
            }
        },
    )
    .await;
    // The old CA's certificates no longer pass the handshake.
    let old = client(Some(h.t.pki.client_tls(Some(&h.a))));
    let sent = old.get(h.app().url("/healthz")).send().await;
    assert!(sent.is_err(), "the old CA still verifies");
}

over_tls!(Mutual provokes ClientCertificateRequired:
    hall_staff_without_a_certificate_are_refused,
    hall_staff_with_another_halls_certificate_are_refused,
);

over_tls!(Mutual:
    hall_staff_with_their_own_halls_certificate_work,
    a_client_certificate_from_another_ca_is_refused_at_the_handshake,
    the_evidence_upload_command_uploads_over_mutual_tls,
    a_changed_client_ca_file_verifies_new_connections,
);

/// The scenarios that provoke the new code (`error_codes::every_error_code_is_provoked_by_a_test`).
pub const PROVOKED: &[(ErrorCode, &str)] = &[
    (
        ErrorCode::ClientCertificateRequired,
        "hall_staff_without_a_certificate_are_refused",
    ),
    (
        ErrorCode::ClientCertificateRequired,
        "hall_staff_with_another_halls_certificate_are_refused",
    ),
];

// ---------------------------------------------------------------------------------------
// Start-up and SIGHUP, as an operator meets them

/// `tls.cert_pem`, `tls.key_pem`, `tls.client_ca_pem`, each set or not.
type Files<'a> = (Option<&'a Path>, Option<&'a Path>, Option<&'a Path>);

/// `crossprov serve` with these `tls.*` files; its exit status and standard error.
fn serve_with(
    dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    ca: Option<&Path>,
) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossprov"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("CROSSPROV_DATA_DIR", dir);
    for (var, file) in [
        ("CROSSPROV_TLS__CERT_PEM", cert),
        ("CROSSPROV_TLS__KEY_PEM", key),
        ("CROSSPROV_TLS__CLIENT_CA_PEM", ca),
    ] {
        if let Some(file) = file {
            cmd.env(var, file);
        }
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_to_start_on_bad_tls_files_naming_the_file_and_what_is_wrong() {
    let pki = Pki::new("crossprov");
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = pki.write_pair("server", &pki.server(1));
    let other = pki.server(2);
    let other_key = pki.write("other.key", &other.key);
    let ca = pki.write("ca.pem", &pki.ca_pem());
    let missing = pki.dir.path().join("missing.pem");
    let empty = pki.write("empty.pem", "");
    let garbage_key = pki.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n",
    );
    let garbage_cert = pki.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
    );
    // cert, key, client CA; the file named and what is wrong with it.
    let cases: Vec<(Files, &Path, &str)> = vec![
        (
            (Some(&missing), Some(&key), None),
            &missing,
            "cannot read it",
        ),
        ((Some(&key), Some(&key), None), &key, "no certificate in it"),
        (
            (Some(&empty), Some(&key), None),
            &empty,
            "no certificate in it",
        ),
        (
            (Some(&garbage_cert), Some(&key), None),
            &garbage_cert,
            "not a valid certificate",
        ),
        (
            (Some(&cert), Some(&cert), None),
            &cert,
            "no private key in it",
        ),
        (
            (Some(&cert), Some(&missing), None),
            &missing,
            "cannot read it",
        ),
        (
            (Some(&cert), Some(&garbage_key), None),
            &garbage_key,
            "not a usable private key",
        ),
        (
            (Some(&cert), Some(&other_key), None),
            &other_key,
            "does not match the certificate",
        ),
        (
            (Some(&cert), Some(&key), Some(&empty)),
            &empty,
            "not a usable client CA file",
        ),
        (
            (Some(&cert), Some(&key), Some(&key)),
            &key,
            "not a usable client CA file",
        ),
        (
            (Some(&cert), Some(&key), Some(&missing)),
            &missing,
            "cannot read it",
        ),
    ];
    for ((cert, key, ca), named, why) in cases {
        let (ok, stderr) = serve_with(data.path(), cert, key, ca);
        assert!(!ok, "started with {cert:?} {key:?} {ca:?}");
        assert!(
            stderr.contains(&named.display().to_string()) && stderr.contains(why),
            "{named:?} / {why}: {stderr}"
        );
    }
    // Half a pair, or client certificates without HTTPS, never serve in the clear.
    let (ok, stderr) = serve_with(data.path(), Some(&cert), None, None);
    assert!(!ok);
    assert!(stderr.contains("tls.key_pem"), "{stderr}");
    let (ok, stderr) = serve_with(data.path(), None, Some(&key), None);
    assert!(!ok);
    assert!(stderr.contains("tls.cert_pem"), "{stderr}");
    let (ok, stderr) = serve_with(data.path(), None, None, Some(&ca));
    assert!(!ok);
    assert!(stderr.contains("tls.client_ca_pem"), "{stderr}");
    assert!(
        !data.path().join("crossprov.db").exists(),
        "refused before touching the database"
    );
}

#[test]
fn sighup_reloads_the_certificate_of_a_running_serve() {
    let pki = Pki::new("crossprov");
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = pki.write_pair("server", &pki.server(1));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = pki.dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CROSSPROV_DATA_DIR", data.path())
        .env("CROSSPROV_TLS__CERT_PEM", &cert)
        .env("CROSSPROV_TLS__KEY_PEM", &key)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_for = |what: &str| {
        let start = std::time::Instant::now();
        while !read_log().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {what:?} in: {}",
                read_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Until then SIGHUP would still terminate the process.
    wait_for("listening for SIGHUP");
    // SAFETY: kill only sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(sent, 0);
    wait_for("TLS certificate reloaded");
    assert!(read_log().contains("SIGHUP"), "{}", read_log());
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped serve");
    child.kill().unwrap();
    child.wait().unwrap();
}
