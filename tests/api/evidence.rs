//! Evidence files: uploads typed by their bytes, scoped reads, the binding to the signed
//! result, integrity on download and offline, and S3-compatible storage.

use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::ErrorCode::*;
use crate::helpers::{
    evidence_entries, post, sample_jpeg, sha256_hex, spawn_app_with, Backend, Configure, TestApp,
    World,
};
use crate::{on_both_backends, provokes};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";
const PDF: &[u8] =
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("id").to_owned()
}

/// Where the `file` store keeps an order's object of a digest (sealed).
fn stored_file(app: &TestApp, order: &str, sha: &str) -> std::path::PathBuf {
    app.dir.path().join("evidence/v1").join(order).join(sha)
}

fn file_path(id: &str, sha: &str) -> String {
    format!("/api/v1/work-orders/{id}/evidence/{sha}")
}

async fn actions_of(w: &World, id: &str) -> Vec<String> {
    let events = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/events"), &w.auditor)
        .await;
    events
        .items()
        .into_iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn jpeg_png_and_pdf_travel_back_byte_identical_and_every_read_is_audited(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let files: [(&str, &str, Vec<u8>); 3] = [
        ("id_front", "image/jpeg", sample_jpeg(&id, "scan")),
        ("id_back", "image/png", PNG.to_vec()),
        ("registration_form", "application/pdf", PDF.to_vec()),
    ];
    for (kind, ct, bytes) in &files {
        let r = w.app.upload(&id, kind, ct, bytes.clone(), &w.staff).await;
        let v = r.assert_status(201);
        assert_eq!(v["kind"], *kind);
        assert_eq!(v["sha256"], sha256_hex(bytes));
        assert_eq!(v["size"], bytes.len());
        assert_eq!(v["content_type"], *ct);
        assert!(v["uploaded_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            r.header("location").unwrap(),
            file_path(&id, &sha256_hex(bytes))
        );
    }
    // Listed for everyone who sees the order: the staff, the home clerk, the auditor.
    for token in [&w.staff, &w.clerk, &w.auditor] {
        let list = w
            .app
            .get(&format!("/api/v1/work-orders/{id}/evidence"), token)
            .await;
        let items = list.items();
        // claimed_order uploaded the three required kinds too.
        assert_eq!(items.len(), 6);
    }

    // The home clerk reads each file back exactly, with its type.
    for (_, ct, bytes) in &files {
        let r = w
            .app
            .get(&file_path(&id, &sha256_hex(bytes)), &w.clerk)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.raw, *bytes, "byte-identical");
        assert_eq!(r.header("content-type").unwrap(), *ct);
        assert_eq!(r.header("content-length").unwrap(), bytes.len().to_string());
        assert_eq!(r.header("x-content-type-options").unwrap(), "nosniff");
    }
    // The auditor and any staff member of the claiming hall may read them too.
    let sha = sha256_hex(PNG);
    assert_eq!(
        w.app.get(&file_path(&id, &sha), &w.auditor).await.status,
        200
    );
    assert_eq!(
        w.app
            .get(&file_path(&id, &sha), &w.staff_same_hall)
            .await
            .status,
        200
    );

    let actions = actions_of(&w, &id).await;
    let uploaded = actions.iter().filter(|a| *a == "evidence.uploaded").count();
    let viewed = actions.iter().filter(|a| *a == "evidence.viewed").count();
    assert_eq!(uploaded, 6, "{actions:?}");
    assert_eq!(viewed, 5, "one event per read: {actions:?}");

    // The viewed event says which file and who, never more.
    let viewed = w
        .audit_events(&format!("work_order={id}&action=evidence.viewed"))
        .await;
    let first = &viewed[0];
    assert_eq!(first["actor"], "clerk.yn");
    assert_eq!(first["detail"]["kind"], "id_front");
    assert_eq!(
        first["detail"]["sha256"],
        sha256_hex(&sample_jpeg(&id, "scan"))
    );
}

async fn the_same_bytes_uploaded_twice_are_the_same_object(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let first = w
        .app
        .upload(&id, "other", "application/pdf", PDF.to_vec(), &w.staff)
        .await;
    let first = first.assert_status(201).clone();
    let again = w
        .app
        .upload(&id, "other", "application/pdf", PDF.to_vec(), &w.staff)
        .await;
    assert_eq!(again.assert_status(201), &first, "the same object");
    let list = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/evidence"), &w.staff)
        .await;
    let others: Vec<Value> = list
        .items()
        .into_iter()
        .filter(|f| f["kind"] == "other")
        .collect();
    assert_eq!(others.len(), 1);
    // Both uploads are in the trail.
    let actions = actions_of(&w, &id).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "evidence.uploaded").count(),
        5
    );
}

async fn a_mislabelled_or_unsupported_file_is_415(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    // PNG bytes sent as a JPEG.
    let r = w
        .app
        .upload(&id, "id_front", "image/jpeg", PNG.to_vec(), &w.staff)
        .await;
    r.problem(UnsupportedMediaType);
    // A PDF label on text.
    let r = w
        .app
        .upload(&id, "other", "application/pdf", b"hello".to_vec(), &w.staff)
        .await;
    r.problem(UnsupportedMediaType);
    // A type the contract does not take, and JSON.
    for ct in ["image/gif", "application/json", "text/plain"] {
        let r = w
            .app
            .upload(&id, "other", ct, b"GIF89a....".to_vec(), &w.staff)
            .await;
        r.problem(UnsupportedMediaType);
    }
    // No Content-Type at all.
    let r = w
        .app
        .raw(
            "POST",
            &format!("/api/v1/work-orders/{id}/evidence?kind=other"),
            Some(&w.staff),
            &[],
            Some(PDF.to_vec()),
        )
        .await;
    r.problem(UnsupportedMediaType);
    // Nothing was recorded for the refused files.
    let list = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/evidence"), &w.staff)
        .await;
    assert_eq!(list.items().len(), 3);
}

async fn a_file_over_the_limit_is_413(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    // The default limit is 10 MiB.
    let mut big = sample_jpeg(&id, "big");
    big.resize(10 * 1024 * 1024 + 1, 0);
    let r = w
        .app
        .upload(&id, "live_photo", "image/jpeg", big, &w.staff)
        .await;
    r.problem(PayloadTooLarge);
    // Exactly at the limit is fine.
    let mut at_limit = sample_jpeg(&id, "limit");
    at_limit.resize(10 * 1024 * 1024, 7);
    let r = w
        .app
        .upload(&id, "live_photo", "image/jpeg", at_limit.clone(), &w.staff)
        .await;
    assert_eq!(r.assert_status(201)["size"], at_limit.len());
    let back = w
        .app
        .get(&file_path(&id, &sha256_hex(&at_limit)), &w.clerk)
        .await;
    assert_eq!(back.status, 200);
    assert!(back.raw == at_limit, "10 MiB back byte-identical");
}

async fn the_contract_refusal_order_and_bad_parameters(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let upload = |query: &str| post(format!("/api/v1/work-orders/{id}/evidence{query}"));
    // 401 without a token (the type and size are fine).
    let anonymous = upload("?kind=id_front").bytes(Some("image/png"), PNG);
    w.app.answers(Unauthenticated, [anonymous]).await;
    // 415 outranks 401.
    let as_text = upload("?kind=id_front").bytes(Some("text/plain"), PNG);
    w.app.answers(UnsupportedMediaType, [as_text]).await;
    // A missing or unknown kind is a bad request.
    let rows = ["", "?kind=selfie"].map(|q| upload(q).by(&w.staff).bytes(Some("image/png"), PNG));
    w.app.answers_at(InvalidRequest, "kind", rows).await;
    // A digest nobody uploaded to this order.
    let r = w.app.get(&file_path(&id, &"0".repeat(64)), &w.clerk).await;
    r.problem(NotFound);
    w.app
        .get(&file_path(&id, "../../etc/passwd"), &w.clerk)
        .await
        .problem(NotFound);
}

async fn who_may_upload_and_who_may_read(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let sha = sha256_hex(&sample_jpeg(&id, "id_front"));
    let upload = |token: &str| {
        let token = token.to_owned();
        let id = id.clone();
        let w = &w;
        async move {
            w.app
                .upload(&id, "other", "image/png", PNG.to_vec(), &token)
                .await
        }
    };
    // Staff of the claiming hall who did not claim it: 403.
    upload(&w.staff_same_hall).await.problem(Forbidden);
    // Staff of another hall, for whom the order is out of scope: 404.
    upload(&w.staff_other_hall).await.problem(NotFound);
    // Clerks, auditors and admins may never upload: 403.
    for token in [&w.clerk, &w.other_clerk, &w.auditor, &w.admin] {
        upload(token).await.problem(Forbidden);
    }

    // Reads: another province's clerk and another hall's staff do not see the order.
    let list = format!("/api/v1/work-orders/{id}/evidence");
    for token in [&w.other_clerk, &w.staff_other_hall] {
        w.app.get(&list, token).await.problem(NotFound);
        w.app
            .get(&file_path(&id, &sha), token)
            .await
            .problem(NotFound);
    }
    // An admin never reads evidence.
    w.app
        .get(&file_path(&id, &sha), &w.admin)
        .await
        .problem(Forbidden);

    // Staff of the target hall see an open order but read no file until their hall claims it.
    let released = w
        .app
        .act(&id, "release", &w.staff, &json!({"reason": "换人办理"}))
        .await;
    released.assert_status(200);
    w.app
        .get(&file_path(&id, &sha), &w.staff)
        .await
        .problem(Forbidden);
    // Nobody uploads to an order that is not claimed.
    upload(&w.staff).await.problem(InvalidState);
    // The home clerk still reads what was sent.
    assert_eq!(w.app.get(&file_path(&id, &sha), &w.clerk).await.status, 200);
}

async fn uploads_stop_once_the_result_is_submitted(app: TestApp) {
    let w = World::new(app).await;
    let order = w.submitted_order("match").await;
    let id = id_of(&order);
    let r = w
        .app
        .upload(&id, "other", "image/png", PNG.to_vec(), &w.staff)
        .await;
    r.problem(InvalidState);
    // The verification names the files it vouches for.
    assert_eq!(order["verification"]["evidence"], evidence_entries(&id));
}

async fn a_result_must_name_uploaded_files_and_a_match_the_required_kinds(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);

    // A file never uploaded.
    let mut payload = w.payload(&order, "match");
    payload["evidence"][0]["sha256"] = json!("f".repeat(64));
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    r.problem(MissingEvidence);
    assert_eq!(r.body["field"], "evidence[0]");

    // An uploaded file under another kind is not that kind's file.
    let mut payload = w.payload(&order, "match");
    payload["evidence"][1]["kind"] = json!("other");
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    r.problem(MissingEvidence);

    // A match without a required kind (the live photo).
    let mut payload = w.payload(&order, "match");
    payload["evidence"].as_array_mut().unwrap().pop();
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    r.problem(MissingEvidence);
    assert_eq!(r.body["field"], "evidence");

    // In the contract's order: after replay, before the document.
    let mut payload = w.payload(&order, "match");
    payload["evidence"] = json!([]);
    payload["document"]["number"] = json!("110105194912310021");
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    r.problem(MissingEvidence);

    // Each refusal is in the trail with its code.
    let items = w
        .audit_events(&format!(
            "work_order={id}&action=work_order.result_rejected"
        ))
        .await;
    assert_eq!(items.len(), 4);
    assert!(items
        .iter()
        .all(|e| e["detail"]["code"] == MissingEvidence.as_str()));

    // A no-show carries no files, and needs none.
    let mut payload = w.payload(&order, "no_show");
    payload["evidence"] = json!([]);
    payload["document"] = Value::Null;
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    assert_eq!(r.assert_status(201)["state"], "submitted");
}

async fn a_result_may_not_bind_files_another_hall_uploaded(app: TestApp) {
    let w = World::new(app).await;
    // Hall A claims, uploads, releases; the order is rerouted to the city pool and hall B
    // claims it: hall A's files are not hall B's evidence.
    let order = w.open_order_to(None).await;
    let id = id_of(&order);
    w.app
        .act(&id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    w.upload_required(&order).await;
    w.app
        .act(&id, "release", &w.staff, &json!({"reason": "换人办理"}))
        .await
        .assert_status(200);
    w.app
        .act(&id, "claim", &w.staff_other_hall, &json!({}))
        .await
        .assert_status(200);
    let signer_b = crate::helpers::Signer::new("hall-b-2026", "EdDSA");
    w.app.register_key(&w.admin, &w.hall_b, &signer_b).await;
    let mut payload = w.payload(&order, "match");
    payload["hall"] = json!(w.hall_b);
    payload["staff"] = json!("staff.b");
    let r = w
        .app
        .act(
            &id,
            "verification",
            &w.staff_other_hall,
            &json!({ "result": signer_b.sign(&payload) }),
        )
        .await;
    r.problem(MissingEvidence);
}

fn crossprov(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(args)
        .env("CROSSPROV_DATA_DIR", app.dir.path())
        // Sealed files are opened to be re-hashed: the app's KEK (given explicitly, as
        // PostgreSQL requires).
        .env("CROSSPROV_CRYPTO__KEK_FILE", app.dir.path().join("kek.hex"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("crossprov runs")
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = String::from_utf8(app.get_anon("/metrics").await.raw).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn a_file_altered_in_the_store_is_refused_and_caught_offline(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let bytes = sample_jpeg(&id, "id_front");
    let sha = sha256_hex(&bytes);
    let url = w.app.database_url.clone();

    let ok = crossprov(&w.app, &["evidence", "verify", "--database-url", &url], &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["checked"], 3);

    // Someone edits the stored scan on disk.
    let stored = stored_file(&w.app, &id, &sha);
    let mut altered = std::fs::read(&stored).expect("stored under its digest");
    assert_ne!(altered, bytes, "stored sealed, not as uploaded");
    assert!(
        !altered.windows(id.len()).any(|w| w == id.as_bytes()),
        "the plain bytes (which hold the order id) are not in the object"
    );
    let last = altered.len() - 3;
    altered[last] ^= 0x01;
    std::fs::write(&stored, &altered).unwrap();

    let before = metric(&w.app, "crossprov_evidence_integrity_failures_total").await;
    let r = w.app.get(&file_path(&id, &sha), &w.clerk).await;
    r.problem(EvidenceCorrupted);
    assert!(
        r.raw.len() < 2000 && r.raw != altered,
        "the bad bytes are not served"
    );
    let after = metric(&w.app, "crossprov_evidence_integrity_failures_total").await;
    assert_eq!(after, before + 1.0, "counted");
    let actions = actions_of(&w, &id).await;
    assert!(actions.contains(&"evidence.integrity_failed".to_owned()));
    assert!(
        !actions.contains(&"evidence.viewed".to_owned()),
        "a refused read is not a view: {actions:?}"
    );

    let bad = crossprov(&w.app, &["evidence", "verify", "--database-url", &url], &[]);
    assert_eq!(bad.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["sha256"], sha);
    assert_eq!(report["first_bad"]["work_order"], id);
    assert!(String::from_utf8_lossy(&bad.stderr).contains(&sha));

    // A stored file that is gone is just as bad.
    std::fs::remove_file(&stored).unwrap();
    let r = w.app.get(&file_path(&id, &sha), &w.clerk).await;
    r.problem(EvidenceCorrupted);
}

async fn the_terminal_cli_uploads_signs_with_digests_and_the_result_is_accepted(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    w.app
        .act(&id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = Vec::new();
    for (kind, bytes) in [
        ("id_front", sample_jpeg(&id, "cli-front")),
        ("id_back", PNG.to_vec()),
        ("live_photo", sample_jpeg(&id, "cli-face")),
        ("registration_form", PDF.to_vec()),
    ] {
        let path = dir.path().join(format!("{kind}.bin"));
        std::fs::write(&path, bytes).unwrap();
        args.push(format!("{kind}={}", path.display()));
    }
    let token = w.staff.clone();
    let upload: Vec<&str> = ["evidence", "upload", "--url", &w.app.base, "--order", &id]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    let out = crossprov(&w.app, &upload, &[("CROSSPROV_TOKEN", &token)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploaded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(uploaded["uploaded"].as_array().unwrap().len(), 4);
    assert_eq!(uploaded["uploaded"][1]["content_type"], "image/png");

    // Sign with the same files: the digests are filled in.
    let keydir = tempfile::tempdir().unwrap();
    let mut payload = w.payload(&order, "match");
    payload.as_object_mut().unwrap().remove("evidence");
    let payload_file = keydir.path().join("payload.json");
    std::fs::write(&payload_file, payload.to_string()).unwrap();
    let gen = crossprov(
        &w.app,
        &[
            "keygen",
            "--alg",
            "ES256",
            "--out",
            keydir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(gen.status.success());
    let public = std::fs::read_to_string(keydir.path().join("public.pem")).unwrap();
    let r = w
        .app
        .post(
            &format!("/api/v1/halls/{}/keys", w.hall_a),
            &w.admin,
            &json!({"kid": "terminal-1", "alg": "ES256", "public_key_pem": public}),
        )
        .await;
    r.assert_status(201);
    let private = keydir.path().join("private.pem");
    let mut sign: Vec<String> = [
        "sign-result",
        "--key",
        private.to_str().unwrap(),
        "--kid",
        "terminal-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for a in &args {
        sign.push("--evidence".into());
        sign.push(a.clone());
    }
    sign.push(payload_file.to_str().unwrap().into());
    let sign: Vec<&str> = sign.iter().map(String::as_str).collect();
    let out = crossprov(&w.app, &sign, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jws = String::from_utf8(out.stdout).unwrap();
    let r = w.submit(&order, jws.trim()).await;
    let v = r.assert_status(201);
    assert_eq!(v["verification"]["evidence"].as_array().unwrap().len(), 4);
    assert_eq!(
        v["verification"]["evidence"][1],
        json!({"kind": "id_back", "sha256": sha256_hex(PNG)})
    );
    // Completing it: the receipt's result_sha256 covers the JWS, hence the file digests.
    let done = w.app.act(&id, "complete", &w.clerk, &json!({})).await;
    done.assert_status(200);
}

async fn refusals_come_in_the_contract_order(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let upload = || post(format!("/api/v1/work-orders/{id}/evidence?kind=id_front"));
    let huge = vec![b'x'; 10 * 1024 * 1024 + 1];
    // 413 first: a declared size over the limit, whatever the type and the token.
    let too_large = upload().bytes(Some("text/plain"), huge);
    w.app.answers(PayloadTooLarge, [too_large]).await;
    // Then 415: bytes that are not what the label says, with no token, or from a clerk.
    let rows = [
        upload().bytes(Some("image/jpeg"), PNG),
        upload().by(&w.clerk).bytes(Some("image/jpeg"), PNG),
        // An empty body is no file at all.
        upload().by(&w.staff).bytes(Some("image/png"), vec![]),
    ];
    w.app.answers(UnsupportedMediaType, rows).await;
    // Then 401, then the role (403).
    let bad_token = upload().by("not-a-token").bytes(Some("image/png"), PNG);
    w.app.answers(Unauthenticated, [bad_token]).await;
    let clerk = upload().by(&w.clerk).bytes(Some("image/png"), PNG);
    w.app.answers(Forbidden, [clerk]).await;
    // Reads without a token, and an admin's list.
    let list = format!("/api/v1/work-orders/{id}/evidence");
    w.app.get_anon(&list).await.problem(Unauthenticated);
    w.app.get(&list, &w.admin).await.problem(Forbidden);
}

async fn orders_and_files_that_do_not_exist_are_404(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let nobody = "01900000-0000-7000-8000-000000000000";
    w.app
        .upload(nobody, "other", "image/png", PNG.to_vec(), &w.staff)
        .await
        .problem(NotFound);
    w.app
        .get(&format!("/api/v1/work-orders/{nobody}/evidence"), &w.clerk)
        .await
        .problem(NotFound);
    let sha = sha256_hex(&sample_jpeg(&id, "id_front"));
    w.app
        .get(&file_path(nobody, &sha), &w.clerk)
        .await
        .problem(NotFound);
    // Digests that are not digests, including an escaped path, name nothing.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "A", &sha.to_uppercase(), "%2e%2e"] {
        let r = w.app.get(&file_path(&id, bad), &w.clerk).await;
        r.problem(NotFound);
    }
    // Another order's file is not this order's.
    let other = w.claimed_order().await;
    let other_sha = sha256_hex(&sample_jpeg(&id_of(&other), "id_front"));
    w.app
        .get(&file_path(&id, &other_sha), &w.clerk)
        .await
        .problem(NotFound);
}

async fn uploads_after_a_return_and_not_by_others_on_a_submitted_order(app: TestApp) {
    let w = World::new(app).await;
    let order = w.submitted_order("match").await;
    let id = id_of(&order);
    w.app
        .upload(&id, "other", "image/png", PNG.to_vec(), &w.staff_same_hall)
        .await
        .problem(Forbidden);
    w.app
        .act(&id, "return", &w.clerk, &json!({"reason": "照片不清晰"}))
        .await
        .assert_status(200);
    let r = w
        .app
        .upload(&id, "live_photo", "image/png", PNG.to_vec(), &w.staff)
        .await;
    r.assert_status(201);
    // The upload event says what was uploaded, and nothing personal.
    let uploaded = w
        .audit_events(&format!("work_order={id}&action=evidence.uploaded"))
        .await;
    let last = uploaded.last().expect("an upload event");
    assert_eq!(
        last["detail"],
        json!({"kind": "live_photo", "sha256": sha256_hex(PNG), "size": PNG.len(),
               "content_type": "image/png", "again": false})
    );
    assert_eq!(last["actor"], "staff.a");
    // Completed orders take no more files.
    let jws = w.signer.sign(&w.payload(&order, "match"));
    w.submit(&order, &jws).await.assert_status(201);
    w.app
        .act(&id, "complete", &w.clerk, &json!({}))
        .await
        .assert_status(200);
    w.app
        .upload(&id, "other", "image/png", PNG.to_vec(), &w.staff)
        .await
        .problem(InvalidState);
}

async fn missing_evidence_comes_after_the_replay_and_freshness_checks(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    // Stale and without its files: stale_result first.
    let mut payload = w.payload(&order, "match");
    payload["evidence"] = json!([]);
    payload["iat"] = json!(crate::helpers::now_secs() - 3600);
    let r = w.submit(&order, &w.signer.sign(&payload)).await;
    r.problem(StaleResult);
    // A jti already used, and without its files: replayed_result first.
    let mut first = w.payload(&order, "mismatch");
    first["evidence"] = json!([]);
    w.submit(&order, &w.signer.sign(&first))
        .await
        .assert_status(201);
    w.app
        .act(
            &id_of(&order),
            "return",
            &w.clerk,
            &json!({"reason": "重新核验"}),
        )
        .await
        .assert_status(200);
    let mut replay = w.payload(&order, "match");
    replay["evidence"] = json!([]);
    replay["jti"] = first["jti"].clone();
    let r = w.submit(&order, &w.signer.sign(&replay)).await;
    r.problem(ReplayedResult);
}

async fn uploading_the_right_bytes_again_heals_a_damaged_file(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let bytes = PDF.to_vec();
    let sha = sha256_hex(&bytes);
    let upload = || {
        let kind = "registration_form";
        w.app
            .upload(&id, kind, "application/pdf", bytes.clone(), &w.staff)
    };
    upload().await.assert_status(201);
    std::fs::write(stored_file(&w.app, &id, &sha), b"%PDF-1.7 tampered").unwrap();
    w.app
        .get(&file_path(&id, &sha), &w.clerk)
        .await
        .problem(EvidenceCorrupted);
    upload().await.assert_status(201);
    let r = w.app.get(&file_path(&id, &sha), &w.clerk).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.raw, bytes);
}

async fn the_terminal_cli_reports_refusals_and_verify_refuses_a_missing_database(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    let jpeg = dir.path().join("front.jpg");
    std::fs::write(&jpeg, sample_jpeg(&id, "cli")).unwrap();
    let base = w.app.base.clone();
    let upload = |token: &str, file: &std::path::Path| {
        crossprov(
            &w.app,
            &[
                "evidence",
                "upload",
                "--url",
                &base,
                "--order",
                &id,
                &format!("id_front={}", file.display()),
            ],
            &[("CROSSPROV_TOKEN", token)],
        )
    };
    let out = upload(&w.staff, &text);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a JPEG, PNG or PDF"));
    let out = upload("expired-or-forged", &jpeg);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401 unauthenticated"));
    let out = upload(&w.staff_same_hall, &jpeg);
    assert!(String::from_utf8_lossy(&out.stderr).contains("403 forbidden"));

    let missing = format!("sqlite://{}", dir.path().join("typo.db").display());
    let out = crossprov(
        &w.app,
        &["evidence", "verify", "--database-url", &missing],
        &[],
    );
    assert!(!out.status.success(), "a missing database never verifies");
    assert!(!dir.path().join("typo.db").exists(), "and is not created");
}

/// Not in the contract's table: the store under the service failing (a full or read-only
/// disk, a bucket out of reach) answers 503, and nothing is recorded.
async fn an_evidence_store_that_cannot_write_is_unavailable(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    // The place uploads are staged is taken by a plain file: no object can be written.
    let staging = w.app.dir.path().join("evidence/staging");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::write(&staging, b"not a directory").unwrap();
    w.app
        .upload(&id, "other", "image/png", PNG.to_vec(), &w.staff)
        .await
        .problem(Unavailable);
    let list = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/evidence"), &w.staff)
        .await;
    assert_eq!(list.items().len(), 3, "only the files claimed_order sent");
    // Once the store is mended, the same upload goes through.
    std::fs::remove_file(&staging).unwrap();
    w.app
        .upload(&id, "other", "image/png", PNG.to_vec(), &w.staff)
        .await
        .assert_status(201);
}

// The table: each scenario under the code it provokes.
provokes!(PROVOKED {
    InvalidRequest => [the_contract_refusal_order_and_bad_parameters],
    Forbidden => [
        who_may_upload_and_who_may_read,
        uploads_after_a_return_and_not_by_others_on_a_submitted_order,
    ],
    NotFound => [orders_and_files_that_do_not_exist_are_404],
    InvalidState => [uploads_stop_once_the_result_is_submitted],
    PayloadTooLarge => [a_file_over_the_limit_is_413, refusals_come_in_the_contract_order],
    UnsupportedMediaType => [a_mislabelled_or_unsupported_file_is_415],
    StaleResult => [missing_evidence_comes_after_the_replay_and_freshness_checks],
    MissingEvidence => [
        a_result_must_name_uploaded_files_and_a_match_the_required_kinds,
        a_result_may_not_bind_files_another_hall_uploaded,
    ],
    EvidenceCorrupted => [
        uploading_the_right_bytes_again_heals_a_damaged_file,
        a_file_altered_in_the_store_is_refused_and_caught_offline,
    ],
    Unavailable => [an_evidence_store_that_cannot_write_is_unavailable],
});

on_both_backends!(
    the_terminal_cli_reports_refusals_and_verify_refuses_a_missing_database,
    jpeg_png_and_pdf_travel_back_byte_identical_and_every_read_is_audited,
    the_same_bytes_uploaded_twice_are_the_same_object,
    the_terminal_cli_uploads_signs_with_digests_and_the_result_is_accepted,
);

/// An S3-compatible server (moto's server mode) on a free loopback port, for this test only.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_required() -> bool {
    std::env::var("CROSSPROV_TEST_S3_REQUIRED").is_ok_and(|v| v == "1" || v == "true")
}

impl S3Server {
    async fn start(bucket: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    !s3_required(),
                    "CROSSPROV_TEST_S3_REQUIRED is set but moto_server cannot start: {e}"
                );
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: S3 evidence tests skipped: moto_server not found ({e}); pip install 'moto[server]'"
                );
                return None;
            }
        };
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let client = awc::Client::default();
        for _ in 0..200 {
            if let Ok(res) = client
                .put(format!("{}/{bucket}", server.endpoint))
                .send()
                .await
            {
                if res.status().is_success() {
                    return Some(server);
                }
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("moto_server did not come up on {}", server.endpoint);
    }
}

fn s3_settings(endpoint: String) -> Configure {
    Arc::new(move |s: &mut crossprov::config::Settings| {
        s.evidence.store = crossprov::config::EvidenceBackend::S3;
        s.evidence.s3_url = "s3://crossprov-evidence/tests".into();
        s.evidence.s3_endpoint = endpoint.clone();
        s.evidence.s3_region = "us-east-1".into();
        s.evidence.s3_access_key_id = "testing".into();
        s.evidence.s3_secret_access_key = "testing".into();
    })
}

/// Two instances share PostgreSQL (or SQLite) and one S3 bucket: a file uploaded through one
/// is served by the other, byte-identical, and the offline check re-hashes it in the bucket.
async fn s3_storage_serves_any_file_from_any_instance(backend: Backend) {
    let Some(s3) = S3Server::start("crossprov-evidence").await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, s3_settings(s3.endpoint.clone())).await else {
        return;
    };
    let second = app.another_instance();
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);

    // 6 MiB: more than one multipart part.
    let mut big = sample_jpeg(&id, "s3");
    big.resize(6 * 1024 * 1024, 3);
    let sha = sha256_hex(&big);
    let r = w
        .app
        .upload(
            &id,
            "registration_form",
            "image/jpeg",
            big.clone(),
            &w.staff,
        )
        .await;
    r.assert_status(201);
    let back = second.get(&file_path(&id, &sha), &w.clerk).await;
    assert_eq!(back.status, 200);
    assert!(
        back.raw == big,
        "served byte-identical by the other instance"
    );
    // Nothing lands on local disk.
    assert!(!w.app.dir.path().join("evidence/sha256").exists());

    let w_jws = w.signer.sign(&w.payload(&order, "match"));
    w.submit(&order, &w_jws).await.assert_status(201);

    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["evidence", "verify", "--database-url", &w.app.database_url])
        .env("CROSSPROV_EVIDENCE__STORE", "s3")
        .env(
            "CROSSPROV_EVIDENCE__S3_URL",
            "s3://crossprov-evidence/tests",
        )
        .env("CROSSPROV_EVIDENCE__S3_ENDPOINT", &s3.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("CROSSPROV_DATA_DIR", w.app.dir.path())
        .env(
            "CROSSPROV_CRYPTO__KEK_FILE",
            w.app.dir.path().join("kek.hex"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 4);
}

mod s3 {
    #[actix_web::test]
    async fn postgres() {
        super::s3_storage_serves_any_file_from_any_instance(super::Backend::Postgres).await;
    }

    #[actix_web::test]
    async fn sqlite() {
        super::s3_storage_serves_any_file_from_any_instance(super::Backend::Sqlite).await;
    }
}
