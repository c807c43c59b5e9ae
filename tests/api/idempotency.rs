//! Idempotent retries: a POST repeated with the same `Idempotency-Key` and the same request is
//! answered from the first response, the work done once; the key is the caller's own.

use std::io::{Read, Write};

use serde_json::{json, Value};

use crate::helpers::{post, sample_jpeg, Reply, TestApp, World, NAME};
use crate::{on_both_backends, provokes};

const OPEN: &str = "/api/v1/work-orders";
const KEY: &str = "Idempotency-Key";

fn open_body(w: &World) -> Value {
    json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住", "expected_name": NAME,
    })
}

fn fresh_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("order id").to_owned()
}

/// The second reply is the first one again, marked as a replay.
#[track_caller]
fn assert_replayed(first: &Reply, again: &Reply) {
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.status, first.status);
    assert_eq!(again.raw, first.raw, "the same body, byte for byte");
    for name in ["content-type", "location", "etag"] {
        assert_eq!(again.header(name), first.header(name), "{name}");
    }
}

/// The order's audit actions, oldest first.
async fn actions(w: &World, order: &str) -> Vec<String> {
    w.audit_events(&format!("work_order={order}"))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The order's outbox rows of `event`, once none of its rows is still pending.
async fn mail_rows(w: &World, order: &str, event: &str) -> usize {
    let of_order = |r: &Reply| -> Vec<Value> {
        r.items()
            .into_iter()
            .filter(|m| m["work_order"] == order)
            .collect()
    };
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the order's mail is sent",
        || async {
            let pending = w.app.get("/api/v1/admin/outbox", &w.admin).await;
            match of_order(&pending).len() {
                0 => Ok(()),
                n => Err(format!("{n} pending")),
            }
        },
    )
    .await;
    let sent = w
        .app
        .get("/api/v1/admin/outbox?state=sent&limit=200", &w.admin)
        .await;
    of_order(&sent)
        .iter()
        .filter(|m| m["event"] == event)
        .count()
}

async fn a_retried_open_does_the_work_once_and_answers_identically(app: TestApp) {
    let w = World::new(app).await;
    let body = open_body(&w);
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let first = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    let order = id_of(first.assert_status(201));
    let again = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    assert_replayed(&first, &again);
    let msisdn = body["msisdn"].as_str().expect("msisdn");
    let listed = w
        .app
        .get(&format!("{OPEN}?msisdn={msisdn}"), &w.clerk)
        .await
        .items();
    assert_eq!(listed.len(), 1, "one order");
    assert_eq!(actions(&w, &order).await, ["work_order.opened"]);
    assert_eq!(mail_rows(&w, &order, "opened").await, 1, "one mail");
}

async fn a_retried_claim_upload_and_submit_do_the_work_once(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    let claim = format!("{OPEN}/{id}/claim");
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let first = w
        .app
        .post_with(&claim, &w.staff, &headers, &json!({}))
        .await;
    first.assert_status(200);
    let again = w
        .app
        .post_with(&claim, &w.staff, &headers, &json!({}))
        .await;
    assert_replayed(&first, &again);

    for kind in crate::helpers::REQUIRED_KINDS {
        let path = format!("{OPEN}/{id}/evidence?kind={kind}");
        let key = fresh_key();
        let headers = [("Content-Type", "image/jpeg"), (KEY, key.as_str())];
        let upload = || {
            w.app.raw(
                "POST",
                &path,
                Some(&w.staff),
                &headers,
                Some(sample_jpeg(&id, kind)),
            )
        };
        let first = upload().await;
        first.assert_status(201);
        assert_replayed(&first, &upload().await);
    }
    let files = w.app.get(&format!("{OPEN}/{id}/evidence"), &w.staff).await;
    assert_eq!(files.items().len(), 3, "one file per kind");

    let jws = w.signer.sign(&w.payload(&order, "match"));
    let submit = format!("{OPEN}/{id}/verification");
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let result = json!({ "result": jws });
    let first = w.app.post_with(&submit, &w.staff, &headers, &result).await;
    first.assert_status(201);
    let again = w.app.post_with(&submit, &w.staff, &headers, &result).await;
    assert_replayed(&first, &again);
    assert_eq!(
        actions(&w, &id).await,
        [
            "work_order.opened",
            "work_order.claimed",
            "evidence.uploaded",
            "evidence.uploaded",
            "evidence.uploaded",
            "work_order.result_submitted",
        ]
    );
    assert_eq!(mail_rows(&w, &id, "submitted").await, 1, "one mail");
}

/// A 4xx is an answer too: kept and replayed, even when the handler refused before reading
/// the body (an upload to an order nobody has claimed).
async fn a_refusal_is_kept_and_replayed(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    let key = fresh_key();
    let path = format!("{OPEN}/{id}/evidence?kind=id_front");
    let headers = [("Content-Type", "image/jpeg"), (KEY, key.as_str())];
    let upload = || {
        let bytes = sample_jpeg(&id, "id_front").repeat(2000);
        w.app
            .raw("POST", &path, Some(&w.staff), &headers, Some(bytes))
    };
    let first = upload().await;
    first.problem(InvalidState);
    let again = upload().await;
    assert_replayed(&first, &again);
    // Claimed since: the key still answers what it answered first.
    w.app
        .act(&id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    assert_replayed(&first, &upload().await);
    let files = w.app.get(&format!("{OPEN}/{id}/evidence"), &w.staff).await;
    assert!(files.items().is_empty());
}

/// Another caller's key of the same name is another key: the work is done for them.
async fn a_key_is_the_callers_own(app: TestApp) {
    let w = World::new(app).await;
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let body = open_body(&w);
    let mine = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    mine.assert_status(201);
    let mut theirs_body = open_body(&w);
    theirs_body["reason"] = json!("另一位办事员的工单");
    let theirs = w
        .app
        .post_with(OPEN, &w.other_clerk, &headers, &theirs_body)
        .await;
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(id_of(theirs.assert_status(201)), id_of(&mine.body));
    // Not even the same request with the same key is answered for another caller.
    let theirs_again = w.app.post_with(OPEN, &w.other_clerk, &headers, &body).await;
    assert_eq!(theirs_again.header("idempotent-replayed"), None);
}

/// Starts the app with `testing.movable_clock`, so time moves for keys and not for tokens.
fn movable_clock(s: &mut crossprov::config::Settings) {
    s.testing.movable_clock = true;
}

async fn advance(w: &World, seconds: i64) {
    w.app
        .post(
            "/api/v1/admin/clock",
            &w.admin,
            &json!({ "advance_seconds": seconds }),
        )
        .await
        .assert_status(200);
}

/// Once `idempotency.ttl_seconds` has passed, a repeat is a new request: here a second open
/// of the same number, refused as the number has an active order.
async fn an_expired_key_does_the_work_again(app: TestApp) {
    let w = World::new(app).await;
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let body = open_body(&w);
    w.app
        .post_with(OPEN, &w.clerk, &headers, &body)
        .await
        .assert_status(201);
    advance(&w, 24 * 3600 - 60).await;
    let within = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    assert_eq!(
        within.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    advance(&w, 61).await;
    let after = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    assert_eq!(after.header("idempotent-replayed"), None);
    after.problem(crate::helpers::ErrorCode::AlreadyExists);
}

async fn the_same_key_for_another_request_is_reused(app: TestApp) {
    let w = World::new(app).await;
    let key = fresh_key();
    let headers = [(KEY, key.as_str())];
    let body = open_body(&w);
    let first = w.app.post_with(OPEN, &w.clerk, &headers, &body).await;
    let id = id_of(first.assert_status(201));
    let mut other = body.clone();
    other["reason"] = json!("另一个理由");
    let cancel = format!("{OPEN}/{id}/cancel");
    let calls = [
        post(OPEN).by(&w.clerk).header(KEY, &key).json(&other),
        // A body that only begins like the first one.
        post(OPEN)
            .by(&w.clerk)
            .header(KEY, &key)
            .json_bytes(serde_json::to_vec(&body).expect("json")[..10].to_vec()),
        post(cancel)
            .by(&w.clerk)
            .header(KEY, &key)
            .json(&json!({ "reason": "x" })),
    ];
    w.app
        .answers_at(IdempotencyKeyReused, "Idempotency-Key", calls)
        .await;
    // Nothing was done: the order is still open, with only its opening event.
    assert_eq!(actions(&w, &id).await, ["work_order.opened"]);
}

/// A repeat while the first request still streams its body in: 409 with `Retry-After`; the
/// first then completes, and a repeat after it is its replay.
async fn a_repeat_while_the_first_runs_is_in_flight(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    w.app
        .act(&id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    let key = fresh_key();
    let path = format!("{OPEN}/{id}/evidence?kind=id_front");
    let file = sample_jpeg(&id, "id_front");
    // A client on a slow link: the head and the first bytes now, the rest later.
    let address = w.app.base.trim_start_matches("http://").to_owned();
    let mut slow = std::net::TcpStream::connect(&address).expect("connect");
    slow.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: {}\r\n{KEY}: {key}\r\n\
         Connection: close\r\n\r\n",
        w.staff,
        file.len()
    );
    slow.write_all(head.as_bytes()).expect("head");
    slow.write_all(&file[..12]).expect("first bytes");
    // The key is reserved before the handler reads the body: once the head is in, the first
    // request holds it.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(700)).await;
    let headers = [("Content-Type", "image/jpeg"), (KEY, key.as_str())];
    let meanwhile = w
        .app
        .raw("POST", &path, Some(&w.staff), &headers, Some(file.clone()))
        .await;
    meanwhile
        .problem(IdempotencyKeyInFlight)
        .at("Idempotency-Key");
    assert!(meanwhile.retry_after() >= 1);
    slow.write_all(&file[12..]).expect("the rest");
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).expect("the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (status_line, first_body) = (
        answer.lines().next().unwrap_or_default().to_owned(),
        answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()),
    );
    assert!(status_line.contains(" 201 "), "{answer}");
    let after = w
        .app
        .raw("POST", &path, Some(&w.staff), &headers, Some(file))
        .await;
    assert_eq!(after.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(
        Some(String::from_utf8_lossy(&after.raw).into_owned()),
        first_body
    );
    let uploaded = actions(&w, &id).await;
    let uploads = uploaded
        .iter()
        .filter(|a| *a == "evidence.uploaded")
        .count();
    assert_eq!(uploads, 1, "{uploaded:?}");
}

async fn a_malformed_key_is_invalid_idempotency_key(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    let long = "k".repeat(256);
    let calls = ["", "with space", long.as_str()].map(|key| {
        post(OPEN)
            .by(&w.clerk)
            .header(KEY, key)
            .json(&open_body(&w))
    });
    w.app
        .answers_at(InvalidIdempotencyKey, "Idempotency-Key", calls)
        .await;
    let upload = post(format!("{OPEN}/{id}/evidence?kind=id_front"))
        .by(&w.staff)
        .header(KEY, "a b")
        .bytes(Some("image/jpeg"), sample_jpeg(&id, "id_front"));
    w.app.answers(InvalidIdempotencyKey, [upload]).await;
    // In the contract's order: 401 and a malformed body outrank it; it outranks 403.
    let rows = [
        (
            Unauthenticated,
            post(OPEN).header(KEY, "a b").json(&open_body(&w)),
        ),
        (
            InvalidRequest,
            post(OPEN)
                .by(&w.clerk)
                .header(KEY, "a b")
                .json_bytes(&b"{]"[..]),
        ),
        (
            InvalidIdempotencyKey,
            post(OPEN)
                .by(&w.auditor)
                .header(KEY, "a b")
                .json(&open_body(&w)),
        ),
    ];
    for (code, call) in rows {
        w.app.answers(code, [call]).await;
    }
    assert_eq!(actions(&w, &id).await, ["work_order.opened"]);
}

/// The login takes no key: a token is never stored, so each login is one.
async fn the_login_ignores_a_key(app: TestApp) {
    let key = fresh_key();
    let login = |_: ()| {
        post("/api/v1/auth/token").header(KEY, &key).json(
            &json!({ "username": crate::helpers::ADMIN, "password": crate::helpers::PASSWORD }),
        )
    };
    let first = app.call(&login(())).await;
    let again = app.call(&login(())).await;
    first.assert_status(200);
    again.assert_status(200);
    assert_eq!(again.header("idempotent-replayed"), None);
}

use crate::helpers::ErrorCode::{
    IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey, InvalidRequest,
    InvalidState, Unauthenticated,
};

on_both_backends!(
    a_retried_open_does_the_work_once_and_answers_identically,
    a_retried_claim_upload_and_submit_do_the_work_once,
    a_key_is_the_callers_own,
    a_refusal_is_kept_and_replayed,
    the_login_ignores_a_key,
);

on_both_backends!(with movable_clock: an_expired_key_does_the_work_again);

provokes!(PROVOKED {
    IdempotencyKeyReused => [the_same_key_for_another_request_is_reused],
    IdempotencyKeyInFlight => [a_repeat_while_the_first_runs_is_in_flight],
    InvalidIdempotencyKey => [a_malformed_key_is_invalid_idempotency_key],
});
