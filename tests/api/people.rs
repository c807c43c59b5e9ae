//! People management (users and halls, by an admin) and a store that refuses writes (a full
//! disk, a read-only database): 503 `storage_full`, reported by `/readyz`, counted, and over
//! once space is back.

use serde_json::{json, Value};

use crate::helpers::{
    eventually, get, post, Backend, ErrorCode::*, TestApp, World, ADMIN, PASSWORD,
};
use crate::{on_both_backends, provokes};

const USERS: &str = "/api/v1/users";

fn hall_path(id: &str) -> String {
    format!("/api/v1/halls/{id}")
}

fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

async fn admins_list_and_read_users_by_role_hall_and_province(app: TestApp) {
    let w = World::new(app).await;
    let all = w.app.get(&format!("{USERS}?limit=200"), &w.admin).await;
    let names = usernames(all.assert_status(200));
    assert_eq!(
        names,
        ["admin", "auditor", "clerk.bj", "clerk.yn", "staff.a", "staff.a2", "staff.b"]
    );
    assert_eq!(all.body["next_cursor"], Value::Null);
    // Paged in username order: the cursor continues where the page ended.
    let first = w.app.get(&format!("{USERS}?limit=3"), &w.admin).await;
    assert_eq!(usernames(&first.body), ["admin", "auditor", "clerk.bj"]);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor");
    let rest = w
        .app
        .get(&format!("{USERS}?limit=3&cursor={cursor}"), &w.admin)
        .await;
    assert_eq!(usernames(&rest.body), ["clerk.yn", "staff.a", "staff.a2"]);
    let by_hall = w
        .app
        .get(&format!("{USERS}?hall_id={}", w.hall_a), &w.admin)
        .await;
    assert_eq!(usernames(&by_hall.body), ["staff.a", "staff.a2"]);
    let clerks_of_53 = w
        .app
        .get(&format!("{USERS}?role=clerk&province=53"), &w.admin)
        .await;
    assert_eq!(usernames(&clerks_of_53.body), ["clerk.yn"]);
    // Hall staff take their hall's province.
    let of_37 = w.app.get(&format!("{USERS}?province=37"), &w.admin).await;
    assert_eq!(usernames(&of_37.body), ["staff.a", "staff.a2", "staff.b"]);
    let one = w.app.get(&format!("{USERS}/clerk.yn"), &w.admin).await;
    let one = one.assert_status(200);
    assert_eq!(one["role"], "clerk");
    assert_eq!(one["province"], "53");
    assert_eq!(one["disabled_at"], Value::Null);
    assert_eq!(one["password_change_required"], false);
    assert!(one.get("password_hash").is_none(), "{one}");
}

async fn a_reset_password_must_be_changed_before_anything_else(app: TestApp) {
    let w = World::new(app).await;
    let reset = json!({"password": "set by the admin"});
    let r = w
        .app
        .post(&format!("{USERS}/clerk.yn/password"), &w.admin, &reset)
        .await;
    assert_eq!(r.assert_status(200)["password_change_required"], true);
    let login = w.app.login("clerk.yn", "set by the admin").await;
    let login = login.assert_status(200);
    assert_eq!(login["password_change_required"], true);
    let token = login["access_token"].as_str().expect("token").to_owned();
    // Every call but changing the password, on every instance, until it is changed.
    let second = w.app.another_instance();
    for app in [&w.app, &second] {
        app.answers(
            PasswordChangeRequired,
            [
                get("/api/v1/me").by(&token),
                get("/api/v1/work-orders").by(&token),
                post("/api/v1/work-orders").by(&token).json(&json!({
                    "msisdn": World::next_msisdn(), "target_province": "37",
                    "target_city": "370100", "reason": "用户长期在济南居住",
                })),
            ],
        )
        .await;
    }
    // Still judged after the token and the body: 401 and 400 come first.
    w.app
        .answers(Unauthenticated, [get("/api/v1/me").by("garbage")])
        .await;
    w.app
        .answers(
            InvalidRequest,
            [post("/api/v1/work-orders").by(&token).json_bytes("{")],
        )
        .await;
    let change = json!({"current_password": "set by the admin", "new_password": "my very own one"});
    let r = second.post("/api/v1/me/password", &token, &change).await;
    assert_eq!(r.assert_status(200)["password_change_required"], false);
    let login = w.app.login("clerk.yn", "my very own one").await;
    assert_eq!(login.assert_status(200)["password_change_required"], false);
    let token = login.body["access_token"].as_str().expect("token");
    w.app.get("/api/v1/me", token).await.assert_status(200);
    let viewed = w.app.get(&format!("{USERS}/clerk.yn"), &w.admin).await;
    assert_eq!(viewed.assert_status(200)["password_change_required"], false);
}

async fn halls_are_read_and_updated_under_if_match_and_each_change_is_audited(app: TestApp) {
    let w = World::new(app).await;
    let path = hall_path(&w.hall_a);
    let r = w.app.get(&path, &w.clerk).await;
    assert_eq!(r.assert_status(200)["code"], "JN-A");
    assert_eq!(r.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(r.body["deactivated_at"], Value::Null);
    w.app
        .answers(NotFound, [get(hall_path("no-such-hall")).by(&w.clerk)])
        .await;
    // A stale If-Match is refused; the current one changes the hall.
    let change = json!({"name": "历下新营业厅", "email": "new@halls.example.cn"});
    let patch = |version: &str| {
        crate::helpers::call("PATCH", path.clone())
            .by(&w.admin)
            .if_match(version)
            .json(&change)
    };
    w.app.answers(VersionConflict, [patch("\"7\"")]).await;
    let r = w.app.call(&patch("\"1\"")).await;
    let hall = r.assert_status(200);
    assert_eq!(hall["name"], "历下新营业厅");
    assert_eq!(hall["email"], "new@halls.example.cn");
    assert_eq!(hall["address"], "人民路 1 号", "left out, left as it was");
    assert_eq!(hall["version"], 2);
    assert_eq!(r.header("etag").as_deref(), Some("\"2\""));
    // The same change again changes nothing: no new version, no event.
    let again = w.app.call(&patch("\"2\"")).await;
    assert_eq!(again.assert_status(200)["version"], 2);
    let events = w.audit_events("action=hall.updated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"], ADMIN);
    assert_eq!(events[0]["detail"]["changed"], json!(["name", "email"]));
    assert!(
        !events[0]["detail"].to_string().contains("new@halls"),
        "which fields changed, not their values"
    );
    // New mail goes to the new address.
    let listed = w.app.get("/api/v1/halls?active=true", &w.clerk).await;
    assert_eq!(listed.items().len(), 2);
}

async fn a_deactivated_hall_takes_no_new_orders_and_finishes_what_it_holds(app: TestApp) {
    let w = World::new(app).await;
    let held = w.claimed_order().await;
    let waiting = w.open_order().await;
    let city_wide = w.open_order_to(None).await;
    let r = w
        .app
        .post(
            &format!("{}/deactivate", hall_path(&w.hall_a)),
            &w.admin,
            &json!({}),
        )
        .await;
    let hall = r.assert_status(200);
    assert!(hall["deactivated_at"].is_string(), "{hall}");
    // Opening or rerouting to it is refused.
    let body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住",
    });
    w.app
        .answers_at(
            HallDeactivated,
            "target_hall_id",
            [post("/api/v1/work-orders").by(&w.clerk).json(&body)],
        )
        .await;
    let other = w.open_order_to(Some(&w.hall_b)).await;
    let reroute = json!({
        "target_province": "37", "target_city": "370100", "target_hall_id": w.hall_a,
        "reason": "改派",
    });
    let id = |o: &Value| o["id"].as_str().expect("id").to_owned();
    w.app
        .answers_at(
            HallDeactivated,
            "target_hall_id",
            [post(format!("/api/v1/work-orders/{}/reroute", id(&other)))
                .by(&w.clerk)
                .json(&reroute)],
        )
        .await;
    // Its staff claim nothing new, not even a city-wide order or one addressed to it before.
    for order in [&waiting, &city_wide] {
        w.app
            .answers(
                InvalidState,
                [post(format!("/api/v1/work-orders/{}/claim", id(order))).by(&w.staff)],
            )
            .await;
    }
    // What they hold they finish: the order they claimed goes to a submitted result.
    let jws = w.signer.sign(&w.payload(&held, "match"));
    w.submit(&held, &jws).await.assert_status(201);
    // Open orders stay visible, and the clerk can send the waiting one elsewhere.
    w.app
        .get(&format!("/api/v1/work-orders/{}", id(&waiting)), &w.staff)
        .await
        .assert_status(200);
    let away = json!({
        "target_province": "37", "target_city": "370100", "target_hall_id": w.hall_b,
        "reason": "营业厅停用，改派",
    });
    w.app
        .act(&id(&waiting), "reroute", &w.clerk, &away)
        .await
        .assert_status(200);
    w.app
        .answers(
            InvalidState,
            [post(format!("{}/deactivate", hall_path(&w.hall_a))).by(&w.admin)],
        )
        .await;
    // Reactivated, it takes orders again.
    w.app
        .post(
            &format!("{}/reactivate", hall_path(&w.hall_a)),
            &w.admin,
            &json!({}),
        )
        .await
        .assert_status(200);
    w.app
        .post("/api/v1/work-orders", &w.clerk, &body)
        .await
        .assert_status(201);
    for action in ["hall.deactivated", "hall.reactivated"] {
        let events = w.audit_events(&format!("action={action}")).await;
        assert_eq!(events.len(), 1, "{action}");
        assert_eq!(events[0]["detail"]["hall_id"], w.hall_a);
    }
}

async fn the_people_endpoints_refuse_bad_calls_in_the_contract_order(app: TestApp) {
    let w = World::new(app).await;
    let hall = hall_path(&w.hall_b);
    let patch = |body: &Value| crate::helpers::call("PATCH", hall.clone()).json(body);
    w.app
        .answers(
            InvalidRequest,
            [
                get(format!("{USERS}?limit=0")).by(&w.admin),
                get(format!("{USERS}?role=boss")).by(&w.admin),
                get(format!("{USERS}?province=99")).by(&w.admin),
                get(format!("{USERS}?nope=1")).by(&w.admin),
                patch(&json!({"code": "X"})).by(&w.admin),
            ],
        )
        .await;
    w.app
        .answers(
            Forbidden,
            [
                get(USERS).by(&w.clerk),
                get(format!("{USERS}/clerk.yn")).by(&w.auditor),
                patch(&json!({"name": "x"})).by(&w.clerk),
                post(format!("{hall}/deactivate")).by(&w.staff),
                post(format!("{hall}/reactivate")).by(&w.clerk),
            ],
        )
        .await;
    w.app
        .answers(
            NotFound,
            [
                get(format!("{USERS}/nobody")).by(&w.admin),
                crate::helpers::call("PATCH", hall_path("nope"))
                    .by(&w.admin)
                    .json(&json!({"name": ""})),
                post(format!("{}/deactivate", hall_path("nope"))).by(&w.admin),
            ],
        )
        .await;
    w.app
        .answers(
            InvalidState,
            [post(format!("{hall}/reactivate")).by(&w.admin)],
        )
        .await;
    for (body, field) in [
        (json!({"name": " "}), "name"),
        (json!({"address": ""}), "address"),
        (json!({"email": "not an address"}), "email"),
        (json!({"name": "", "email": "x"}), "name"),
    ] {
        w.app
            .answers_at(InvalidField, field, [patch(&body).by(&w.admin)])
            .await;
    }
    w.app
        .answers(Unauthenticated, [get(USERS), patch(&json!({"name": "x"}))])
        .await;
    w.app.login("staff.b", PASSWORD).await.assert_status(200);
}

/// Makes the app's database refuse writes: a SQLite database capped at its current size (a
/// full disk), a PostgreSQL database set read-only (its sessions ended, so new ones take it).
fn refuse_writes(app: &TestApp, refuse: bool) {
    match app.backend {
        Backend::Sqlite => app.cap_sqlite_pages(refuse.then_some(1)),
        Backend::Postgres => {
            let db = app.database_url.rsplit('/').next().expect("database name");
            let setting = if refuse {
                "SET default_transaction_read_only = on"
            } else {
                "RESET default_transaction_read_only"
            };
            crate::helpers::pg_admin_execute(&format!("ALTER DATABASE {db} {setting}"));
            if refuse {
                crate::helpers::pg_admin_execute(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{db}' AND pid <> pg_backend_pid()"
                ));
            }
        }
    }
}

fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum()
}

async fn a_database_that_refuses_writes_answers_storage_full_until_it_takes_them_again(
    app: TestApp,
) {
    let w = World::new(app).await;
    let reason = match w.app.backend {
        Backend::Sqlite => "disk_full",
        Backend::Postgres => "read_only",
    };
    let mut acknowledged = vec![w.open_order().await];
    refuse_writes(&w.app, true);
    let open = |msisdn: String| {
        json!({
            "msisdn": msisdn, "target_province": "37", "target_city": "370100",
            "target_hall_id": w.hall_a, "reason": "用户长期在济南居住",
        })
    };
    // A freed page or a session from before may take a write or two; then the refusal.
    let (mut refused, mut seen) = (None, Vec::new());
    for _ in 0..40 {
        let r = w
            .app
            .post("/api/v1/work-orders", &w.clerk, &open(World::next_msisdn()))
            .await;
        seen.push(r.status);
        match (r.status, r.body["code"].as_str()) {
            (201, _) => acknowledged.push(r.body.clone()),
            (503, Some("storage_full")) => {
                refused = Some(r);
                break;
            }
            // Sessions the test ended answer once each, as a lost connection does.
            (503, Some("unavailable")) => {}
            (status, _) => panic!("unexpected {status} {}", r.body),
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("the database never refused a write: {seen:?}"));
    refused.problem(StorageFull);
    assert_eq!(refused.retry_after(), 30);
    let ready = w.app.get_anon("/readyz").await;
    ready.problem(StorageFull);
    assert!(ready.retry_after() > 0);
    let text = String::from_utf8(w.app.get_anon("/metrics").await.raw).unwrap();
    let counted = metric(
        &text,
        &format!(
            "crossprov_storage_write_refusals_total{{reason=\"{reason}\",store=\"database\"}}"
        ),
    );
    assert!(counted >= 1, "{text}");
    assert_eq!(metric(&text, "crossprov_storage_refusing_writes"), 1);

    refuse_writes(&w.app, false);
    let app = &w.app;
    eventually(
        std::time::Duration::from_secs(20),
        "ready again",
        || async move {
            let r = app.get_anon("/readyz").await;
            (r.status == 200).then_some(()).ok_or(r.body.to_string())
        },
    )
    .await;
    let r = w
        .app
        .post("/api/v1/work-orders", &w.clerk, &open(World::next_msisdn()))
        .await;
    acknowledged.push(r.assert_status(201).clone());
    // Nothing acknowledged was lost.
    for order in &acknowledged {
        let id = order["id"].as_str().expect("id");
        let back = w
            .app
            .get(&format!("/api/v1/work-orders/{id}"), &w.clerk)
            .await;
        assert_eq!(back.assert_status(200)["reference"], order["reference"]);
    }
    let text = String::from_utf8(w.app.get_anon("/metrics").await.raw).unwrap();
    assert_eq!(metric(&text, "crossprov_storage_refusing_writes"), 0);
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.assert_status(200)["ok"], true);
}

provokes!(PROVOKED {
    PasswordChangeRequired => [a_reset_password_must_be_changed_before_anything_else],
    HallDeactivated => [a_deactivated_hall_takes_no_new_orders_and_finishes_what_it_holds],
    StorageFull => [a_database_that_refuses_writes_answers_storage_full_until_it_takes_them_again],
});

on_both_backends!(
    admins_list_and_read_users_by_role_hall_and_province,
    halls_are_read_and_updated_under_if_match_and_each_change_is_audited,
    the_people_endpoints_refuse_bad_calls_in_the_contract_order,
);
