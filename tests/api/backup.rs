//! Backups: `crossprov backup` and `restore` on the embedded database, taken while the
//! service works, and the PostgreSQL recipe of docs/operations.md (pg_dump, pg_restore, then
//! `audit verify --checkpoint`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::helpers::{sample_jpeg, spawn_app, Backend, PgDatabase, Serve, TestApp, World};

/// Runs the CLI with `data_dir` as its data directory (where the service key, the KEK, the
/// SQLite database and the evidence live by default).
fn crossprov_in(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(args)
        .env("CROSSPROV_DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("crossprov runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn succeeded(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} exited {:?}: {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(out)
}

/// A fresh data directory holding what the operator keeps apart from backups: the service
/// key and the KEK of the backed-up host.
fn restore_dir_for(source: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for kept in ["service-key.pem", "kek.hex"] {
        std::fs::copy(source.join(kept), dir.path().join(kept)).unwrap();
    }
    dir
}

async fn a_backup_taken_under_load_restores_whole() {
    let w = World::new(spawn_app(Backend::Sqlite).await.expect("app")).await;
    // Finished work with evidence, and an order still waiting.
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        let order = w.claimed_order().await;
        let jws = w.signer.sign(&w.payload(&order, "match"));
        w.submit(&order, &jws).await.assert_status(201);
        acknowledged.push(order["id"].as_str().unwrap().to_owned());
    }
    let claimed = w.claimed_order().await;
    let claimed_id = claimed["id"].as_str().unwrap().to_owned();
    w.upload_required(&claimed).await;
    acknowledged.push(claimed_id.clone());

    // Clerks keep opening orders while the backup is taken.
    let out_dir = tempfile::tempdir().unwrap();
    let backup_file = out_dir.path().join("crossprov.backup");
    let done = Arc::new(AtomicBool::new(false));
    let backup = {
        let data_dir = w.app.dir.path().to_path_buf();
        let file = backup_file.clone();
        let done = done.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let out = crossprov_in(&data_dir, &["backup", "--out", file.to_str().unwrap()]);
            done.store(true, Ordering::SeqCst);
            out
        })
    };
    let mut opened_during = 0;
    while !done.load(Ordering::SeqCst) {
        w.open_order().await;
        opened_during += 1;
    }
    let report = succeeded(&backup.await.unwrap(), "backup");
    assert!(opened_during > 0, "the backup was not taken under load");
    assert_eq!(report["ok"], true);
    assert_eq!(report["evidence_objects"], 3 * 3 + 3, "{report}");
    let events = report["audit"]["size"].as_u64().unwrap();
    assert!(events > 0);
    assert!(std::fs::metadata(&backup_file).unwrap().len() > 0);
    assert!(
        std::fs::read_dir(out_dir.path()).unwrap().count() == 1,
        "nothing but the backup is left beside it"
    );
    let checkpoint = out_dir.path().join("checkpoint.jws");
    std::fs::write(&checkpoint, report["checkpoint"].as_str().unwrap()).unwrap();

    // Restored on another host that has the service key and the KEK.
    let target = restore_dir_for(w.app.dir.path());
    let restored = succeeded(
        &crossprov_in(
            target.path(),
            &["restore", "--from", backup_file.to_str().unwrap()],
        ),
        "restore",
    );
    assert_eq!(restored["ok"], true);
    assert_eq!(restored["audit"], report["audit"]);
    assert_eq!(restored["work_orders"], report["work_orders"]);
    assert!(target.path().join("crossprov.db").exists());

    let audit = succeeded(
        &crossprov_in(
            target.path(),
            &[
                "audit",
                "verify",
                "--checkpoint",
                checkpoint.to_str().unwrap(),
            ],
        ),
        "audit verify",
    );
    assert_eq!(audit["ok"], true);
    assert_eq!(audit["checked"].as_u64().unwrap(), events);
    assert_eq!(audit["checkpoint"], "ok");
    let evidence = succeeded(
        &crossprov_in(target.path(), &["evidence", "verify"]),
        "evidence verify",
    );
    assert_eq!(evidence["checked"], 3 * 3 + 3, "{evidence}");

    // A service on the restored data has every acknowledged order, and opens their files.
    let config = target.path().join("restored.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", target.path().display().to_string()),
    )
    .unwrap();
    let serve = Serve::start(&config, "restored").await;
    let url = format!("sqlite://{}", target.path().join("crossprov.db").display());
    let app = TestApp::of_process(serve.base.clone(), Backend::Sqlite, url, target, None);
    let clerk = app.token("clerk.yn").await;
    for id in &acknowledged {
        app.get(&format!("/api/v1/work-orders/{id}"), &clerk)
            .await
            .assert_status(200);
    }
    let sha = crate::helpers::sha256_hex(&sample_jpeg(&claimed_id, "id_front"));
    let file = app
        .get(
            &format!("/api/v1/work-orders/{claimed_id}/evidence/{sha}"),
            &clerk,
        )
        .await;
    assert_eq!(file.status, 200, "{:?}", file.body);
    let listed = app.get("/api/v1/work-orders?limit=200", &clerk).await;
    assert_eq!(
        listed.items().len() as u64,
        report["work_orders"].as_u64().unwrap()
    );

    // Restoring again over the restored database is refused, and changes nothing.
    drop(serve);
    let again = crossprov_in(
        app.dir.path(),
        &["restore", "--from", backup_file.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}

/// The archive's entries, read whole (tests keep them small).
fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn write_entries(archive: &Path, entries: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(std::fs::File::create(archive).unwrap());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    tar.finish().unwrap();
}

/// A copy of the backup with `change` applied to its entries.
fn altered(
    original: &Path,
    name: &str,
    change: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> PathBuf {
    let mut all = entries(original);
    change(&mut all);
    let path = original.with_file_name(name);
    write_entries(&path, &all);
    path
}

fn flip_last_byte(entries: &mut [(String, Vec<u8>)], which: impl Fn(&str) -> bool) {
    let (_, bytes) = entries
        .iter_mut()
        .find(|(n, _)| which(n))
        .expect("the entry is in the backup");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
}

async fn a_backup_that_does_not_verify_is_refused_and_nothing_is_written() {
    let w = World::new(spawn_app(Backend::Sqlite).await.expect("app")).await;
    w.submitted_order("match").await;
    let out_dir = tempfile::tempdir().unwrap();
    let good = out_dir.path().join("good.backup");
    succeeded(
        &crossprov_in(
            w.app.dir.path(),
            &["backup", "--out", good.to_str().unwrap()],
        ),
        "backup",
    );
    // The archive as written is readable by any tar.
    let names: Vec<String> = entries(&good).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("crossprov.db"));
    assert_eq!(names.last().map(String::as_str), Some("manifest.jws"));
    assert_eq!(
        names.iter().filter(|n| n.starts_with("evidence/")).count(),
        3
    );

    let cases: Vec<(PathBuf, &str)> = vec![
        (
            altered(&good, "db.backup", |e| {
                flip_last_byte(e, |n| n == "crossprov.db")
            }),
            "crossprov.db is not the database the manifest describes",
        ),
        (
            altered(&good, "evidence.backup", |e| {
                flip_last_byte(e, |n| n.starts_with("evidence/"))
            }),
            "does not match its digest",
        ),
        (
            altered(&good, "missing.backup", |e| {
                let at = e
                    .iter()
                    .position(|(n, _)| n.starts_with("evidence/"))
                    .unwrap();
                e.remove(at);
            }),
            "is missing",
        ),
        (
            altered(&good, "manifest.backup", |e| {
                let (_, jws) = e.iter_mut().find(|(n, _)| n == "manifest.jws").unwrap();
                // Another payload under the same signature.
                let text = String::from_utf8(jws.clone()).unwrap();
                let parts: Vec<&str> = text.split('.').collect();
                let payload = format!("{}x", &parts[1][..parts[1].len() - 1]);
                *jws = format!("{}.{}.{}", parts[0], payload, parts[2]).into_bytes();
            }),
            "manifest",
        ),
        (
            altered(&good, "no-manifest.backup", |e| {
                e.retain(|(n, _)| n != "manifest.jws")
            }),
            "no manifest",
        ),
        (
            altered(&good, "stranger.backup", |e| {
                e.insert(1, ("notes.txt".into(), b"hello".to_vec()))
            }),
            "unexpected entry",
        ),
    ];
    for (backup, why) in cases {
        let target = restore_dir_for(w.app.dir.path());
        let out = crossprov_in(
            target.path(),
            &["restore", "--from", backup.to_str().unwrap()],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            backup.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json_of(&out);
        assert_eq!(report["ok"], false);
        let error = report["error"].as_str().unwrap();
        assert!(
            error.contains(why),
            "{}: refused for {error}",
            backup.display()
        );
        assert!(
            !target.path().join("crossprov.db").exists(),
            "a refused restore wrote the database"
        );
        assert!(
            !target.path().join("evidence").exists(),
            "a refused restore wrote evidence"
        );
    }

    // A truncated file is no backup either.
    let bytes = std::fs::read(&good).unwrap();
    let cut = out_dir.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let target = restore_dir_for(w.app.dir.path());
    let out = crossprov_in(target.path(), &["restore", "--from", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!target.path().join("crossprov.db").exists());

    // Another host's service key did not sign it.
    let stranger = tempfile::tempdir().unwrap();
    std::fs::copy(
        w.app.dir.path().join("kek.hex"),
        stranger.path().join("kek.hex"),
    )
    .unwrap();
    crossprov_in(
        stranger.path(),
        &[
            "keygen",
            "--alg",
            "EdDSA",
            "--out",
            stranger.path().to_str().unwrap(),
        ],
    );
    std::fs::rename(
        stranger.path().join("private.pem"),
        stranger.path().join("service-key.pem"),
    )
    .unwrap();
    let out = crossprov_in(
        stranger.path(),
        &["restore", "--from", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(json_of(&out)["error"]
        .as_str()
        .unwrap()
        .contains("not by this service's key"));
    assert!(!stranger.path().join("crossprov.db").exists());

    // Without the KEK the restore is not tried.
    let no_kek = tempfile::tempdir().unwrap();
    std::fs::copy(
        w.app.dir.path().join("service-key.pem"),
        no_kek.path().join("service-key.pem"),
    )
    .unwrap();
    let out = crossprov_in(
        no_kek.path(),
        &["restore", "--from", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEK"));
    assert!(!no_kek.path().join("crossprov.db").exists());

    // And the untouched backup still restores.
    let target = restore_dir_for(w.app.dir.path());
    succeeded(
        &crossprov_in(
            target.path(),
            &["restore", "--from", good.to_str().unwrap()],
        ),
        "restore of the untouched backup",
    );
}

async fn a_postgresql_database_says_to_use_pg_dump() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let out = crossprov_in(
        app.dir.path(),
        &[
            "backup",
            "--out",
            "x.backup",
            "--database-url",
            &app.database_url,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}

/// docs/operations.md's recipe, literally: keep a checkpoint, pg_dump, pg_restore into a new
/// database, and `audit verify --checkpoint` proves the restored log; a restored log whose
/// history was changed fails it.
async fn the_postgresql_recipe_restores_a_log_that_proves_its_checkpoint() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let w = World::new(app).await;
    w.submitted_order("match").await;
    let kept = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    let kept = kept.assert_status(200).clone();
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint.json");
    std::fs::write(&checkpoint, kept.to_string()).unwrap();
    // More work after the checkpoint, as on any day.
    w.open_order().await;

    let dump = dir.path().join("crossprov.dump");
    let status = Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&w.app.database_url)
        .status()
        .expect("pg_dump runs");
    assert!(status.success());
    let restored = PgDatabase::create().expect("a second database");
    let status = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &restored.url])
        .arg(&dump)
        .status()
        .expect("pg_restore runs");
    assert!(status.success());

    let verify = |url: &str| {
        crossprov_in(
            w.app.dir.path(),
            &[
                "audit",
                "verify",
                "--database-url",
                url,
                "--checkpoint",
                checkpoint.to_str().unwrap(),
            ],
        )
    };
    let report = succeeded(
        &verify(&restored.url),
        "audit verify of the restored database",
    );
    assert_eq!(report["checkpoint"], "ok");

    // Someone rewrites history in the restored copy.
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::PgConnection::establish(&restored.url).unwrap();
        conn.batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER ALL; \
             UPDATE audit_events SET actor = 'nobody' WHERE seq = 2",
        )
        .unwrap();
    }
    let out = verify(&restored.url);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["ok"], false);
}

#[actix_web::test]
async fn a_backup_taken_under_load_restores_whole_on_sqlite() {
    a_backup_taken_under_load_restores_whole().await;
}

#[actix_web::test]
async fn a_backup_that_does_not_verify_is_refused_and_nothing_is_written_on_sqlite() {
    a_backup_that_does_not_verify_is_refused_and_nothing_is_written().await;
}

#[actix_web::test]
async fn backup_on_postgresql_points_to_pg_dump() {
    a_postgresql_database_says_to_use_pg_dump().await;
}

#[actix_web::test]
async fn the_postgresql_backup_recipe_restores_a_log_that_proves_its_checkpoint() {
    the_postgresql_recipe_restores_a_log_that_proves_its_checkpoint().await;
}

/// Rolling back the binary after an upgrade: a database migrated by a newer crossprov is
/// refused at once, naming what to do, instead of being run on a schema this one does not know.
fn a_database_migrated_by_a_newer_version_is_refused(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let kek = dir.path().join("kek.hex");
    std::fs::write(&kek, hex::encode(crate::helpers::rand_bytes())).unwrap();
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["migrate", "--database-url", url])
            .env("CROSSPROV_DATA_DIR", dir.path())
            .env("CROSSPROV_CRYPTO__KEK_FILE", &kek)
            .stdin(Stdio::null())
            .output()
            .expect("crossprov runs")
    };
    let first = migrate();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let newer = "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')";
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if url.starts_with("postgres") {
            diesel::PgConnection::establish(url)
                .unwrap()
                .batch_execute(newer)
                .unwrap();
        } else {
            let path = url.trim_start_matches("sqlite://");
            diesel::SqliteConnection::establish(path)
                .unwrap()
                .batch_execute(newer)
                .unwrap();
        }
    }
    let refused = migrate();
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("newer crossprov") && why.contains("29991231000000"),
        "{why}"
    );
}

#[test]
fn a_database_migrated_by_a_newer_version_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crossprov.db").display());
    a_database_migrated_by_a_newer_version_is_refused(&url);
}

#[test]
fn a_database_migrated_by_a_newer_version_is_refused_on_postgres() {
    if let Some(db) = PgDatabase::create() {
        a_database_migrated_by_a_newer_version_is_refused(&db.url);
    }
}
