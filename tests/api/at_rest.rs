//! Personal data at rest: nothing plain in the database, its WAL, the evidence store or the
//! mail outbox after a full life cycle; search through the blind index; the signed result
//! exported for an independent check; values written before encryption sealed at start; the
//! KEK required where a generated one would be a disaster.

use std::process::Command;

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::{json, Value};

use crate::helpers::ErrorCode::*;
use crate::helpers::{eventually, Backend, PgDatabase, TestApp, World, ID_NUMBER, NAME};
use crate::{on_both_backends, provokes};

/// A JPEG-typed file whose bytes carry the ID number and the name, as a scan would.
fn scan_with_identity() -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    bytes.extend_from_slice(format!("{ID_NUMBER} {NAME} scan").as_bytes());
    bytes
}

/// What must appear nowhere at rest: the ID number, the name, the result's payload as JSON
/// and as the base64url segment of the JWS.
fn secrets_of(jws: &str, payload: &Value) -> Vec<(String, Vec<u8>)> {
    let segment = jws.split('.').nth(1).expect("payload segment").to_owned();
    vec![
        ("ID number".into(), ID_NUMBER.as_bytes().to_vec()),
        ("name".into(), NAME.as_bytes().to_vec()),
        ("JWS payload (base64url)".into(), segment.into_bytes()),
        (
            "JWS payload (JSON)".into(),
            serde_json::to_vec(payload).unwrap(),
        ),
    ]
}

fn assert_absent(what: &str, haystack: &[u8], secrets: &[(String, Vec<u8>)]) {
    for (name, needle) in secrets {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice()),
            "{what} holds the plain {name}"
        );
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Every row of every table of the PostgreSQL database, as text.
fn pg_dump_text(url: &str) -> Vec<u8> {
    let mut conn = diesel::PgConnection::establish(url).unwrap();
    let tables: Vec<TableName> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .load(&mut conn)
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let rows: Vec<Row> =
            diesel::sql_query(format!("SELECT t::text AS row FROM \"{}\" t", t.name))
                .load(&mut conn)
                .unwrap();
        for r in rows {
            out.extend_from_slice(r.row.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// A full life cycle with a known ID number and name: opened with the expected name, scans
/// uploaded (one carrying the identity), the result accepted, the order completed.
async fn full_life_cycle(w: &World) -> (Value, String, Value) {
    let order = w.claimed_order().await;
    let id = order["id"].as_str().unwrap().to_owned();
    w.app
        .upload(&id, "other", "image/jpeg", scan_with_identity(), &w.staff)
        .await
        .assert_status(201);
    let payload = w.payload(&order, "match");
    let jws = w.signer.sign(&payload);
    w.submit(&order, &jws).await.assert_status(201);
    let done = w.app.act(&id, "complete", &w.clerk, &json!({})).await;
    done.assert_status(200);
    (done.body.clone(), jws, payload)
}

async fn a_full_life_cycle_leaves_no_plain_personal_data_at_rest(app: TestApp) {
    let w = World::new(app).await;
    let (order, jws, payload) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap();
    // The home clerk still reads it all, so it is there, sealed.
    assert_eq!(order["expected_name"], NAME);
    let back = w
        .app
        .get(
            &format!(
                "/api/v1/work-orders/{id}/evidence/{}",
                crate::helpers::sha256_hex(&scan_with_identity())
            ),
            &w.clerk,
        )
        .await;
    assert_eq!(back.raw, scan_with_identity(), "served as uploaded");
    let secrets = secrets_of(&jws, &payload);

    match w.app.backend {
        Backend::Sqlite => {
            let db = w.app.dir.path().join("crossprov.db");
            for file in [db.clone(), db.with_extension("db-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    assert_absent(&file.display().to_string(), &bytes, &secrets);
                }
            }
        }
        Backend::Postgres => {
            let dump = pg_dump_text(&w.app.database_url);
            assert!(!dump.is_empty());
            assert_absent("a dump of every table", &dump, &secrets);
        }
    }
    let evidence = files_under(&w.app.dir.path().join("evidence"));
    assert!(evidence.len() >= 4, "{evidence:?}");
    for file in evidence {
        assert_absent(
            &file.display().to_string(),
            &std::fs::read(&file).unwrap(),
            &secrets,
        );
    }
    for file in files_under(&w.app.dir.path().join("outbox")) {
        assert_absent(
            &file.display().to_string(),
            &std::fs::read(&file).unwrap(),
            &secrets,
        );
    }
    // The audit trail, as the API serves it, holds masked values only.
    let events = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/events"), &w.auditor)
        .await;
    assert_absent("the audit trail", &events.raw, &secrets);
    // The server's logs go to the test process's subscriber (none installed): not captured here.
}

async fn search_by_id_number_or_name_finds_the_order_in_scope_only(app: TestApp) {
    let w = World::new(app).await;
    let opened = w.open_order().await;
    let (done, _, _) = full_life_cycle(&w).await;
    let id = done["id"].as_str().unwrap();
    let ids = |r: crate::helpers::Reply| -> Vec<String> {
        r.items()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // By ID number (lower-case check digit and spaces are the same number).
    for q in [
        ID_NUMBER.to_owned(),
        format!(" {} ", ID_NUMBER.to_lowercase()),
    ] {
        let path = format!("/api/v1/work-orders?document_number={}", urlencode(&q));
        assert_eq!(ids(w.app.get(&path, &w.auditor).await), [id.to_owned()]);
        assert_eq!(ids(w.app.get(&path, &w.clerk).await), [id.to_owned()]);
        assert!(
            ids(w.app.get(&path, &w.other_clerk).await).is_empty(),
            "out of scope"
        );
    }
    // By name: the expected name of both orders, the document's of the completed one.
    let path = format!("/api/v1/work-orders?name={}", urlencode(NAME));
    let mut found = ids(w.app.get(&path, &w.auditor).await);
    found.sort();
    let mut both = vec![id.to_owned(), opened["id"].as_str().unwrap().to_owned()];
    both.sort();
    assert_eq!(found, both);
    let path = format!("/api/v1/work-orders?name={}", urlencode("李四"));
    assert!(ids(w.app.get(&path, &w.auditor).await).is_empty());
    // The auditor's trail, by ID number: the events of the completed order only.
    let path = format!("/api/v1/audit/events?document_number={ID_NUMBER}");
    let events = w.app.get(&path, &w.auditor).await.items();
    assert!(events.len() >= 5, "{events:?}");
    assert!(events.iter().all(|e| e["work_order"] == id), "{events:?}");
    // An export by ID number records the number masked, never in full.
    let path = format!("/api/v1/audit/events?document_number={ID_NUMBER}&format=ndjson");
    w.app.get(&path, &w.auditor).await.assert_status(200);
    let exports = w
        .app
        .get("/api/v1/audit/events?action=audit.exported", &w.auditor)
        .await;
    let raw = String::from_utf8_lossy(&exports.raw).into_owned();
    assert!(raw.contains("110105********002X"), "{raw}");
    assert!(!raw.contains(ID_NUMBER), "{raw}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn a_malformed_id_number_search_is_a_bad_request(app: TestApp) {
    let w = World::new(app).await;
    for q in ["123", "11010519491231002Y", ""] {
        for path in [
            format!("/api/v1/work-orders?document_number={q}"),
            format!("/api/v1/audit/events?document_number={q}"),
        ] {
            w.app
                .get(&path, &w.auditor)
                .await
                .problem(InvalidRequest)
                .at("document_number");
        }
    }
}

async fn the_signed_result_is_exported_verbatim_to_auditors_and_home_clerks(app: TestApp) {
    let w = World::new(app).await;
    let (order, jws, _) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap();
    let path = format!("/api/v1/work-orders/{id}/verification/result");
    for who in [&w.auditor, &w.clerk] {
        let r = w.app.get(&path, who).await;
        assert_eq!(r.assert_status(200)["result"], jws.as_str());
    }
    let events = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/events"), &w.auditor)
        .await;
    let exported = events
        .items()
        .iter()
        .filter(|e| e["action"] == "verification.result_exported")
        .count();
    assert_eq!(exported, 2, "every read is audited");
    w.app.get(&path, &w.staff).await.problem(Forbidden);
    w.app.get(&path, &w.other_clerk).await.problem(NotFound);
    // An order without a result has nothing to export.
    let open = w.open_order().await;
    let path = format!(
        "/api/v1/work-orders/{}/verification/result",
        open["id"].as_str().unwrap()
    );
    w.app.get(&path, &w.auditor).await.problem(NotFound);
}

/// Rows written before encryption at rest hold plain values; a restart seals them, and they
/// read as before.
async fn plain_values_written_before_encryption_are_sealed_at_start(app: TestApp) {
    let w = World::new(app).await;
    let (order, jws, payload) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let plain = [
        format!("UPDATE work_orders SET expected_name = '{NAME}', expected_name_masked = NULL, expected_name_index = NULL WHERE id = '{id}'"),
        format!("UPDATE verification_results SET jws = '{jws}', document_number_index = NULL, document_name_index = NULL WHERE work_order_id = '{id}'"),
    ];
    raw_sql(&w.app, &plain);
    let restarted = w.app.another_instance();
    let r = restarted
        .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
        .await;
    assert_eq!(r.assert_status(200)["expected_name"], NAME);
    let r = restarted
        .get(&format!("/api/v1/work-orders/{id}"), &w.auditor)
        .await;
    assert_eq!(r.assert_status(200)["expected_name"], "张*");
    let r = restarted
        .get(
            &format!("/api/v1/work-orders/{id}/verification/result"),
            &w.auditor,
        )
        .await;
    assert_eq!(r.assert_status(200)["result"], jws.as_str());
    let path = format!("/api/v1/work-orders?document_number={ID_NUMBER}");
    assert_eq!(
        restarted.get(&path, &w.auditor).await.items().len(),
        1,
        "indexed"
    );
    if w.app.backend == Backend::Postgres {
        assert_absent(
            "a dump after the restart",
            &pg_dump_text(&w.app.database_url),
            &secrets_of(&jws, &payload),
        );
    }
}

/// Runs statements on the app's database directly, as an old version of the service would have.
pub fn raw_sql(app: &TestApp, statements: &[String]) {
    use diesel::connection::SimpleConnection;
    match app.backend {
        Backend::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://");
            let mut c = diesel::SqliteConnection::establish(path).unwrap();
            c.batch_execute("PRAGMA busy_timeout = 10000").unwrap();
            for s in statements {
                c.batch_execute(s).unwrap();
            }
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(&app.database_url).unwrap();
            for s in statements {
                c.batch_execute(s).unwrap();
            }
        }
    }
}

on_both_backends!(
    a_full_life_cycle_leaves_no_plain_personal_data_at_rest,
    search_by_id_number_or_name_finds_the_order_in_scope_only,
    the_signed_result_is_exported_verbatim_to_auditors_and_home_clerks,
    plain_values_written_before_encryption_are_sealed_at_start,
);

provokes!(PROVOKED {
    InvalidRequest => [a_malformed_id_number_search_is_a_bad_request],
});

fn serve(dir: &std::path::Path, env: &[(&str, String)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CROSSPROV_DATA_DIR", dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("crossprov runs")
}

fn refused_naming(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn serve_refuses_without_a_kek_in_production_mode_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve(dir.path(), &[("CROSSPROV_MODE", "production".into())]);
    refused_naming(&out, "crypto.kek_file");
    assert!(!dir.path().join("kek.hex").exists(), "none is made up");
}

#[test]
fn serve_refuses_a_missing_or_malformed_kek_file_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-kek.hex");
    std::fs::write(&bad, "not hex at all").unwrap();
    for file in [bad, dir.path().join("absent-kek.hex")] {
        for mode in ["embedded", "production"] {
            let out = serve(
                dir.path(),
                &[
                    ("CROSSPROV_MODE", mode.into()),
                    ("CROSSPROV_CRYPTO__KEK_FILE", file.display().to_string()),
                ],
            );
            refused_naming(&out, &file.display().to_string());
        }
    }
}

#[test]
fn serve_refuses_to_make_up_a_kek_for_a_shared_postgres_database() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = serve(dir.path(), &[("CROSSPROV_DATABASE__URL", db.url.clone())]);
    refused_naming(&out, "crypto.kek_file");
    assert!(!dir.path().join("kek.hex").exists());
}

fn movable_clock(s: &mut crossprov::config::Settings) {
    s.testing.movable_clock = true;
}

/// Runs the CLI against the app's database, with its data_dir and KEK (and `env`); the
/// one JSON object it prints.
fn cli(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(args)
        .args(["--database-url", &app.database_url])
        .env("CROSSPROV_DATA_DIR", app.dir.path())
        .env("CROSSPROV_CRYPTO__KEK_FILE", app.dir.path().join("kek.hex"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("crossprov runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its logs (standard error) and report name no one.
    for stream in [&out.stderr, &out.stdout] {
        assert_absent(
            "the CLI's output",
            stream,
            &[
                ("ID number".into(), ID_NUMBER.as_bytes().to_vec()),
                ("name".into(), NAME.as_bytes().to_vec()),
            ],
        );
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

fn retention_run(app: &TestApp) -> Value {
    cli(
        app,
        &["retention", "run"],
        &[
            ("CROSSPROV_TESTING__MOVABLE_CLOCK", "true".into()),
            ("CROSSPROV_RETENTION__DAYS", "30".into()),
        ],
    )
}

async fn shredding_after_retention_erases_the_subscriber_everywhere_while_the_audit_verifies(
    app: TestApp,
) {
    let w = World::new(app).await;
    let (order, _, _) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let files: Vec<String> = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/evidence"), &w.clerk)
        .await
        .items()
        .iter()
        .map(|f| f["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files.len(), 4);
    // Another subscriber with an order still open is never due.
    let waiting = w.open_order().await;

    // Not yet: closed today.
    assert_eq!(retention_run(&w.app)["shredded"], 0);
    let admin = w.admin.clone();
    w.app
        .post(
            "/api/v1/admin/clock",
            &admin,
            &json!({ "advance_seconds": 31 * 86_400 }),
        )
        .await
        .assert_status(200);
    let report = retention_run(&w.app);
    assert_eq!(report["shredded"], 1, "{report}");
    assert_eq!(report["evidence_deleted"], 4, "{report}");
    assert_eq!(report["evidence_pending"], 0, "{report}");

    // Views: no name; the signed result and the files are gone (410 shredded).
    let seen = w
        .app
        .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
        .await;
    assert_eq!(seen.assert_status(200)["expected_name"], Value::Null);
    assert_eq!(seen.body["state"], "completed");
    let seen = w
        .app
        .get(&format!("/api/v1/work-orders/{id}"), &w.auditor)
        .await;
    assert_eq!(seen.assert_status(200)["expected_name"], Value::Null);
    w.app
        .get(
            &format!("/api/v1/work-orders/{id}/verification/result"),
            &w.auditor,
        )
        .await
        .problem(Shredded);
    for sha in &files {
        w.app
            .get(
                &format!("/api/v1/work-orders/{id}/evidence/{sha}"),
                &w.clerk,
            )
            .await
            .problem(Shredded);
    }
    let left = files_under(&w.app.dir.path().join("evidence/v1").join(&id));
    assert!(left.is_empty(), "objects left: {left:?}");
    // Nothing finds it any more.
    let path = format!("/api/v1/work-orders?document_number={ID_NUMBER}");
    assert!(w.app.get(&path, &w.auditor).await.items().is_empty());
    let path = format!("/api/v1/work-orders?name={}", urlencode(NAME));
    let found = w.app.get(&path, &w.auditor).await.items();
    assert_eq!(found.len(), 1, "only the waiting order");
    assert_eq!(found[0]["id"], waiting["id"]);

    // The shredding is itself audited, masked; the chain still verifies end to end.
    let events = w
        .app
        .get(
            "/api/v1/audit/events?action=subscriber.shredded",
            &w.auditor,
        )
        .await;
    let events = events.items();
    assert_eq!(events.len(), 1);
    let detail = &events[0]["detail"];
    assert_eq!(detail["data_keys"], 1);
    assert_eq!(detail["evidence_files"], 4);
    assert!(
        detail["msisdn"].as_str().unwrap().contains("****"),
        "{detail}"
    );
    let verified = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verified.assert_status(200)["ok"], true);
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["audit", "verify", "--database-url", &w.app.database_url])
        .env("CROSSPROV_DATA_DIR", w.app.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Once is enough: a second pass finds nothing; the waiting order reads as before.
    let again = retention_run(&w.app);
    assert_eq!(
        (again["shredded"].clone(), again["evidence_deleted"].clone()),
        (json!(0), json!(0))
    );
    let r = w
        .app
        .get(
            &format!("/api/v1/work-orders/{}", waiting["id"].as_str().unwrap()),
            &w.clerk,
        )
        .await;
    assert_eq!(r.assert_status(200)["expected_name"], NAME);
}

async fn after_kek_rotation_everything_reads_with_only_the_new_kek(app: TestApp) {
    let w = World::new(app).await;
    let (order, jws, _) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let new_kek = w.app.dir.path().join("kek-2.hex");
    std::fs::write(&new_kek, hex::encode(crate::helpers::rand_bytes())).unwrap();

    let report = cli(
        &w.app,
        &[
            "keys",
            "rotate-kek",
            "--new-kek-file",
            new_kek.to_str().unwrap(),
        ],
        &[],
    );
    // One subscriber's data key and the blind-index key.
    assert_eq!(report["rewrapped"], 2, "{report}");
    assert_eq!(report["remaining"], 0, "{report}");
    let kek_id = report["kek_id"].as_str().unwrap().to_owned();
    assert_eq!(kek_id.len(), 16);
    // Resumable and idempotent: a rerun has nothing left to do.
    let again = cli(
        &w.app,
        &[
            "keys",
            "rotate-kek",
            "--new-kek-file",
            new_kek.to_str().unwrap(),
        ],
        &[(
            "CROSSPROV_CRYPTO__PREVIOUS_KEK_FILES",
            w.app.dir.path().join("kek.hex").display().to_string(),
        )],
    );
    assert_eq!(
        (again["rewrapped"].clone(), again["remaining"].clone()),
        (json!(0), json!(0))
    );

    // An instance given only the new KEK reads everything.
    let path = new_kek.display().to_string();
    let files = w.app.dir.path().join("evidence").display().to_string();
    let only_new = w.app.another_instance_with(std::sync::Arc::new(move |s| {
        s.crypto.kek_file = path.clone();
        s.crypto.previous_kek_files = vec![];
        // The same evidence store, as instances behind one load balancer share.
        s.evidence.dir = files.clone();
    }));
    let r = only_new
        .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
        .await;
    assert_eq!(r.assert_status(200)["expected_name"], NAME);
    let r = only_new
        .get(
            &format!("/api/v1/work-orders/{id}/verification/result"),
            &w.auditor,
        )
        .await;
    assert_eq!(r.assert_status(200)["result"], jws.as_str());
    let search = format!("/api/v1/work-orders?document_number={ID_NUMBER}");
    assert_eq!(only_new.get(&search, &w.auditor).await.items().len(), 1);
    let sha = crate::helpers::sha256_hex(&scan_with_identity());
    let r = only_new
        .get(
            &format!("/api/v1/work-orders/{id}/evidence/{sha}"),
            &w.clerk,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.raw, scan_with_identity());
    // A new subscriber's key is wrapped under it, and reads back.
    let fresh = World { app: only_new, ..w };
    let opened = fresh.open_order().await;
    let r = fresh
        .app
        .get(
            &format!("/api/v1/work-orders/{}", opened["id"].as_str().unwrap()),
            &fresh.clerk,
        )
        .await;
    assert_eq!(r.assert_status(200)["expected_name"], NAME);
    let events = fresh
        .app
        .get(
            "/api/v1/audit/events?action=crypto.kek_rotated",
            &fresh.auditor,
        )
        .await;
    let events = events.items();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["detail"]["kek_id"], kek_id.as_str());
    assert_eq!(events[0]["actor"], "cli");
}

on_both_backends!(after_kek_rotation_everything_reads_with_only_the_new_kek);

/// The pass inside `serve`, not only the command: once the retention period has passed on
/// the service's clock, the subscriber is shredded without anyone running anything.
async fn serve_shreds_by_itself_once_the_retention_period_has_passed(app: TestApp) {
    let w = World::new(app).await;
    let (order, _, _) = full_life_cycle(&w).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let export = format!("/api/v1/work-orders/{id}/verification/result");
    assert_eq!(w.app.get(&export, &w.clerk).await.status, 200);
    // The default period, 730 days, and a day more.
    w.app
        .post(
            "/api/v1/admin/clock",
            &w.admin,
            &json!({ "advance_seconds": 731 * 86_400 }),
        )
        .await
        .assert_status(200);
    let clerk = w.clerk.clone();
    let app = &w.app;
    eventually(
        std::time::Duration::from_secs(15),
        "the signed result shredded by serve's own pass",
        || async {
            match app.get(&export, &clerk).await.status {
                410 => Ok(()),
                other => Err(format!("status {other}")),
            }
        },
    )
    .await;
    let shredded = w
        .app
        .get(
            "/api/v1/audit/events?action=subscriber.shredded",
            &w.auditor,
        )
        .await;
    assert_eq!(shredded.items().len(), 1, "{}", shredded.body);
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.assert_status(200)["ok"], true);
}

on_both_backends!(with movable_clock: serve_shreds_by_itself_once_the_retention_period_has_passed);

provokes!(PROVOKED_ON_A_MOVABLE_CLOCK with movable_clock {
    Shredded => [shredding_after_retention_erases_the_subscriber_everywhere_while_the_audit_verifies],
});
