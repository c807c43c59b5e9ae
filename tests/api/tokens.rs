//! Login tokens: a `kid` and keys rotated without logging anyone out; revocation that holds
//! at once on every instance; login throttling per username and client address, kept in the
//! database; the people endpoints that need them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::cli::crossprov;
use crate::helpers::{post, ErrorCode::*, Reply, TestApp, World, ADMIN, PASSWORD};
use crate::on_both_backends;

const ME: &str = "/api/v1/me";
const EN: &[(&str, &str)] = &[("Accept-Language", "en")];

fn segment(token: &str, n: usize) -> Value {
    let part = token.split('.').nth(n).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn kid_of(token: &str) -> String {
    segment(token, 0)["kid"]
        .as_str()
        .expect("the token's header names its key")
        .to_owned()
}

/// `GET /api/v1/me` with the English detail, which says why a token is refused.
async fn me(app: &TestApp, token: &str) -> Reply {
    app.raw("GET", ME, Some(token), EN, None).await
}

#[track_caller]
fn refused_because(r: &Reply, detail: &str) {
    r.problem(Unauthenticated);
    assert_eq!(r.body["detail"], detail, "{}", r.body);
}

fn rotate(app: &TestApp) -> Value {
    let out = crossprov(
        app,
        &[
            "keys",
            "rotate-token-key",
            "--database-url",
            &app.database_url,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(&stdout).expect("JSON")
}

async fn a_rotated_token_key_signs_new_logins_while_old_tokens_keep_working(app: TestApp) {
    let second = app.another_instance();
    let old = app.admin().await;
    let old_kid = kid_of(&old);
    assert!(old_kid.starts_with("tk-"), "{old_kid}");
    let rotation = rotate(&app);
    let new_kid = rotation["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotation["retired"], json!([old_kid]));
    // Tokens signed before the rotation still work, on both instances.
    app.get(ME, &old).await.assert_status(200);
    second.get(ME, &old).await.assert_status(200);
    // Logins on either instance sign with the new key at once; the other instance reads the
    // key it has not seen yet on the first token naming it.
    let on_first = app.admin().await;
    let on_second = second.admin().await;
    assert_eq!(kid_of(&on_first), new_kid);
    assert_eq!(kid_of(&on_second), new_kid);
    second.get(ME, &on_first).await.assert_status(200);
    app.get(ME, &on_second).await.assert_status(200);
    // A second rotation retires the first's key too; every token still works until it expires.
    let again = rotate(&app);
    assert_eq!(again["retired"], json!([new_kid]));
    for t in [&old, &on_first, &on_second] {
        app.get(ME, t).await.assert_status(200);
    }
    // Once they have expired, they are refused; logins carry on with the current key.
    app.advance_clock(900 + 61);
    me(&app, &on_first).await.problem(Unauthenticated);
    let fresh = app.admin().await;
    assert_eq!(kid_of(&fresh), again["kid"].as_str().expect("kid"));
    me(&app, &fresh).await.assert_status(200);
    // Audited as the command line.
    let auditor = app
        .create_user(&fresh, "auditor", "auditor", None, None)
        .await;
    let events = app
        .get("/api/v1/audit/events?action=token_key.rotated", &auditor)
        .await
        .items();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["actor"] == "cli"));
    assert_eq!(events[0]["detail"]["kid"], json!(new_kid));
}

async fn tokens_with_an_unknown_key_or_a_bad_signature_are_refused(app: TestApp) {
    let good = app.admin().await;
    let [header, payload, signature]: [&str; 3] = good
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three parts");
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    // Another signature over the same header and claims.
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let bad_signature = format!("{header}.{payload}.{flipped}{}", &signature[1..]);
    // A kid no key has.
    let unknown_kid = format!(
        "{}.{payload}.{signature}",
        encode(&json!({"alg": "HS256", "typ": "JWT", "kid": "tk-000000000000"}))
    );
    // No kid: checked against the key of earlier versions, which a fresh database lacks.
    let no_kid = format!(
        "{}.{payload}.{signature}",
        encode(&json!({"alg": "HS256", "typ": "JWT"}))
    );
    // `none` never passes.
    let unsigned = format!(
        "{}.{payload}.",
        encode(&json!({"alg": "none", "kid": kid_of(&good)}))
    );
    for token in [
        &bad_signature,
        &unknown_kid,
        &no_kid,
        &unsigned,
        &"not.a.token".to_owned(),
    ] {
        refused_because(&me(&app, token).await, "the token is not valid");
    }
    me(&app, &good).await.assert_status(200);
}

/// A token as versions before key rotation issued it: no `kid`, no generations, signed with
/// the one HMAC secret they kept, which the upgrade's migration names `tk-legacy`.
async fn a_token_from_before_the_upgrade_works_until_it_expires(app: TestApp) {
    let admin = app.admin().await;
    crate::audit::sql(
        &app,
        "INSERT INTO token_keys (kid, secret, created_at) \
         VALUES ('tk-legacy', 'the-old-secret', '2026-01-01 00:00:00');",
    )
    .expect("the legacy key stored");
    let now = crate::helpers::now_secs();
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    let signed = format!(
        "{}.{}",
        encode(&json!({"alg": "HS256", "typ": "JWT"})),
        encode(&json!({"sub": ADMIN, "role": "admin", "iat": now, "exp": now + 600}))
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"the-old-secret");
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    let legacy = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    me(&app, &legacy).await.assert_status(200);
    // New logins still sign with the current key, not the legacy one.
    assert_ne!(kid_of(&app.admin().await), "tk-legacy");
    // Revocation applies to it like any other: a password reset ends it.
    let body = json!({"password": "a new passphrase"});
    app.post("/api/v1/users/admin/password", &admin, &body)
        .await
        .assert_status(200);
    refused_because(&me(&app, &legacy).await, "the token has been revoked");
}

async fn a_disabled_user_is_refused_at_once_on_another_instance_until_enabled(app: TestApp) {
    let admin = app.admin().await;
    let clerk = app
        .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
        .await;
    let second = app.another_instance();
    me(&second, &clerk).await.assert_status(200);
    let r = app
        .post("/api/v1/users/clerk.yn/disable", &admin, &json!({}))
        .await;
    let view = r.assert_status(200);
    assert_eq!(view["username"], "clerk.yn");
    assert!(view["disabled_at"].is_string(), "{view}");
    // The very next request on the other instance is refused, with its own detail.
    refused_because(&me(&second, &clerk).await, "the account is disabled");
    refused_because(&me(&app, &clerk).await, "the account is disabled");
    // A disabled user's login is refused exactly like a wrong password.
    let disabled = second
        .raw(
            "POST",
            "/api/v1/auth/token",
            None,
            &[EN[0], ("Content-Type", "application/json")],
            Some(
                serde_json::to_vec(&json!({"username": "clerk.yn", "password": PASSWORD})).unwrap(),
            ),
        )
        .await;
    let wrong = second
        .raw(
            "POST",
            "/api/v1/auth/token",
            None,
            &[EN[0], ("Content-Type", "application/json")],
            Some(
                serde_json::to_vec(&json!({"username": "clerk.yn", "password": "wrong password"}))
                    .unwrap(),
            ),
        )
        .await;
    disabled.problem(Unauthenticated);
    assert_eq!(disabled.body, wrong.body);
    // Enabled again: the user logs in; the token from before stays dead.
    let r = second
        .post("/api/v1/users/clerk.yn/enable", &admin, &json!({}))
        .await;
    assert_eq!(r.assert_status(200)["disabled_at"], Value::Null);
    refused_because(&me(&app, &clerk).await, "the token has been revoked");
    let again = app.token("clerk.yn").await;
    me(&second, &again).await.assert_status(200);
    let auditor = app
        .create_user(&admin, "auditor", "auditor", None, None)
        .await;
    for action in ["user.disabled", "user.enabled"] {
        let events = app
            .get(&format!("/api/v1/audit/events?action={action}"), &auditor)
            .await
            .items();
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0]["actor"], ADMIN);
        assert_eq!(events[0]["detail"]["username"], "clerk.yn");
    }
}

async fn a_password_reset_or_change_ends_the_users_tokens(app: TestApp) {
    let admin = app.admin().await;
    let clerk = app
        .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
        .await;
    let second = app.another_instance();
    let body = json!({"password": "a new passphrase"});
    app.post("/api/v1/users/clerk.yn/password", &admin, &body)
        .await
        .assert_status(200);
    refused_because(&me(&second, &clerk).await, "the token has been revoked");
    second
        .login("clerk.yn", PASSWORD)
        .await
        .problem(Unauthenticated);
    let clerk = second
        .login("clerk.yn", "a new passphrase")
        .await
        .assert_status(200)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    // The user's own change: their tokens end, this one included.
    let other_token = app
        .login("clerk.yn", "a new passphrase")
        .await
        .assert_status(200)["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let change =
        json!({"current_password": "a new passphrase", "new_password": "mine, and longer"});
    let r = app.post("/api/v1/me/password", &clerk, &change).await;
    assert_eq!(r.assert_status(200)["username"], "clerk.yn");
    refused_because(&me(&second, &clerk).await, "the token has been revoked");
    refused_because(&me(&app, &other_token).await, "the token has been revoked");
    app.login("clerk.yn", "a new passphrase")
        .await
        .problem(Unauthenticated);
    let now = app.login("clerk.yn", "mine, and longer").await;
    let token = now.assert_status(200)["access_token"]
        .as_str()
        .expect("token");
    me(&second, token).await.assert_status(200);
    let auditor = app
        .create_user(&admin, "auditor", "auditor", None, None)
        .await;
    let reset = app
        .get("/api/v1/audit/events?action=user.password_reset", &auditor)
        .await
        .items();
    assert_eq!(reset.len(), 1);
    let changed = app
        .get(
            "/api/v1/audit/events?action=user.password_changed",
            &auditor,
        )
        .await
        .items();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["actor"], "clerk.yn");
    assert!(!changed[0]["detail"]
        .to_string()
        .contains("mine, and longer"));
}

async fn revoking_a_hall_key_ends_that_halls_staff_tokens_only(app: TestApp) {
    let w = World::new(app).await;
    let second = w.app.another_instance();
    let path = format!("/api/v1/halls/{}/keys/{}/revoke", w.hall_a, w.signer.kid);
    w.app
        .post(&path, &w.admin, &json!({}))
        .await
        .assert_status(200);
    for staff in [&w.staff, &w.staff_same_hall] {
        refused_because(&me(&second, staff).await, "the token has been revoked");
    }
    for other in [&w.staff_other_hall, &w.clerk, &w.auditor, &w.admin] {
        me(&second, other).await.assert_status(200);
    }
    // The hall's staff log in again, with a token that holds.
    let again = second.token("staff.a").await;
    me(&w.app, &again).await.assert_status(200);
}

async fn wrong_passwords_from_one_address_slow_that_address_only(app: TestApp) {
    let admin = app.admin().await;
    app.create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
        .await;
    let second = app.another_instance();
    let (guesser, user) = ("127.0.0.2", "127.0.0.3");
    for n in 1..=5 {
        // Guesses alternate between the instances: the count is the database's.
        let at = if n % 2 == 0 { &second } else { &app };
        at.login_from(guesser, "clerk.yn", &format!("guess {n}"))
            .await
            .problem(Unauthenticated);
    }
    // From the guesser's address even the right password waits, on both instances.
    let r = app.login_from(guesser, "clerk.yn", PASSWORD).await;
    r.problem(RateLimited);
    let retry = r.retry_after();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    second
        .login_from(guesser, "clerk.yn", PASSWORD)
        .await
        .problem(RateLimited);
    // The real user, from their own address, is not locked out.
    app.login_from(user, "clerk.yn", PASSWORD)
        .await
        .assert_status(200);
    // Once the wait has passed, one more wrong guess doubles it.
    app.advance_clock(retry);
    second.advance_clock(retry);
    app.login_from(guesser, "clerk.yn", "guess 6")
        .await
        .problem(Unauthenticated);
    let r = app.login_from(guesser, "clerk.yn", PASSWORD).await;
    r.problem(RateLimited);
    let doubled = r.retry_after();
    assert!((61..=120).contains(&doubled), "Retry-After {doubled}");
    // An admin's unlock clears it for every address, on every instance.
    let r = second
        .post("/api/v1/users/clerk.yn/unlock", &admin, &json!({}))
        .await;
    assert_eq!(r.assert_status(200)["username"], "clerk.yn");
    app.login_from(guesser, "clerk.yn", PASSWORD)
        .await
        .assert_status(200);
    let auditor = app
        .create_user(&admin, "auditor", "auditor", None, None)
        .await;
    let unlocked = app
        .get("/api/v1/audit/events?action=user.unlocked", &auditor)
        .await
        .items();
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0]["detail"]["cleared"], 1);
}

async fn a_wrong_current_password_counts_as_a_failed_login(app: TestApp) {
    let admin = app.admin().await;
    let clerk = app
        .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
        .await;
    let address = "127.0.0.4";
    for n in 1..=5 {
        let body =
            json!({"current_password": format!("guess {n}"), "new_password": "whatever it is"});
        app.post_from(address, "/api/v1/me/password", Some(&clerk), &body)
            .await
            .problem(InvalidField)
            .at("current_password");
    }
    let body = json!({"current_password": PASSWORD, "new_password": "whatever it is"});
    app.post_from(address, "/api/v1/me/password", Some(&clerk), &body)
        .await
        .problem(RateLimited);
    app.login_from(address, "clerk.yn", PASSWORD)
        .await
        .problem(RateLimited);
    // Nothing changed: the token still holds.
    me(&app, &clerk).await.assert_status(200);
}

async fn the_people_endpoints_refuse_bad_calls_with_their_codes(app: TestApp) {
    let admin = app.admin().await;
    let clerk = app
        .create_user(&admin, "clerk.yn", "clerk", Some("53"), None)
        .await;
    let actions = ["disable", "enable", "password", "unlock"];
    let body_for = |action: &str| {
        if action == "password" {
            json!({"password": "long enough now"})
        } else {
            json!({})
        }
    };
    for action in actions {
        let path = format!("/api/v1/users/clerk.yn/{action}");
        // No token → 401; a body field that does not exist → 400; a clerk → 403.
        app.answers(Unauthenticated, [post(&path).json(&body_for(action))])
            .await;
        app.answers(
            InvalidRequest,
            [post(&path).by(&admin).json(&json!({"nope": 1}))],
        )
        .await;
        app.answers(Forbidden, [post(&path).by(&clerk).json(&body_for(action))])
            .await;
        // An unknown user → 404, even with a password the rule refuses.
        let unknown = format!("/api/v1/users/nobody/{action}");
        app.answers(
            NotFound,
            [post(&unknown).by(&admin).json(&body_for(action))],
        )
        .await;
        if action == "password" {
            let short = post(&unknown)
                .by(&admin)
                .json(&json!({"password": "short"}));
            app.answers(NotFound, [short]).await;
        }
    }
    // The password rule, the same as for a new user.
    let reset = "/api/v1/users/clerk.yn/password";
    for bad in ["1234567".to_owned(), "x".repeat(129)] {
        let call = post(reset).by(&admin).json(&json!({"password": bad}));
        app.answers_at(InvalidField, "password", [call]).await;
    }
    app.answers(InvalidRequest, [post(reset).by(&admin).json(&json!({}))])
        .await;
    let new_user = json!({"username": "u2", "password": "x".repeat(129), "role": "auditor"});
    app.answers_at(
        InvalidField,
        "password",
        [post("/api/v1/users").by(&admin).json(&new_user)],
    )
    .await;
    // States: enabling an enabled user, disabling a disabled one or oneself → 409.
    let enable = post("/api/v1/users/clerk.yn/enable").by(&admin);
    app.answers(InvalidState, [enable.clone()]).await;
    let disable = post("/api/v1/users/clerk.yn/disable").by(&admin);
    app.call(&disable).await.assert_status(200);
    app.answers(InvalidState, [disable]).await;
    app.answers(
        InvalidState,
        [post("/api/v1/users/admin/disable").by(&admin)],
    )
    .await;
    // One's own password: 401 without a token, 400 for a malformed body, 422 per field in
    // the body's order.
    let own = "/api/v1/me/password";
    let other = app
        .create_user(&admin, "auditor", "auditor", None, None)
        .await;
    app.answers(
        Unauthenticated,
        [
            post(own)
                .json(&json!({"current_password": PASSWORD, "new_password": "long enough now"})),
        ],
    )
    .await;
    app.answers(
        InvalidRequest,
        [
            post(own)
                .by(&other)
                .json(&json!({"new_password": "long enough now"})),
            post(own).by(&other).json(
                &json!({"current_password": PASSWORD, "new_password": "long enough now", "x": 1}),
            ),
        ],
    )
    .await;
    let wrong_and_short = json!({"current_password": "not it at all", "new_password": "short"});
    app.answers_at(
        InvalidField,
        "current_password",
        [post(own).by(&other).json(&wrong_and_short)],
    )
    .await;
    let short = json!({"current_password": PASSWORD, "new_password": "short"});
    app.answers_at(
        InvalidField,
        "new_password",
        [post(own).by(&other).json(&short)],
    )
    .await;
    // None of these changed the password.
    app.login("auditor", PASSWORD).await.assert_status(200);
}

on_both_backends!(
    a_rotated_token_key_signs_new_logins_while_old_tokens_keep_working,
    tokens_with_an_unknown_key_or_a_bad_signature_are_refused,
    a_token_from_before_the_upgrade_works_until_it_expires,
    a_disabled_user_is_refused_at_once_on_another_instance_until_enabled,
    a_password_reset_or_change_ends_the_users_tokens,
    revoking_a_hall_key_ends_that_halls_staff_tokens_only,
    wrong_passwords_from_one_address_slow_that_address_only,
    a_wrong_current_password_counts_as_a_failed_login,
    the_people_endpoints_refuse_bad_calls_with_their_codes,
);
