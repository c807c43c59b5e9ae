//! Writers that do not queue behind one row: on PostgreSQL steps queue their audit events and
//! a sequencer integrates them in batches; on SQLite one committer runs waiting steps in one
//! transaction, each in its own savepoint. Either way every committed event is in the chain
//! exactly once, in an order consistent with each order's own history, and a kill -9 loses
//! no acknowledged step and leaves no half of one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{rand_bytes, Backend, Deployment, Serve, TestApp, World, NAME};

/// The life each order of these tests goes through, one audit event per step.
const LIFE: [&str; 4] = [
    "work_order.opened",
    "work_order.claimed",
    "work_order.released",
    "work_order.cancelled",
];

fn open_body() -> Value {
    json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "reason": "用户长期在济南居住", "expected_name": NAME,
    })
}

/// Opens, claims, releases and cancels one order, each step on one of `apps` in turn; the
/// order's id once every step answered as the contract says.
async fn live_one_life(w: &World, apps: &[&TestApp], first: usize) -> String {
    let on = |k: usize| apps[(first + k) % apps.len()];
    let opened = on(0)
        .post("/api/v1/work-orders", &w.clerk, &open_body())
        .await;
    let id = opened.assert_status(201)["id"].as_str().unwrap().to_owned();
    on(1)
        .act(&id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    on(2)
        .act(&id, "release", &w.staff, &json!({ "reason": "用户改约" }))
        .await
        .assert_status(200);
    on(3)
        .act(
            &id,
            "cancel",
            &w.clerk,
            &json!({ "reason": "用户已回原籍办理" }),
        )
        .await
        .assert_status(200);
    id
}

/// Every event of the log, oldest first, as the auditor's NDJSON export gives them.
async fn whole_log(app: &TestApp, auditor: &str) -> Vec<Value> {
    let r = app.get("/api/v1/audit/events?format=ndjson", auditor).await;
    let text = String::from_utf8(r.raw.clone()).unwrap();
    assert_eq!(r.status, 200, "{text}");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The log numbers its events 1..n without gaps, verifies, and holds each order's events
/// exactly once each, in the order of its life.
async fn assert_each_life_once_in_order(app: &TestApp, auditor: &str, orders: &[String]) {
    let log = whole_log(app, auditor).await;
    for (i, e) in log.iter().enumerate() {
        assert_eq!(
            e["seq"],
            json!(i as u64 + 1),
            "seq counts from 1 without gaps"
        );
    }
    let mut by_order: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &log {
        if let Some(wo) = e["work_order"].as_str() {
            by_order
                .entry(wo)
                .or_default()
                .push(e["action"].as_str().unwrap());
        }
    }
    for id in orders {
        assert_eq!(
            by_order.get(id.as_str()).map(Vec::as_slice),
            Some(&LIFE[..]),
            "order {id}: each step's event once, in the order the steps answered"
        );
    }
    let verified = app.get("/api/v1/audit/verify", auditor).await;
    let verified = verified.assert_status(200);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    // The export itself is audited after it was read (`audit.exported`).
    assert!(
        verified["checked"].as_u64().unwrap() >= log.len() as u64,
        "{verified}"
    );
}

/// Many clients at once on two instances of one database: every step lands once, each
/// order's history in its order, the chain verifies.
async fn concurrent_writers_on_two_instances_leave_each_event_once_in_order(app: TestApp) {
    let second = app.another_instance();
    let w = World::new(app).await;
    let apps = [&w.app, &second];
    let lives = (0..24).map(|i| live_one_life(&w, &apps, i));
    let orders = join_all(lives).await;
    assert_each_life_once_in_order(&second, &w.auditor, &orders).await;
    // Each order's own list agrees, read on either instance.
    for (i, id) in orders.iter().enumerate() {
        let path = format!("/api/v1/work-orders/{id}/events");
        let items = apps[i % 2].get(&path, &w.clerk).await.items();
        let actions: Vec<&str> = items
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, LIFE, "order {id}");
    }
}

/// Steps refused while others succeed beside them (group commit on SQLite: one transaction for
/// many steps): the refused ones change nothing but their audited refusal, the others all
/// land.
async fn a_refused_step_takes_no_other_step_down(app: TestApp) {
    let w = World::new(app).await;
    let orders = join_all((0..12).map(|_| w.open_order())).await;
    let steps = orders.iter().enumerate().map(|(i, order)| {
        let id = order["id"].as_str().unwrap().to_owned();
        let w = &w;
        async move {
            // Every other claim is by staff of another hall: 404, audited as access denied.
            let (token, want) = if i % 2 == 0 {
                (&w.staff, 200)
            } else {
                (&w.staff_other_hall, 404)
            };
            let r = w.app.act(&id, "claim", token, &json!({})).await;
            assert_eq!(r.status, want, "{}", r.body);
            (id, want)
        }
    });
    let outcomes = join_all(steps).await;
    for (id, status) in &outcomes {
        let order = w
            .app
            .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
            .await;
        let want_state = if *status == 200 { "claimed" } else { "open" };
        assert_eq!(order.assert_status(200)["state"], json!(want_state));
        let events: Vec<String> = w
            .audit_events(&format!("work_order={id}"))
            .await
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        let want: &[&str] = if *status == 200 {
            &["work_order.opened", "work_order.claimed"]
        } else {
            &["work_order.opened", "access.denied"]
        };
        assert_eq!(events, want, "order {id}");
    }
    let verified = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verified.assert_status(200)["ok"], json!(true));
}

crate::on_both_backends!(
    concurrent_writers_on_two_instances_leave_each_event_once_in_order,
    a_refused_step_takes_no_other_step_down,
);

/// A `serve` deployment of `backend` with its settings file and the admin.
fn deployment(backend: Backend) -> Option<(Deployment, PathBuf)> {
    let deployment = Deployment::new(backend)?;
    let dir = deployment.dir.path();
    let kek = dir.join("kek.hex");
    std::fs::write(&kek, hex::encode(rand_bytes())).unwrap();
    let config = dir.join("crossprov.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[server]\nworkers = 2\n\
             [database]\nurl = {url:?}\npool_size = 8\n[crypto]\nkek_file = {kek:?}\n",
            data = dir.join("data").display().to_string(),
            url = deployment.database_url,
            kek = kek.display().to_string(),
        ),
    )
    .unwrap();
    deployment.add_admin(&config);
    Some((deployment, config))
}

/// kill -9 while clients write (on PostgreSQL while the sequencer integrates, on SQLite in
/// the middle of a group commit): after a restart, every step that was answered is in the
/// chain once, every order's events are whole lives or prefixes of one matching its state,
/// and the chain verifies.
async fn a_kill_during_writes_loses_no_answered_step_and_leaves_no_half(backend: Backend) {
    let Some((deployment, config)) = deployment(backend) else {
        return;
    };
    let mut first = Serve::start(&config, "first").await;
    let mut w = World::new(deployment.client_of(&first)).await;
    let stop = Arc::new(AtomicBool::new(false));
    // (order, actions answered 2xx) for every order a client touched.
    let answered: Arc<Mutex<BTreeMap<String, Vec<&'static str>>>> = Arc::default();
    let client = |base: String| {
        let (stop, answered) = (stop.clone(), answered.clone());
        let (clerk, staff) = (w.clerk.clone(), w.staff.clone());
        async move {
            let http = awc::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .finish();
            let post = |path: String, token: String, body: Value| {
                let req = http
                    .post(format!("{base}{path}"))
                    .insert_header(("Authorization", format!("Bearer {token}")));
                async move {
                    match req.send_json(&body).await {
                        Ok(mut res) => {
                            let body = res.body().limit(1 << 20).await.unwrap_or_default();
                            Some((res.status().as_u16(), body))
                        }
                        Err(_) => None,
                    }
                }
            };
            while !stop.load(Ordering::Relaxed) {
                let Some((201, body)) =
                    post("/api/v1/work-orders".into(), clerk.clone(), open_body()).await
                else {
                    continue;
                };
                let order: Value = serde_json::from_slice(&body).unwrap();
                let id = order["id"].as_str().unwrap().to_owned();
                answered.lock().unwrap().insert(id.clone(), vec![LIFE[0]]);
                let steps = [
                    ("claim", &staff, json!({})),
                    ("release", &staff, json!({ "reason": "用户改约" })),
                    ("cancel", &clerk, json!({ "reason": "用户已回原籍办理" })),
                ];
                for (k, (action, token, body)) in steps.into_iter().enumerate() {
                    let path = format!("/api/v1/work-orders/{id}/{action}");
                    match post(path, token.clone(), body).await {
                        Some((200, _)) => answered
                            .lock()
                            .unwrap()
                            .get_mut(&id)
                            .unwrap()
                            .push(LIFE[k + 1]),
                        _ => break,
                    }
                }
            }
        }
    };
    let clients: Vec<_> = (0..8)
        .map(|_| actix_web::rt::spawn(client(first.base.clone())))
        .collect();
    // Let the clients get going, then kill the process under them.
    let started = std::time::Instant::now();
    while answered.lock().unwrap().len() < 40 && started.elapsed().as_secs() < 60 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    first.kill();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }

    let second = Serve::start(&config, "second").await;
    w.app.base = second.base.clone();
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 40, "the clients did not get going");
    let log = whole_log(&w.app, &w.auditor).await;
    let mut by_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e["seq"], json!(i as u64 + 1));
        if let Some(wo) = e["work_order"].as_str() {
            by_order
                .entry(wo.to_owned())
                .or_default()
                .push(e["action"].as_str().unwrap().to_owned());
        }
    }
    for (id, steps) in &answered {
        let logged = by_order.get(id).cloned().unwrap_or_default();
        // Every answered step is there, once; at most the one step in flight at the kill
        // may have committed without its answer arriving.
        assert!(
            logged.len() == steps.len() || logged.len() == steps.len() + 1,
            "order {id}: answered {steps:?}, logged {logged:?}"
        );
        assert_eq!(logged, LIFE[..logged.len()], "order {id}");
        // Whole steps only: the order's state is the one its last logged event led to.
        let order = w
            .app
            .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
            .await;
        let state = order.assert_status(200)["state"]
            .as_str()
            .unwrap()
            .to_owned();
        let want = match logged.last().map(String::as_str) {
            Some("work_order.opened" | "work_order.released") => "open",
            Some("work_order.claimed") => "claimed",
            Some("work_order.cancelled") => "cancelled",
            other => panic!("order {id}: unexpected last event {other:?}"),
        };
        assert_eq!(state, want, "order {id}: events {logged:?}");
    }
    // No order has events the clients never heard of, beyond the one in flight each.
    let known: BTreeSet<&String> = answered.keys().collect();
    let unknown: Vec<_> = by_order.keys().filter(|id| !known.contains(id)).collect();
    assert!(
        unknown.len() <= 8,
        "orders nobody was answered about: {unknown:?}"
    );
    let verified = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    let verified = verified.assert_status(200);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    drop(second);
}

mod a_kill_during_writes_loses_no_answered_step_and_leaves_no_half {
    #[actix_web::test]
    async fn sqlite() {
        super::a_kill_during_writes_loses_no_answered_step_and_leaves_no_half(
            crate::helpers::Backend::Sqlite,
        )
        .await;
    }

    #[actix_web::test]
    async fn postgres() {
        super::a_kill_during_writes_loses_no_answered_step_and_leaves_no_half(
            crate::helpers::Backend::Postgres,
        )
        .await;
    }
}
