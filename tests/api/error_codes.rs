//! Every error code of the contract the service can produce, with its status, its `field`
//! where the body names one, and the order of precedence when several things are wrong.
//! Each scenario is a row of the table at the end: the code it provokes, then the calls that
//! must answer it. The signed-result codes live in `verification.rs`, the evidence ones in
//! `evidence.rs`.

use serde_json::{json, Value};

use crate::helpers::ErrorCode::{self, *};
use crate::helpers::{call, get, post, Call, Reply, TestApp, World, PASSWORD};
use crate::{on_both_backends, provokes};
use strum::IntoEnumIterator;

const OPEN: &str = "/api/v1/work-orders";
const LOGIN: &str = "/api/v1/auth/token";
const HALLS: &str = "/api/v1/halls";
const NO_SUCH_ORDER: &str = "00000000-0000-7000-8000-000000000000";
const ONE_MIB: usize = 1024 * 1024;

fn open_body(msisdn: &str) -> Value {
    json!({
        "msisdn": msisdn, "target_province": "37", "target_city": "370100",
        "reason": "用户长期在济南居住", "expected_name": "张三",
    })
}

/// `open_body` for a fresh number, with `key` set to `value` (or removed, for `Null`).
fn open_body_with(key: &str, value: Value) -> Value {
    let mut body = open_body(&World::next_msisdn());
    match value {
        Value::Null => {
            body.as_object_mut().expect("object").remove(key);
        }
        v => body[key] = v,
    }
    body
}

fn order_url(order: &Value) -> String {
    format!(
        "/api/v1/work-orders/{}",
        order["id"].as_str().expect("order id")
    )
}

fn order_path(order: &Value, action: &str) -> String {
    format!("{}/{action}", order_url(order))
}

fn login_body(username: &str, password: Value) -> Value {
    json!({ "username": username, "password": password })
}

/// A JSON object `{"reason": "xxx…"}` of exactly `len` bytes.
fn reason_body_of_len(len: usize) -> Vec<u8> {
    let overhead = br#"{"reason":""}"#.len();
    format!(r#"{{"reason":"{}"}}"#, "x".repeat(len - overhead)).into_bytes()
}

// ---------------------------------------------------------------------------------------
// 400 invalid_request

async fn malformed_json_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let bodies: [&[u8]; 5] = [
        br#"{"msisdn": "18912345678", "#,
        b"{]",
        b"not json",
        b"[1, 2",
        br#"{"reason": "x"} trailing"#,
    ];
    let calls = bodies.map(|b| post(OPEN).by(&w.clerk).json_bytes(b));
    w.app.answers(InvalidRequest, calls).await;
}

async fn an_unknown_field_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let hall = json!({
        "code": "QD-1", "name": "青岛", "province": "37", "city": "370200", "address": "x", "manager": "x",
    });
    w.app
        .answers(
            InvalidRequest,
            [
                post(OPEN)
                    .by(&w.clerk)
                    .json(&open_body_with("priority", json!("high"))),
                // A call that takes no body accepts `{}` or nothing, and nothing else.
                post(order_path(&order, "claim"))
                    .by(&w.staff)
                    .json(&json!({"force": true})),
                post(HALLS).by(&w.admin).json(&hall),
            ],
        )
        .await;
    // Nothing was done on the way.
    let seen = w.app.get(&order_url(&order), &w.clerk).await;
    assert_eq!(seen.assert_status(200)["state"], "open");
}

async fn a_wrong_type_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let rows = [
        post(OPEN)
            .by(&w.clerk)
            .json(&open_body_with("msisdn", json!(18_912_345_678_u64))),
        post(OPEN)
            .by(&w.clerk)
            .json(&open_body_with("reason", json!(["用户长期在济南居住"]))),
        post(LOGIN)
            .by(&w.clerk)
            .json(&login_body("clerk.yn", json!(12345678))),
        // A query parameter of the wrong type too.
        get("/api/v1/work-orders?limit=ten").by(&w.clerk),
    ];
    w.app.answers(InvalidRequest, rows).await;
}

async fn a_missing_required_field_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let rows = ["msisdn", "target_province", "target_city", "reason"].map(|missing| {
        post(OPEN)
            .by(&w.clerk)
            .json(&open_body_with(missing, Value::Null))
    });
    let release = post(order_path(&order, "release"))
        .by(&w.staff)
        .json(&json!({}));
    w.app
        .answers(InvalidRequest, rows.into_iter().chain([release]))
        .await;
}

async fn json_nested_deeper_than_64_levels_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    // 1 (the object) + 64 arrays = 65 levels.
    let deep = format!(r#"{{"reason": {}{}}}"#, "[".repeat(64), "]".repeat(64));
    let rows = [
        post(order_path(&order, "release"))
            .by(&w.staff)
            .json_bytes(deep),
        // Absurdly deep: refused as malformed, and the service is still there afterwards.
        post(OPEN).by(&w.clerk).json_bytes(format!(
            "{}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )),
        post(LOGIN).json_bytes("{\"a\":".repeat(50_000)),
    ];
    w.app.answers(InvalidRequest, rows).await;
    w.app.get("/api/v1/me", &w.clerk).await.assert_status(200);
}

async fn invalid_utf8_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let open = [
        &br#"{"msisdn": "18912345678", "target_province": "37", "target_city": "370100", "reason": ""#[..],
        &[0xe7, 0x94, 0xff, 0xfe],
        b"\"}",
    ]
    .concat();
    let login = [
        &br#"{"username": "clerk.yn", "password": ""#[..],
        &[0xc3, 0x28],
        b"\"}",
    ]
    .concat();
    let rows = [
        post(OPEN).by(&w.clerk).json_bytes(open),
        // On the login, too: malformed before any credential is judged.
        post(LOGIN).json_bytes(login),
    ];
    w.app.answers(InvalidRequest, rows).await;
}

async fn a_text_field_over_its_ceiling_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let long = |n: usize| "长".repeat(n);
    let hall = |address: String| {
        json!({"code": "QD-2", "name": "青岛", "province": "37", "city": "370200",
               "address": address, "email": "qd@halls.example.cn"})
    };
    let over = post(HALLS).by(&w.admin).json(&hall(long(2001)));
    w.app.answers_at(InvalidRequest, "address", [over]).await;
    // Judged with the rest of the body's form, before the role (an auditor may not open).
    let name = open_body_with("expected_name", json!(long(257)));
    let open = post(OPEN).by(&w.auditor).json(&name);
    w.app
        .answers_at(InvalidRequest, "expected_name", [open])
        .await;
    // On the login too, before any credential is looked at.
    let login = post(LOGIN).json(&login_body(&"x".repeat(257), json!(PASSWORD)));
    w.app.answers_at(InvalidRequest, "username", [login]).await;
    // A domain rule tighter than the ceiling keeps its own code.
    let reason = open_body_with("reason", json!(long(501)));
    let open = post(OPEN).by(&w.clerk).json(&reason);
    w.app.answers_at(InvalidField, "reason", [open]).await;
    // At the ceiling (in characters, not bytes) the value is taken.
    let at = w.app.post(HALLS, &w.admin, &hall(long(2000))).await;
    at.assert_status(201);
}

async fn a_query_parameter_over_its_ceiling_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let list = |hall_id: &str| get(format!("{OPEN}?hall_id={hall_id}")).by(&w.clerk);
    let over = list(&"x".repeat(65));
    w.app.answers_at(InvalidRequest, "hall_id", [over]).await;
    let actor = get(format!("/api/v1/audit/events?actor={}", "x".repeat(257))).by(&w.auditor);
    w.app.answers_at(InvalidRequest, "actor", [actor]).await;
    let at = w.app.call(&list(&"x".repeat(64))).await;
    assert_eq!(at.assert_status(200)["items"], json!([]));
}

async fn a_limit_over_200_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let rows = ["201", "1000", "0", "-1"]
        .map(|limit| get(format!("/api/v1/work-orders?limit={limit}")).by(&w.clerk));
    w.app.answers(InvalidRequest, rows).await;
    w.app
        .get("/api/v1/work-orders?limit=200", &w.clerk)
        .await
        .assert_status(200);
}

// ---------------------------------------------------------------------------------------
// 401 unauthenticated

async fn no_token_is_unauthenticated(app: TestApp) {
    let w = World::new(app).await;
    let rows = [
        get("/api/v1/me"),
        get("/api/v1/work-orders"),
        post(OPEN).json(&open_body(&World::next_msisdn())),
    ];
    w.app.answers(Unauthenticated, rows).await;
    // The one public call stays public.
    w.app
        .get_anon("/api/v1/openapi.json")
        .await
        .assert_status(200);
}

async fn a_garbage_token_is_unauthenticated(app: TestApp) {
    let w = World::new(app).await;
    // A real token with one character of its signature changed.
    let (input, sig) = w.clerk.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    let forged = format!("{input}.{}", sig.into_iter().collect::<String>());
    let tokens = [
        "garbage",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln",
        "",
        &forged,
    ];
    let rows = tokens.map(|t| get("/api/v1/me").by(t));
    // A scheme other than Bearer.
    let basic = get("/api/v1/me").header("Authorization", &format!("Basic {}", w.clerk));
    w.app
        .answers(Unauthenticated, rows.into_iter().chain([basic]))
        .await;
}

async fn a_wrong_password_is_unauthenticated(app: TestApp) {
    let w = World::new(app).await;
    let r = w
        .app
        .login("clerk.yn", "correct horse battery staple")
        .await;
    r.problem(Unauthenticated);
    assert!(r.body.get("access_token").is_none());
    let rows = [
        post(LOGIN).json(&login_body("nobody", json!(PASSWORD))),
        post(LOGIN).json(&login_body("", json!(""))),
    ];
    w.app.answers(Unauthenticated, rows).await;
}

/// `auth.token_ttl_seconds` (900 by default) after its login, a token is refused.
async fn a_token_past_its_lifetime_is_unauthenticated(app: TestApp) {
    let w = World::new(app).await;
    // A minute before its end, the token still works...
    w.app.advance_clock(900 - 60);
    w.app.get("/api/v1/me", &w.clerk).await.assert_status(200);
    // ...and from its end on, it is refused on every call.
    w.app.advance_clock(60);
    let rows = [get("/api/v1/me").by(&w.clerk), get(OPEN).by(&w.clerk)];
    w.app.answers(Unauthenticated, rows).await;
    // Logging in again gives a fresh one.
    let fresh = w.app.token("clerk.yn").await;
    w.app.get("/api/v1/me", &fresh).await.assert_status(200);
}

// ---------------------------------------------------------------------------------------
// 403 forbidden

async fn an_auditor_may_not_open_an_order(app: TestApp) {
    let w = World::new(app).await;
    let active = w.open_order().await;
    let body = open_body(&World::next_msisdn());
    let hall = json!({"code": "QD-1", "name": "青岛", "province": "37", "city": "370200", "address": "x", "email": "qd@halls.example.cn"});
    let rows = [
        post(OPEN).by(&w.auditor).json(&body),
        post(OPEN).by(&w.staff).json(&body),
        post(OPEN).by(&w.admin).json(&body),
        // Before the 409 a clerk would get for a number with an active order.
        post(OPEN)
            .by(&w.auditor)
            .json(&open_body(active["msisdn"].as_str().unwrap())),
        // Only admins administer.
        post(HALLS).by(&w.clerk).json(&hall),
    ];
    w.app.answers(Forbidden, rows).await;
}

async fn a_clerk_may_not_claim(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let submitted = w.submitted_order("match").await;
    let rows = [
        post(order_path(&order, "claim"))
            .by(&w.clerk)
            .json(&json!({})),
        post(order_path(&order, "claim"))
            .by(&w.auditor)
            .json(&json!({})),
        // Hall staff may not act for the home clerk either.
        post(order_path(&submitted, "complete"))
            .by(&w.staff)
            .json(&json!({})),
    ];
    w.app.answers(Forbidden, rows).await;
}

async fn staff_other_than_the_claimer_may_not_release(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let submitted = w.submitted_order("mismatch").await;
    let rows = [
        post(order_path(&order, "release"))
            .by(&w.staff_same_hall)
            .json(&json!({"reason": "我来处理"})),
        // On a submitted order, 403 comes before the state's 409.
        post(order_path(&submitted, "release"))
            .by(&w.staff_same_hall)
            .json(&json!({"reason": "x"})),
    ];
    w.app.answers(Forbidden, rows).await;
    let r = w
        .app
        .post(
            &order_path(&order, "release"),
            &w.staff,
            &json!({"reason": "用户未到场"}),
        )
        .await;
    assert_eq!(r.assert_status(200)["state"], "open");
}

/// The list is open to any role; an admin's scope is empty, so the answer is an empty page.
async fn an_admin_lists_no_orders_rather_than_being_forbidden(app: TestApp) {
    let w = World::new(app).await;
    w.open_order().await;
    let r = w.app.get("/api/v1/work-orders", &w.admin).await;
    let page = r.assert_status(200);
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next_cursor"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// 404 not_found

async fn an_unknown_order_is_not_found(app: TestApp) {
    let w = World::new(app).await;
    let path = format!("/api/v1/work-orders/{NO_SUCH_ORDER}");
    let rows = [
        get(&path).by(&w.clerk),
        get(format!("{path}/events")).by(&w.auditor),
        post(format!("{path}/claim")).by(&w.staff).json(&json!({})),
        post(format!("{path}/cancel"))
            .by(&w.clerk)
            .json(&json!({"reason": "x"})),
        get("/api/v1/work-orders/not-even-a-uuid").by(&w.clerk),
    ];
    w.app.answers(NotFound, rows).await;
}

async fn another_provinces_clerk_does_not_find_the_order(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let path = format!("/api/v1/work-orders/{}", order["id"].as_str().unwrap());
    let rows = [
        get(&path).by(&w.other_clerk),
        get(format!("{path}/events")).by(&w.other_clerk),
        post(format!("{path}/cancel"))
            .by(&w.other_clerk)
            .json(&json!({"reason": "x"})),
        // Nor does the staff of a hall it is not routed to.
        get(&path).by(&w.staff_other_hall),
        post(format!("{path}/claim"))
            .by(&w.staff_other_hall)
            .json(&json!({})),
    ];
    w.app.answers(NotFound, rows).await;
}

// ---------------------------------------------------------------------------------------
// 405 method_not_allowed (not in the contract's table: a path called with a method it does
// not take; an unknown path is 404)

async fn a_method_the_path_does_not_take_is_method_not_allowed(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let rows = [
        call("DELETE", order_url(&order)).by(&w.clerk),
        call("DELETE", OPEN).by(&w.admin),
        call("PUT", HALLS).by(&w.admin).json(&json!({})),
    ];
    w.app.answers(MethodNotAllowed, rows).await;
    w.app
        .get("/api/v1/no-such-thing", &w.clerk)
        .await
        .problem(NotFound);
}

// ---------------------------------------------------------------------------------------
// 409 invalid_state, already_exists

async fn claiming_a_claimed_order_is_invalid_state(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let rows = [&w.staff_same_hall, &w.staff]
        .map(|t| post(order_path(&order, "claim")).by(t).json(&json!({})));
    w.app.answers(InvalidState, rows).await;
}

async fn completing_an_open_order_is_invalid_state(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let by_clerk =
        |action: &str, body: Value| post(order_path(&order, action)).by(&w.clerk).json(&body);
    let rows = [
        by_clerk("complete", json!({})),
        by_clerk("return", json!({"reason": "x"})),
    ];
    w.app.answers(InvalidState, rows).await;
    // A finished order takes no more transitions.
    w.app
        .call(&by_clerk("cancel", json!({"reason": "用户撤回"})))
        .await
        .assert_status(200);
    w.app
        .answers(
            InvalidState,
            [by_clerk("cancel", json!({"reason": "again"}))],
        )
        .await;
}

async fn releasing_an_unclaimed_order_is_invalid_state(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let pool = w.open_order_to(None).await;
    let jws = w.signer.sign(&w.payload(&order, "match"));
    let release = |token: &str| {
        post(order_path(&order, "release"))
            .by(token)
            .json(&json!({"reason": "x"}))
    };
    let submit = |order: &Value, token: &str, jws: &str| {
        post(order_path(order, "verification"))
            .by(token)
            .json(&json!({ "result": jws }))
    };
    let rows = [
        release(&w.staff),
        // Nobody claimed it, so no one is "another staff member" yet.
        release(&w.staff_same_hall),
        submit(&order, &w.staff, &jws),
        // The state answers before the result is judged.
        submit(&order, &w.staff, "abc"),
        submit(&pool, &w.staff_other_hall, &jws),
    ];
    w.app.answers(InvalidState, rows).await;
}

async fn a_second_active_order_for_a_number_already_exists(app: TestApp) {
    let w = World::new(app).await;
    let msisdn = World::next_msisdn();
    let first = w.app.post(OPEN, &w.clerk, &open_body(&msisdn)).await;
    let first = first.assert_status(201).clone();
    for (who, written) in [
        (&w.clerk, format!("+86 {msisdn}")),
        (
            &w.clerk,
            format!("86-{}-{}-{}", &msisdn[..3], &msisdn[3..7], &msisdn[7..]),
        ),
        // Whichever province opened it.
        (&w.other_clerk, format!("+86{msisdn}")),
    ] {
        let r = w.app.post(OPEN, who, &open_body(&written)).await;
        r.problem(AlreadyExists);
        // The problem names no order.
        let text = String::from_utf8_lossy(&r.raw).into_owned();
        for secret in [
            first["id"].as_str().unwrap(),
            first["reference"].as_str().unwrap(),
        ] {
            assert!(
                !text.contains(secret),
                "the problem names the order: {text}"
            );
        }
    }
    // Still active once claimed or submitted.
    w.app
        .post(&order_path(&first, "claim"), &w.staff, &json!({}))
        .await
        .assert_status(200);
    let again = post(OPEN).by(&w.clerk).json(&open_body(&msisdn));
    w.app.answers(AlreadyExists, [again]).await;
}

async fn a_duplicate_hall_code_username_or_kid_already_exists(app: TestApp) {
    let w = World::new(app).await;
    let hall = json!({
        "code": "JN-A", "name": "又一个", "province": "37", "city": "370100", "address": "x", "email": "x@halls.example.cn",
    });
    let user =
        json!({"username": "clerk.yn", "password": PASSWORD, "role": "clerk", "province": "44"});
    let other = crate::helpers::Signer::new(&w.signer.kid, "ES256");
    let key = json!({"kid": other.kid, "alg": other.alg, "public_key_pem": other.public_pem()});
    let register = |hall: &str| {
        post(format!("/api/v1/halls/{hall}/keys"))
            .by(&w.admin)
            .json(&key)
    };
    let app = &w.app;
    app.answers_at(
        AlreadyExists,
        "code",
        [post(HALLS).by(&w.admin).json(&hall)],
    )
    .await;
    let add_user = post("/api/v1/users").by(&w.admin).json(&user);
    app.answers_at(AlreadyExists, "username", [add_user]).await;
    // A kid is unique across halls, not only within one.
    app.answers_at(
        AlreadyExists,
        "kid",
        [register(&w.hall_b), register(&w.hall_a)],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 412, 413, 415

async fn a_stale_if_match_is_version_conflict(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    assert_eq!(order["version"], 2);
    let cancel = |version: &str, reason: &str| {
        post(order_path(&order, "cancel"))
            .by(&w.clerk)
            .if_match(version)
            .json(&json!({ "reason": reason }))
    };
    let jws = w.signer.sign(&w.payload(&order, "match"));
    let rows = ["\"1\"", "\"3\"", "W/\"1\"", "\"two\""]
        .map(|stale| cancel(stale, "x"))
        .into_iter()
        .chain([
            post(order_path(&order, "release"))
                .by(&w.staff)
                .if_match("\"1\"")
                .json(&json!({"reason": "x"})),
            post(order_path(&order, "verification"))
                .by(&w.staff)
                .if_match("\"1\"")
                .json(&json!({ "result": jws })),
        ]);
    w.app.answers(VersionConflict, rows).await;
    let r = w.app.call(&cancel("\"2\"", "用户撤回")).await;
    assert_eq!(r.assert_status(200)["state"], "cancelled");
}

async fn a_body_over_one_mib_is_payload_too_large(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let cancel = post(order_path(&order, "cancel")).by(&w.clerk);
    let rows = [
        cancel.clone().json_bytes(reason_body_of_len(ONE_MIB + 1)),
        post(LOGIN).json_bytes(reason_body_of_len(4 * ONE_MIB)),
    ];
    w.app.answers(PayloadTooLarge, rows).await;
    // Exactly the limit is read and judged on its merits (a reason's ceiling is 2000 characters).
    let at_limit = cancel.json_bytes(reason_body_of_len(ONE_MIB));
    w.app.answers_at(InvalidRequest, "reason", [at_limit]).await;
}

async fn a_chunked_body_over_one_mib_is_payload_too_large(app: TestApp) {
    let w = World::new(app).await;
    // No Content-Length: the limit holds while the body is read.
    let chunk = actix_web::web::Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = (0..17).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let sent = w
        .app
        .client
        .post(w.app.url(OPEN))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Authorization", format!("Bearer {}", w.clerk)))
        .send_stream(futures_util::stream::iter(chunks));
    let r = w.app.reply(sent).await;
    assert!(r.header("content-length").is_some() || r.header("transfer-encoding").is_some());
    r.problem(PayloadTooLarge);
}

async fn a_body_not_sent_as_json_is_unsupported_media_type(app: TestApp) {
    let w = World::new(app).await;
    let body = serde_json::to_vec(&open_body(&World::next_msisdn())).unwrap();
    let login = serde_json::to_vec(&login_body("clerk.yn", json!(PASSWORD))).unwrap();
    let rows = [
        Some("text/plain"),
        None,
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("application/problem+json"),
    ]
    .map(|ct| post(OPEN).by(&w.clerk).bytes(ct, body.clone()))
    .into_iter()
    .chain([post(LOGIN).bytes(Some("text/plain"), login)]);
    w.app.answers(UnsupportedMediaType, rows).await;
    // Parameters are allowed, and a call that takes no body needs no type.
    let with_charset = post(OPEN)
        .by(&w.clerk)
        .bytes(Some("application/json; charset=utf-8"), body);
    let order = w.app.call(&with_charset).await.assert_status(201).clone();
    let claim = post(order_path(&order, "claim")).by(&w.staff);
    w.app.call(&claim).await.assert_status(200);
}

// ---------------------------------------------------------------------------------------
// 422 field validation

async fn a_number_that_is_no_mobile_number_is_invalid_msisdn(app: TestApp) {
    let w = World::new(app).await;
    let bad = [
        "12345",
        "28912345678",
        "1891234567x",
        "+1 18912345678",
        "189123456789",
        "",
    ];
    let rows = bad.map(|n| post(OPEN).by(&w.clerk).json(&open_body(n)));
    w.app.answers_at(InvalidMsisdn, "msisdn", rows).await;
}

async fn an_unknown_province_is_invalid_province(app: TestApp) {
    let w = World::new(app).await;
    let order = post(OPEN)
        .by(&w.clerk)
        .json(&open_body_with("target_province", json!("99")));
    w.app
        .answers_at(InvalidProvince, "target_province", [order])
        .await;
    let hall = json!({"code": "X-1", "name": "x", "province": "99", "city": "990100", "address": "x", "email": "x@halls.example.cn"});
    let user =
        json!({"username": "clerk.x", "password": PASSWORD, "role": "clerk", "province": "00"});
    let rows = [
        post(HALLS).by(&w.admin).json(&hall),
        post("/api/v1/users").by(&w.admin).json(&user),
    ];
    w.app.answers_at(InvalidProvince, "province", rows).await;
}

async fn a_city_outside_the_province_is_invalid_city(app: TestApp) {
    let w = World::new(app).await;
    // Kunming is not in Shandong; 379900 is no city at all.
    let rows = ["530100", "379900"].map(|city| {
        post(OPEN)
            .by(&w.clerk)
            .json(&open_body_with("target_city", json!(city)))
    });
    w.app.answers_at(InvalidCity, "target_city", rows).await;
    let hall = json!({"code": "X-1", "name": "x", "province": "37", "city": "110100", "address": "x", "email": "x@halls.example.cn"});
    let hall = post(HALLS).by(&w.admin).json(&hall);
    w.app.answers_at(InvalidCity, "city", [hall]).await;
}

async fn a_hall_of_another_city_is_unknown_hall(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    // Qingdao; hall A is in Jinan.
    let mut in_qingdao = open_body_with("target_city", json!("370200"));
    in_qingdao["target_hall_id"] = json!(w.hall_a);
    let reroute = json!({"target_province": "37", "target_city": "370200", "target_hall_id": w.hall_b, "reason": "x"});
    let rows = [
        post(OPEN).by(&w.clerk).json(&in_qingdao),
        post(OPEN)
            .by(&w.clerk)
            .json(&open_body_with("target_hall_id", json!(NO_SUCH_ORDER))),
        // Rerouting to it is refused the same way.
        post(order_path(&order, "reroute"))
            .by(&w.clerk)
            .json(&reroute),
    ];
    w.app.answers_at(UnknownHall, "target_hall_id", rows).await;
}

async fn a_public_key_that_does_not_parse_or_is_not_of_alg_is_invalid_key(app: TestApp) {
    let w = World::new(app).await;
    let keys = format!("/api/v1/halls/{}/keys", w.hall_b);
    let register = |kid: &str, alg: &str, pem: &str| {
        post(&keys)
            .by(&w.admin)
            .json(&json!({"kid": kid, "alg": alg, "public_key_pem": pem}))
    };
    let garbage =
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n";
    let ed = crate::helpers::Signer::new("b-ed", "EdDSA");
    let ec = crate::helpers::Signer::new("b-ec", "ES256");
    let rows = [garbage, "not a pem", ""]
        .map(|pem| register("b-garbage", "EdDSA", pem))
        .into_iter()
        .chain([
            // An Ed25519 key registered as ES256, and a P-256 key registered as EdDSA.
            register("b-ed", "ES256", &ed.public_pem()),
            register("b-ec", "EdDSA", &ec.public_pem()),
        ]);
    w.app.answers_at(InvalidKey, "public_key_pem", rows).await;
    // An algorithm outside ES256/EdDSA.
    let hs = register("b-hs", "HS256", &ec.public_pem());
    w.app.answers(InvalidKey, [hs]).await;
    // None of them was registered: the right ones still can be.
    w.app.register_key(&w.admin, &w.hall_b, &ed).await;
    w.app.register_key(&w.admin, &w.hall_b, &ec).await;
}

/// Not in the contract's list ("more may be added"): a field that fails a plain value check.
async fn an_empty_reason_is_invalid_field(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let release = post(order_path(&order, "release"))
        .by(&w.staff)
        .json(&json!({"reason": "  "}));
    w.app.answers_at(InvalidField, "reason", [release]).await;
}

// ---------------------------------------------------------------------------------------
// 429 rate_limited

async fn repeated_failed_logins_are_rate_limited(app: TestApp) {
    let w = World::new(app).await;
    let guesses =
        (1..=5).map(|n| post(LOGIN).json(&login_body("clerk.yn", json!(format!("guess {n}")))));
    w.app.answers(Unauthenticated, guesses).await;
    // Locked: even the right password is refused, with a hint when to retry.
    let r = w.app.login("clerk.yn", PASSWORD).await;
    r.problem(RateLimited);
    let retry = r.retry_after();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    let again = post(LOGIN).json(&login_body("clerk.yn", json!("guess 6")));
    w.app.answers(RateLimited, [again]).await;
    // Tokens issued before the lockout still work, and other users still log in.
    w.app.get("/api/v1/me", &w.clerk).await.assert_status(200);
    w.app.login("clerk.bj", PASSWORD).await.assert_status(200);
    // Once Retry-After has passed, the right password logs in again.
    w.app.advance_clock(retry);
    w.app.login("clerk.yn", PASSWORD).await.assert_status(200);
}

async fn repeated_failed_logins_from_one_address_are_rate_limited(app: TestApp) {
    let w = World::new(app).await;
    // Never five failures for one name, but 20 (`auth.max_failed_logins` × 4) from this address.
    let guesses = (0..20).map(|n| {
        post(LOGIN).json(&login_body(
            &format!("guess{}", n / 4),
            json!(format!("guess {n}")),
        ))
    });
    w.app.answers(Unauthenticated, guesses).await;
    let r = w.app.login("guess5", "guess 0").await;
    r.problem(RateLimited);
    assert!(r.header("retry-after").is_some());
    // The address is locked for every name, the right password included.
    w.app.login("clerk.yn", PASSWORD).await.problem(RateLimited);
}

// ---------------------------------------------------------------------------------------
// Precedence: 413 → 415 → 401 → 400 → 403 → 404 → 412 → 409 → 422 (in body order)

async fn payload_too_large_outranks_unsupported_media_type(app: TestApp) {
    let w = World::new(app).await;
    let big = reason_body_of_len(ONE_MIB + 1);
    let rows = [
        post(OPEN).bytes(Some("text/plain"), big.clone()),
        post(OPEN).bytes(None, big),
    ];
    w.app.answers(PayloadTooLarge, rows).await;
}

async fn unsupported_media_type_outranks_unauthenticated(app: TestApp) {
    let w = World::new(app).await;
    let rows = [
        post(OPEN).bytes(Some("text/plain"), *b"{"),
        post(OPEN).by("garbage").bytes(None, *b"{}"),
    ];
    w.app.answers(UnsupportedMediaType, rows).await;
}

async fn unauthenticated_outranks_malformed_json(app: TestApp) {
    let w = World::new(app).await;
    let rows = [
        post(OPEN).json_bytes(*b"{\"msisdn\": "),
        post(OPEN).by("garbage").json_bytes(*b"{\"priority\": 1}"),
        // Query parameters too.
        get("/api/v1/work-orders?limit=201").by("garbage"),
    ];
    w.app.answers(Unauthenticated, rows).await;
}

async fn malformed_json_outranks_forbidden(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let rows = [
        post(OPEN).by(&w.auditor).json_bytes(*b"{\"msisdn\": "),
        post(order_path(&order, "claim"))
            .by(&w.clerk)
            .json(&json!({"force": true})),
        // A query of the wrong type, on a call only auditors may make.
        get("/api/v1/audit/events?limit=many").by(&w.clerk),
    ];
    w.app.answers(InvalidRequest, rows).await;
}

async fn forbidden_outranks_not_found(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let none = format!("/api/v1/work-orders/{NO_SUCH_ORDER}");
    let rows = [
        // A clerk claiming an order of another province: a clerk may never claim.
        post(order_path(&order, "claim"))
            .by(&w.other_clerk)
            .json(&json!({})),
        post(format!("{none}/claim")).by(&w.clerk).json(&json!({})),
        post(format!("{none}/complete"))
            .by(&w.staff)
            .json(&json!({})),
        get(format!("{none}/events")).by(&w.admin),
    ];
    w.app.answers(Forbidden, rows).await;
}

async fn forbidden_outranks_version_conflict(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let release = post(order_path(&order, "release"))
        .by(&w.staff_same_hall)
        .if_match("\"1\"")
        .json(&json!({"reason": "x"}));
    w.app.answers(Forbidden, [release]).await;
}

async fn not_found_outranks_version_conflict(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let rows = [
        post(order_path(&order, "cancel"))
            .by(&w.other_clerk)
            .if_match("\"9\"")
            .json(&json!({"reason": "x"})),
        post(format!("/api/v1/work-orders/{NO_SUCH_ORDER}/claim"))
            .by(&w.staff)
            .if_match("\"9\"")
            .json(&json!({})),
    ];
    w.app.answers(NotFound, rows).await;
}

async fn version_conflict_outranks_invalid_state(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let rows = [
        post(order_path(&order, "claim"))
            .by(&w.staff_same_hall)
            .if_match("\"1\"")
            .json(&json!({})),
        post(order_path(&order, "complete"))
            .by(&w.clerk)
            .if_match("\"1\"")
            .json(&json!({})),
    ];
    w.app.answers(VersionConflict, rows).await;
}

async fn invalid_state_and_already_exists_outrank_field_validation(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let claimed = w.claimed_order().await;
    let reroute = json!({"target_province": "99", "target_city": "x", "reason": ""});
    let rows = [
        post(order_path(&order, "release"))
            .by(&w.staff)
            .json(&json!({"reason": ""})),
        post(order_path(&claimed, "reroute"))
            .by(&w.clerk)
            .json(&reroute),
    ];
    w.app.answers(InvalidState, rows).await;
    // A number with an active order, in a body whose other fields are all wrong.
    let body = json!({"msisdn": order["msisdn"], "target_province": "99", "target_city": "x", "reason": ""});
    let open = post(OPEN).by(&w.clerk).json(&body);
    w.app.answers(AlreadyExists, [open]).await;
}

async fn field_errors_answer_in_the_order_of_the_body(app: TestApp) {
    let w = World::new(app).await;
    let mut body = json!({"msisdn": "123", "target_province": "99", "target_city": "x", "target_hall_id": NO_SUCH_ORDER, "reason": ""});
    // Each row mends the field the row before named.
    let rows = [
        (InvalidMsisdn, "msisdn", json!(World::next_msisdn())),
        (InvalidProvince, "target_province", json!("37")),
        (InvalidCity, "target_city", json!("370100")),
        (UnknownHall, "target_hall_id", json!(w.hall_a)),
        (InvalidField, "reason", json!("用户长期在济南居住")),
    ];
    for (code, field, mended) in rows {
        let open = post(OPEN).by(&w.clerk).json(&body);
        w.app.answers_at(code, field, [open]).await;
        body[field] = mended;
    }
}

// ---------------------------------------------------------------------------------------
// The problem document itself

async fn every_problem_is_problem_json_with_the_contract_members(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let rows: [(Call, ErrorCode); 11] = [
        (post(OPEN).by(&w.clerk).json_bytes(*b"{"), InvalidRequest),
        (get("/api/v1/me"), Unauthenticated),
        (
            post(OPEN)
                .by(&w.auditor)
                .json(&open_body(&World::next_msisdn())),
            Forbidden,
        ),
        (
            get(format!("/api/v1/work-orders/{NO_SUCH_ORDER}")).by(&w.clerk),
            NotFound,
        ),
        (
            post(order_path(&order, "complete"))
                .by(&w.clerk)
                .json(&json!({})),
            InvalidState,
        ),
        (
            post(order_path(&order, "claim"))
                .by(&w.staff)
                .if_match("\"5\"")
                .json(&json!({})),
            VersionConflict,
        ),
        (
            post(OPEN).by(&w.clerk).bytes(Some("text/plain"), *b"{}"),
            UnsupportedMediaType,
        ),
        (
            post(OPEN)
                .by(&w.clerk)
                .json_bytes(reason_body_of_len(ONE_MIB + 1)),
            PayloadTooLarge,
        ),
        (
            post(OPEN).by(&w.clerk).json(&open_body("123")),
            InvalidMsisdn,
        ),
        // Unrouted paths and methods are problems too.
        (get("/api/v1/no-such-thing").by(&w.clerk), NotFound),
        (
            call("DELETE", order_url(&order)).by(&w.clerk),
            MethodNotAllowed,
        ),
    ];
    for (call, code) in rows {
        let r: Reply = w.app.call(&call).await;
        r.problem(code);
        assert!(r.body["type"].as_str().unwrap().len() > 1, "{call:?}");
    }
}

async fn accept_language_en_gives_an_english_title(app: TestApp) {
    let w = World::new(app).await;
    let path = format!("/api/v1/work-orders/{NO_SUCH_ORDER}");
    for lang in ["en", "en-US,en;q=0.9", "en-GB"] {
        let english = get(&path).by(&w.clerk).header("Accept-Language", lang);
        let r = w.app.call(&english).await;
        r.problem(NotFound);
        let title = r.body["title"].as_str().unwrap();
        assert!(
            title.is_ascii() && title.chars().any(|c| c.is_ascii_alphabetic()),
            "title {title:?} for {lang}"
        );
        assert!(r.body["detail"].as_str().unwrap().is_ascii());
    }
    let r = w
        .app
        .call(&get("/api/v1/me").header("Accept-Language", "en"))
        .await;
    r.problem(Unauthenticated);
    assert!(r.body["title"].as_str().unwrap().is_ascii());
    // The same problem in English and by default differs only in language, not in code.
    w.app.answers(NotFound, [get(&path).by(&w.clerk)]).await;
}

/// Sends `call` once in Chinese and once in English; both must be the problem `code`. The
/// Chinese detail must be Chinese, say more than the title whenever the English does, and
/// hold every one of `specifics` the English holds.
async fn in_both_languages(
    app: &TestApp,
    call: &Call,
    code: ErrorCode,
    specifics: &[&str],
) -> (String, String) {
    let mut details = vec![];
    for lang in ["zh-CN", "en"] {
        let r = app
            .call(&call.clone().header("Accept-Language", lang))
            .await;
        r.problem(code);
        let title = r.body["title"].as_str().unwrap().to_owned();
        let detail = r.body["detail"].as_str().unwrap().to_owned();
        assert_ne!(detail, title, "{lang}: only the title for {call:?}");
        for s in specifics {
            assert!(detail.contains(s), "{lang}: {s:?} missing from {detail:?}");
        }
        details.push(detail);
    }
    let (zh, en) = (details.remove(0), details.remove(0));
    let chinese = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    assert!(chinese(&zh), "not Chinese: {zh:?}");
    assert!(!chinese(&en), "not English: {en:?}");
    (zh, en)
}

async fn the_chinese_detail_is_as_precise_as_the_english(app: TestApp) {
    let w = World::new(app).await;
    // Malformed JSON: the same line and column, from serde_json's own position.
    let broken = post(OPEN).by(&w.clerk).json_bytes("{\n  \"reason\": ]\n}");
    let (zh, en) = in_both_languages(&w.app, &broken, InvalidRequest, &[]).await;
    let at: Vec<&str> = en
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(at.len(), 2, "{en}");
    assert_eq!(en, format!("malformed JSON at line 2 column {}", at[1]));
    assert!(
        zh.starts_with(&format!("JSON 格式错误：第 2 行第 {} 列", at[1])),
        "{zh}"
    );
    // An unknown field, named.
    let unknown = post(OPEN)
        .by(&w.clerk)
        .json(&open_body_with("nickname", json!("小张")));
    let (zh, _) = in_both_languages(&w.app, &unknown, InvalidRequest, &["nickname"]).await;
    assert!(zh.contains("未知字段") && !zh.contains("小张"), "{zh}");
    // A bad mobile number: the rule's 11 digits (and in Chinese the field too).
    let msisdn = post(OPEN).by(&w.clerk).json(&open_body("123"));
    let (zh, _) = in_both_languages(&w.app, &msisdn, InvalidMsisdn, &["11", "1[3-9]"]).await;
    assert!(zh.contains("msisdn") && zh.contains("手机号码"), "{zh}");
    // A stale If-Match: both versions.
    let order = w.claimed_order().await;
    assert_eq!(order["version"], 2);
    let stale = post(order_path(&order, "cancel"))
        .by(&w.clerk)
        .if_match("\"1\"")
        .json(&json!({ "reason": "用户撤回" }));
    let (zh, en) = in_both_languages(&w.app, &stale, VersionConflict, &["1", "2"]).await;
    assert_eq!(en, "version 1 is stale; the current version is 2");
    assert!(zh.contains("版本 1") && zh.contains("当前版本为 2"), "{zh}");
    // A wrong state: what was attempted and the state it is in.
    let claim = post(order_path(&order, "claim"))
        .by(&w.staff_same_hall)
        .json(&json!({}));
    let (zh, en) = in_both_languages(&w.app, &claim, InvalidState, &["claimed"]).await;
    assert_eq!(en, "cannot claim: it is claimed");
    assert!(zh.contains("认领该工单") && zh.contains("已认领"), "{zh}");
    // Too long: a domain bound and a ceiling of the body's form, each with field and limit.
    let reason = post(OPEN)
        .by(&w.clerk)
        .json(&open_body_with("reason", json!("长".repeat(501))));
    in_both_languages(&w.app, &reason, InvalidField, &["reason", "500"]).await;
    let hall = json!({"code": "QD-3", "name": "青岛", "province": "37", "city": "370200",
                      "address": "长".repeat(2001), "email": "qd@halls.example.cn"});
    let address = post(HALLS).by(&w.admin).json(&hall);
    in_both_languages(&w.app, &address, InvalidRequest, &["address", "2000"]).await;
}

// ---------------------------------------------------------------------------------------
// The table: each scenario under the code it provokes.

provokes!(PROVOKED {
    InvalidRequest => [
        malformed_json_is_invalid_request,
        an_unknown_field_is_invalid_request,
        a_wrong_type_is_invalid_request,
        a_missing_required_field_is_invalid_request,
        json_nested_deeper_than_64_levels_is_invalid_request,
        invalid_utf8_is_invalid_request,
        a_limit_over_200_is_invalid_request,
        a_text_field_over_its_ceiling_is_invalid_request,
        a_query_parameter_over_its_ceiling_is_invalid_request,
        malformed_json_outranks_forbidden,
    ],
    Unauthenticated => [
        no_token_is_unauthenticated,
        a_garbage_token_is_unauthenticated,
        a_wrong_password_is_unauthenticated,
        unauthenticated_outranks_malformed_json,
        a_token_past_its_lifetime_is_unauthenticated,
    ],
    Forbidden => [
        an_auditor_may_not_open_an_order,
        a_clerk_may_not_claim,
        staff_other_than_the_claimer_may_not_release,
        forbidden_outranks_not_found,
        forbidden_outranks_version_conflict,
    ],
    NotFound => [
        an_unknown_order_is_not_found,
        another_provinces_clerk_does_not_find_the_order,
        not_found_outranks_version_conflict,
    ],
    MethodNotAllowed => [a_method_the_path_does_not_take_is_method_not_allowed],
    InvalidState => [
        claiming_a_claimed_order_is_invalid_state,
        completing_an_open_order_is_invalid_state,
        releasing_an_unclaimed_order_is_invalid_state,
        invalid_state_and_already_exists_outrank_field_validation,
    ],
    AlreadyExists => [
        a_second_active_order_for_a_number_already_exists,
        a_duplicate_hall_code_username_or_kid_already_exists,
    ],
    VersionConflict => [
        a_stale_if_match_is_version_conflict,
        version_conflict_outranks_invalid_state,
    ],
    PayloadTooLarge => [
        a_body_over_one_mib_is_payload_too_large,
        a_chunked_body_over_one_mib_is_payload_too_large,
        payload_too_large_outranks_unsupported_media_type,
    ],
    UnsupportedMediaType => [
        a_body_not_sent_as_json_is_unsupported_media_type,
        unsupported_media_type_outranks_unauthenticated,
    ],
    InvalidMsisdn => [a_number_that_is_no_mobile_number_is_invalid_msisdn],
    InvalidProvince => [an_unknown_province_is_invalid_province],
    InvalidCity => [a_city_outside_the_province_is_invalid_city],
    UnknownHall => [a_hall_of_another_city_is_unknown_hall],
    InvalidKey => [a_public_key_that_does_not_parse_or_is_not_of_alg_is_invalid_key],
    InvalidField => [
        an_empty_reason_is_invalid_field,
        field_errors_answer_in_the_order_of_the_body,
    ],
    RateLimited => [
        repeated_failed_logins_are_rate_limited,
        repeated_failed_logins_from_one_address_are_rate_limited,
    ],
});

// Scenarios about every problem rather than one code.
on_both_backends!(
    an_admin_lists_no_orders_rather_than_being_forbidden,
    every_problem_is_problem_json_with_the_contract_members,
    accept_language_en_gives_an_english_title,
    the_chinese_detail_is_as_precise_as_the_english,
);

/// Codes no request from outside can provoke: the test below fails if one of them is
/// provoked after all (then it belongs in a table) or is no longer a code.
const NOT_PROVOKED_FROM_OUTSIDE: &[ErrorCode] = &[
    // A bug or a failure of the service's own parts (a poisoned lock, a broken key file, a
    // query that fails): nothing a caller sends leads there.
    Internal,
];

#[test]
fn every_error_code_is_provoked_by_a_test() {
    let provoked: Vec<ErrorCode> = [
        PROVOKED,
        crate::verification::PROVOKED,
        crate::evidence::PROVOKED,
        crate::idempotency::PROVOKED,
        crate::mail::PROVOKED,
        crate::mail::PROVOKED_ON_A_MOVABLE_CLOCK,
        crate::at_rest::PROVOKED,
        crate::at_rest::PROVOKED_ON_A_MOVABLE_CLOCK,
        crate::tls::PROVOKED,
        crate::people::PROVOKED,
        crate::quality::PROVOKED,
        crate::device_keys::PROVOKED,
    ]
    .concat()
    .into_iter()
    .map(|(code, _)| code)
    .collect();
    let unprovoked: Vec<&str> = ErrorCode::iter()
        .filter(|code| !provoked.contains(code) && !NOT_PROVOKED_FROM_OUTSIDE.contains(code))
        .map(|code| code.as_str())
        .collect();
    assert!(
        unprovoked.is_empty(),
        "error codes no test provokes: {unprovoked:?}"
    );
    for code in NOT_PROVOKED_FROM_OUTSIDE {
        assert!(
            ErrorCode::iter().any(|c| c == *code),
            "{code:?} is no longer a code"
        );
        assert!(
            !provoked.contains(code),
            "{code:?} is provoked by a test: take it off the list"
        );
    }
}
