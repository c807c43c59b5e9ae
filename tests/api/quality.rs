//! The quality checks of accepted results (each rule trips on a result built for it, none on
//! a clean one) and four-eyes completion of a flagged order.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::ErrorCode::*;
use crate::helpers::{
    eventually, evidence_entries, sample_jpeg, sha256_hex, Signer, TestApp, World, NAME,
    REQUIRED_KINDS,
};
use crate::smtp_sink::read_messages;
use crate::{on_both_backends, provokes};
use crossprov::config::Settings;

fn id(order: &Value) -> &str {
    order["id"].as_str().expect("order id")
}

/// The codes of the order's flags, in the order shown.
fn codes(order: &Value) -> Vec<String> {
    order["quality"]["flags"]
        .as_array()
        .map(|flags| {
            flags
                .iter()
                .map(|f| f["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Today in China, as documents count their validity.
fn cst_day(offset_days: i64) -> String {
    (Utc::now() + Duration::hours(8) + Duration::days(offset_days))
        .format("%Y-%m-%d")
        .to_string()
}

/// Claims to set in a payload: a path (`method.chip_read`) and its value.
type Claims<'a> = Vec<(&'a str, Value)>;

/// Hall A's result for `order` with the claims at these paths set to these values.
fn result_for(w: &World, order: &Value, outcome: &str, claims: &[(&str, Value)]) -> String {
    let mut payload = w.payload(order, outcome);
    for (path, value) in claims {
        let at = path.split('.').fold(&mut payload, |at, key| &mut at[key]);
        *at = value.clone();
    }
    w.signer.sign(&payload)
}

/// Submits and answers the order as the hall sees it (201).
async fn submitted(w: &World, order: &Value, outcome: &str, claims: &[(&str, Value)]) -> Value {
    let jws = result_for(w, order, outcome, claims);
    w.submit(order, &jws).await.assert_status(201).clone()
}

/// Opens an order for this number at hall A, claims it as staff.a, uploads nothing.
async fn claimed_for(w: &World, msisdn: &str) -> Value {
    let body = json!({
        "msisdn": msisdn, "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住", "expected_name": NAME,
    });
    let order = w
        .app
        .post("/api/v1/work-orders", &w.clerk, &body)
        .await
        .assert_status(201)
        .clone();
    w.app
        .act(id(&order), "claim", &w.staff, &json!({}))
        .await
        .assert_status(200)
        .clone()
}

/// Uploads to `order`, as staff.a, the required kinds with the bytes `bytes_of(kind)`.
async fn upload(w: &World, order: &Value, bytes_of: impl Fn(&str) -> Vec<u8>) {
    for kind in REQUIRED_KINDS {
        w.app
            .upload(id(order), kind, "image/jpeg", bytes_of(kind), &w.staff)
            .await
            .assert_status(201);
    }
}

/// A home-province clerk more, besides the opener `clerk.yn`.
async fn another_clerk(w: &World, name: &str) -> String {
    w.app
        .create_user(&w.admin, name, "clerk", Some("53"), None)
        .await
}

/// The opening clerk's `complete` completes the order, with no second approval.
async fn completes_at_once(w: &World, order: &Value) {
    let done = w
        .app
        .act(id(order), "complete", &w.clerk, &json!({}))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(done["state"], "completed");
    assert!(done["receipt"].as_str().is_some());
}

/// An order whose result raised a high flag (`face_match_low`): it needs four eyes.
async fn flagged_high(w: &World) -> Value {
    let order = w.claimed_order().await;
    let claims = [("method.face_match_score", json!(0.4))];
    submitted(w, &order, "match", &claims).await
}

async fn a_clean_result_raises_no_flag_and_completes_at_once(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    assert_eq!(order["quality"], Value::Null, "no result, no quality yet");
    let order = submitted(&w, &order, "match", &[]).await;
    assert_eq!(
        order["quality"],
        json!({"flags": [], "needs_second_approval": false, "approved_by": null})
    );
    let listed = |flagged: &'static str| {
        let app = &w.app;
        let clerk = &w.clerk;
        async move {
            app.get(&format!("/api/v1/work-orders?flagged={flagged}"), clerk)
                .await
                .items()
                .iter()
                .map(|o| o["id"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("false").await, [id(&order)]);
    assert!(listed("true").await.is_empty());
    completes_at_once(&w, &order).await;
    let flagged = w
        .audit_events(&format!(
            "work_order={}&action=work_order.flagged",
            id(&order)
        ))
        .await;
    assert!(flagged.is_empty());
}

async fn each_rule_of_the_result_itself_trips_alone(app: TestApp) {
    let w = World::new(app).await;
    let cases: Vec<(&str, &str, Claims)> = vec![
        (
            "face_match_low",
            "match",
            vec![("method.face_match_score", json!(0.55))],
        ),
        (
            "chip_not_read",
            "match",
            vec![("method.chip_read", json!(false))],
        ),
        (
            "operator_check_missing",
            "match",
            vec![("method.operator_checked", json!(false))],
        ),
        // A match on an expired document is refused outright; a mismatch is accepted.
        (
            "document_expired",
            "mismatch",
            vec![("document.valid_until", json!(cst_day(-10)))],
        ),
        (
            "document_expiring",
            "match",
            vec![("document.valid_until", json!(cst_day(5)))],
        ),
        (
            "name_variant",
            "match",
            vec![("document.name", json!("張 三"))],
        ),
    ];
    for (code, outcome, claims) in cases {
        let order = w.claimed_order().await;
        let order = submitted(&w, &order, outcome, &claims).await;
        assert_eq!(codes(&order), [code], "{claims:?}");
        let flag = &order["quality"]["flags"][0];
        assert!(["low", "medium", "high"].contains(&flag["severity"].as_str().unwrap_or("")));
        assert!(!flag["reason"]["zh"].as_str().unwrap_or("").is_empty());
        assert!(!flag["reason"]["en"].as_str().unwrap_or("").is_empty());
        let text = flag.to_string();
        assert!(!text.contains(NAME) && !text.contains("張"), "{text}");
    }
}

async fn evidence_used_before_and_a_live_photo_that_is_a_scan_trip_their_rules(app: TestApp) {
    let w = World::new(app).await;
    let msisdn = World::next_msisdn();
    let first = claimed_for(&w, &msisdn).await;
    let first_id = id(&first).to_owned();
    upload(&w, &first, |kind| sample_jpeg(&first_id, kind)).await;
    let first = submitted(&w, &first, "match", &[]).await;
    assert!(codes(&first).is_empty());
    w.app
        .act(&first_id, "fail", &w.clerk, &json!({"reason": "重新办理"}))
        .await
        .assert_status(200);

    // An order of this number with the first order's files, as its result names them.
    let with_first_files = |msisdn: String| {
        let (w, first_id) = (&w, first_id.clone());
        async move {
            let order = claimed_for(w, &msisdn).await;
            upload(w, &order, |kind| sample_jpeg(&first_id, kind)).await;
            let claims = [("evidence", evidence_entries(&first_id))];
            submitted(w, &order, "match", &claims).await
        }
    };
    let again = with_first_files(msisdn).await;
    assert_eq!(codes(&again), ["evidence_reused_same_subscriber"]);
    let other = with_first_files(World::next_msisdn()).await;
    assert_eq!(codes(&other), ["evidence_reused_other_subscriber"]);
    assert_eq!(other["quality"]["flags"][0]["severity"], "high");
    assert_eq!(other["quality"]["needs_second_approval"], true);

    // The live photo is the front scan's file.
    let photo = claimed_for(&w, &World::next_msisdn()).await;
    let photo_id = id(&photo).to_owned();
    let bytes = |kind: &str| {
        let kind = if kind == "live_photo" {
            "id_front"
        } else {
            kind
        };
        sample_jpeg(&photo_id, kind)
    };
    upload(&w, &photo, bytes).await;
    let evidence: Vec<Value> = REQUIRED_KINDS
        .iter()
        .map(|k| json!({"kind": k, "sha256": sha256_hex(&bytes(k))}))
        .collect();
    let photo = submitted(&w, &photo, "match", &[("evidence", json!(evidence))]).await;
    assert_eq!(codes(&photo), ["live_photo_is_id_scan"]);
}

/// Claims and results a few seconds apart on a clock the test moves: the speed rule at 120 s.
fn speed(s: &mut Settings) {
    s.testing.movable_clock = true;
    s.quality.min_seconds_claim_to_submit = 120;
}

async fn a_result_right_after_the_claim_is_flagged_and_one_later_is_not(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let iat = w.app.server_secs();
    let fast = submitted(&w, &order, "match", &[("iat", json!(iat))]).await;
    assert_eq!(codes(&fast), ["submitted_too_fast"]);
    assert_eq!(fast["quality"]["needs_second_approval"], false, "medium");

    let order = w.claimed_order().await;
    w.app.advance_clock(200);
    let iat = w.app.server_secs();
    let later = submitted(&w, &order, "match", &[("iat", json!(iat))]).await;
    assert!(codes(&later).is_empty(), "{later}");
}

/// Rates judged on 2 results, far at a difference over 0.3.
fn rates(s: &mut Settings) {
    s.quality.rate_min_results = 2;
    s.quality.rate_max_difference = 0.3;
}

/// A match on a new order routed to `hall`, claimed, uploaded and signed by its staff
/// member `staff` (logged in as `token`) with the hall's `signer`.
async fn match_by(w: &World, hall: &str, token: &str, staff: &str, signer: &Signer) -> Value {
    let order = w.open_order_to(Some(hall)).await;
    let order = w
        .app
        .act(id(&order), "claim", token, &json!({}))
        .await
        .assert_status(200)
        .clone();
    w.upload_required_by(&order, token).await;
    let mut payload = w.payload(&order, "match");
    payload["hall"] = json!(hall);
    payload["staff"] = json!(staff);
    let result = signer.sign(&payload);
    w.app
        .act(
            id(&order),
            "verification",
            token,
            &json!({ "result": result }),
        )
        .await
        .assert_status(201)
        .clone()
}

async fn a_staff_member_or_hall_far_from_its_provinces_rate_is_flagged(app: TestApp) {
    let w = World::new(app).await;
    // Hall B, of the same province, matches four times.
    let signer_b = Signer::new("hall-b-2026", "EdDSA");
    w.app.register_key(&w.admin, &w.hall_b, &signer_b).await;
    for _ in 0..4 {
        let order = match_by(&w, &w.hall_b, &w.staff_other_hall, "staff.b", &signer_b).await;
        assert!(codes(&order).is_empty());
    }
    // staff.a of hall A finds two mismatches.
    for _ in 0..2 {
        let order = w.claimed_order().await;
        submitted(&w, &order, "mismatch", &[]).await;
    }
    // staff.a2, new at hall A: too few results of their own, but the hall is far (1.0 vs 1/3).
    let order = match_by(&w, &w.hall_a, &w.staff_same_hall, "staff.a2", &w.signer).await;
    assert_eq!(codes(&order), ["hall_rate_outlier"]);
    // staff.a: both they and their hall are far (1.0 and 2/3 vs 2/7).
    let order = w.claimed_order().await;
    let order = submitted(&w, &order, "match", &[]).await;
    assert_eq!(codes(&order), ["staff_rate_outlier", "hall_rate_outlier"]);
}

async fn a_flagged_order_needs_two_different_clerks_and_refuses_self_approval(app: TestApp) {
    let w = World::new(app).await;
    let first = another_clerk(&w, "clerk.yn2").await;
    let second = another_clerk(&w, "clerk.yn3").await;
    let order = flagged_high(&w).await;
    let oid = id(&order).to_owned();
    assert_eq!(order["state"], "submitted");
    assert_eq!(codes(&order), ["face_match_low"]);
    assert_eq!(order["quality"]["needs_second_approval"], true);

    // Listed as flagged; audited by code only.
    let flagged: Vec<Value> = w
        .app
        .get("/api/v1/work-orders?flagged=true", &w.clerk)
        .await
        .items();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["id"], oid.as_str());
    assert_eq!(flagged[0]["quality"]["flags"][0]["code"], "face_match_low");
    let events = w
        .audit_events(&format!("work_order={oid}&action=work_order.flagged"))
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["codes"], json!(["face_match_low"]));
    assert_eq!(events[0]["detail"]["needs_second_approval"], true);
    assert!(
        !events[0]["detail"].to_string().contains("阈值"),
        "codes, not reasons"
    );

    // The first clerk's complete approves.
    let approved = w
        .app
        .act(&oid, "complete", &first, &json!({}))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(approved["state"], "awaiting_second_approval");
    assert_eq!(approved["receipt"], Value::Null);
    assert_eq!(approved["quality"]["approved_by"], "clerk.yn2");
    // Neither the first approver again nor the opener may give the second approval.
    for refused in [&first, &w.clerk] {
        w.app
            .act(&oid, "complete", refused, &json!({}))
            .await
            .problem(SecondApproverRequired);
        w.app
            .act(&oid, "return", refused, &json!({"reason": "再看看"}))
            .await
            .problem(SecondApproverRequired);
    }
    w.app
        .act(&oid, "complete", &w.other_clerk, &json!({}))
        .await
        .problem(NotFound);
    // The number stays taken while the order waits.
    let body = json!({
        "msisdn": order["msisdn"], "target_province": "37", "target_city": "370100",
        "reason": "again",
    });
    w.app
        .post("/api/v1/work-orders", &w.clerk, &body)
        .await
        .problem(AlreadyExists);

    let done = w
        .app
        .act(&oid, "complete", &second, &json!({}))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(done["state"], "completed");
    assert!(done["receipt"].as_str().is_some());
    let actions: Vec<String> = w
        .audit_events(&format!("work_order={oid}"))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_owned())
        .filter(|a| a.starts_with("work_order."))
        .collect();
    assert_eq!(
        actions,
        [
            "work_order.opened",
            "work_order.claimed",
            "work_order.result_submitted",
            "work_order.flagged",
            "work_order.approved",
            "work_order.completed"
        ]
    );
}

async fn a_second_clerk_may_return_an_approved_order_which_clears_its_flags(app: TestApp) {
    let w = World::new(app).await;
    let second = another_clerk(&w, "clerk.yn2").await;
    let order = flagged_high(&w).await;
    let oid = id(&order).to_owned();
    w.app
        .act(&oid, "complete", &w.clerk, &json!({}))
        .await
        .assert_status(200);
    let returned = w
        .app
        .act(&oid, "return", &second, &json!({"reason": "照片模糊"}))
        .await
        .assert_status(200)
        .clone();
    assert_eq!(returned["state"], "claimed");
    assert_eq!(returned["quality"], Value::Null);
    let flagged = w
        .app
        .get("/api/v1/work-orders?flagged=true", &w.clerk)
        .await
        .items();
    assert!(flagged.is_empty());
    w.app
        .get("/api/v1/work-orders?flagged=maybe", &w.clerk)
        .await
        .problem(InvalidRequest)
        .at("flagged");
}

async fn a_flag_whose_severity_needs_no_second_clerk_completes_at_once(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let order = submitted(&w, &order, "match", &[("method.chip_read", json!(false))]).await;
    assert_eq!(codes(&order), ["chip_not_read"]);
    assert_eq!(order["quality"]["needs_second_approval"], false);
    completes_at_once(&w, &order).await;
}

async fn the_clerks_mail_lists_the_flags_with_their_reasons(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let order = submitted(
        &w,
        &order,
        "match",
        &[("method.operator_checked", json!(false))],
    )
    .await;
    let oid = id(&order).to_owned();
    let folder = w.app.dir.path().join("outbox");
    let mail = eventually(
        std::time::Duration::from_secs(30),
        "the submitted mail",
        || {
            let (folder, oid) = (folder.clone(), oid.clone());
            async move {
                read_messages(&folder)
                    .into_iter()
                    .find(|m| m.work_order == oid && m.event == "submitted")
                    .ok_or_else(|| "not yet".to_owned())
            }
        },
    )
    .await;
    assert!(
        mail.text
            .contains("质量标记：operator_check_missing（缺少营业员人工核对）"),
        "{}",
        mail.text
    );
    assert!(mail
        .text
        .contains("Quality flag: operator_check_missing (medium"));
    assert!(!mail.text.contains(NAME));
}

on_both_backends!(
    a_clean_result_raises_no_flag_and_completes_at_once,
    each_rule_of_the_result_itself_trips_alone,
    evidence_used_before_and_a_live_photo_that_is_a_scan_trip_their_rules,
    a_second_clerk_may_return_an_approved_order_which_clears_its_flags,
    a_flag_whose_severity_needs_no_second_clerk_completes_at_once,
    the_clerks_mail_lists_the_flags_with_their_reasons,
);
on_both_backends!(with speed: a_result_right_after_the_claim_is_flagged_and_one_later_is_not);
on_both_backends!(with rates: a_staff_member_or_hall_far_from_its_provinces_rate_is_flagged);

provokes!(PROVOKED {
    SecondApproverRequired => [a_flagged_order_needs_two_different_clerks_and_refuses_self_approval],
});
