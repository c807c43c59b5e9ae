//! The audit trail: append-only in the database, verifiable online and offline, exportable.

use std::process::Command;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use crossprov::audit::chain;

use crate::helpers::ErrorCode::*;
use crate::helpers::{get, Backend, TestApp, World};
use crate::on_both_backends;

/// Runs a SQL batch directly against the app's database, as someone with database access.
pub fn sql(app: &TestApp, batch: &str) -> Result<(), String> {
    match app.backend {
        Backend::Postgres => diesel::PgConnection::establish(&app.database_url)
            .map_err(|e| e.to_string())?
            .batch_execute(batch)
            .map_err(|e| e.to_string()),
        Backend::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://");
            let mut conn = diesel::SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            // The service's mail worker and scheduler write too: wait for them, as the
            // service's own connections do, rather than fail on their lock.
            conn.batch_execute("PRAGMA busy_timeout = 10000;")
                .map_err(|e| e.to_string())?;
            conn.batch_execute(batch).map_err(|e| e.to_string())
        }
    }
}

/// What an insider with database rights runs to switch the append-only guard off.
fn drop_guard(app: &TestApp, sqlite_trigger: &str) -> String {
    match app.backend {
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER;".into(),
        Backend::Sqlite => format!("DROP TRIGGER {sqlite_trigger};"),
    }
}

/// A hash the API shows as hex.
fn hash(hex: &Value) -> crossprov::audit::chain::Hash {
    crossprov::audit::chain::from_hex(hex.as_str().expect("hex")).expect("a hash")
}

/// A proof's `path`.
fn hashes(path: &Value) -> Vec<crossprov::audit::chain::Hash> {
    path.as_array().expect("path").iter().map(hash).collect()
}

/// A proof the service answers with 200 (`kind` is `inclusion` or `consistency`).
async fn proof(w: &World, kind: &str, query: &str) -> Value {
    let r = w
        .app
        .get(&format!("/api/v1/audit/proof/{kind}?{query}"), &w.auditor)
        .await;
    r.assert_status(200).clone()
}

pub fn audit_verify(app: &TestApp, extra: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["audit", "verify", "--database-url", &app.database_url])
        .args(extra)
        .env("CROSSPROV_DATA_DIR", app.dir.path())
        .output()
        .expect("run crossprov audit verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "not JSON: {stdout} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

async fn the_database_refuses_to_update_or_delete_audit_events(app: TestApp) {
    let w = World::new(app).await;
    w.open_order().await;
    // The refusal is the migrations' own trigger speaking, on either backend, for the
    // events and for the tree's stored nodes.
    let mut statements = vec![
        (
            "audit_events",
            "UPDATE",
            "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        ),
        (
            "audit_events",
            "DELETE",
            "DELETE FROM audit_events WHERE seq = 1",
        ),
        (
            "audit_tree_nodes",
            "UPDATE",
            "UPDATE audit_tree_nodes SET hash = 'x' WHERE level = 1",
        ),
        (
            "audit_tree_nodes",
            "DELETE",
            "DELETE FROM audit_tree_nodes WHERE level = 1",
        ),
    ];
    if w.app.backend == Backend::Postgres {
        // CASCADE, or the foreign keys into the table answer first.
        statements.push(("audit_events", "TRUNCATE", "TRUNCATE audit_events CASCADE"));
        statements.push(("audit_tree_nodes", "TRUNCATE", "TRUNCATE audit_tree_nodes"));
    }
    for (table, op, statement) in statements {
        let refused = sql(&w.app, statement).expect_err("an UPDATE or DELETE must fail loudly");
        let expected = format!("{table} is append-only: {op} refused");
        assert!(refused.contains(&expected), "{table} {op}: {refused}");
    }
    let (code, report) = audit_verify(&w.app, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);
}

async fn an_altered_event_is_found_online_and_offline(app: TestApp) {
    let w = World::new(app).await;
    w.submitted_order("match").await;
    let events = w.audit_events("limit=1000").await;
    assert!(events.len() > 10);
    // seq counts from 1 without gaps, each event chained to the one before.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], json!(i as i64 + 1));
        let expected_prev = if i == 0 {
            "0".repeat(64)
        } else {
            events[i - 1]["hash"].as_str().unwrap().to_owned()
        };
        assert_eq!(e["prev_hash"], expected_prev.as_str());
    }
    let intact = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    let intact = intact.assert_status(200).clone();
    assert_eq!(
        (intact["ok"].clone(), intact["checked"].clone()),
        (json!(true), json!(events.len()))
    );
    let (code, offline) = audit_verify(&w.app, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        offline["head"], intact["head"],
        "offline and online agree on the head"
    );

    // An insider drops the guard and rewrites event 5.
    let drop_guard = drop_guard(&w.app, "audit_events_no_update");
    sql(&w.app, &format!("{drop_guard} UPDATE audit_events SET detail = '{{\"reason\":\"edited\"}}' WHERE seq = 5")).unwrap();

    let online = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    let online = online.assert_status(200);
    assert_eq!(
        (
            online["ok"].clone(),
            online["first_bad_seq"].clone(),
            online["checked"].clone()
        ),
        (json!(false), json!(5), json!(4))
    );
    let (code, offline) = audit_verify(&w.app, &[]);
    assert_eq!(code, 1, "{offline}");
    assert_eq!(
        (
            offline["ok"].clone(),
            offline["first_bad_seq"].clone(),
            offline["checked"].clone()
        ),
        (json!(false), json!(5), json!(4))
    );
}

async fn a_cut_tail_is_found(app: TestApp) {
    let w = World::new(app).await;
    w.claimed_order().await;
    let n = w.app.get("/api/v1/audit/verify", &w.auditor).await.body["checked"]
        .as_i64()
        .unwrap();
    let drop_guard = drop_guard(&w.app, "audit_events_no_delete");
    sql(
        &w.app,
        &format!("{drop_guard} DELETE FROM audit_events WHERE seq = {n}"),
    )
    .unwrap();
    let (code, report) = audit_verify(&w.app, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["first_bad_seq"], json!(n));
}

async fn auditors_query_and_export_and_exports_are_audited(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        w.audit_events(&format!("work_order={id}")).await.len(),
        // opened, claimed, and the three evidence uploads
        5
    );
    let msisdn = order["msisdn"].as_str().unwrap();
    let items = w
        .audit_events(&format!("msisdn={msisdn}&action=work_order.claimed"))
        .await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["actor"], "staff.a");
    assert_eq!(items[0]["role"], "hall_staff");
    let paged = w.app.get("/api/v1/audit/events?limit=3", &w.auditor).await;
    let paged = paged.assert_status(200);
    assert_eq!(paged["next_after"], json!(3));
    let next = w
        .app
        .get("/api/v1/audit/events?limit=3&after=3", &w.auditor)
        .await;
    assert_eq!(next.assert_status(200)["items"][0]["seq"], json!(4));
    assert_eq!(
        w.audit_events("since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
            .await
            .len(),
        0
    );
    // Only auditors read the trail.
    w.app
        .get("/api/v1/audit/events", &w.clerk)
        .await
        .problem(Forbidden);
    w.app
        .get("/api/v1/audit/verify", &w.admin)
        .await
        .problem(Forbidden);

    let csv = w
        .app
        .raw(
            "GET",
            "/api/v1/audit/events?format=csv",
            Some(&w.auditor),
            &[],
            None,
        )
        .await;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.raw.clone()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("seq,at,actor,role,action,work_order,detail,prev_hash,hash")
    );
    let ndjson = w
        .app
        .raw(
            "GET",
            "/api/v1/audit/events?format=ndjson&actor=staff.a&action=work_order.claimed",
            Some(&w.auditor),
            &[],
            None,
        )
        .await;
    let rows: Vec<Value> = String::from_utf8(ndjson.raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["action"], "work_order.claimed");
    let exports = w.audit_events("action=audit.exported").await;
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0]["detail"]["format"], "csv");
    assert_eq!(exports[1]["detail"]["filters"]["actor"], "staff.a");
}

async fn reading_a_subscriber_is_audited_and_scoped(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let msisdn = order["msisdn"].as_str().unwrap();
    let subscriber = format!("/api/v1/subscribers/{msisdn}");
    let r = w.app.get(&subscriber, &w.clerk).await;
    assert_eq!(r.assert_status(200)["real_name_status"], "unverified");
    let app = &w.app;
    app.answers(NotFound, [get(&subscriber).by(&w.other_clerk)])
        .await;
    app.answers(Forbidden, [get(&subscriber).by(&w.staff)])
        .await;
    let not_a_number = get("/api/v1/subscribers/12345").by(&w.clerk);
    app.answers(InvalidMsisdn, [not_a_number]).await;
    let viewed = w.audit_events("action=subscriber.viewed").await;
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0]["actor"], "clerk.yn");
}

async fn a_scope_violation_on_an_order_is_audited(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = order["id"].as_str().unwrap();
    w.app
        .act(id, "cancel", &w.other_clerk, &json!({"reason": "x"}))
        .await
        .problem(NotFound);
    let denied = w.audit_events("action=access.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["actor"], "clerk.bj");
    assert_eq!(denied[0]["work_order"], id);
    assert_eq!(denied[0]["detail"]["code"], "not_found");
}

async fn checkpoints_and_proofs_let_an_auditor_catch_a_rewritten_history(app: TestApp) {
    let w = World::new(app).await;
    w.submitted_order("match").await;
    let cp = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    let jws = cp.assert_status(200)["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    let claims = crate::lifecycle::verify_with_jwks(&jws, &jwks.body);
    let size = claims["size"].as_i64().unwrap();
    let head = hash(&claims["head"]);
    assert!(claims["at"].is_i64(), "times in a JWS are seconds");
    // Asked again with no new events: the same checkpoint.
    let again = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    assert_eq!(again.body["checkpoint"], jws.as_str());
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.body["head"], claims["head"]);

    // Every event's inclusion proof leads to the signed head.
    for seq in 1..=size {
        let p = proof(&w, "inclusion", &format!("seq={seq}&size={size}")).await;
        let (leaf, path) = (hash(&p["leaf_hash"]), hashes(&p["path"]));
        assert!(
            chain::verify_inclusion(&leaf, (seq - 1) as u64, size as u64, &path, &head),
            "seq {seq}"
        );
    }
    // The log grows; a consistency proof ties the old head to the new one.
    w.open_order().await;
    let cp2 = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    let claims2 =
        crate::lifecycle::verify_with_jwks(cp2.body["checkpoint"].as_str().unwrap(), &jwks.body);
    let size2 = claims2["size"].as_i64().unwrap();
    assert!(size2 > size);
    let p = proof(&w, "consistency", &format!("from={size}&to={size2}")).await;
    let path = hashes(&p["path"]);
    let head2 = hash(&claims2["head"]);
    assert!(chain::verify_consistency(
        size as u64,
        size2 as u64,
        &head,
        &head2,
        &path
    ));
    let same = proof(&w, "consistency", &format!("from={size}&to={size}")).await;
    assert_eq!(same["path"], json!([]));
    for bad in [
        format!("/api/v1/audit/proof/inclusion?seq={}&size={size}", size + 1),
        format!("/api/v1/audit/proof/inclusion?seq=1&size={}", size2 + 1),
        format!("/api/v1/audit/proof/consistency?from=0&to={size}"),
        format!("/api/v1/audit/proof/consistency?from={size2}&to={size}"),
        format!("/api/v1/audit/proof/consistency?from=1&to={}", size2 + 1),
    ] {
        w.app.get(&bad, &w.auditor).await.problem(InvalidRequest);
    }

    // Kept elsewhere, the first checkpoint still matches the log...
    let file = w.app.dir.path().join("checkpoint.jws");
    std::fs::write(&file, &jws).unwrap();
    let (code, report) = audit_verify(&w.app, &["--checkpoint", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
    // The endpoint's answer saved as it came is a kept checkpoint too.
    let answer = w.app.dir.path().join("checkpoint.json");
    std::fs::write(&answer, cp.raw.as_slice()).unwrap();
    let (code, report) = audit_verify(&w.app, &["--checkpoint", answer.to_str().unwrap()]);
    assert_eq!((code, &report["checkpoint"]), (0, &json!("ok")), "{report}");
    // ...until someone rewrites history and recomputes every hash after it, head row included.
    let drop_guard = drop_guard(&w.app, "audit_events_no_delete");
    let n = size2;
    let prev: String = w
        .app
        .get(
            &format!("/api/v1/audit/events?after={}&limit=1", n - 2),
            &w.auditor,
        )
        .await
        .body["items"][0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    sql(&w.app, &format!("{drop_guard} DELETE FROM audit_events WHERE seq = {n}; UPDATE audit_head SET size = {}, hash = '{prev}';", n - 1)).unwrap();
    // The head row's frontier still describes the longer log: caught without a checkpoint.
    let (code, plain) = audit_verify(&w.app, &[]);
    assert_eq!(code, 1, "{plain}");
    assert!(plain["tree"].as_str().is_some(), "{plain}");
    // So the insider rebuilds the tree of the shorter log as well: its frontier, and the
    // nodes the cut event completed.
    let leaves: Vec<chain::Hash> = w
        .app
        .get(&format!("/api/v1/audit/events?limit={}", n - 1), &w.auditor)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hash(&e["hash"]))
        .collect();
    let mut frontier = crossprov::audit::tree::Frontier::default();
    for leaf in &leaves {
        frontier.push(*leaf);
    }
    let drop_node_guard = match w.app.backend {
        Backend::Postgres => "ALTER TABLE audit_tree_nodes DISABLE TRIGGER USER;",
        Backend::Sqlite => "DROP TRIGGER audit_tree_nodes_no_delete;",
    };
    sql(&w.app, &format!("{drop_node_guard} DELETE FROM audit_tree_nodes WHERE ((idx + 1) << level) = {n}; UPDATE audit_head SET frontier = '{}';", frontier.encode())).unwrap();
    let (code, plain) = audit_verify(&w.app, &[]);
    assert_eq!(
        code, 0,
        "the cut is invisible without a checkpoint: {plain}"
    );
    let file2 = w.app.dir.path().join("checkpoint2.jws");
    std::fs::write(&file2, cp2.body["checkpoint"].as_str().unwrap()).unwrap();
    let (code, report) = audit_verify(&w.app, &["--checkpoint", file2.to_str().unwrap()]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false);
    assert!(
        report["checkpoint"].as_str().unwrap().contains("fewer"),
        "{report}"
    );
}

/// The hashes of the first `size` events, read back through the API.
async fn leaf_hashes(w: &World, size: i64) -> Vec<chain::Hash> {
    let page = w
        .app
        .get(&format!("/api/v1/audit/events?limit={size}"), &w.auditor)
        .await;
    page.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| hash(&e["hash"]))
        .collect()
}

/// The current checkpoint's claims, its signature checked against the JWKS.
async fn checkpoint_claims(w: &World) -> Value {
    let cp = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    crate::lifecycle::verify_with_jwks(
        cp.assert_status(200)["checkpoint"].as_str().unwrap(),
        &jwks.body,
    )
}

/// The service's inclusion proof of `seq` at `size` equals the RFC's, from the leaves.
async fn assert_inclusion_proof(w: &World, leaves: &[chain::Hash], seq: i64, size: i64) {
    let p = proof(w, "inclusion", &format!("seq={seq}&size={size}")).await;
    let (t, index) = (&leaves[..size as usize], (seq - 1) as usize);
    assert_eq!(p["leaf_hash"], chain::to_hex(&t[index]).as_str());
    assert_eq!(
        hashes(&p["path"]),
        chain::inclusion_proof(t, index).unwrap(),
        "inclusion {seq}/{size}"
    );
}

async fn checkpoints_and_proofs_equal_a_recomputation_from_the_events_after_many_events(
    app: TestApp,
) {
    let w = World::new(app).await;
    w.open_order().await;
    // Exports are audited: one event each, enough for a tree several levels deep.
    for i in 0..70 {
        w.app
            .raw(
                "GET",
                &format!("/api/v1/audit/events?format=ndjson&actor=nobody.{i}"),
                Some(&w.auditor),
                &[],
                None,
            )
            .await;
    }
    let claims = checkpoint_claims(&w).await;
    let n = claims["size"].as_i64().unwrap();
    assert!(n > 70, "{n}");
    let leaves = leaf_hashes(&w, n).await;
    assert_eq!(leaves.len() as i64, n);
    assert_eq!(
        claims["head"],
        chain::to_hex(&chain::tree_head(&leaves)).as_str()
    );
    for size in [1, 2, 3, 5, 8, 13, 31, 32, 33, 63, 64, 65, n - 1, n] {
        let t = &leaves[..size as usize];
        for seq in 1..=size {
            assert_inclusion_proof(&w, &leaves, seq, size).await;
            let c = proof(&w, "consistency", &format!("from={seq}&to={size}")).await;
            assert_eq!(
                hashes(&c["path"]),
                chain::consistency_proof(t, seq as usize).unwrap(),
                "consistency {seq}/{size}"
            );
        }
    }
}

async fn a_tampered_tree_node_is_found_online_and_offline(app: TestApp) {
    let w = World::new(app).await;
    w.claimed_order().await;
    let intact = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(intact.assert_status(200)["ok"], true);
    assert!(intact.body.get("tree").is_none(), "{}", intact.body);
    // An insider swaps a stored subtree's hash (the events stay as they were), so proofs
    // through it would lead elsewhere.
    let drop_guard = match w.app.backend {
        Backend::Postgres => "ALTER TABLE audit_tree_nodes DISABLE TRIGGER USER;",
        Backend::Sqlite => "DROP TRIGGER audit_tree_nodes_no_update;",
    };
    sql(
        &w.app,
        &format!(
            "{drop_guard} UPDATE audit_tree_nodes SET hash = '{}' WHERE level = 1 AND idx = 1",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let online = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    let online = online.assert_status(200);
    assert_eq!(online["ok"], false, "{online}");
    assert_eq!(
        online["first_bad_seq"],
        Value::Null,
        "every event is intact"
    );
    assert_eq!(online["checked"], intact.body["checked"]);
    assert!(
        online["tree"]
            .as_str()
            .unwrap()
            .contains("level 1, index 1"),
        "{online}"
    );
    let (code, offline) = audit_verify(&w.app, &[]);
    assert_eq!(code, 1, "{offline}");
    assert_eq!(offline["tree"], online["tree"]);
}

async fn the_tree_of_a_log_from_before_it_was_kept_is_built_at_start_once(app: TestApp) {
    let w = World::new(app).await;
    w.submitted_order("match").await;
    let before = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    let before = before.assert_status(200).clone();
    let n = before["checked"].as_i64().unwrap();
    // As the migration leaves a log written before the tree was kept: no node, no frontier.
    let drop_guard = match w.app.backend {
        Backend::Postgres => "ALTER TABLE audit_tree_nodes DISABLE TRIGGER USER;",
        Backend::Sqlite => "DROP TRIGGER audit_tree_nodes_no_delete;",
    };
    sql(
        &w.app,
        &format!(
            "{drop_guard} DELETE FROM audit_tree_nodes; UPDATE audit_head SET frontier = NULL;"
        ),
    )
    .unwrap();
    let (code, report) = audit_verify(&w.app, &[]);
    assert_eq!(code, 0, "not built yet is not broken: {report}");
    // Two instances starting at once: one builds it, the other finds it built.
    let migrate = || {
        Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["migrate", "--database-url", &w.app.database_url])
            .env("CROSSPROV_DATA_DIR", w.app.dir.path())
            // `migrate` seals plain personal data too: it needs the app's KEK.
            .env(
                "CROSSPROV_CRYPTO__KEK_FILE",
                w.app.dir.path().join("kek.hex"),
            )
            .spawn()
            .expect("run crossprov migrate")
    };
    let (mut a, mut b) = (migrate(), migrate());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let (code, report) = audit_verify(&w.app, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["head"], before["head"]);
    assert!(report.get("tree").is_none(), "{report}");
    // The service proves from the built tree.
    let claims = checkpoint_claims(&w).await;
    assert_eq!(
        (claims["size"].as_i64(), &claims["head"]),
        (Some(n), &before["head"])
    );
    let leaves = leaf_hashes(&w, n).await;
    assert_inclusion_proof(&w, &leaves, 2, n).await;
    // And appends extend it.
    w.open_order().await;
    let after = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(after.assert_status(200)["ok"], true, "{}", after.body);
}

/// A database that cannot be reached is no tampered log: said at once, with its own
/// `error_kind` (the contract fixes exit 1 for every verdict but intact).
async fn verifying_a_database_that_cannot_be_reached_says_so_at_once(app: TestApp) {
    let mut app = app;
    app.database_url = format!("sqlite://{}", app.dir.path().join("missing.db").display());
    let (code, report) = audit_verify(&app, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["ok"], false);
    assert_eq!(report["error_kind"], "not_checked");
    assert!(report["error"].as_str().unwrap().contains("does not exist"));
    // Nothing listens on port 1: refused at once, not retried for the pool's 30 s.
    app.database_url = "postgres://postgres@127.0.0.1:1/crossprov".into();
    let started = std::time::Instant::now();
    let (code, report) = audit_verify(&app, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["error_kind"], "not_checked", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the database"),
        "{report}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

on_both_backends!(
    verifying_a_database_that_cannot_be_reached_says_so_at_once,
    checkpoints_and_proofs_equal_a_recomputation_from_the_events_after_many_events,
    a_tampered_tree_node_is_found_online_and_offline,
    the_tree_of_a_log_from_before_it_was_kept_is_built_at_start_once,
    checkpoints_and_proofs_let_an_auditor_catch_a_rewritten_history,
    the_database_refuses_to_update_or_delete_audit_events,
    an_altered_event_is_found_online_and_offline,
    a_cut_tail_is_found,
    auditors_query_and_export_and_exports_are_audited,
    reading_a_subscriber_is_audited_and_scoped,
    a_scope_violation_on_an_order_is_audited,
);
