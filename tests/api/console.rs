//! The web console over plain HTTP: sessions, CSRF, the pages' security headers and scope.
//! (What the pages do in a browser is `console_e2e`.)

use serde_json::json;

use crate::helpers::{Reply, TestApp, World, PASSWORD};

/// A session: its cookie and the CSRF token the pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

fn client() -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        .timeout(std::time::Duration::from_secs(60))
        .finish()
}

async fn send(app: &TestApp, req: awc::ClientRequest, body: Option<Vec<u8>>) -> Reply {
    let sent = match body {
        Some(b) => req.send_body(b),
        None => req.send(),
    };
    app.reply(sent).await
}

async fn page(app: &TestApp, path: &str, s: Option<&Session>) -> (Reply, String) {
    let mut req = client().get(app.url(path));
    if let Some(s) = s {
        req = req.insert_header(("Cookie", s.cookie.clone()));
    }
    let r = send(app, req, None).await;
    let text = String::from_utf8_lossy(&r.raw).into_owned();
    (r, text)
}

async fn sign_in(app: &TestApp, username: &str) -> Session {
    let form = format!(
        "username={username}&password={}",
        PASSWORD.replace(' ', "+")
    );
    let req = client()
        .post(app.url("/console/login"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let r = send(app, req, Some(form.into_bytes())).await;
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.raw));
    let set = r.header("set-cookie").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let cookie = set.split(';').next().expect("name=value").to_owned();
    let s = Session {
        cookie,
        csrf: String::new(),
    };
    let (r, text) = page(app, "/console/password", Some(&s)).await;
    assert_eq!(r.status, 200, "{text}");
    let csrf = text
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    assert!(!csrf.is_empty());
    Session { csrf, ..s }
}

async fn api_with_cookie(
    app: &TestApp,
    path: &str,
    s: &Session,
    csrf: Option<&str>,
    body: &serde_json::Value,
) -> Reply {
    let mut req = client()
        .post(app.url(path))
        .insert_header(("Cookie", s.cookie.clone()))
        .insert_header(("Content-Type", "application/json"));
    if let Some(token) = csrf {
        req = req.insert_header(("X-CSRF-Token", token.to_owned()));
    }
    send(app, req, Some(serde_json::to_vec(body).expect("json"))).await
}

async fn pages_are_served_with_a_strict_policy_and_need_a_session(app: TestApp) {
    let (r, _) = page(&app, "/", None).await;
    assert_eq!(r.status, 303);
    let (r, _) = page(&app, "/console/orders", None).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/console/login?next=%2Fconsole%2Forders")
    );
    let (r, text) = page(&app, "/console/login", None).await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").expect("a policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!text.contains("<script>"), "no inline script: {text}");
    assert!(text.contains("lang=\"zh-CN\""));
    let (r, _) = page(&app, "/console/assets/console.js", None).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));
    let (r, _) = page(&app, "/console/assets/nothing.js", None).await;
    assert_eq!(r.status, 404);

    // A wrong password is shown on the login page, in the chosen language.
    let w = World::new(app).await;
    let req = client()
        .post(w.app.url("/console/login"))
        .insert_header(("Cookie", "crossprov_lang=en"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let r = send(
        &w.app,
        req,
        Some(b"username=clerk.yn&password=wrong".to_vec()),
    )
    .await;
    assert_eq!(r.status, 401);
    let text = String::from_utf8_lossy(&r.raw);
    assert!(text.contains("wrong username or password"), "{text}");
    assert!(r.header("set-cookie").is_none());
}

async fn a_session_calls_the_api_only_with_its_csrf_token(app: TestApp) {
    let w = World::new(app).await;
    let clerk = sign_in(&w.app, "clerk.yn").await;
    let open = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住",
    });
    // The cookie alone, as a page of another site would send it: refused, nothing opened.
    let r = api_with_cookie(&w.app, "/api/v1/work-orders", &clerk, None, &open).await;
    r.problem(crate::helpers::ErrorCode::CsrfRejected);
    let r = api_with_cookie(&w.app, "/api/v1/work-orders", &clerk, Some("forged"), &open).await;
    r.problem(crate::helpers::ErrorCode::CsrfRejected);
    // Another session's token does not fit this one.
    let other = sign_in(&w.app, "clerk.bj").await;
    let r = api_with_cookie(
        &w.app,
        "/api/v1/work-orders",
        &clerk,
        Some(&other.csrf),
        &open,
    )
    .await;
    r.problem(crate::helpers::ErrorCode::CsrfRejected);
    let listed = w
        .app
        .get(
            &format!(
                "/api/v1/work-orders?msisdn={}",
                open["msisdn"].as_str().unwrap_or_default()
            ),
            &w.clerk,
        )
        .await;
    assert_eq!(listed.assert_status(200)["items"], json!([]));
    // With its token: the same call the API answers, and the order offers its clerk's steps.
    let r = api_with_cookie(
        &w.app,
        "/api/v1/work-orders",
        &clerk,
        Some(&clerk.csrf),
        &open,
    )
    .await;
    let order = r.assert_status(201).clone();
    assert_eq!(order["actions"], json!(["cancel", "reroute", "suspension"]));
    // A bearer token is still what the API is for; a bad one is not rescued by the cookie.
    let req = client()
        .get(w.app.url("/api/v1/me"))
        .insert_header(("Cookie", clerk.cookie.clone()))
        .insert_header(("X-CSRF-Token", clerk.csrf.clone()))
        .insert_header(("Authorization", "Bearer nonsense"));
    let r = send(&w.app, req, None).await;
    assert_eq!(r.status, 401);

    // Signing out needs the session's token too.
    let logout = |token: &str| {
        let req = client()
            .post(w.app.url("/console/logout"))
            .insert_header(("Cookie", clerk.cookie.clone()))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        let body = format!("csrf_token={token}").into_bytes();
        send(&w.app, req, Some(body))
    };
    // A page answers with a page: the refusal in words, still signed in.
    let r = logout("forged").await;
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.raw).contains("CSRF"));
    assert!(r.header("set-cookie").is_none());
    let r = logout(&clerk.csrf).await;
    assert_eq!(r.status, 303);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("crossprov_session=;")));
}

async fn each_role_sees_its_pages_and_nothing_outside_its_scope(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = order["id"].as_str().expect("id");
    let reference = order["reference"].as_str().expect("reference");

    let clerk = sign_in(&w.app, "clerk.yn").await;
    let (r, _) = page(&w.app, "/console/", Some(&clerk)).await;
    assert_eq!(r.header("location").as_deref(), Some("/console/orders"));
    let (r, text) = page(&w.app, "/console/orders", Some(&clerk)).await;
    assert_eq!(r.status, 200);
    assert!(text.contains(reference), "{text}");
    // The whole queue sorted by due time; a sort the API does not know is its 400, as a page.
    let (r, text) = page(&w.app, "/console/orders?sort=due_at&state=", Some(&clerk)).await;
    assert_eq!(r.status, 200);
    assert!(text.contains(reference), "{text}");
    assert!(
        text.contains("<option value=\"due_at\" selected>"),
        "{text}"
    );
    let (r, _) = page(&w.app, "/console/orders?sort=soonest", Some(&clerk)).await;
    assert_eq!(r.status, 400);
    let (r, text) = page(&w.app, &format!("/console/orders/{id}"), Some(&clerk)).await;
    assert_eq!(r.status, 200);
    assert!(text.contains("id=\"do-cancel\""), "{text}");
    assert!(
        !text.contains("id=\"do-complete\""),
        "open: nothing to complete"
    );
    assert!(text.contains("<code>work_order.opened</code>") || text.contains("开单"));
    let (r, _) = page(&w.app, "/console/admin/users", Some(&clerk)).await;
    assert_eq!(r.status, 403);

    // Staff of the target hall may claim; staff of another hall get the not-found page.
    let staff = sign_in(&w.app, "staff.a").await;
    let (r, text) = page(&w.app, "/console/inbox", Some(&staff)).await;
    assert_eq!(r.status, 200);
    assert!(text.contains(reference), "{text}");
    let (_, text) = page(&w.app, &format!("/console/orders/{id}"), Some(&staff)).await;
    assert!(text.contains("id=\"do-claim\""), "{text}");
    w.app
        .create_user(&w.admin, "staff.c", "hall_staff", None, Some(&w.hall_b))
        .await;
    let outsider = sign_in(&w.app, "staff.c").await;
    let (r, text) = page(&w.app, &format!("/console/orders/{id}"), Some(&outsider)).await;
    assert_eq!(r.status, 404);
    assert!(!text.contains(reference), "{text}");
    assert!(
        !text.contains(order["msisdn"].as_str().unwrap_or("-")),
        "{text}"
    );

    let auditor = sign_in(&w.app, "auditor").await;
    let (r, text) = page(
        &w.app,
        &format!(
            "/console/audit?msisdn={}&actor=",
            order["msisdn"].as_str().unwrap_or_default()
        ),
        Some(&auditor),
    )
    .await;
    assert_eq!(r.status, 200, "{text}");
    assert!(text.contains("<code>work_order.opened</code>"), "{text}");
    // The whole-chain check runs only when asked for; its button keeps the search.
    assert!(text.contains("id=\"integrity-pending\""), "{text}");
    assert!(!text.contains("id=\"integrity-result\""), "{text}");
    let msisdn = order["msisdn"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("name=\"msisdn\" value=\"{msisdn}\"")),
        "{text}"
    );
    let (r, text) = page(
        &w.app,
        &format!("/console/audit?msisdn={msisdn}&check=1"),
        Some(&auditor),
    )
    .await;
    assert_eq!(r.status, 200, "{text}");
    assert!(
        text.contains("class=\"banner ok\" id=\"integrity-result\""),
        "{text}"
    );
    assert!(text.contains("<code>work_order.opened</code>"), "{text}");
    assert!(!text.contains("id=\"integrity-pending\""), "{text}");

    // The time pickers send Beijing wall time; the page searches, and exports, the instant.
    let an_hour_ago = (chrono::Utc::now() + chrono::Duration::hours(7)).format("%Y-%m-%dT%H:%M");
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(9)).format("%Y-%m-%dT%H:%M");
    let (r, text) = page(
        &w.app,
        &format!(
            "/console/audit?hall_id={}&since={an_hour_ago}&until=",
            w.hall_a
        ),
        Some(&auditor),
    )
    .await;
    assert_eq!(r.status, 200, "{text}");
    assert!(text.contains("<code>work_order.opened</code>"), "{text}");
    let exported = format!(
        "since={}%3A00%2B08%3A00",
        an_hour_ago.to_string().replace(':', "%3A")
    );
    assert!(text.contains(&exported), "{exported} not in {text}");
    let (r, text) = page(
        &w.app,
        &format!("/console/audit?since={in_an_hour}"),
        Some(&auditor),
    )
    .await;
    assert_eq!(r.status, 200, "{text}");
    assert!(!text.contains("<code>work_order.opened</code>"), "{text}");

    // The auditor's search by hall: the events of orders sent to it or claimed by it.
    let at_a = w.audit_events(&format!("hall_id={}", w.hall_a)).await;
    assert!(
        at_a.iter().any(|e| e["work_order"] == order["id"]),
        "{at_a:?}"
    );
    let at_b = w.audit_events(&format!("hall_id={}", w.hall_b)).await;
    assert!(
        at_b.iter().all(|e| e["work_order"] != order["id"]),
        "{at_b:?}"
    );

    let admin = sign_in(&w.app, crate::helpers::ADMIN).await;
    for path in [
        "/console/admin/halls",
        "/console/admin/users",
        "/console/admin/keys",
        "/console/admin/operations",
    ] {
        let (r, text) = page(&w.app, path, Some(&admin)).await;
        assert_eq!(r.status, 200, "{path}: {text}");
    }
    let (_, text) = page(&w.app, "/console/admin/halls", Some(&admin)).await;
    assert!(text.contains("JN-A"), "{text}");
    // English on request.
    let english = Session {
        cookie: format!("{}; crossprov_lang=en", admin.cookie),
        csrf: admin.csrf.clone(),
    };
    let (_, text) = page(&w.app, "/console/admin/halls", Some(&english)).await;
    assert!(text.contains("Create a hall"), "{text}");
}

crate::on_both_backends!(
    pages_are_served_with_a_strict_policy_and_need_a_session,
    each_role_sees_its_pages_and_nothing_outside_its_scope,
);

crate::provokes!(PROVOKED {
    CsrfRejected => [a_session_calls_the_api_only_with_its_csrf_token],
});
