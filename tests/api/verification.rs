//! The hall's signed result: every check of the contract, in its order, each with its code; every
//! refusal audited as `work_order.result_rejected` and leaving the order claimed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::ErrorCode::{self, *};
use crate::helpers::{now_secs, post, Reply, Signer, TestApp, World, ID_NUMBER, NAME};
use crate::{on_both_backends, provokes};

/// The claim a refusal names, whether written `wo` or `result.wo` (the body's `result` member
/// holds the JWS; the contract's example writes the payload path, `document.number`).
fn payload_field(r: &Reply) -> &str {
    let field = r.body["field"].as_str().unwrap_or("");
    field.strip_prefix("result.").unwrap_or(field)
}

fn id(order: &Value) -> &str {
    order["id"].as_str().expect("order id")
}

/// A result for `order` signed with hall A's key, with the claims at these paths (`document.number`)
/// set to these values.
fn signed(w: &World, order: &Value, outcome: &str, claims: &[(&str, Value)]) -> String {
    let mut payload = w.payload(order, outcome);
    for (path, value) in claims {
        let at = path.split('.').fold(&mut payload, |at, key| &mut at[key]);
        *at = value.clone();
    }
    w.signer.sign(&payload)
}

/// Replaces the payload of a signed JWS, keeping its header and signature.
fn with_payload(jws: &str, payload: &Value) -> String {
    let parts: Vec<&str> = jws.split('.').collect();
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
    format!("{}.{p}.{}", parts[0], parts[2])
}

/// An unsigned-by-a-key JWS: header and payload as given, signature bytes as given.
fn assemble(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

async fn events_of(w: &World, order: &Value) -> Vec<Value> {
    let r = w
        .app
        .get(
            &format!("/api/v1/work-orders/{}/events", id(order)),
            &w.auditor,
        )
        .await;
    r.items()
}

/// No `work_order.result_rejected` event was written for the order.
async fn assert_nothing_rejected(w: &World, order: &Value) {
    let actions: Vec<Value> = events_of(w, order)
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(
        !actions.contains(&json!("work_order.result_rejected")),
        "{actions:?}"
    );
}

/// Submits the result as hall A's `staff.a`, expects a 422 with `code`, and checks the refusal
/// left its trace (see `refused_by`).
async fn refused(w: &World, order: &Value, jws: &str, code: ErrorCode) -> Reply {
    refused_by(w, (&w.staff, "staff.a"), order, jws, code).await
}

/// As `refused`, for a result of `outcome` with these claims set (see `signed`).
async fn refused_with(
    w: &World,
    order: &Value,
    outcome: &str,
    claims: &[(&str, Value)],
    code: ErrorCode,
) -> Reply {
    refused(w, order, &signed(w, order, outcome, claims), code).await
}

/// Submits a result of `outcome` with these claims set (see `signed`); it must be accepted.
async fn accepted_with(w: &World, order: &Value, outcome: &str, claims: &[(&str, Value)]) -> Value {
    let r = w.submit(order, &signed(w, order, outcome, claims)).await;
    r.assert_status(201).clone()
}

/// Submits the result as `staff`, expects a 422 with `code`, and checks the refusal left its
/// trace: a `work_order.result_rejected` event whose `detail.code` is `code`, and the order
/// still `claimed` by the same staff member, with no verification and an unchanged version.
async fn refused_by(
    w: &World,
    staff: (&str, &str),
    order: &Value,
    jws: &str,
    code: ErrorCode,
) -> Reply {
    let (token, username) = staff;
    let before = events_of(w, order).await.len();
    let path = format!("/api/v1/work-orders/{}/verification", id(order));
    let r = w.app.post(&path, token, &json!({ "result": jws })).await;
    r.problem(code);
    let events = events_of(w, order).await;
    assert_eq!(events.len(), before + 1, "one event per refused result");
    let last = events.last().unwrap();
    assert_eq!(last["action"], "work_order.result_rejected", "{last}");
    assert_eq!(last["detail"]["code"], code.as_str(), "{last}");
    assert_eq!(last["actor"], username);
    assert_eq!(last["work_order"], id(order));
    let text = last.to_string();
    assert!(
        !text.contains(ID_NUMBER) && !text.contains(NAME),
        "personal data in {text}"
    );
    let now = w
        .app
        .get(&format!("/api/v1/work-orders/{}", id(order)), token)
        .await;
    let now = now.assert_status(200);
    assert_eq!(now["state"], "claimed");
    assert_eq!(now["claimed_by"], username);
    assert_eq!(now["verification"], Value::Null);
    assert_eq!(
        now["version"], order["version"],
        "a refusal changes nothing"
    );
    r
}

// ---------------------------------------------------------------------------------------
// 1. unknown_key

async fn a_kid_of_another_halls_key_is_unknown_key(app: TestApp) {
    let w = World::new(app).await;
    let hall_b_key = Signer::new("hall-b-2026", "EdDSA");
    w.app.register_key(&w.admin, &w.hall_b, &hall_b_key).await;
    let order = w.claimed_order().await;
    refused(
        &w,
        &order,
        &hall_b_key.sign(&w.payload(&order, "match")),
        UnknownKey,
    )
    .await;
    // A kid nobody registered.
    let stranger = Signer::new("never-registered", "EdDSA");
    refused(
        &w,
        &order,
        &stranger.sign(&w.payload(&order, "match")),
        UnknownKey,
    )
    .await;
    // The service's own receipt key is no hall's key.
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    let service_kid = jwks.assert_status(200)["keys"][0]["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let header = json!({"alg": "EdDSA", "kid": service_kid, "typ": "JWT"});
    let jws = w
        .signer
        .sign_with_header(&header, &w.payload(&order, "match"));
    refused(&w, &order, &jws, UnknownKey).await;
}

async fn an_unknown_kid_answers_before_a_malformed_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let jws = w.signer.sign_with_header(
        &json!({"alg": "EdDSA", "kid": "nobody", "typ": "JWT"}),
        &w.payload(&order, "match"),
    );
    let unsigned = format!("{}.", jws.rsplit_once('.').unwrap().0);
    refused(&w, &order, &unsigned, UnknownKey).await;
}

async fn a_result_without_a_kid_is_unknown_key(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let payload = w.payload(&order, "match");
    let jws = w
        .signer
        .sign_with_header(&json!({"alg": "EdDSA", "typ": "JWT"}), &payload);
    refused(&w, &order, &jws, UnknownKey).await;
    let jws = w
        .signer
        .sign_with_header(&json!({"alg": "EdDSA", "kid": null}), &payload);
    refused(&w, &order, &jws, UnknownKey).await;
}

// ---------------------------------------------------------------------------------------
// 2. revoked_key

/// Revokes hall A's key. That also ends its staff's tokens (tests/api/tokens.rs), so the
/// claiming staff member logs in again, as a terminal would, before submitting.
async fn revoke(w: &mut World) -> i64 {
    let path = format!("/api/v1/halls/{}/keys/{}/revoke", w.hall_a, w.signer.kid);
    let r = w.app.post(&path, &w.admin, &json!({})).await;
    let at = r.assert_status(200)["revoked_at"]
        .as_str()
        .expect("revoked_at")
        .to_owned();
    w.staff = w.app.token("staff.a").await;
    chrono::DateTime::parse_from_rfc3339(&at)
        .expect("RFC 3339")
        .timestamp()
}

async fn a_result_signed_at_or_after_revocation_is_revoked_key(app: TestApp) {
    let mut w = World::new(app).await;
    let order = w.claimed_order().await;
    let revoked_at = revoke(&mut w).await;
    let mut payload = w.payload(&order, "match");
    payload["iat"] = json!(revoked_at);
    refused(&w, &order, &w.signer.sign(&payload), RevokedKey).await;
    payload["iat"] = json!(now_secs());
    refused(&w, &order, &w.signer.sign(&payload), RevokedKey).await;
    // Revocation is checked before the signature.
    let tampered = with_payload(&w.signer.sign(&payload), &w.payload(&order, "mismatch"));
    refused(&w, &order, &tampered, RevokedKey).await;
    // The hall registers a new key and carries on.
    let fresh = Signer::new("hall-a-2027", "ES256");
    w.app.register_key(&w.admin, &w.hall_a, &fresh).await;
    let r = w
        .submit(&order, &fresh.sign(&w.payload(&order, "match")))
        .await;
    assert_eq!(r.assert_status(201)["verification"]["kid"], "hall-a-2027");
}

async fn a_result_signed_before_revocation_still_passes(app: TestApp) {
    let mut w = World::new(app).await;
    let early = w.claimed_order().await;
    let mut payload = w.payload(&early, "match");
    payload["iat"] = json!(now_secs() - 10);
    let early_jws = w.signer.sign(&payload);
    let last_second = w.claimed_order().await;
    let revoked_at = revoke(&mut w).await;
    let r = w.submit(&early, &early_jws).await;
    assert_eq!(r.assert_status(201)["state"], "submitted");
    assert_eq!(r.body["verification"]["kid"], w.signer.kid.as_str());
    // Whole seconds: one second before the revocation still verifies.
    accepted_with(&w, &last_second, "match", &[("iat", json!(revoked_at - 1))]).await;
}

// ---------------------------------------------------------------------------------------
// 3. bad_signature

async fn a_tampered_payload_is_bad_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let signed = w.signer.sign(&w.payload(&order, "mismatch"));
    refused(
        &w,
        &order,
        &with_payload(&signed, &w.payload(&order, "match")),
        BadSignature,
    )
    .await;
    // A signature cut short or flipped.
    let (input, sig) = signed.rsplit_once('.').unwrap();
    refused(
        &w,
        &order,
        &format!("{input}.{}", &sig[..sig.len() - 4]),
        BadSignature,
    )
    .await;
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[0] ^= 0x01;
    refused(
        &w,
        &order,
        &format!("{input}.{}", URL_SAFE_NO_PAD.encode(raw)),
        BadSignature,
    )
    .await;
    // The header is signed too.
    let other_header = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"kid": w.signer.kid, "alg": "EdDSA"})).unwrap());
    let (_, rest) = signed.split_once('.').unwrap();
    refused(&w, &order, &format!("{other_header}.{rest}"), BadSignature).await;
}

async fn a_signature_by_another_key_with_the_same_kid_is_bad_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let impostor = Signer::new(&w.signer.kid, "EdDSA");
    refused(
        &w,
        &order,
        &impostor.sign(&w.payload(&order, "match")),
        BadSignature,
    )
    .await;
    // A key the header carries along is never trusted.
    let pem = impostor.public_pem();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let raw = URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let header = json!({"alg": "EdDSA", "kid": w.signer.kid, "typ": "JWT",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": raw}, "x5u": "https://evil.example/key"});
    let jws = impostor.sign_with_header(&header, &w.payload(&order, "match"));
    refused(&w, &order, &jws, BadSignature).await;
}

async fn alg_none_and_hs256_are_bad_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let payload = w.payload(&order, "match");
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "kid": w.signer.kid, "typ": "JWT"});
        refused(&w, &order, &assemble(&header, &payload, b""), BadSignature).await;
    }
    // HS256 keyed with the hall's public key, the classic confusion; and with nothing.
    let header = json!({"alg": "HS256", "kid": w.signer.kid, "typ": "JWT"});
    let unsigned = assemble(&header, &payload, b"");
    let input = unsigned.trim_end_matches('.');
    for secret in [w.signer.public_pem().into_bytes(), vec![]] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let jws = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        refused(&w, &order, &jws, BadSignature).await;
    }
    // The same payload, properly signed, passes.
    w.submit(&order, &w.signer.sign(&payload))
        .await
        .assert_status(201);
}

async fn an_alg_other_than_the_registered_keys_is_bad_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let payload = w.payload(&order, "match");
    // The EdDSA key's real signature, under a header that says ES256.
    let header = json!({"alg": "ES256", "kid": w.signer.kid, "typ": "JWT"});
    refused(
        &w,
        &order,
        &w.signer.sign_with_header(&header, &payload),
        BadSignature,
    )
    .await;
    // And the reverse: an ES256 key, a header that says EdDSA.
    let es = Signer::new("hall-a-es256", "ES256");
    w.app.register_key(&w.admin, &w.hall_a, &es).await;
    let header = json!({"alg": "EdDSA", "kid": es.kid, "typ": "JWT"});
    refused(
        &w,
        &order,
        &es.sign_with_header(&header, &payload),
        BadSignature,
    )
    .await;
    for alg in ["RS256", "ES384", "eddsa", "Ed25519"] {
        let header = json!({"alg": alg, "kid": w.signer.kid, "typ": "JWT"});
        refused(
            &w,
            &order,
            &w.signer.sign_with_header(&header, &payload),
            BadSignature,
        )
        .await;
    }
}

async fn a_malformed_jws_is_bad_signature(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let good = w.signer.sign(&w.payload(&order, "match"));
    let parts: Vec<&str> = good.split('.').collect();
    let not_json = URL_SAFE_NO_PAD.encode(b"not json");
    let cases = [
        "abc".to_owned(),
        "a.b".to_owned(),
        "a.b.c".to_owned(),
        format!("{good}.{}", parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{not_json}.{}.{}", parts[1], parts[2]),
        format!("{}.!!!.{}", parts[0], parts[2]),
        format!("{}.{}.!!!", parts[0], parts[1]),
        " ".to_owned(),
    ];
    for jws in &cases {
        refused(&w, &order, jws, BadSignature).await;
    }
}

// ---------------------------------------------------------------------------------------
// 4. claims_mismatch

async fn claims_that_disagree_with_the_order_are_claims_mismatch(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let other = w.claimed_order().await;
    let cases = [
        ("wo", json!(id(&other))),
        ("hall", json!(w.hall_b)),
        ("staff", json!("staff.a2")),
        ("msisdn", json!(other["msisdn"])),
        ("msisdn", json!("13800138000")),
        ("msisdn", json!("not a number")),
    ];
    for (claim, value) in cases {
        let mut payload = w.payload(&order, "match");
        payload[claim] = value;
        let r = refused(&w, &order, &w.signer.sign(&payload), ClaimsMismatch).await;
        assert_eq!(payload_field(&r), claim, "{}", r.body);
    }
    // The number may be written any way the contract accepts it.
    w.submit(
        &order,
        &signed(
            &w,
            &order,
            "match",
            &[(
                "msisdn",
                json!(format!("+86 {}", order["msisdn"].as_str().unwrap())),
            )],
        ),
    )
    .await
    .assert_status(201);
}

// ---------------------------------------------------------------------------------------
// 5. stale_result

async fn a_result_older_or_newer_than_the_skew_is_stale_result(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    // 305 rather than 301 s ahead: the server's clock reads a second or so later than ours
    // by the time it checks, which shrinks a future skew (and only grows a past one).
    for iat in [now_secs() - 301, now_secs() + 305, now_secs() - 86_400, 0] {
        let r = refused_with(&w, &order, "match", &[("iat", json!(iat))], StaleResult).await;
        assert_eq!(payload_field(&r), "iat", "{}", r.body);
    }
    // Within the skew either way passes.
    accepted_with(&w, &order, "mismatch", &[("iat", json!(now_secs() - 290))]).await;
    let ahead = w.claimed_order().await;
    accepted_with(&w, &ahead, "mismatch", &[("iat", json!(now_secs() + 290))]).await;
}

// ---------------------------------------------------------------------------------------
// 6. replayed_result

async fn a_result_submitted_again_after_a_return_is_replayed_result(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let jws = w.signer.sign(&w.payload(&order, "mismatch"));
    w.submit(&order, &jws).await.assert_status(201);
    let r = w
        .app
        .post(
            &format!("/api/v1/work-orders/{}/return", id(&order)),
            &w.clerk,
            &json!({"reason": "照片模糊"}),
        )
        .await;
    let returned = r.assert_status(200).clone();
    assert_eq!(returned["state"], "claimed");
    let r = refused(&w, &returned, &jws, ReplayedResult).await;
    assert_eq!(payload_field(&r), "jti", "{}", r.body);
    // A new result with the old jti is a replay too, whatever else it says.
    let used_jti = serde_json::from_slice::<Value>(
        &URL_SAFE_NO_PAD
            .decode(jws.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()["jti"]
        .clone();
    refused_with(
        &w,
        &returned,
        "match",
        &[("jti", used_jti.clone())],
        ReplayedResult,
    )
    .await;
    // ...even on another order.
    let other = w.claimed_order().await;
    let mut payload = w.payload(&other, "match");
    payload["jti"] = used_jti;
    refused(&w, &other, &w.signer.sign(&payload), ReplayedResult).await;
    // A fresh result is accepted.
    w.submit(&returned, &w.signer.sign(&w.payload(&returned, "match")))
        .await
        .assert_status(201);
}

// ---------------------------------------------------------------------------------------
// 7. the document, then the name

async fn a_bad_check_character_is_invalid_id_number(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    // The outcome is a mismatch: the document is judged whatever the outcome, and a mismatch
    // needs no evidence files.
    for number in [
        "110105194912310021",
        "11010519491231002Y",
        "11010519491231002",
        "1101051949123100200",
        "110105194913310025",
    ] {
        let mut payload = w.payload(&order, "mismatch");
        payload["document"]["number"] = json!(number);
        let r = refused(&w, &order, &w.signer.sign(&payload), InvalidIdNumber).await;
        assert_eq!(payload_field(&r), "document.number", "{}", r.body);
    }
    // The valid number passes.
    let payload = w.payload(&order, "mismatch");
    w.submit(&order, &w.signer.sign(&payload))
        .await
        .assert_status(201);
}

/// Not in the contract's list ("invalid_id_number, …"): a document invalid for other reasons.
async fn an_expired_or_unknown_document_is_invalid_document(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let expired = signed(
        &w,
        &order,
        "match",
        &[("document.valid_until", json!("2020-01-01"))],
    );
    let unknown = signed(
        &w,
        &order,
        "mismatch",
        &[("document.type", json!("library_card"))],
    );
    for jws in [expired, unknown] {
        refused(&w, &order, &jws, InvalidDocument).await;
    }
}

/// Not in the contract's list: a signed payload that is not a verification result.
async fn a_payload_that_is_not_a_result_is_invalid_result(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let mut without_jti = w.payload(&order, "match");
    without_jti.as_object_mut().unwrap().remove("jti");
    let not_results = [
        signed(&w, &order, "match", &[("outcome", json!("probably"))]),
        w.signer.sign(&without_jti),
        signed(&w, &order, "match", &[("document", Value::Null)]),
    ];
    for jws in &not_results {
        refused(&w, &order, jws, InvalidResult).await;
    }
    // A document of the wrong shape is refused without echoing what it held.
    let wrong_shape = signed(
        &w,
        &order,
        "match",
        &[("document", json!("53010219900101123X 张三"))],
    );
    let r = refused(&w, &order, &wrong_shape, InvalidResult).await;
    assert_eq!(r.body["field"], "document");
    assert!(
        !String::from_utf8_lossy(&r.raw).contains("53010219900101123X"),
        "{}",
        r.body
    );
    let en = w
        .app
        .raw(
            "POST",
            &format!(
                "/api/v1/work-orders/{}/verification",
                order["id"].as_str().unwrap()
            ),
            Some(&w.staff),
            &[
                ("Content-Type", "application/json"),
                ("Accept-Language", "en"),
            ],
            Some(serde_json::to_vec(&json!({ "result": wrong_shape })).unwrap()),
        )
        .await;
    en.problem(InvalidResult);
    assert!(
        !String::from_utf8_lossy(&en.raw).contains("张三"),
        "{}",
        en.body
    );
    // A no-show needs no document.
    let r = w
        .submit(
            &order,
            &signed(&w, &order, "no_show", &[("document", Value::Null)]),
        )
        .await;
    assert_eq!(
        r.assert_status(201)["verification"]["document"],
        Value::Null
    );
}

async fn a_match_with_another_name_is_name_mismatch(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let r = refused_with(
        &w,
        &order,
        "match",
        &[("document.name", json!("李四"))],
        NameMismatch,
    )
    .await;
    assert_eq!(payload_field(&r), "document.name", "{}", r.body);
    assert!(
        !r.raw
            .windows("李四".len())
            .any(|win| win == "李四".as_bytes()),
        "the problem echoes the name"
    );
    // A mismatch may name anyone: that is what it reports.
    accepted_with(&w, &order, "mismatch", &[("document.name", json!("李四"))]).await;
}

async fn completing_a_mismatch_is_outcome_not_match(app: TestApp) {
    let w = World::new(app).await;
    for outcome in ["mismatch", "no_show", "document_invalid"] {
        let order = w.submitted_order(outcome).await;
        let r = w
            .app
            .post(
                &format!("/api/v1/work-orders/{}/complete", id(&order)),
                &w.clerk,
                &json!({}),
            )
            .await;
        r.problem(OutcomeNotMatch);
        let now = w
            .app
            .get(&format!("/api/v1/work-orders/{}", id(&order)), &w.clerk)
            .await;
        let now = now.assert_status(200);
        assert_eq!(now["state"], "submitted");
        assert_eq!(now["receipt"], Value::Null);
        let sub = w
            .app
            .get(
                &format!("/api/v1/subscribers/{}", order["msisdn"].as_str().unwrap()),
                &w.clerk,
            )
            .await;
        assert_eq!(sub.assert_status(200)["real_name_status"], "unverified");
    }
}

// ---------------------------------------------------------------------------------------
// The order of the checks, and who may submit

async fn checks_answer_in_the_contracts_order(app: TestApp) {
    let w = World::new(app).await;
    let done = w.submitted_order("mismatch").await;
    let used_jti = done["verification"]["jti"].clone();
    let order = w.claimed_order().await;
    let stranger = Signer::new("never-registered", "EdDSA");
    let fault = |f: &dyn Fn(&mut Value)| {
        let mut p = w.payload(&order, "match");
        f(&mut p);
        p
    };
    // unknown_key before bad_signature: an unknown kid and a broken signature.
    let jws = with_payload(
        &stranger.sign(&fault(&|_| {})),
        &fault(&|p| p["outcome"] = json!("mismatch")),
    );
    refused(&w, &order, &jws, UnknownKey).await;
    // bad_signature before claims_mismatch, stale_result and the rest.
    let everything_wrong = fault(&|p| {
        p["wo"] = json!("someone else's");
        p["iat"] = json!(0);
        p["jti"] = used_jti.clone();
        p["document"]["number"] = json!("110105194912310021");
    });
    let jws = with_payload(&w.signer.sign(&fault(&|_| {})), &everything_wrong);
    refused(&w, &order, &jws, BadSignature).await;
    // claims_mismatch before stale_result.
    let jws = w.signer.sign(&fault(&|p| {
        p["staff"] = json!("staff.a2");
        p["iat"] = json!(0);
    }));
    refused(&w, &order, &jws, ClaimsMismatch).await;
    // stale_result before replayed_result.
    let jws = w.signer.sign(&fault(&|p| {
        p["iat"] = json!(now_secs() - 3600);
        p["jti"] = used_jti.clone();
    }));
    refused(&w, &order, &jws, StaleResult).await;
    // replayed_result before the document.
    let jws = w.signer.sign(&fault(&|p| {
        p["jti"] = used_jti.clone();
        p["document"]["number"] = json!("110105194912310021");
    }));
    refused(&w, &order, &jws, ReplayedResult).await;
    // invalid_id_number before name_mismatch.
    let jws = w.signer.sign(&fault(&|p| {
        p["document"]["number"] = json!("110105194912310021");
        p["document"]["name"] = json!("李四");
    }));
    refused(&w, &order, &jws, InvalidIdNumber).await;
}

async fn only_the_claiming_staff_member_submits(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let jws = w.signer.sign(&w.payload(&order, "match"));
    let path = format!("/api/v1/work-orders/{}/verification", id(&order));
    let submit = |token: &str| post(&path).by(token).json(&json!({ "result": jws }));
    let rows = [&w.staff_same_hall, &w.clerk, &w.auditor].map(|t| submit(t));
    w.app.answers(Forbidden, rows).await;
    // Outside the order's scope: not found.
    w.app.answers(NotFound, [submit(&w.staff_other_hall)]).await;
    // Not a refused result: nothing rejected was recorded, and the claimer still can.
    assert_nothing_rejected(&w, &order).await;
    w.submit(&order, &jws).await.assert_status(201);
    // Once submitted, the same staff member cannot submit again.
    let again = w.signer.sign(&w.payload(&order, "match"));
    w.submit(&order, &again).await.problem(InvalidState);
}

async fn a_pool_order_takes_the_claiming_halls_key_and_id(app: TestApp) {
    let w = World::new(app).await;
    let hall_b_key = Signer::new("hall-b-2026", "ES256");
    w.app.register_key(&w.admin, &w.hall_b, &hall_b_key).await;
    let order = w.open_order_to(None).await;
    let claim = format!("/api/v1/work-orders/{}/claim", id(&order));
    let r = w.app.post(&claim, &w.staff_other_hall, &json!({})).await;
    let order = r.assert_status(200).clone();
    w.upload_required_by(&order, &w.staff_other_hall).await;
    let staff_b = (w.staff_other_hall.as_str(), "staff.b");
    let mut payload = w.payload(&order, "match");
    payload["staff"] = json!("staff.b");
    // Hall A's key, though hall A serves the same city: not a key of the claiming hall.
    refused_by(&w, staff_b, &order, &w.signer.sign(&payload), UnknownKey).await;
    // Hall B's key, but the result names hall A.
    let r = refused_by(
        &w,
        staff_b,
        &order,
        &hall_b_key.sign(&payload),
        ClaimsMismatch,
    )
    .await;
    assert_eq!(payload_field(&r), "hall", "{}", r.body);
    payload["hall"] = json!(w.hall_b);
    let r = w
        .app
        .post(
            &format!("/api/v1/work-orders/{}/verification", id(&order)),
            &w.staff_other_hall,
            &json!({"result": hall_b_key.sign(&payload)}),
        )
        .await;
    assert_eq!(r.assert_status(201)["verification"]["kid"], "hall-b-2026");
}

async fn a_submission_body_that_is_not_one_jws_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let path = format!("/api/v1/work-orders/{}/verification", id(&order));
    let jws = w.signer.sign(&w.payload(&order, "match"));
    let bodies = [
        json!({}),
        json!({"result": 5}),
        json!({"result": [jws]}),
        json!({"result": jws, "evidence": []}),
    ];
    let rows = bodies.map(|body| post(&path).by(&w.staff).json(&body));
    w.app.answers(InvalidRequest, rows).await;
    // Malformed requests are no refused results, and change nothing.
    assert_nothing_rejected(&w, &order).await;
    w.submit(&order, &jws).await.assert_status(201);
}

/// The contract's problem example names the claim at fault by its path in the payload:
/// `{"code": "invalid_id_number", …, "field": "document.number"}`.
async fn a_refused_results_field_is_its_path_in_the_payload(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let r = refused_with(
        &w,
        &order,
        "mismatch",
        &[("document.number", json!("110105194912310021"))],
        InvalidIdNumber,
    )
    .await;
    assert_eq!(r.body["field"], "document.number");
    let r = refused_with(
        &w,
        &order,
        "match",
        &[("wo", json!("another order"))],
        ClaimsMismatch,
    )
    .await;
    assert_eq!(r.body["field"], "wo");
}

// ---------------------------------------------------------------------------------------
// End to end, and what is kept

async fn es256_and_eddsa_keys_both_work_end_to_end(app: TestApp) {
    let w = World::new(app).await;
    let es = Signer::new("hall-a-es256", "ES256");
    w.app.register_key(&w.admin, &w.hall_a, &es).await;
    for signer in [&es, &w.signer] {
        let order = w.claimed_order().await;
        let jws = signer.sign(&w.payload(&order, "match"));
        let r = w.submit(&order, &jws).await;
        let v = &r.assert_status(201)["verification"];
        assert_eq!(
            (v["alg"].as_str(), v["kid"].as_str()),
            (Some(signer.alg), Some(signer.kid.as_str()))
        );
        assert_eq!(v["signature_valid"], true);
        let done = w
            .app
            .post(
                &format!("/api/v1/work-orders/{}/complete", id(&order)),
                &w.clerk,
                &json!({}),
            )
            .await;
        let done = done.assert_status(200);
        assert_eq!(done["state"], "completed");
        let jwks = w.app.get_anon("/.well-known/jwks.json").await;
        let claims =
            crate::lifecycle::verify_with_jwks(done["receipt"].as_str().unwrap(), &jwks.body);
        assert_eq!(
            claims["result_sha256"],
            crossprov::domain::sha256_hex(jws.as_bytes())
        );
        assert_eq!(claims["wo"], id(&order));
    }
}

async fn the_stored_verification_shows_masked_document_fields_only(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let payload = w.payload(&order, "match");
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    let submitted = r.assert_status(201).clone();
    let expected = json!({"type": "resident_id", "number": "110105********002X", "name": "张*"});
    let path = format!("/api/v1/work-orders/{}", id(&order));
    for (who, token) in [
        ("staff", &w.staff),
        ("clerk", &w.clerk),
        ("auditor", &w.auditor),
    ] {
        let seen = w.app.get(&path, token).await;
        let v = seen.assert_status(200)["verification"].clone();
        assert_eq!(v["document"], expected, "as {who}");
        assert!(v["document"].get("valid_until").is_none(), "as {who}: {v}");
        let text = v.to_string();
        assert!(
            !text.contains(ID_NUMBER) && !text.contains(NAME),
            "as {who}: {text}"
        );
        assert_eq!(v["outcome"], "match");
        assert_eq!(v["method"], payload["method"]);
        assert_eq!(v["evidence"], payload["evidence"]);
        assert_eq!(v["iat"], payload["iat"], "seconds, as in the JWS");
        assert_eq!(v["jti"], payload["jti"]);
        assert_eq!(v["staff"], "staff.a");
        assert!(v["submitted_at"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
        // The list shows it the same way.
        let list = w.app.get("/api/v1/work-orders", token).await;
        let item = list.items().into_iter().find(|o| o["id"] == id(&order));
        assert_eq!(
            item.expect("listed")["verification"]["document"],
            expected,
            "as {who}"
        );
    }
    assert_eq!(submitted["verification"]["document"], expected);
    // Nor does the trail hold the document.
    let all = w
        .app
        .get("/api/v1/audit/events?limit=1000", &w.auditor)
        .await;
    let text = all.assert_status(200).to_string();
    assert!(!text.contains(ID_NUMBER), "the ID number is in the trail");
}

// The table: each scenario under the code it provokes.
provokes!(PROVOKED {
    UnknownKey => [
        a_kid_of_another_halls_key_is_unknown_key,
        a_result_without_a_kid_is_unknown_key,
        an_unknown_kid_answers_before_a_malformed_signature,
    ],
    RevokedKey => [a_result_signed_at_or_after_revocation_is_revoked_key],
    BadSignature => [
        a_tampered_payload_is_bad_signature,
        a_signature_by_another_key_with_the_same_kid_is_bad_signature,
        alg_none_and_hs256_are_bad_signature,
        an_alg_other_than_the_registered_keys_is_bad_signature,
        a_malformed_jws_is_bad_signature,
    ],
    ClaimsMismatch => [
        claims_that_disagree_with_the_order_are_claims_mismatch,
        a_pool_order_takes_the_claiming_halls_key_and_id,
    ],
    StaleResult => [a_result_older_or_newer_than_the_skew_is_stale_result],
    ReplayedResult => [a_result_submitted_again_after_a_return_is_replayed_result],
    InvalidIdNumber => [
        a_bad_check_character_is_invalid_id_number,
        a_refused_results_field_is_its_path_in_the_payload,
        checks_answer_in_the_contracts_order,
    ],
    InvalidDocument => [an_expired_or_unknown_document_is_invalid_document],
    InvalidResult => [a_payload_that_is_not_a_result_is_invalid_result],
    NameMismatch => [a_match_with_another_name_is_name_mismatch],
    OutcomeNotMatch => [completing_a_mismatch_is_outcome_not_match],
    Forbidden => [only_the_claiming_staff_member_submits],
    InvalidRequest => [a_submission_body_that_is_not_one_jws_is_invalid_request],
});

on_both_backends!(
    a_result_signed_before_revocation_still_passes,
    es256_and_eddsa_keys_both_work_end_to_end,
    the_stored_verification_shows_masked_document_fields_only,
);
