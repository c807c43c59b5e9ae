//! `crossprov config check`: every setting with its origin, secrets redacted, and the
//! contradictions `serve` refuses to start on, refused the same way by both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::rand_bytes;

/// `crossprov <args>` in `dir` (its data_dir) with exactly these `CROSSPROV_*` variables.
fn crossprov(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossprov"));
    for (var, _) in std::env::vars() {
        if var.starts_with("CROSSPROV_") {
            cmd.env_remove(var);
        }
    }
    cmd.args(args)
        .current_dir(dir)
        .env("CROSSPROV_DATA_DIR", dir)
        .envs(env.iter().copied())
        .output()
        .expect("crossprov runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `key` in the listing, spaces squeezed: `key = value # origin`.
fn line_of(listing: &str, key: &str) -> String {
    let line = listing
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} not listed: {listing}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn kek(dir: &Path) -> PathBuf {
    let file = dir.join("kek.hex");
    std::fs::write(&file, hex::encode(rand_bytes())).unwrap();
    file
}

#[test]
fn config_check_names_where_every_setting_came_from_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crossprov.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9000\"\n\
         [database]\nurl = \"postgres://crossprov:db-hunter2@db.internal/crossprov\"\n\
         [sla]\ndue_hours = 12\n",
    )
    .unwrap();
    let kek = kek(dir.path());
    let out = crossprov(
        dir.path(),
        &[
            "config",
            "check",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9100",
        ],
        &[
            ("CROSSPROV_CRYPTO__KEK_FILE", kek.to_str().unwrap()),
            ("CROSSPROV_MAIL__SMTP_PASSWORD", "smtp-hunter2"),
            ("CROSSPROV_SLA__DEADLINE_HOURS", "96"),
        ],
    );
    let (listing, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let file = file.display();
    for (key, expected) in [
        ("server.listen", "server.listen = \"127.0.0.1:9100\" # flag --listen".to_owned()),
        (
            "database.url",
            format!(
                "database.url = \"postgres://crossprov:[REDACTED]@db.internal/crossprov\" # file {file}"
            ),
        ),
        ("sla.due_hours", format!("sla.due_hours = 12 # file {file}")),
        (
            "sla.deadline_hours",
            "sla.deadline_hours = 96 # env CROSSPROV_SLA__DEADLINE_HOURS".to_owned(),
        ),
        (
            "mail.smtp_password",
            "mail.smtp_password = \"[REDACTED]\" # env CROSSPROV_MAIL__SMTP_PASSWORD".to_owned(),
        ),
        ("mail.transport", "mail.transport = \"file\" # default".to_owned()),
        ("data_dir", format!("data_dir = {:?} # env CROSSPROV_DATA_DIR", dir.path().display().to_string())),
    ] {
        assert_eq!(line_of(&listing, key), expected);
    }
    assert!(
        !listing.contains("hunter2") && !stderr.contains("hunter2"),
        "{listing}{stderr}"
    );
    // Every key of the documented defaults is listed.
    let defaults = include_str!("../../config/default.toml");
    for key in [
        "server.workers",
        "auth.token_ttl_seconds",
        "retention.days",
        "testing.movable_clock",
    ] {
        assert!(defaults.contains(key.split('.').next_back().unwrap()));
        line_of(&listing, key);
    }
}

/// Each contradiction: the settings that make it, and what its one line must say.
const CONTRADICTIONS: &[(&[(&str, &str)], &str)] = &[
    (
        &[
            ("CROSSPROV_MODE", "production"),
            ("CROSSPROV_CRYPTO__KEK_FILE", "@kek"),
        ],
        "mail.transport = \"file\" in production mode",
    ),
    (
        &[
            ("CROSSPROV_MODE", "production"),
            ("CROSSPROV_MAIL__TRANSPORT", "smtp"),
            ("CROSSPROV_MAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
        ],
        "crypto.kek_file",
    ),
    (
        &[(
            "CROSSPROV_DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/crossprov",
        )],
        "every instance sharing this PostgreSQL database",
    ),
    (
        &[("CROSSPROV_CRYPTO__KEK_FILE", "/nonexistent/kek.hex")],
        "/nonexistent/kek.hex",
    ),
    (
        &[("CROSSPROV_TLS__CERT_PEM", "/etc/crossprov/cert.pem")],
        "tls.key_pem",
    ),
    (
        &[("CROSSPROV_TLS__CLIENT_CA_PEM", "/etc/crossprov/ca.pem")],
        "TLS",
    ),
    (&[("CROSSPROV_MAIL__TRANSPORT", "smtp")], "smtp_url"),
    (
        &[
            ("CROSSPROV_MODE", "production"),
            ("CROSSPROV_CRYPTO__KEK_FILE", "@kek"),
            ("CROSSPROV_MAIL__TRANSPORT", "smtp"),
            ("CROSSPROV_MAIL__SMTP_URL", "smtp://127.0.0.1:2525"),
            ("CROSSPROV_TESTING__MOVABLE_CLOCK", "true"),
        ],
        "testing.movable_clock",
    ),
    (&[("CROSSPROV_EVIDENCE__STORE", "s3")], "evidence.s3_url"),
    (&[("CROSSPROV_MAIL__TRANSPORT", "pigeon")], "mail.transport"),
    (&[("CROSSPROV_AUDIT__QUORUM", "1")], "audit.quorum = 1"),
    (
        &[("CROSSPROV_AUDIT__ORIGIN", "audit log+1")],
        "audit.origin",
    ),
];

#[test]
fn config_check_and_serve_refuse_each_contradiction_with_one_line_naming_it() {
    for (env, says) in CONTRADICTIONS {
        let dir = tempfile::tempdir().unwrap();
        let kek = kek(dir.path()).display().to_string();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (*k, if *v == "@kek" { kek.as_str() } else { *v }))
            .collect();
        let out = crossprov(dir.path(), &["config", "check"], &env);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        let refused: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("crossprov: refused: "))
            .collect();
        assert_eq!(refused.len(), 1, "{env:?}: one line each: {stderr}");
        assert!(
            refused[0].contains(says),
            "{env:?}: {says:?} not in {stderr}"
        );
        // serve refuses the same, before touching the database.
        let mut serve_env = env.clone();
        serve_env.push(("CROSSPROV_SERVER__LISTEN", "127.0.0.1:0"));
        let out = crossprov(dir.path(), &["serve"], &serve_env);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(says), "{env:?}: {says:?} not in {stderr}");
        assert!(!dir.path().join("crossprov.db").exists(), "{env:?}");
    }
}

#[test]
fn the_production_example_passes_config_check_with_its_secrets_given() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.toml");
    let example = example.to_str().unwrap();
    let kek = kek(dir.path());
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["crossprov.example.cn".to_owned()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
    let secrets = [
        ("CROSSPROV_CRYPTO__KEK_FILE", kek.to_str().unwrap()),
        ("CROSSPROV_TLS__CERT_PEM", cert_file.to_str().unwrap()),
        ("CROSSPROV_TLS__KEY_PEM", key_file.to_str().unwrap()),
        (
            "CROSSPROV_DATABASE__URL",
            "postgres://crossprov:db-hunter2@db.internal/crossprov",
        ),
        ("CROSSPROV_MAIL__SMTP_PASSWORD", "smtp-hunter2"),
    ];
    let out = crossprov(
        dir.path(),
        &["config", "check", "--config", example],
        &secrets,
    );
    let (listing, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        line_of(&listing, "mode"),
        format!("mode = \"production\" # file {example}")
    );
    assert!(!listing.contains("hunter2"), "{listing}");
    // Without them it says what is missing: the KEK and the certificate files it names.
    let out = crossprov(dir.path(), &["config", "check", "--config", example], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/etc/crossprov/kek.hex"), "{stderr}");
    assert!(stderr.contains("/etc/crossprov/tls/cert.pem"), "{stderr}");
}
