//! The command line as an operator and a hall terminal use it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{evidence_entries, TestApp, World, ID_NUMBER, NAME};
use crate::on_both_backends;

pub fn crossprov(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(args)
        .env("CROSSPROV_DATA_DIR", app.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crossprov");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("crossprov runs")
}

async fn user_add_creates_a_user_who_can_log_in_and_is_audited_as_cli(app: TestApp) {
    let add_auditor = |stdin: &str| {
        let args = [
            "user",
            "add",
            "--username",
            "ops.auditor",
            "--role",
            "auditor",
            "--password-stdin",
        ];
        let url = ["--database-url", app.database_url.as_str()];
        crossprov(&app, &[&args[..], &url[..]].concat(), Some(stdin))
    };
    let out = add_auditor("s3cret-passphrase\nignored second line\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = app.login("ops.auditor", "s3cret-passphrase").await;
    let token = r.assert_status(200)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.assert_status(200)["role"], "auditor");
    let created = app
        .get("/api/v1/audit/events?action=user.created", &token)
        .await;
    let created = created.items();
    // The seeded admin and this auditor, both made from the command line.
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|e| e["actor"] == "cli"));
    // A second user of that name is refused, and the CLI says so with a non-zero exit.
    let again = add_auditor("another-passphrase\n");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already_exists"));
}

async fn a_hall_terminal_signs_with_keygen_and_sign_result(app: TestApp) {
    let w = World::new(app).await;
    for alg in ["ES256", "EdDSA"] {
        let keys = w.app.dir.path().join(format!("keys-{alg}"));
        let out = crossprov(
            &w.app,
            &["keygen", "--alg", alg, "--out", keys.to_str().unwrap()],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = std::fs::read_to_string(keys.join("public.pem")).unwrap();
        let kid = format!("terminal-{alg}");
        let body = json!({ "kid": kid, "alg": alg, "public_key_pem": public });
        w.app
            .post(&format!("/api/v1/halls/{}/keys", w.hall_a), &w.admin, &body)
            .await
            .assert_status(201);

        let order = w.claimed_order().await;
        let payload = json!({
            "wo": order["id"], "hall": w.hall_a, "staff": "staff.a", "msisdn": order["msisdn"], "outcome": "match",
            "document": { "type": "resident_id", "number": ID_NUMBER, "name": NAME, "valid_until": "2035-06-30" },
            "method": { "chip_read": true, "face_match_score": 0.95, "operator_checked": true },
            "evidence": evidence_entries(order["id"].as_str().unwrap()),
        });
        let file = w.app.dir.path().join(format!("payload-{alg}.json"));
        std::fs::write(&file, payload.to_string()).unwrap();
        let key = keys.join("private.pem");
        let out = crossprov(
            &w.app,
            &[
                "sign-result",
                "--key",
                key.to_str().unwrap(),
                "--kid",
                &kid,
                file.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jws = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let submitted = w.submit(&order, &jws).await;
        assert_eq!(submitted.assert_status(201)["verification"]["alg"], alg);
    }
}

on_both_backends!(
    user_add_creates_a_user_who_can_log_in_and_is_audited_as_cli,
    a_hall_terminal_signs_with_keygen_and_sign_result,
);

#[test]
fn serve_refuses_to_start_on_an_unknown_setting_value_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CROSSPROV_DATA_DIR", dir.path())
        .env("CROSSPROV_MAIL__TRANSPORT", "pigeon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mail.transport"), "{stderr}");
    assert!(
        !dir.path().join("crossprov.db").exists(),
        "refused before touching the database"
    );
}
