//! The whole life cycle of an order, as a clerk, a hall and an auditor live it.

use serde_json::json;

use crate::helpers::ErrorCode::*;
use crate::helpers::{TestApp, World, ID_NUMBER, NAME};
use crate::on_both_backends;

async fn a_matched_order_completes_with_a_verifiable_receipt(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    assert_eq!(order["state"], "open");
    assert_eq!(order["version"], 1);
    assert_eq!(order["home_province"], "53");
    assert_eq!(order["expected_name"], NAME, "the home clerk sees the name");
    assert!(
        order["msisdn"].as_str().unwrap().len() == 11,
        "normalised to 11 digits"
    );
    let reference = order["reference"].as_str().unwrap();
    assert!(
        reference.starts_with("53-") && reference.ends_with("-000001"),
        "{reference}"
    );
    let id = order["id"].as_str().unwrap();

    // The hall sees it, masked.
    let seen = w
        .app
        .get(&format!("/api/v1/work-orders/{id}"), &w.staff)
        .await;
    assert_eq!(seen.assert_status(200)["expected_name"], "张*");
    assert_eq!(seen.header("etag").as_deref(), Some("\"1\""));

    let claimed = w.app.act(id, "claim", &w.staff, &json!({})).await;
    let claimed = claimed.assert_status(200);
    assert_eq!(claimed["state"], "claimed");
    assert_eq!(claimed["claimed_by"], "staff.a");
    w.upload_required(claimed).await;

    let jws = w.signer.sign(&w.payload(claimed, "match"));
    let submitted = w.submit(claimed, &jws).await;
    let submitted = submitted.assert_status(201);
    assert_eq!(submitted["state"], "submitted");
    let v = &submitted["verification"];
    assert_eq!(v["outcome"], "match");
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["kid"], "hall-a-2026");
    assert_eq!(v["alg"], "EdDSA");
    assert_eq!(v["staff"], "staff.a");
    assert_eq!(v["document"]["number"], "110105********002X");
    assert_eq!(v["document"]["name"], "张*");

    let done = w.app.act(id, "complete", &w.clerk, &json!({})).await;
    let done = done.assert_status(200);
    assert_eq!(done["state"], "completed");
    let receipt = done["receipt"].as_str().expect("receipt");

    // The receipt verifies against the published JWKS and names this result.
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    let claims = verify_with_jwks(receipt, &jwks.body);
    assert_eq!(claims["wo"], id);
    assert_eq!(claims["reference"], reference);
    assert_eq!(claims["outcome"], "match");
    assert_eq!(claims["completed_by"], "clerk.yn");
    assert_eq!(claims["iss"], "crossprov");
    assert!(claims.get("exp").is_none());
    assert_eq!(
        claims["result_sha256"],
        crossprov::domain::sha256_hex(jws.as_bytes())
    );

    // The subscriber is now verified, shown masked.
    let msisdn = order["msisdn"].as_str().unwrap();
    let sub = w
        .app
        .get(&format!("/api/v1/subscribers/{msisdn}"), &w.clerk)
        .await;
    let sub = sub.assert_status(200);
    assert_eq!(sub["real_name_status"], "verified");
    assert_eq!(sub["document"]["number"], "110105********002X");
    assert_eq!(sub["work_order"]["reference"], reference);
    assert!(!sub.to_string().contains(ID_NUMBER));

    // Every step is in the order's history, oldest first, chained.
    let events = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/events"), &w.auditor)
        .await;
    let items = events.items();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "work_order.opened",
            "work_order.claimed",
            "evidence.uploaded",
            "evidence.uploaded",
            "evidence.uploaded",
            "work_order.result_submitted",
            "work_order.completed"
        ]
    );
    let all = w
        .app
        .get("/api/v1/audit/events?limit=1000", &w.auditor)
        .await;
    let text = all.assert_status(200).to_string();
    assert!(
        !text.contains(ID_NUMBER) && !text.contains(NAME),
        "no personal data in the trail"
    );
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.assert_status(200)["ok"], true);
}

/// Checks a compact JWS against a JWKS with an independent verifier (ring, not the service).
pub fn verify_with_jwks(jws: &str, jwks: &serde_json::Value) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    match header["alg"].as_str().unwrap() {
        "EdDSA" => {
            let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x)
                .verify(input.as_bytes(), &sig)
                .expect("receipt signature verifies");
        }
        "ES256" => {
            let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
            let y = URL_SAFE_NO_PAD.decode(key["y"].as_str().unwrap()).unwrap();
            let point = [&[4u8][..], &x, &y].concat();
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(input.as_bytes(), &sig)
            .expect("receipt signature verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

async fn release_return_fail_cancel_and_reroute_follow_the_life_cycle(app: TestApp) {
    let w = World::new(app).await;
    // release: back to open, anyone of the hall may claim again.
    let order = w.claimed_order().await;
    let id = order["id"].as_str().unwrap();
    let r = w
        .app
        .act(id, "release", &w.staff, &json!({"reason": "用户未到场"}))
        .await;
    assert_eq!(r.assert_status(200)["state"], "open");
    assert_eq!(r.body["claimed_by"], serde_json::Value::Null);
    let r = w.app.act(id, "claim", &w.staff_same_hall, &json!({})).await;
    assert_eq!(r.assert_status(200)["claimed_by"], "staff.a2");
    // cancel from claimed.
    let r = w
        .app
        .act(id, "cancel", &w.clerk, &json!({"reason": "用户撤回"}))
        .await;
    assert_eq!(r.assert_status(200)["state"], "cancelled");

    // return: back to the same staff member, awaiting a new result; then fail.
    let order = w.submitted_order("mismatch").await;
    let id = order["id"].as_str().unwrap();
    let r = w.app.act(id, "complete", &w.clerk, &json!({})).await;
    r.problem(OutcomeNotMatch);
    let r = w
        .app
        .act(id, "return", &w.clerk, &json!({"reason": "照片模糊"}))
        .await;
    let returned = r.assert_status(200);
    assert_eq!(returned["state"], "claimed");
    assert_eq!(returned["claimed_by"], "staff.a");
    assert_eq!(returned["verification"], serde_json::Value::Null);
    let jws = w.signer.sign(&w.payload(returned, "mismatch"));
    w.submit(returned, &jws).await.assert_status(201);
    let r = w
        .app
        .act(id, "fail", &w.clerk, &json!({"reason": "人证不一致"}))
        .await;
    assert_eq!(r.assert_status(200)["state"], "failed");
    // A finished order frees the number for a new one.
    let again = json!({"msisdn": order["msisdn"], "target_province": "37", "target_city": "370100", "reason": "再次办理"});
    w.app
        .post("/api/v1/work-orders", &w.clerk, &again)
        .await
        .assert_status(201);

    // reroute an open order to another city's pool.
    let order = w.open_order().await;
    let id = order["id"].as_str().unwrap();
    let body = json!({"target_province": "37", "target_city": "370200", "reason": "用户搬到青岛"});
    let r = w.app.act(id, "reroute", &w.clerk, &body).await;
    let r = r.assert_status(200);
    assert_eq!(
        (r["state"].as_str(), r["target_city"].as_str()),
        (Some("open"), Some("370200"))
    );
    assert_eq!(r["target_hall_id"], serde_json::Value::Null);
    // Jinan's halls no longer see it.
    w.app
        .get(&format!("/api/v1/work-orders/{id}"), &w.staff)
        .await
        .problem(NotFound);
}

async fn two_staff_claiming_at_once_exactly_one_wins(app: TestApp) {
    let w = World::new(app).await;
    for _ in 0..3 {
        let order = w.open_order().await;
        let path = format!(
            "/api/v1/work-orders/{}/claim",
            order["id"].as_str().unwrap()
        );
        let empty = json!({});
        let claims = [&w.staff, &w.staff_same_hall, &w.staff, &w.staff_same_hall]
            .map(|t| w.app.post(&path, t, &empty));
        let replies = futures_util::future::join_all(claims).await;
        let won = replies.iter().filter(|r| r.status == 200).count();
        assert_eq!(won, 1, "exactly one claim wins");
        for r in replies.iter().filter(|r| r.status != 200) {
            r.problem(InvalidState);
        }
    }
}

async fn a_stale_if_match_is_refused_and_a_current_one_accepted(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let path = format!(
        "/api/v1/work-orders/{}/claim",
        order["id"].as_str().unwrap()
    );
    w.app
        .post_if_match(&path, &w.staff, "\"7\"", &json!({}))
        .await
        .problem(VersionConflict);
    let r = w
        .app
        .post_if_match(&path, &w.staff, "\"1\"", &json!({}))
        .await;
    assert_eq!(r.assert_status(200)["version"], 2);
    assert_eq!(r.header("etag").as_deref(), Some("\"2\""));
}

async fn lists_are_scoped_filtered_and_paged(app: TestApp) {
    let w = World::new(app).await;
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(w.open_order().await["id"].as_str().unwrap().to_owned());
    }
    w.open_order_to(Some(&w.hall_b)).await;
    // The clerk pages through all six, two at a time.
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/work-orders?limit=2&cursor={c}"),
            None => "/api/v1/work-orders?limit=2".to_owned(),
        };
        let page = w.app.get(&path, &w.clerk).await;
        let page = page.assert_status(200);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    // Sorted by due time, then by deadline, one at a time: the same six, each time never
    // earlier than the one before.
    for key in ["due_at", "deadline_at"] {
        let mut times = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/work-orders?sort={key}&limit=1&cursor={c}"),
                None => format!("/api/v1/work-orders?sort={key}&limit=1"),
            };
            let page = w.app.get(&path, &w.clerk).await;
            let page = page.assert_status(200);
            for o in page["items"].as_array().unwrap() {
                let at = chrono::DateTime::parse_from_rfc3339(o[key].as_str().unwrap()).unwrap();
                times.push((at, o["id"].as_str().unwrap().to_owned()));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(times.len(), 6, "{key}");
        assert!(times.windows(2).all(|p| p[0] <= p[1]), "{key}: {times:?}");
    }
    let bad = w.app.get("/api/v1/work-orders?sort=due", &w.clerk).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "invalid_request");
    assert_eq!(bad.body["field"], "sort");
    // Hall A's staff see hall A's five; hall B's staff one; another province's clerk none.
    let a = w.app.get("/api/v1/work-orders", &w.staff).await;
    assert_eq!(a.items().len(), 5);
    let b = w.app.get("/api/v1/work-orders", &w.staff_other_hall).await;
    assert_eq!(b.items().len(), 1);
    let other = w.app.get("/api/v1/work-orders", &w.other_clerk).await;
    assert_eq!(other.items().len(), 0);
    // Filters.
    let claimed = w
        .app
        .post(
            &format!("/api/v1/work-orders/{}/claim", ids[0]),
            &w.staff,
            &json!({}),
        )
        .await;
    let msisdn = claimed.assert_status(200)["msisdn"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_state = w
        .app
        .get("/api/v1/work-orders?state=claimed", &w.auditor)
        .await;
    assert_eq!(by_state.items().len(), 1);
    let by_number = w
        .app
        .get(&format!("/api/v1/work-orders?msisdn=86{msisdn}"), &w.clerk)
        .await;
    assert_eq!(
        by_number.assert_status(200)["items"][0]["id"],
        ids[0].as_str()
    );
    let by_hall = w
        .app
        .get(
            &format!("/api/v1/work-orders?hall_id={}", w.hall_b),
            &w.auditor,
        )
        .await;
    assert_eq!(by_hall.items().len(), 1);
    w.app
        .get("/api/v1/work-orders?limit=201", &w.clerk)
        .await
        .problem(InvalidRequest);
}

async fn an_order_for_a_city_pool_reaches_every_hall_of_the_city(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order_to(None).await;
    let id = order["id"].as_str().unwrap();
    w.app
        .get(&format!("/api/v1/work-orders/{id}"), &w.staff_other_hall)
        .await
        .assert_status(200);
    w.app
        .act(id, "claim", &w.staff_other_hall, &json!({}))
        .await
        .assert_status(200);
    // Claimed by hall B: hall A's staff may still see the pool order but not act on it.
    w.app
        .act(id, "release", &w.staff, &json!({"reason": "x"}))
        .await
        .problem(Forbidden);
}

async fn the_province_that_completes_a_registration_holds_the_record(app: TestApp) {
    let w = World::new(app).await;
    // Yunnan opens an order for the number and cancels it; Beijing then registers it.
    let order = w.open_order().await;
    let id = order["id"].as_str().unwrap();
    w.app
        .act(id, "cancel", &w.clerk, &json!({"reason": "号码不属本省"}))
        .await
        .assert_status(200);
    let msisdn = order["msisdn"].as_str().unwrap();
    let body = json!({"msisdn": msisdn, "target_province": "37", "target_city": "370100", "target_hall_id": w.hall_a, "reason": "用户常住济南"});
    let bj = w
        .app
        .post("/api/v1/work-orders", &w.other_clerk, &body)
        .await
        .assert_status(201)
        .clone();
    let bj_id = bj["id"].as_str().unwrap();
    let claimed = w
        .app
        .act(bj_id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200)
        .clone();
    w.upload_required(&claimed).await;
    let jws = w.signer.sign(&w.payload(&claimed, "match"));
    w.submit(&claimed, &jws).await.assert_status(201);
    w.app
        .act(bj_id, "complete", &w.other_clerk, &json!({}))
        .await
        .assert_status(200);
    let sub = w
        .app
        .get(&format!("/api/v1/subscribers/{msisdn}"), &w.other_clerk)
        .await;
    let sub = sub.assert_status(200);
    assert_eq!(
        (
            sub["home_province"].as_str(),
            sub["real_name_status"].as_str()
        ),
        (Some("11"), Some("verified"))
    );
    w.app
        .get(&format!("/api/v1/subscribers/{msisdn}"), &w.clerk)
        .await
        .problem(NotFound);
}

/// Writers racing: every concurrent open gets its own reference, and concurrent identical
/// uploads are one file (on PostgreSQL the chain lock is taken only at the append).
async fn concurrent_opens_and_uploads_stay_consistent(app: TestApp) {
    let w = World::new(app).await;
    let opens = (0..8).map(|_| w.open_order());
    let orders = futures_util::future::join_all(opens).await;
    let mut refs: Vec<String> = orders
        .iter()
        .map(|o| o["reference"].as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 8, "every reference is its own: {refs:?}");

    let order = w.claimed_order().await;
    let id = order["id"].as_str().unwrap();
    let bytes = b"%PDF-1.7 the same form".to_vec();
    let uploads = (0..4).map(|_| {
        w.app.upload(
            id,
            "registration_form",
            "application/pdf",
            bytes.clone(),
            &w.staff,
        )
    });
    let replies = futures_util::future::join_all(uploads).await;
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body, replies[0].body, "the same object");
    }
    let list = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/evidence"), &w.staff)
        .await;
    let forms = list
        .items()
        .into_iter()
        .filter(|f| f["kind"] == "registration_form")
        .count();
    assert_eq!(forms, 1);
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.assert_status(200)["ok"], true);
}

on_both_backends!(
    concurrent_opens_and_uploads_stay_consistent,
    the_province_that_completes_a_registration_holds_the_record,
    a_matched_order_completes_with_a_verifiable_receipt,
    release_return_fail_cancel_and_reroute_follow_the_life_cycle,
    two_staff_claiming_at_once_exactly_one_wins,
    a_stale_if_match_is_refused_and_a_current_one_accepted,
    lists_are_scoped_filtered_and_paged,
    an_order_for_a_city_pool_reaches_every_hall_of_the_city,
);
