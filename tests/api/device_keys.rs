//! Device-key enrolment: hall staff enrol the public half of a key made in their browser, an
//! admin approves it (registering it as one of the hall's keys) or rejects it; a result signed
//! with an approved key is accepted like any hall key's.

use serde_json::{json, Value};

use crate::helpers::{call, get, post, ErrorCode::*, Reply, Signer, TestApp, World};
use crate::{on_both_backends, provokes};

const DEVICE_KEYS: &str = "/api/v1/device-keys";

fn request_path(id: &str) -> String {
    format!("{DEVICE_KEYS}/{id}")
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

fn enrolment(signer: &Signer) -> Value {
    json!({ "kid": signer.kid, "alg": signer.alg, "public_key_pem": signer.public_pem() })
}

/// `staff.a` (or whoever `token` is) asks for `signer`'s key; the request as answered.
async fn requested(w: &World, token: &str, signer: &Signer) -> Value {
    let r = w.app.post(DEVICE_KEYS, token, &enrolment(signer)).await;
    r.assert_status(201).clone()
}

async fn approve(w: &World, request: &Value) -> Reply {
    let path = format!("{}/approve", request_path(id(request)));
    w.app.post(&path, &w.admin, &json!({})).await
}

async fn reject(w: &World, request: &Value, reason: &str) -> Reply {
    let path = format!("{}/reject", request_path(id(request)));
    w.app
        .post(&path, &w.admin, &json!({ "reason": reason }))
        .await
}

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(id).collect()
}

async fn a_browser_key_once_approved_signs_results_that_are_accepted(app: TestApp) {
    let w = World::new(app).await;
    let browser = Signer::new("staff.a-browser-1", "ES256");
    let request = requested(&w, &w.staff, &browser).await;
    assert_eq!(request["kid"], "staff.a-browser-1");
    assert_eq!(request["alg"], "ES256");
    assert_eq!(request["hall_id"], w.hall_a.as_str());
    assert_eq!(request["username"], "staff.a");
    assert_eq!(request["state"], "pending");
    assert_eq!(request["public_key_pem"], browser.public_pem().as_str());
    assert!(request["requested_at"]
        .as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
    for member in ["decided_by", "decided_at", "reason"] {
        assert_eq!(request[member], Value::Null, "{member}");
    }
    // The request is where Location says.
    let r = w
        .app
        .post(
            DEVICE_KEYS,
            &w.staff,
            &enrolment(&Signer::new("other", "EdDSA")),
        )
        .await;
    let location = r.header("location").expect("Location");
    assert_eq!(location, request_path(id(&r.body)));
    let read = w.app.get(&location, &w.staff).await;
    assert_eq!(read.assert_status(200)["state"], "pending");

    // Pending, the key signs nothing the service accepts.
    let order = w.claimed_order().await;
    let early = browser.sign(&w.payload(&order, "match"));
    w.submit(&order, &early).await.problem(UnknownKey);

    // The admin finds it among the pending requests, newest first, and approves it.
    let pending = w
        .app
        .get(&format!("{DEVICE_KEYS}?state=pending"), &w.admin)
        .await
        .items();
    assert_eq!(ids(&pending)[1], id(&request));
    let approved = approve(&w, &request).await;
    let approved = approved.assert_status(200);
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["decided_by"], "admin");
    assert!(approved["decided_at"].is_string());
    assert_eq!(approved["reason"], Value::Null);
    let mine = w.app.get(DEVICE_KEYS, &w.staff).await.items();
    let listed = mine
        .iter()
        .find(|r| r["id"] == request["id"])
        .expect("listed");
    assert_eq!(listed["state"], "approved");

    // Now it is one of hall A's keys: a result it signs is accepted.
    let jws = browser.sign(&w.payload(&order, "match"));
    let submitted = w.submit(&order, &jws).await;
    let verification = &submitted.assert_status(201)["verification"];
    assert_eq!(verification["kid"], "staff.a-browser-1");
    assert_eq!(verification["alg"], "ES256");
    assert_eq!(verification["signature_valid"], true);

    // Audited: the request, the hall key registered by the admin, the approval.
    let asked = w.audit_events("action=device_key.requested").await;
    let asked = asked
        .iter()
        .find(|e| e["detail"]["kid"] == "staff.a-browser-1");
    let asked = asked.expect("device_key.requested");
    assert_eq!(asked["actor"], "staff.a");
    assert_eq!(asked["detail"]["request_id"], request["id"]);
    assert_eq!(asked["detail"]["hall_id"], w.hall_a.as_str());
    let registered = w.audit_events("action=hall_key.registered").await;
    let registered = registered
        .iter()
        .find(|e| e["detail"]["kid"] == "staff.a-browser-1")
        .expect("hall_key.registered");
    assert_eq!(registered["actor"], "admin");
    let done = w.audit_events("action=device_key.approved").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["actor"], "admin");
    assert_eq!(done[0]["detail"]["request_id"], request["id"]);
    assert_eq!(done[0]["detail"]["kid"], "staff.a-browser-1");
    assert_eq!(done[0]["detail"]["hall_id"], w.hall_a.as_str());
    assert!(registered["seq"].as_i64() < done[0]["seq"].as_i64());
}

async fn a_rejected_request_registers_nothing_and_frees_its_kid(app: TestApp) {
    let w = World::new(app).await;
    let browser = Signer::new("staff.a-laptop", "ES256");
    let request = requested(&w, &w.staff, &browser).await;
    let r = reject(&w, &request, "  不是登记过的工位设备 ").await;
    let rejected = r.assert_status(200);
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["reason"], "不是登记过的工位设备");
    assert_eq!(rejected["decided_by"], "admin");
    assert!(rejected["decided_at"].is_string());
    // Nothing was registered: a result signed with it is unknown_key.
    let order = w.claimed_order().await;
    let jws = browser.sign(&w.payload(&order, "match"));
    w.submit(&order, &jws).await.problem(UnknownKey);
    // The trail says who rejected it, not why (free text stays with the request).
    let events = w.audit_events("action=device_key.rejected").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"], "admin");
    assert_eq!(events[0]["detail"]["kid"], "staff.a-laptop");
    assert!(!events[0].to_string().contains("工位设备"), "{}", events[0]);
    let registered = w.audit_events("action=hall_key.registered").await;
    assert!(!registered
        .iter()
        .any(|e| e["detail"]["kid"] == "staff.a-laptop"));
    // A rejected request holds its kid no longer: the staff member may ask again.
    let again = requested(&w, &w.staff, &browser).await;
    assert_eq!(again["state"], "pending");
    let rejected_ones = w
        .app
        .get(&format!("{DEVICE_KEYS}?state=rejected"), &w.staff)
        .await
        .items();
    assert_eq!(ids(&rejected_ones), [id(&request)]);
}

async fn staff_see_their_own_requests_and_admins_see_all(app: TestApp) {
    let w = World::new(app).await;
    let a = requested(&w, &w.staff, &Signer::new("a-1", "ES256")).await;
    let b = requested(&w, &w.staff_other_hall, &Signer::new("b-1", "EdDSA")).await;
    let a2 = requested(&w, &w.staff, &Signer::new("a-2", "ES256")).await;
    let all = w.app.get(DEVICE_KEYS, &w.admin).await.items();
    assert_eq!(ids(&all), [id(&a2), id(&b), id(&a)], "newest first");
    let of_b = w
        .app
        .get(&format!("{DEVICE_KEYS}?hall_id={}", w.hall_b), &w.admin)
        .await
        .items();
    assert_eq!(ids(&of_b), [id(&b)]);
    let mine = w.app.get(DEVICE_KEYS, &w.staff).await.items();
    assert_eq!(ids(&mine), [id(&a2), id(&a)]);
    // A colleague of the same hall sees none of them, and reads them as absent.
    let theirs = w.app.get(DEVICE_KEYS, &w.staff_same_hall).await.items();
    assert!(theirs.is_empty(), "{theirs:?}");
    w.app
        .answers(
            NotFound,
            [
                get(request_path(id(&a))).by(&w.staff_same_hall),
                get(request_path(id(&a))).by(&w.staff_other_hall),
                get(request_path("no-such-request")).by(&w.admin),
            ],
        )
        .await;
    let read = w.app.get(&request_path(id(&b)), &w.admin).await;
    assert_eq!(read.assert_status(200)["username"], "staff.b");
}

async fn approving_for_a_deactivated_hall_answers_as_hall_key_registration(app: TestApp) {
    let w = World::new(app).await;
    let request = requested(&w, &w.staff, &Signer::new("a-deact", "ES256")).await;
    // Registering a key for a deactivated hall is allowed (its staff finish what they hold):
    // so is approving one.
    let hall = format!("/api/v1/halls/{}/deactivate", w.hall_a);
    w.app
        .post(&hall, &w.admin, &json!({}))
        .await
        .assert_status(200);
    let direct = Signer::new("a-direct", "EdDSA");
    w.app.register_key(&w.admin, &w.hall_a, &direct).await;
    assert_eq!(
        approve(&w, &request).await.assert_status(200)["state"],
        "approved"
    );
    // A kid the admin registered meanwhile: the approval answers as registration would
    // (409), and the request stays pending, to be rejected.
    let late = Signer::new("a-late", "ES256");
    let pending = requested(&w, &w.staff, &late).await;
    w.app.register_key(&w.admin, &w.hall_b, &late).await;
    approve(&w, &pending).await.problem(AlreadyExists).at("kid");
    let read = w.app.get(&request_path(id(&pending)), &w.staff).await;
    assert_eq!(read.assert_status(200)["state"], "pending");
    let approvals = w.audit_events("action=device_key.approved").await;
    assert_eq!(approvals.len(), 1, "the refused approval left no event");
}

/// Every refusal of the enrolment endpoints, with its status and code, in the contract's
/// order where several things are wrong.
async fn bad_enrolments_answer_with_their_codes(app: TestApp) {
    let w = World::new(app).await;
    let browser = Signer::new("staff.a-browser", "ES256");
    let body = enrolment(&browser);
    let with = |key: &str, value: Value| {
        let mut b = body.clone();
        b[key] = value;
        b
    };
    // 400: malformed, unknown member, missing member, wrong type; before the role (403).
    let mut missing = body.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("public_key_pem");
    for token in [&w.staff, &w.clerk] {
        w.app
            .answers(
                InvalidRequest,
                [
                    post(DEVICE_KEYS).by(token).json_bytes("{\"kid\": "),
                    post(DEVICE_KEYS)
                        .by(token)
                        .json(&with("device", json!("x"))),
                    post(DEVICE_KEYS).by(token).json(&missing),
                    post(DEVICE_KEYS).by(token).json(&with("alg", json!(256))),
                ],
            )
            .await;
    }
    w.app
        .answers(
            Unauthenticated,
            [post(DEVICE_KEYS).json(&body), get(DEVICE_KEYS)],
        )
        .await;
    w.app
        .answers(
            UnsupportedMediaType,
            [post(DEVICE_KEYS)
                .by(&w.staff)
                .bytes(Some("text/plain"), body.to_string())],
        )
        .await;
    // 403: only hall staff enrol, only admins decide; clerks and auditors read nothing.
    w.app
        .answers(
            Forbidden,
            [
                post(DEVICE_KEYS).by(&w.clerk).json(&body),
                post(DEVICE_KEYS).by(&w.admin).json(&body),
                post(DEVICE_KEYS).by(&w.auditor).json(&body),
                get(DEVICE_KEYS).by(&w.clerk),
                get(request_path("no-such-request")).by(&w.auditor),
                post(format!("{}/approve", request_path("no-such-request"))).by(&w.staff),
                post(format!("{}/reject", request_path("no-such-request")))
                    .by(&w.staff)
                    .json(&json!({ "reason": "x" })),
            ],
        )
        .await;
    // 422 invalid_key: not PEM, not a public key of `alg`, an unknown `alg`.
    let ed_pem = Signer::new("ed", "EdDSA").public_pem();
    let cases = [
        (with("public_key_pem", json!("not a key")), "public_key_pem"),
        (with("public_key_pem", json!(ed_pem)), "public_key_pem"),
        (with("alg", json!("RS256")), "alg"),
    ];
    for (bad, field) in cases {
        w.app
            .answers_at(
                InvalidKey,
                field,
                [post(DEVICE_KEYS).by(&w.staff).json(&bad)],
            )
            .await;
    }
    w.app
        .answers_at(
            InvalidField,
            "kid",
            [post(DEVICE_KEYS)
                .by(&w.staff)
                .json(&with("kid", json!("  ")))],
        )
        .await;
    // 409: a kid of a registered hall key (any hall's) or of a live request; 409 before 422.
    let held = requested(&w, &w.staff_other_hall, &Signer::new("held", "ES256")).await;
    assert_eq!(held["state"], "pending");
    w.app
        .answers_at(
            AlreadyExists,
            "kid",
            [
                post(DEVICE_KEYS)
                    .by(&w.staff)
                    .json(&with("kid", json!("hall-a-2026"))),
                post(DEVICE_KEYS)
                    .by(&w.staff)
                    .json(&with("kid", json!("held"))),
                post(DEVICE_KEYS).by(&w.staff).json(&json!({
                    "kid": "held", "alg": "RS256", "public_key_pem": "not a key",
                })),
            ],
        )
        .await;
    // Decisions: unknown id 404; a decided request 409, before a bad reason (422); a
    // pending one with an empty reason 422.
    let request = requested(&w, &w.staff, &browser).await;
    let approve_path = format!("{}/approve", request_path(id(&request)));
    let reject_path = format!("{}/reject", request_path(id(&request)));
    w.app
        .answers_at(
            InvalidField,
            "reason",
            [post(&reject_path)
                .by(&w.admin)
                .json(&json!({ "reason": " " }))],
        )
        .await;
    w.app
        .answers(
            InvalidRequest,
            [
                post(&reject_path).by(&w.admin).json(&json!({})),
                post(&approve_path)
                    .by(&w.admin)
                    .json(&json!({ "reason": "x" })),
            ],
        )
        .await;
    w.app
        .answers(
            NotFound,
            [
                post(format!("{}/approve", request_path("no-such-request"))).by(&w.admin),
                post(format!("{}/reject", request_path("no-such-request")))
                    .by(&w.admin)
                    .json(&json!({ "reason": "x" })),
            ],
        )
        .await;
    approve(&w, &request).await.assert_status(200);
    w.app
        .answers(
            InvalidState,
            [
                post(&approve_path).by(&w.admin),
                post(&approve_path).by(&w.admin).json(&json!({})),
                post(&reject_path)
                    .by(&w.admin)
                    .json(&json!({ "reason": "x" })),
                post(&reject_path)
                    .by(&w.admin)
                    .json(&json!({ "reason": "" })),
            ],
        )
        .await;
    // The approved kid is now a hall key's: asking for it again is 409.
    w.app
        .answers_at(
            AlreadyExists,
            "kid",
            [post(DEVICE_KEYS).by(&w.staff).json(&body)],
        )
        .await;
    // Queries: an unknown state or parameter is 400, judged before the role.
    w.app
        .answers(
            InvalidRequest,
            [
                get(format!("{DEVICE_KEYS}?state=approve")).by(&w.admin),
                get(format!("{DEVICE_KEYS}?state=nope")).by(&w.clerk),
                get(format!("{DEVICE_KEYS}?kid=x")).by(&w.admin),
            ],
        )
        .await;
    // No method but the documented ones.
    w.app
        .answers(
            MethodNotAllowed,
            [call("DELETE", request_path(id(&request))).by(&w.admin)],
        )
        .await;
}

provokes!(PROVOKED {
    InvalidKey => [bad_enrolments_answer_with_their_codes],
    AlreadyExists => [approving_for_a_deactivated_hall_answers_as_hall_key_registration],
    NotFound => [staff_see_their_own_requests_and_admins_see_all],
    UnknownKey => [a_rejected_request_registers_nothing_and_frees_its_kid],
});

on_both_backends!(a_browser_key_once_approved_signs_results_that_are_accepted);
