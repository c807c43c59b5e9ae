//! The operations overview (`GET /api/v1/operations/overview`): every number counted from
//! orders moved through their life cycle, over the caller's orders, on both backends.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::helpers::ErrorCode::*;
use crate::helpers::{get, TestApp, World, NAME};
use crate::on_both_backends;

const OVERVIEW: &str = "/api/v1/operations/overview";

fn time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("a time: {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// The date people in China see at `at`.
fn beijing(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive()
}

/// An order opened by the clerk `token` (so in the clerk's home province) to hall A.
async fn open_by(w: &World, token: &str) -> Value {
    let body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住", "expected_name": NAME,
    });
    w.app
        .post("/api/v1/work-orders", token, &body)
        .await
        .assert_status(201)
        .clone()
}

async fn claim(w: &World, order: &Value) -> Value {
    let id = order["id"].as_str().expect("id");
    let claimed = w.app.act(id, "claim", &w.staff, &json!({})).await;
    claimed.assert_status(200).clone()
}

/// Claimed by hall A, evidence uploaded, a match submitted.
async fn submit(w: &World, order: &Value) -> Value {
    let claimed = claim(w, order).await;
    w.upload_required(&claimed).await;
    let jws = w.signer.sign(&w.payload(&claimed, "match"));
    w.submit(&claimed, &jws).await.assert_status(201).clone()
}

async fn complete(w: &World, order: &Value, clerk: &str) {
    let id = order["id"].as_str().expect("id");
    let done = w.app.act(id, "complete", clerk, &json!({})).await;
    assert_eq!(done.assert_status(200)["state"], "completed");
}

async fn overview(app: &TestApp, query: &str, token: &str) -> Value {
    app.get(&format!("{OVERVIEW}{query}"), token)
        .await
        .assert_status(200)
        .clone()
}

/// `completions_per_day` as (date, count), checking each day is there once, oldest first,
/// ending today.
fn per_day(overview: &Value) -> Vec<(NaiveDate, u64)> {
    let days: Vec<(NaiveDate, u64)> = overview["completions_per_day"]
        .as_array()
        .expect("completions_per_day")
        .iter()
        .map(|d| {
            let date = d["date"].as_str().expect("date");
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").expect("YYYY-MM-DD");
            (date, d["count"].as_u64().expect("count"))
        })
        .collect();
    let today = beijing(time(&overview["generated_at"]));
    assert_eq!(days.last().map(|d| d.0), Some(today), "{overview}");
    for pair in days.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + Duration::days(1), "{overview}");
    }
    days
}

fn non_zero(days: &[(NaiveDate, u64)]) -> Vec<(NaiveDate, u64)> {
    days.iter().copied().filter(|(_, n)| *n > 0).collect()
}

/// `oldest_open` names `order`, its age counted to `generated_at`.
fn assert_oldest(overview: &Value, order: &Value) {
    let oldest = &overview["oldest_open"];
    assert_eq!(oldest["id"], order["id"], "{overview}");
    assert_eq!(oldest["reference"], order["reference"]);
    assert_eq!(time(&oldest["created_at"]), time(&order["created_at"]));
    let age = time(&overview["generated_at"]) - time(&order["created_at"]);
    assert_eq!(oldest["age_seconds"], age.num_seconds(), "{overview}");
}

async fn the_overview_counts_backlog_past_due_and_completions_per_day(app: TestApp) {
    let w = World::new(app).await;
    let (yn, bj) = (w.clerk.clone(), w.other_clerk.clone());
    // Yunnan (53): one open (the oldest of all), one claimed, one submitted, one completed
    // now and one completed later. Beijing (11): one open, one claimed, one completed now,
    // one cancelled. Every order goes to hall A in Shandong (37).
    let yn_open = open_by(&w, &yn).await;
    let yn_claimed = open_by(&w, &yn).await;
    claim(&w, &yn_claimed).await;
    let yn_submitted = open_by(&w, &yn).await;
    let yn_submitted = submit(&w, &yn_submitted).await;
    let yn_done_now = open_by(&w, &yn).await;
    submit(&w, &yn_done_now).await;
    complete(&w, &yn_done_now, &yn).await;
    let yn_done_later = open_by(&w, &yn).await;
    let yn_done_later = submit(&w, &yn_done_later).await;
    let bj_open = open_by(&w, &bj).await;
    let bj_claimed = open_by(&w, &bj).await;
    let bj_claimed = claim(&w, &bj_claimed).await;
    let bj_done_now = open_by(&w, &bj).await;
    submit(&w, &bj_done_now).await;
    complete(&w, &bj_done_now, &bj).await;
    let bj_cancelled = open_by(&w, &bj).await;
    let id = bj_cancelled["id"].as_str().expect("id");
    let r = w
        .app
        .act(id, "cancel", &bj, &json!({"reason": "用户撤回"}))
        .await;
    assert_eq!(r.assert_status(200)["state"], "cancelled");

    let now = overview(&w.app, "", &w.admin).await;
    let today = beijing(time(&now["generated_at"]));
    assert_eq!(
        now["backlog"],
        json!([
            {"state": "open", "province": "11", "count": 1},
            {"state": "claimed", "province": "11", "count": 1},
            {"state": "open", "province": "53", "count": 1},
            {"state": "claimed", "province": "53", "count": 1},
            {"state": "submitted", "province": "53", "count": 2},
        ]),
        "{now}"
    );
    assert_eq!(now["past_due"], json!([]), "nothing is due yet");
    assert_oldest(&now, &yn_open);
    let days = per_day(&now);
    assert_eq!(days.len(), 30, "30 days unless asked");
    assert_eq!(non_zero(&days), [(today, 2)]);

    // Past every active order's due time, before any open or claimed one expires.
    let active = [
        &yn_open,
        &yn_claimed,
        &yn_submitted,
        &yn_done_later,
        &bj_open,
        &bj_claimed,
    ];
    let last_due = active.iter().map(|o| time(&o["due_at"])).max().unwrap();
    let first_deadline = [&yn_open, &yn_claimed, &bj_open, &bj_claimed]
        .iter()
        .map(|o| time(&o["deadline_at"]))
        .min()
        .unwrap();
    let later = last_due + Duration::hours(1);
    assert!(
        later < first_deadline,
        "due {last_due}, deadline {first_deadline}"
    );
    let moved = (later - time(&now["generated_at"])).num_seconds();
    assert!(moved > 86_400, "the later completion falls on another day");
    w.app.advance_clock(moved);
    // Tokens run on the service's clock: log in again.
    let (admin, yn) = (w.app.admin().await, w.app.token("clerk.yn").await);
    complete(&w, &yn_done_later, &yn).await;

    let after = overview(&w.app, "", &admin).await;
    let later_day = beijing(time(&after["generated_at"]));
    assert_eq!(
        after["backlog"],
        json!([
            {"state": "open", "province": "11", "count": 1},
            {"state": "claimed", "province": "11", "count": 1},
            {"state": "open", "province": "53", "count": 1},
            {"state": "claimed", "province": "53", "count": 1},
            {"state": "submitted", "province": "53", "count": 1},
        ]),
        "{after}"
    );
    assert_eq!(
        after["past_due"],
        json!([{"province": "11", "count": 2}, {"province": "53", "count": 3}]),
        "{after}"
    );
    assert_oldest(&after, &yn_open);
    let days = per_day(&after);
    assert_eq!(days.len(), 30);
    assert_eq!(non_zero(&days), [(today, 2), (later_day, 1)]);

    // `days` narrows or widens the window; the rest stays as it is.
    let one = overview(&w.app, "?days=1", &admin).await;
    assert_eq!(per_day(&one), [(later_day, 1)]);
    assert_eq!(one["backlog"], after["backlog"]);
    assert_eq!(one["past_due"], after["past_due"]);
    let ninety = overview(&w.app, "?days=90", &admin).await;
    let days = per_day(&ninety);
    assert_eq!(days.len(), 90);
    assert_eq!(non_zero(&days), [(today, 2), (later_day, 1)]);

    // A national auditor counts what the admin counts.
    let auditor = w.app.token("auditor").await;
    let national = overview(&w.app, "", &auditor).await;
    for part in ["backlog", "past_due", "completions_per_day"] {
        assert_eq!(national[part], after[part], "{part}");
    }
    assert_eq!(national["oldest_open"]["id"], yn_open["id"]);
}

async fn a_province_auditor_counts_only_orders_of_its_province(app: TestApp) {
    let w = World::new(app).await;
    let (yn, bj) = (w.clerk.clone(), w.other_clerk.clone());
    let beijing_auditor = w
        .app
        .create_user(&w.admin, "auditor.bj", "auditor", Some("11"), None)
        .await;
    let shandong_auditor = w
        .app
        .create_user(&w.admin, "auditor.sd", "auditor", Some("37"), None)
        .await;
    let hebei_auditor = w
        .app
        .create_user(&w.admin, "auditor.he", "auditor", Some("13"), None)
        .await;
    let yn_open = open_by(&w, &yn).await;
    let yn_done = open_by(&w, &yn).await;
    submit(&w, &yn_done).await;
    complete(&w, &yn_done, &yn).await;
    let bj_open = open_by(&w, &bj).await;
    let bj_claimed = open_by(&w, &bj).await;
    claim(&w, &bj_claimed).await;
    let bj_done = open_by(&w, &bj).await;
    submit(&w, &bj_done).await;
    complete(&w, &bj_done, &bj).await;

    // Beijing's auditor: orders whose home (11) or target (37) province is Beijing.
    let mine = overview(&w.app, "", &beijing_auditor).await;
    let today = beijing(time(&mine["generated_at"]));
    assert_eq!(
        mine["backlog"],
        json!([
            {"state": "open", "province": "11", "count": 1},
            {"state": "claimed", "province": "11", "count": 1},
        ]),
        "{mine}"
    );
    assert_oldest(&mine, &bj_open);
    assert_eq!(non_zero(&per_day(&mine)), [(today, 1)]);
    assert_eq!(mine["past_due"], json!([]));

    // Shandong's auditor: every order goes to Shandong, so all of them, counted under their
    // home provinces.
    let target = overview(&w.app, "", &shandong_auditor).await;
    assert_eq!(
        target["backlog"],
        json!([
            {"state": "open", "province": "11", "count": 1},
            {"state": "claimed", "province": "11", "count": 1},
            {"state": "open", "province": "53", "count": 1},
        ]),
        "{target}"
    );
    assert_oldest(&target, &yn_open);
    assert_eq!(non_zero(&per_day(&target)), [(today, 2)]);

    // A province with no orders: nothing, every day still present.
    let none = overview(&w.app, "?days=7", &hebei_auditor).await;
    assert_eq!(none["backlog"], json!([]));
    assert_eq!(none["past_due"], json!([]));
    assert_eq!(none["oldest_open"], Value::Null);
    assert_eq!(
        per_day(&none),
        (0..7)
            .rev()
            .map(|back| (today - Duration::days(back), 0))
            .collect::<Vec<_>>()
    );
}

async fn only_admins_and_auditors_read_the_overview_and_days_is_checked_first(app: TestApp) {
    let w = World::new(app).await;
    w.app
        .answers(
            Forbidden,
            [
                get(OVERVIEW).by(&w.clerk),
                get(OVERVIEW).by(&w.staff),
                get(format!("{OVERVIEW}?days=7")).by(&w.other_clerk),
            ],
        )
        .await;
    w.app.answers(Unauthenticated, [get(OVERVIEW)]).await;
    // A bad `days` answers 400 before the role's 403, as every query's does.
    let bad = ["0", "91", "-1", "abc", "1.5", "", "99999999999"];
    for token in [&w.admin, &w.auditor, &w.clerk] {
        w.app
            .answers_at(
                InvalidRequest,
                "days",
                bad.map(|d| get(format!("{OVERVIEW}?days={d}")).by(token)),
            )
            .await;
    }
    w.app
        .answers(
            InvalidRequest,
            [get(format!("{OVERVIEW}?province=53")).by(&w.admin)],
        )
        .await;
    // Nothing opened yet: an empty overview, every day present.
    let empty = overview(&w.app, "?days=90", &w.admin).await;
    assert_eq!(empty["backlog"], json!([]));
    assert_eq!(empty["past_due"], json!([]));
    assert_eq!(empty["oldest_open"], Value::Null);
    let days = per_day(&empty);
    assert_eq!(days.len(), 90);
    assert!(non_zero(&days).is_empty());
}

on_both_backends!(
    the_overview_counts_backlog_past_due_and_completions_per_day,
    a_province_auditor_counts_only_orders_of_its_province,
    only_admins_and_auditors_read_the_overview_and_days_is_checked_first,
);
