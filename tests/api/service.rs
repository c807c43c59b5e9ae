//! Service endpoints an operator and outside tools rely on.

use crate::helpers::ErrorCode::*;
use crate::helpers::{get, TestApp, World};
use crate::on_both_backends;

async fn health_readiness_metrics_and_openapi_answer(app: TestApp) {
    let w = World::new(app).await;
    w.open_order().await;
    assert_eq!(w.app.get_anon("/healthz").await.status, 200);
    assert_eq!(w.app.get_anon("/readyz").await.status, 200);
    let metrics = w.app.get_anon("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.raw).unwrap();
    assert!(text.contains("crossprov_http_requests_total{method=\"POST\",route=\"/api/v1/work-orders\",status=\"201\"}"), "{text}");
    assert!(text.contains("crossprov_http_request_duration_seconds_bucket"));
    let doc = w.app.get_anon("/api/v1/openapi.json").await;
    let paths = doc.assert_status(200)["paths"].as_object().unwrap().clone();
    for p in [
        "/api/v1/work-orders",
        "/api/v1/work-orders/{id}/verification",
        "/api/v1/audit/verify",
        "/api/v1/auth/token",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    let keys = jwks.assert_status(200)["keys"].as_array().unwrap().clone();
    assert!(!keys.is_empty());
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "public keys only"
    );
}

async fn unknown_paths_and_methods_answer_problems(app: TestApp) {
    let admin = app.admin().await;
    app.get("/api/v1/nothing-here", &admin)
        .await
        .problem(NotFound);
    let r = app
        .raw("DELETE", "/api/v1/work-orders", Some(&admin), &[], None)
        .await;
    r.problem(MethodNotAllowed);
}

/// The router and the document come from the same registrations: every documented operation
/// is routed (answered by its handler's checks, never the router's 404 or 405).
async fn every_operation_in_the_openapi_document_is_routed(app: TestApp) {
    let doc = app.get_anon("/api/v1/openapi.json").await;
    let paths = doc.assert_status(200)["paths"].as_object().unwrap().clone();
    let mut operations = 0;
    for (path, item) in &paths {
        let concrete = path.replace(['{', '}'], "");
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            // Routed, but 404 to everyone unless testing.movable_clock is on (tests/api/mail.rs).
            if path == "/api/v1/admin/clock" {
                continue;
            }
            let r = app
                .raw(&method.to_uppercase(), &concrete, None, &[], None)
                .await;
            assert!(
                ![404, 405].contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(operations, 52, "the contract's 29 operations and our 23");
}

async fn instances_sharing_a_database_accept_each_others_tokens_and_receipts(app: TestApp) {
    let w = World::new(app).await;
    let second = w.app.another_instance();
    // A token issued by the first instance works on the second, and the other way round.
    let me = second.get("/api/v1/me", &w.clerk).await;
    assert_eq!(me.assert_status(200)["username"], "clerk.yn");
    let token = second.token("staff.a").await;
    w.app.get("/api/v1/me", &token).await.assert_status(200);
    // An order completed on the second instance has a receipt the first instance's JWKS verifies.
    let order = w.submitted_order("match").await;
    let id = order["id"].as_str().unwrap();
    let done = second
        .act(id, "complete", &w.clerk, &serde_json::json!({}))
        .await;
    let receipt = done.assert_status(200)["receipt"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = w.app.get_anon("/.well-known/jwks.json").await;
    assert_eq!(
        jwks.body["keys"].as_array().unwrap().len(),
        2,
        "both instances' keys are published"
    );
    crate::lifecycle::verify_with_jwks(&receipt, &jwks.body);
}

async fn reference_data_lists_provinces_and_halls_by_place(app: TestApp) {
    let w = World::new(app).await;
    let provinces = w.app.get("/api/v1/provinces", &w.staff).await;
    let items = provinces.items();
    assert_eq!(items.len(), 34);
    let yunnan = items.iter().find(|p| p["code"] == "53").unwrap();
    assert_eq!(yunnan["name"], "云南省");
    let jinan = w
        .app
        .get("/api/v1/halls?province=37&city=370100", &w.clerk)
        .await;
    assert_eq!(jinan.items().len(), 2);
    let qingdao = w.app.get("/api/v1/halls?city=370200", &w.clerk).await;
    assert_eq!(qingdao.items().len(), 0);
    w.app
        .get_anon("/api/v1/provinces")
        .await
        .problem(Unauthenticated);
}

async fn every_reply_carries_a_request_id_and_reads_refuse_stray_bodies(app: TestApp) {
    let admin = app.admin().await;
    let r = app.get("/api/v1/me", &admin).await;
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let list = |content_type: &str, body: &[u8]| {
        get("/api/v1/work-orders")
            .by(&admin)
            .bytes(Some(content_type), body)
    };
    let plain = list("text/plain", b"hello");
    app.answers(UnsupportedMediaType, [plain]).await;
    let json = list("application/json", br#"{"x":1}"#);
    app.answers(InvalidRequest, [json]).await;
    let empty = list("application/json", b"{}");
    app.call(&empty).await.assert_status(200);
    // A hall needs an email: new orders are announced there.
    let body = serde_json::json!({"code": "QD-9", "name": "青岛", "province": "37", "city": "370200", "address": "x"});
    let r = app.post("/api/v1/halls", &admin, &body).await;
    r.problem(InvalidRequest);
    assert_eq!(r.body["field"], "email");
}

on_both_backends!(
    every_reply_carries_a_request_id_and_reads_refuse_stray_bodies,
    reference_data_lists_provinces_and_halls_by_place,
    health_readiness_metrics_and_openapi_answer,
    unknown_paths_and_methods_answer_problems,
    every_operation_in_the_openapi_document_is_routed,
    instances_sharing_a_database_accept_each_others_tokens_and_receipts,
);
