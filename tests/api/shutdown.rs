//! The life of a `crossprov serve` process: the start-up line, and a SIGTERM under load that
//! fails no request the service took.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{rand_bytes, sample_jpeg, Backend, Deployment, Serve, World};

/// A deployment with a settings file for `serve` (1 s of draining) and the admin made by the CLI.
fn deployment(backend: Backend) -> Option<(Deployment, PathBuf)> {
    let deployment = Deployment::new(backend)?;
    let dir = deployment.dir.path();
    let kek = dir.join("kek.hex");
    std::fs::write(&kek, hex::encode(rand_bytes())).unwrap();
    // A password for the start-up line to hide (SQLite ignores it; the test server trusts).
    let url = match backend {
        Backend::Sqlite => deployment.database_url.clone(),
        Backend::Postgres => {
            deployment
                .database_url
                .replacen("postgres@", "postgres:pg-hunter2@", 1)
        }
    };
    let config = dir.join("crossprov.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[server]\nworkers = 2\nshutdown_drain_seconds = 1\n\
             [database]\nurl = {url:?}\npool_size = 4\n[crypto]\nkek_file = {kek:?}\n",
            data = dir.join("data").display().to_string(),
            kek = kek.display().to_string(),
        ),
    )
    .unwrap();
    deployment.add_admin(&config);
    Some((deployment, config))
}

/// What a request came to: a status, or the client's error (`connect` when no connection was
/// made, so the service never took it).
#[derive(Debug)]
enum Outcome {
    Status(u16),
    NotConnected,
    // Read by the failure message (Debug).
    #[allow(dead_code)]
    Failed(String),
}

async fn send(sent: awc::SendClientRequest) -> Outcome {
    match sent.await {
        Ok(mut res) => {
            let _ = res.body().limit(1 << 20).await;
            Outcome::Status(res.status().as_u16())
        }
        Err(awc::error::SendRequestError::Connect(_)) => Outcome::NotConnected,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

async fn sigterm_under_load_fails_no_request_the_service_took(backend: Backend) {
    let Some((deployment, config)) = deployment(backend) else {
        return;
    };
    let mut serve = Serve::start(&config, "serve").await;
    let base = serve.base.clone();
    let w = World::new(deployment.client_of(&serve)).await;
    let order = w.claimed_order().await;
    let id = order["id"].as_str().unwrap().to_owned();

    // Clients behave as behind a load balancer: they send until /readyz says 503.
    let ready = Arc::new(AtomicBool::new(true));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let (ready, outcomes, clerk, base) = (
            ready.clone(),
            outcomes.clone(),
            w.clerk.clone(),
            base.clone(),
        );
        loaders.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
            while ready.load(Ordering::SeqCst) {
                let body = json!({
                    "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
                    "reason": "用户长期在济南居住",
                });
                let sent = client
                    .post(format!("{base}/api/v1/work-orders"))
                    .bearer_auth(&clerk)
                    .send_json(&body);
                let outcome = send(sent).await;
                outcomes.lock().unwrap().push(outcome);
            }
        }));
    }
    let poller = {
        let (ready, base) = (ready.clone(), base.clone());
        actix_web::rt::spawn(async move {
            let client = awc::Client::default();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                let r = send(client.get(format!("{base}/readyz")).send()).await;
                if !matches!(r, Outcome::Status(200)) {
                    break;
                }
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            ready.store(false, Ordering::SeqCst);
        })
    };
    // A slow upload in flight across the whole stop: its body takes 3 s to arrive.
    let bytes = sample_jpeg(&id, "other");
    let size = bytes.len() as u64 + 30 * 1024;
    let chunks = std::iter::once(bytes)
        .chain((0..30).map(|_| vec![0u8; 1024]))
        .map(bytes::Bytes::from);
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        let chunk = chunks.next()?;
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(chunk), chunks))
    });
    let upload = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .post(format!(
            "{base}/api/v1/work-orders/{id}/evidence?kind=other"
        ))
        .bearer_auth(&w.staff)
        .insert_header(("Content-Type", "image/jpeg"))
        .send_body(actix_web::body::SizedStream::new(size, Box::pin(body)));
    let upload = actix_web::rt::spawn(send(upload));

    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    serve.terminate();
    let terminated = Instant::now();
    // After the drain second no new connection is taken, while the upload is still going.
    actix_web::rt::time::sleep(Duration::from_millis(1800)).await;
    let late = send(awc::Client::default().get(format!("{base}/healthz")).send()).await;
    assert!(matches!(late, Outcome::NotConnected), "{late:?}");

    assert!(
        matches!(upload.await.unwrap(), Outcome::Status(201)),
        "the upload in flight finished"
    );
    poller.await.unwrap();
    for loader in loaders {
        loader.await.unwrap();
    }
    let status = actix_web::rt::task::spawn_blocking(move || {
        let status = serve.exited_within(Duration::from_secs(30));
        (status, serve)
    })
    .await
    .unwrap();
    let (status, serve) = status;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        serve.log_tail()
    );
    assert!(terminated.elapsed() < Duration::from_secs(30));

    let outcomes = outcomes.lock().unwrap();
    let taken: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::NotConnected))
        .collect();
    let failed: Vec<&&Outcome> = taken
        .iter()
        .filter(|o| !matches!(o, Outcome::Status(201)))
        .collect();
    assert!(taken.len() > 10, "load ran: {outcomes:?}");
    assert!(failed.is_empty(), "requests failed: {failed:?}");

    let log = serve.log();
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a redirected log: {log}"
    );
    let starting = log
        .lines()
        .find(|l| l.contains("crossprov starting"))
        .unwrap_or_else(|| panic!("no start-up line: {log}"));
    assert!(starting.contains(env!("CARGO_PKG_VERSION")), "{starting}");
    assert!(
        starting.contains("server.shutdown_drain_seconds=1"),
        "{starting}"
    );
    assert!(starting.contains("server.workers=2"), "{starting}");
    assert!(
        !starting.contains("server.shutdown_timeout_seconds"),
        "defaults are left out: {starting}"
    );
    assert!(!log.contains("hunter2"), "{starting}");
    let backend_name = match backend {
        Backend::Sqlite => "Sqlite",
        Backend::Postgres => "Postgres",
    };
    assert!(starting.contains(backend_name), "{starting}");
    let stopping = log
        .find("stopping: /readyz answers 503")
        .expect("stop logged");
    assert!(log[stopping..].contains("stopped"), "{log}");
}

mod sigterm_under_load_fails_no_request_the_service_took {
    #[actix_web::test]
    async fn sqlite() {
        super::sigterm_under_load_fails_no_request_the_service_took(
            crate::helpers::Backend::Sqlite,
        )
        .await;
    }
    #[actix_web::test]
    async fn postgres() {
        super::sigterm_under_load_fails_no_request_the_service_took(
            crate::helpers::Backend::Postgres,
        )
        .await;
    }
}
