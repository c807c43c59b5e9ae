//! TLS to PostgreSQL: `crossprov serve` on a private cluster that takes TLS connections only,
//! with `sslmode=verify-full`; it refuses to start on a server it cannot trust, saying why.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::cli::crossprov;
use crate::helpers::Serve;
use crate::helpers::{Backend, TestApp, World, ADMIN, PASSWORD};
use crate::pg_cluster::{ClusterSetup, PgCluster};
use crate::tls::Pki;

/// The superuser's password: it must never show in what `serve` prints.
const DB_PASSWORD: &str = "pg-tls-hunter2";
/// A role that logs in with a client certificate (its Subject CN) instead of a password.
const CERT_ROLE: &str = "crossprov_cert";

/// TLS only: no `host` or `local` line, so a plain connection matches no rule.
const HBA: &str = "\
hostssl all postgres 127.0.0.1/32 scram-sha-256
hostssl all postgres ::1/128 scram-sha-256
hostssl all crossprov_cert 127.0.0.1/32 cert
hostssl all crossprov_cert ::1/128 cert
";

/// A TLS-only cluster serving a certificate of `pki` for localhost (its CA also checks
/// client certificates).
fn cluster(pki: &Pki) -> Option<PgCluster> {
    let server = pki.server(1);
    let ca = pki.ca_pem();
    let conf = [
        "ssl = on",
        "ssl_cert_file = '../server.pem'",
        "ssl_key_file = '../server.key'",
        "ssl_ca_file = '../ca.pem'",
    ]
    .map(String::from);
    PgCluster::start(&ClusterSetup {
        conf: &conf,
        hba: HBA,
        files: &[
            ("server.pem", &server.cert),
            ("server.key", &server.key),
            ("ca.pem", &ca),
        ],
        password: DB_PASSWORD,
    })
}

/// The settings of one `serve` run: this database URL, the deployment's data and KEK.
fn config(dir: &Path, name: &str, url: &str) -> PathBuf {
    let kek = dir.join("kek.hex");
    if !kek.exists() {
        std::fs::write(&kek, hex::encode(crate::helpers::rand_bytes())).unwrap();
    }
    let text = format!(
        "data_dir = {data:?}\n\
         [server]\nworkers = 1\n\
         [database]\nurl = {url:?}\npool_size = 2\n\
         [crypto]\nkek_file = {kek:?}\n",
        data = dir.join(format!("{name}-data")).display().to_string(),
        kek = kek.display().to_string(),
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// `crossprov serve` with `config`, which must refuse to start: its standard error.
fn refused(config: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{config:?}: {stderr}");
    assert!(!stderr.contains(DB_PASSWORD), "password shown: {stderr}");
    stderr
}

/// `crossprov migrate` with `config`, OpenSSL's default roots being only `roots` when given
/// (`SSL_CERT_FILE`), the machine's otherwise.
fn migrate(config: &Path, roots: Option<&Path>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossprov"));
    cmd.args(["migrate", "--config"])
        .arg(config)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(roots) = roots {
        cmd.env("SSL_CERT_FILE", roots);
    }
    cmd.output().unwrap()
}

#[actix_web::test]
async fn serve_on_a_tls_only_postgresql_verifies_the_server_and_refuses_one_it_cannot_trust() {
    let pki = Pki::new("postgresql");
    let Some(cluster) = cluster(&pki) else {
        return;
    };
    let port = cluster.port;
    let ca = pki.write("ca.pem", &pki.ca_pem());
    let stranger = Pki::new("stranger");
    let stranger_ca = pki.write("stranger-ca.pem", &stranger.ca_pem());
    let url = |login: &str, host: &str, database: &str, params: &str| {
        format!("postgres://{login}@{host}:{port}/{database}?sslmode=verify-full&{params}")
    };
    let rooted = |root: &Path| format!("sslrootcert={}", root.display());
    let superuser = format!("postgres:{DB_PASSWORD}");
    let verified = url(&superuser, "localhost", "postgres", &rooted(&ca));

    // The cluster itself: a plain connection is turned away, a verified one is encrypted.
    let plain = format!("postgres://{superuser}@localhost:{port}/postgres?sslmode=disable");
    let turned_away = diesel::PgConnection::establish(&plain).err().unwrap();
    assert!(
        turned_away.to_string().contains("no encryption"),
        "{turned_away}"
    );
    let mut admin = diesel::PgConnection::establish(&verified)
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_text()));
    let ssl = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
    ))
    .get_result::<bool>(&mut admin)
    .unwrap();
    assert!(ssl, "the verified connection is encrypted");

    // `serve` over verify-full becomes ready and writes: the admin made from the command
    // line over the same URL, then a login and an order opened through the API.
    let dir = tempfile::tempdir().unwrap();
    let settings = config(dir.path(), "verified", &verified);
    let serve = Serve::start(&settings, "verified").await;
    let app = TestApp::of_process(
        serve.base.clone(),
        Backend::Postgres,
        verified.clone(),
        dir,
        None,
    );
    let add_admin = [
        "user",
        "add",
        "--config",
        settings.to_str().unwrap(),
        "--username",
        ADMIN,
        "--role",
        "admin",
        "--password-stdin",
    ];
    let out = crossprov(&app, &add_admin, Some(&format!("{PASSWORD}\n")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = order["id"].as_str().unwrap();
    let read = w
        .app
        .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
        .await;
    assert_eq!(read.assert_status(200)["state"], "open");
    assert!(
        !serve.log_tail().contains(DB_PASSWORD),
        "{}",
        serve.log_tail()
    );
    drop(serve);
    let dir = w.app.dir.path();

    // A server certificate from a CA the client does not trust.
    let stderr = refused(&config(
        dir,
        "stranger-ca",
        &url(&superuser, "localhost", "postgres", &rooted(&stranger_ca)),
    ));
    assert!(
        stderr.contains("cannot connect to the database")
            && stderr.contains("certificate verify failed"),
        "{stderr}"
    );
    // The right server, reached under a name its certificate does not carry.
    let params = format!("hostaddr=127.0.0.1&{}", rooted(&ca));
    let stderr = refused(&config(
        dir,
        "other-name",
        &url(&superuser, "db.example.invalid", "postgres", &params),
    ));
    assert!(
        stderr.contains("does not match host name \"db.example.invalid\""),
        "{stderr}"
    );
    // No CA file where the URL says: named, not silently unverified.
    let missing = dir.join("missing-ca.pem");
    let stderr = refused(&config(
        dir,
        "missing-ca",
        &url(&superuser, "localhost", "postgres", &rooted(&missing)),
    ));
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );

    // `sslrootcert=system`: the roots OpenSSL is pointed at, the machine's unless
    // SSL_CERT_FILE names others (the machine's do not hold the test CA).
    let system = config(
        dir,
        "system-roots",
        &url(&superuser, "localhost", "postgres", "sslrootcert=system"),
    );
    let out = migrate(&system, Some(&ca));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let out = migrate(&system, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("certificate verify failed"), "{stderr}");

    // A client certificate in place of a password: a role whose name is the certificate's
    // CN, on a database of its own (migrated at start over that connection).
    // One statement per call: CREATE DATABASE cannot run in the block several would make.
    for sql in [
        format!("CREATE ROLE {CERT_ROLE} LOGIN"),
        format!("CREATE DATABASE {CERT_ROLE} OWNER {CERT_ROLE}"),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    let client = pki.terminal(CERT_ROLE, &[]);
    let (cert, key) = pki.write_pair("client", &client);
    {
        use std::os::unix::fs::PermissionsExt;
        // libpq refuses a client key that others can read.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let with_cert = format!(
        "{}&sslcert={}&sslkey={}",
        rooted(&ca),
        cert.display(),
        key.display()
    );
    let settings = config(
        dir,
        "client-cert",
        &url(CERT_ROLE, "localhost", CERT_ROLE, &with_cert),
    );
    drop(Serve::start(&settings, "client-cert").await);
    let stderr = refused(&config(
        dir,
        "no-client-cert",
        &url(CERT_ROLE, "localhost", CERT_ROLE, &rooted(&ca)),
    ));
    assert!(
        stderr.contains("connection requires a valid client certificate"),
        "{stderr}"
    );
}
