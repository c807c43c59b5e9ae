//! The web console end to end, in headless Chromium driven through chromedriver (WebDriver):
//! each person signs in in a browser of their own and clicks, types, picks and uploads as at
//! their desk, on both backends. Every page visited is saved as a screenshot under
//! `target/console-screenshots/<backend>/` (what `docs/console.md` shows).
//!
//! Without chromedriver or Chromium the tests say so and pass, unless
//! `CROSSPROV_TEST_BROWSER_REQUIRED=1` (as in CI), when they fail.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{eventually, free_port, sha256_hex, Backend, TestApp, ADMIN, PASSWORD};
use crate::helpers::{ID_NUMBER, NAME};
use crate::on_both_backends;

on_both_backends!(a_registration_goes_through_the_console_from_every_desk);

/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(30);
/// The desktop every screenshot is taken at, and the tablet the order page is also shown on.
const DESKTOP: (u32, u32) = (1280, 800);
const TABLET: (u32, u32) = (820, 1180);

const MSISDN: &str = "18912345678";
const HALL: &str = "JN-LX-01";
const OTHER_HALL: &str = "JN-SZ-02";
const CLERK: &str = "clerk.yn";
const STAFF: &str = "staff.lx";
const OTHER_STAFF: &str = "staff.sz";
const AUDITOR: &str = "auditor.cn";

async fn a_registration_goes_through_the_console_from_every_desk(app: TestApp) {
    let Some(driver) = Driver::start(app.backend).await else {
        return;
    };
    let files = EvidenceFiles::write(driver.dir.path());

    // 1. The admin (made as every test makes it) creates the halls and the people.
    let admin = driver.browser(&app, "admin").await;
    admin.login(ADMIN).await;
    assert_eq!(admin.path().await, "/console/admin/operations");
    admin.shot("admin-operations").await;

    admin.click("a[href='/console/admin/halls']").await;
    let hall = admin
        .create_hall(HALL, "济南历下营业厅", "济南市历下区泉城路 1 号")
        .await;
    let other_hall = admin
        .create_hall(OTHER_HALL, "济南市中营业厅", "济南市市中区经四路 5 号")
        .await;
    assert_ne!(hall, other_hall);
    admin.shot("admin-halls").await;

    admin.click("a[href='/console/admin/users']").await;
    admin
        .create_user(CLERK, "clerk", UserScope::Province("53"))
        .await;
    admin
        .create_user(STAFF, "hall_staff", UserScope::Hall(&hall))
        .await;
    admin.create_user(AUDITOR, "auditor", UserScope::None).await;
    admin
        .create_user(OTHER_STAFF, "hall_staff", UserScope::Hall(&other_hall))
        .await;
    admin.shot("admin-users").await;

    // 2. The Yunnan clerk opens an order for a subscriber now living in Jinan.
    let clerk = driver.browser(&app, "clerk").await;
    clerk.login(CLERK).await;
    assert_eq!(clerk.path().await, "/console/orders");
    clerk.click("a[href='/console/orders/new']").await;
    clerk.fill("#msisdn", "189 1234 5678").await;
    clerk.select("#target_province", "37").await;
    clerk.select("#target_city", "370100").await;
    // The hall picker is filled from the API once the city is chosen.
    clerk.select("#target_hall_id", &hall).await;
    clerk.fill("#expected_name", NAME).await;
    clerk
        .fill("#reason", "用户常住济南，需在当地营业厅完成实名核验")
        .await;
    clerk.shot("clerk-new-order").await;
    clerk.click("#open-order button[type='submit']").await;
    let order = clerk
        .until(
            "the new order's page",
            "const m = location.pathname.match(/^\\/console\\/orders\\/([^/]+)$/); \
             return m && m[1] !== 'new' && document.querySelector('h1 .state') ? m[1] : null",
        )
        .await
        .as_str()
        .expect("an order id")
        .to_owned();
    let order_page = format!("/console/orders/{order}");
    clerk.find("h1 .state-open").await;
    let facts = clerk.text("#h-facts + dl.facts").await;
    assert!(facts.contains(MSISDN), "{facts}");
    assert!(facts.contains(NAME), "{facts}");
    assert!(facts.contains(&hall), "{facts}");
    assert_eq!(clerk.count("#do-claim").await, 0, "a clerk does not claim");
    clerk.shot("clerk-order-open").await;

    clerk.click("a[href='/console/orders']").await;
    let row = clerk
        .text(&format!("#orders tr:has(a[href='{order_page}'])"))
        .await;
    assert!(row.contains(MSISDN) && row.contains("待认领"), "{row}");
    let reference = clerk.text(&format!("#orders a[href='{order_page}']")).await;
    clerk.shot("clerk-orders").await;

    // 3. The hall's staff member makes a signing key in their own browser and enrols it.
    let staff = driver.browser(&app, "staff").await;
    staff.login(STAFF).await;
    assert_eq!(staff.path().await, "/console/inbox");
    staff.click("a[href='/console/keys']").await;
    staff
        .until(
            "the key status of a browser without a key",
            "const s = document.getElementById('device-key-status'); \
             return s.textContent === document.getElementById('enrol').dataset.none",
        )
        .await;
    staff.click("#make-key").await;
    staff.find("#device-key-status[data-state='pending']").await;
    let kid = staff.text("#device-kid").await;
    assert!(kid.starts_with(&format!("dev-{STAFF}-")), "{kid}");
    // The private half stays in this browser, not extractable.
    let stored = staff
        .run_async(&format!(
            "const done = arguments[arguments.length - 1]; \
             const open = indexedDB.open('crossprov-device-keys', 1); \
             open.onsuccess = () => {{ \
               const get = open.result.transaction('keys').objectStore('keys').get('{hall}/{STAFF}'); \
               get.onsuccess = () => done(get.result ? {{ kid: get.result.kid, \
                 extractable: get.result.keys.privateKey.extractable, \
                 alg: get.result.keys.privateKey.algorithm.namedCurve }} : null); \
             }}; open.onerror = () => done(null);"
        ))
        .await;
    assert_eq!(
        stored,
        json!({ "kid": kid, "extractable": false, "alg": "P-256" })
    );
    staff.shot("staff-key-pending").await;

    // 4. The admin approves it.
    admin.click("a[href='/console/admin/keys']").await;
    let pending_row = format!("#pending-keys tr[data-kid='{kid}']");
    let pending = admin.text(&pending_row).await;
    assert!(
        pending.contains(&hall) && pending.contains(STAFF),
        "{pending}"
    );
    admin.shot("admin-keys-pending").await;
    admin
        .click(&format!("{pending_row} button[data-approve]"))
        .await;
    admin
        .until(
            "the pending table without the approved key",
            &format!(
                "return document.readyState === 'complete' \
                 && !document.querySelector(\"{pending_row}\") \
                 && !!document.querySelector('#pending-keys td.empty')"
            ),
        )
        .await;

    staff.refresh().await;
    staff
        .find("#device-key-status[data-state='approved']")
        .await;
    assert_eq!(staff.text("#device-kid").await, kid);
    staff.shot("staff-key-approved").await;

    // 5. The staff member claims the order, uploads the files, signs and submits the result.
    staff.click("a[href='/console/inbox']").await;
    let new = staff.text("section[aria-labelledby='h-new']").await;
    assert!(new.contains(&reference) && new.contains(MSISDN), "{new}");
    staff.shot("staff-inbox").await;
    staff
        .click(&format!(
            "section[aria-labelledby='h-new'] a[href='{order_page}']"
        ))
        .await;
    staff.find("#do-claim").await;
    staff.shot("staff-order-open").await;
    staff.click("#do-claim").await;
    staff.find("h1 .state-claimed").await;
    let claimed_by = staff.text("#h-facts + dl.facts").await;
    assert!(claimed_by.contains(STAFF), "{claimed_by}");
    staff.shot("staff-order-claimed").await;

    staff.click("#do-verify").await;
    let key_status = staff.text("#key-status.ok").await;
    assert!(key_status.contains(&kid), "{key_status}");
    for (kind, path, bytes) in &files.items {
        staff
            .find(&format!("#file-{kind}"))
            .await
            .send_keys(&path.display().to_string())
            .await
            .expect("a file chosen");
        let sha = sha256_hex(bytes);
        staff
            .find(&format!(
                ".upload[data-kind='{kind}'][data-uploaded='{sha}']"
            ))
            .await;
        let shown = staff
            .text(&format!(".upload[data-kind='{kind}'] code.sha"))
            .await;
        assert!(shown.contains(&sha) && shown.contains("已上传"), "{shown}");
    }
    staff.select("#outcome", "match").await;
    staff.fill("#doc-number", ID_NUMBER).await;
    staff.fill("#doc-name", NAME).await;
    let valid_until = (chrono::Utc::now() + chrono::Duration::days(3650)).date_naive();
    staff.fill_date("#doc-valid", valid_until).await;
    staff.fill("#face", "0.97").await;
    staff.shot("staff-verify").await;
    staff.click("#sign-submit").await;
    staff
        .until(
            "the order page after signing",
            &format!(
                "return location.pathname === '{order_page}' && !!document.getElementById('result')"
            ),
        )
        .await;
    staff.find("h1 .state-submitted").await;
    let result = staff.text("#result").await;
    assert!(result.contains("一致"), "{result}");
    assert!(result.contains("人脸比对分数: 0.97"), "{result}");
    assert!(
        result.contains(&kid) && result.contains("ES256"),
        "{result}"
    );
    assert!(result.contains(STAFF), "{result}");
    assert!(
        staff.text("#result .ok").await.contains("有效"),
        "the signature is shown valid"
    );
    staff.shot("staff-order-submitted").await;

    // 6. The clerk sees the result, the files and the history, and completes the order.
    clerk.goto(&order_page).await;
    clerk
        .reload_until(
            "the timeline with the submitted result",
            "return !!document.querySelector('h1 .state-submitted') && \
             document.getElementById('timeline')?.textContent.includes('提交核验结果')",
        )
        .await;
    let timeline = clerk.text("#timeline").await;
    for step in ["开单", "认领", "上传材料", "提交核验结果"] {
        assert!(timeline.contains(step), "{step} missing from {timeline}");
    }
    let shown: Vec<String> = serde_json::from_value(
        clerk
            .run("return [...document.querySelectorAll('ul.evidence .sha code')].map(c => c.textContent)")
            .await,
    )
    .expect("digests");
    let mut sent: Vec<String> = files.items.iter().map(|(_, _, b)| sha256_hex(b)).collect();
    let mut shown_sorted = shown.clone();
    shown_sorted.sort();
    sent.sort();
    assert_eq!(shown_sorted, sent, "the evidence the clerk sees");
    // The thumbnails are the files themselves, decoded by the browser.
    clerk
        .until(
            "the evidence thumbnails decoded",
            "const imgs = [...document.querySelectorAll('ul.evidence img')]; \
             return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0)",
        )
        .await;
    assert_eq!(
        clerk.count("ul.evidence iframe").await,
        1,
        "the PDF, framed"
    );
    clerk.shot("clerk-order-submitted").await;
    clerk.scroll_to("#timeline").await;
    clerk.shot("clerk-order-timeline").await;

    clerk.click("#do-complete").await;
    clerk.accept_confirm().await;
    clerk.find("h1 .state-completed").await;
    clerk.click("details:has(#receipt) summary").await;
    let receipt = clerk.text("#receipt").await;
    assert_eq!(receipt.split('.').count(), 3, "a compact JWS: {receipt}");
    let download = format!("{order_page}/receipt.jws");
    clerk.find(&format!("a[download][href='{download}']")).await;
    let fetched = clerk.fetch("GET", &download, json!({}), None).await;
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["text"].as_str(), Some(receipt.as_str()));
    assert!(
        fetched["disposition"]
            .as_str()
            .is_some_and(|d| d.starts_with("attachment") && d.contains(&reference)),
        "{fetched}"
    );
    clerk.scroll_to("#receipt").await;
    clerk.shot("clerk-order-completed").await;
    clerk.resize(TABLET).await;
    clerk.run("window.scrollTo(0, 0)").await;
    clerk.shot("clerk-order-completed-tablet").await;
    clerk.resize(DESKTOP).await;

    // 7. The auditor finds the number's history, exports it, and sees the chain intact.
    let auditor = driver.browser(&app, "auditor").await;
    auditor.login(AUDITOR).await;
    assert_eq!(auditor.path().await, "/console/audit");
    auditor.fill("#a-msisdn", MSISDN).await;
    auditor
        .click("form[role='search'] button[type='submit']")
        .await;
    auditor
        .reload_until(
            "the number's events up to the completion",
            "return document.getElementById('events')?.textContent.includes('work_order.completed')",
        )
        .await;
    let events = auditor.text("#events").await;
    for action in [
        "work_order.opened",
        "work_order.claimed",
        "evidence.uploaded",
        "work_order.result_submitted",
        "work_order.completed",
    ] {
        assert!(events.contains(action), "{action} missing from {events}");
    }
    // The integrity check runs when asked for, on the same search.
    auditor.click("#check-integrity").await;
    auditor.find("#integrity-result.ok").await;
    auditor.find("#events").await;
    auditor.shot("auditor-audit").await;
    auditor.scroll_to("#h-events").await;
    auditor.shot("auditor-audit-events").await;
    auditor.click("#export-csv").await;
    let csv_path = auditor.downloads.join("audit-events.csv");
    let csv = eventually(WAIT, "the CSV export saved", || {
        let path = csv_path.clone();
        async move { std::fs::read_to_string(&path).map_err(|e| e.to_string()) }
    })
    .await;
    assert!(
        csv.starts_with("seq,at,actor,role,action,work_order,detail,prev_hash,hash\n"),
        "{csv}"
    );
    assert!(csv.contains("work_order.completed"), "{csv}");
    // The export is on the trail, with the filter used.
    let auditor_token = app.token(AUDITOR).await;
    let exported = eventually(WAIT, "the audit.exported event", || {
        let app = &app;
        let token = &auditor_token;
        async move {
            let items = app
                .get("/api/v1/audit/events?action=audit.exported", token)
                .await
                .items();
            items
                .into_iter()
                .find(|e| e["actor"] == AUDITOR)
                .ok_or_else(|| "none yet".to_owned())
        }
    })
    .await;
    assert_eq!(exported["detail"]["format"], "csv", "{exported}");
    assert_eq!(
        exported["detail"]["filters"]["msisdn"], MSISDN,
        "{exported}"
    );
    auditor.refresh().await;
    let integrity = auditor.find("#integrity-result").await;
    assert_eq!(
        integrity.attr("class").await.expect("class").as_deref(),
        Some("banner ok")
    );

    //    The admin's operations page counts today's completion (a Beijing date) in its plot,
    //    and no order is left active.
    admin.click("a[href='/console/admin/operations']").await;
    let today = (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string();
    // The description is not drawn, so it is read from the document, not as visible text.
    let completions = admin
        .run(
            "return document.querySelector(\"#plot-completions svg[role='img'] desc\").textContent",
        )
        .await;
    assert!(
        completions
            .as_str()
            .is_some_and(|d| d.ends_with(&format!("{today} 1"))),
        "{completions}"
    );
    assert!(admin.count("#plot-completions svg rect").await > 0);
    assert!(admin.text("#oldest-open").await.contains("没有在办工单"));
    admin.scroll_to("#h-completions").await;
    admin.shot("admin-operations-completed").await;

    // 8. Refusals. An API call with the session cookie but without the session's CSRF token
    //    (or with a forged one) is refused, and nothing is opened.
    let body = json!({
        "msisdn": "13700001111", "target_province": "37", "target_city": "370100",
        "reason": "forged",
    })
    .to_string();
    for headers in [
        json!({ "Content-Type": "application/json" }),
        json!({ "Content-Type": "application/json", "X-CSRF-Token": "forged" }),
    ] {
        let refused = clerk
            .fetch("POST", "/api/v1/work-orders", headers, Some(&body))
            .await;
        assert_eq!(refused["status"], 403, "{refused}");
        assert_eq!(refused["type"], "application/problem+json", "{refused}");
        let problem: Value = serde_json::from_str(refused["text"].as_str().expect("text"))
            .expect("a problem document");
        assert_eq!(problem["code"], "csrf_rejected", "{problem}");
    }
    let clerk_token = app.token(CLERK).await;
    let forged = app
        .get("/api/v1/work-orders?msisdn=13700001111", &clerk_token)
        .await
        .items();
    assert!(forged.is_empty(), "{forged:?}");

    //    A form on another site posting to /console/logout without the token is refused, and
    //    the clerk stays signed in.
    let attack = format!(
        "<form method=post action='{}/console/logout'><button id=go>win a prize</button></form>",
        app.base
    );
    let attack = format!(
        "data:text/html;charset=utf-8,{}",
        percent_encoding::utf8_percent_encode(&attack, percent_encoding::NON_ALPHANUMERIC)
    );
    clerk.c.goto(&attack).await.expect("the other site");
    clerk.click("#go").await;
    let refused = clerk
        .until(
            "the refusal page",
            "return location.pathname === '/console/logout' && document.querySelector('h1')?.textContent",
        )
        .await;
    assert!(
        refused.as_str().is_some_and(|t| t.contains("HTTP 403")),
        "{refused}"
    );
    clerk.shot("cross-site-logout-refused").await;
    clerk.goto("/console/orders").await;
    assert_eq!(clerk.path().await, "/console/orders", "still signed in");
    assert!(clerk.text("header .who").await.contains(CLERK));

    //    Staff of another hall opening the order's address get the not-found page, with
    //    nothing of the order on it.
    let stranger = driver.browser(&app, "other-staff").await;
    stranger.login(OTHER_STAFF).await;
    for path in [order_page.clone(), format!("{order_page}/verify")] {
        stranger.goto(&path).await;
        let title = stranger.text("h1").await;
        assert!(title.contains("HTTP 404"), "{path}: {title}");
        let page = stranger
            .run("return document.documentElement.outerHTML")
            .await;
        let page = page.as_str().expect("html");
        for secret in [
            MSISDN,
            "189****5678",
            NAME,
            reference.as_str(),
            hall.as_str(),
        ] {
            assert!(!page.contains(secret), "{path} shows {secret}");
        }
        let status = stranger.fetch("GET", &path, json!({}), None).await;
        assert_eq!(status["status"], 404, "{path}: {status}");
    }
    stranger.goto(&order_page).await;
    stranger.shot("other-hall-order-not-found").await;

    // 9. The admin looks after halls and people: renames the other hall, deactivates it, and
    //    disables its staff member, whose open session ends at once.
    admin.click("a[href='/console/admin/halls']").await;
    let other_row = format!("#halls tr[data-hall='{other_hall}']");
    admin.click(&format!("{other_row} details summary")).await;
    admin
        .fill(
            &format!("{other_row} input[name='name']"),
            "济南市中营业厅（经四路）",
        )
        .await;
    admin.click(&format!("{other_row} button[data-save]")).await;
    admin
        .reload_until(
            "the renamed hall",
            &format!(
                "return document.querySelector(\"{other_row}\")?.textContent.includes('经四路）')"
            ),
        )
        .await;
    admin
        .click(&format!("{other_row} button[data-deactivate]"))
        .await;
    admin.accept_confirm().await;
    admin
        .reload_until(
            "the hall deactivated",
            &format!("return !!document.querySelector(\"{other_row} button[data-reactivate]\")"),
        )
        .await;
    assert!(admin
        .text(&format!("{other_row} td.status"))
        .await
        .contains("已停用"));
    let shown = app
        .get(
            &format!("/api/v1/halls/{other_hall}"),
            &app.token(ADMIN).await,
        )
        .await;
    assert!(shown.body["deactivated_at"].is_string(), "{:?}", shown.body);
    assert_eq!(shown.body["name"], "济南市中营业厅（经四路）");
    admin.shot("admin-hall-deactivated").await;

    admin.click("a[href='/console/admin/users']").await;
    let user_row = format!("#users tr[data-username='{OTHER_STAFF}']");
    admin
        .click(&format!("{user_row} button[data-disable]"))
        .await;
    admin.accept_confirm().await;
    admin
        .reload_until(
            "the user disabled",
            &format!("return !!document.querySelector(\"{user_row} button[data-enable]\")"),
        )
        .await;
    assert_eq!(
        admin
            .count("#users tr[data-username='admin'] button[data-disable]")
            .await,
        0,
        "an admin is not offered to disable their own account"
    );
    admin.shot("admin-user-disabled").await;
    stranger.goto("/console/inbox").await;
    assert_eq!(
        stranger.path().await,
        "/console/login",
        "a disabled user is signed out"
    );

    //    The admin resets the auditor's password: the auditor's session ends, the temporary
    //    password opens only the password page, and the auditor picks their own.
    const TEMPORARY: &str = "temporary-passphrase";
    const OWN: &str = "auditor-own-passphrase";
    let auditor_row = format!("#users tr[data-username='{AUDITOR}']");
    admin.click(&format!("{auditor_row} details summary")).await;
    admin
        .fill(&format!("{auditor_row} input[name='password']"), TEMPORARY)
        .await;
    admin
        .click(&format!("{auditor_row} button[data-reset]"))
        .await;
    admin
        .reload_until(
            "the reset shown in the list",
            &format!(
                "return document.querySelector(\"{auditor_row} td.status\")?.textContent.includes('待本人修改密码')"
            ),
        )
        .await;
    auditor.goto("/console/audit").await;
    assert_eq!(
        auditor.path().await,
        "/console/login",
        "the reset ends the session"
    );
    auditor.login_with(AUDITOR, TEMPORARY).await;
    assert_eq!(auditor.path().await, "/console/password");
    auditor.goto("/console/audit").await;
    assert_eq!(
        auditor.path().await,
        "/console/password",
        "only the password page opens"
    );
    assert_eq!(
        auditor.count("header nav a").await,
        0,
        "no page offered but this one"
    );
    auditor.fill("#current_password", TEMPORARY).await;
    auditor.fill("#new_password", OWN).await;
    auditor.shot("auditor-password-change").await;
    auditor
        .click("form[data-api='POST /api/v1/me/password'] button[type='submit']")
        .await;
    auditor
        .until(
            "the login page after the change",
            "return location.pathname === '/console/login' && document.readyState === 'complete'",
        )
        .await;
    auditor.login_with(AUDITOR, OWN).await;
    assert_eq!(auditor.path().await, "/console/audit");

    for browser in [admin, clerk, staff, auditor, stranger] {
        browser.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// chromedriver and the browsers it starts

fn browser_required() -> bool {
    std::env::var("CROSSPROV_TEST_BROWSER_REQUIRED").is_ok_and(|v| v == "1" || v == "true")
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Says once per run, past the test harness's output capture, that these tests did not run.
fn skipped_notice(why: &str) {
    use std::io::Write;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: console end-to-end tests ({why}); install chromium and chromium-driver \
             to run them\n"
        );
    });
}

/// A chromedriver process for one test, in a process group of its own, with the browsers it
/// starts; dropping it ends them all. Screenshots are numbered across its browsers.
struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
    dir: tempfile::TempDir,
    shots: Rc<Shots>,
}

impl Driver {
    async fn start(backend: Backend) -> Option<Driver> {
        let driver = on_path(&["chromedriver"]);
        let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            let why = "chromedriver or chromium not found on PATH";
            assert!(
                !browser_required(),
                "a browser is required (CROSSPROV_TEST_BROWSER_REQUIRED) but {why}"
            );
            skipped_notice(why);
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log");
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("chromedriver starts");
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
            dir,
            shots: Rc::new(Shots::new(backend)),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited {status}: {}", driver.log());
            }
            assert!(
                start.elapsed() < WAIT,
                "chromedriver not listening: {}",
                driver.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        Some(driver)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A new browser (its own profile, so its own cookies and IndexedDB) at the desktop size.
    async fn browser(&self, app: &TestApp, who: &str) -> Browser {
        let profile = self.dir.path().join(format!("profile-{who}"));
        let downloads = self.dir.path().join(format!("downloads-{who}"));
        std::fs::create_dir_all(&downloads).expect("downloads folder");
        let capabilities = json!({
            "browserName": "chrome",
            // A confirm() is answered by the test, never dismissed behind its back.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.display()),
                    // The console as the counters see it: in Chinese.
                    "--lang=zh-CN",
                ],
                "prefs": {
                    "intl.accept_languages": "zh-CN,zh",
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session: {e}\n{}", self.log()));
        let browser = Browser {
            c,
            base: app.base.clone(),
            shots: self.shots.clone(),
            downloads,
            who: who.to_owned(),
        };
        browser.resize(DESKTOP).await;
        browser
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = -libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on the process group of a child this test started and has not
        // reaped (its pid is the group's id): chromedriver and the browsers it started.
        unsafe {
            libc::kill(group, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever of the group is left.
        unsafe {
            libc::kill(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// `target/console-screenshots/<backend>/NN-<page>.png`, numbered in the order taken.
struct Shots {
    dir: PathBuf,
    taken: Cell<u32>,
}

impl Shots {
    fn new(backend: Backend) -> Self {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target folder");
        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let dir = target.join("console-screenshots").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        Self {
            dir,
            taken: Cell::new(0),
        }
    }

    fn next(&self, page: &str) -> PathBuf {
        let n = self.taken.get() + 1;
        self.taken.set(n);
        self.dir.join(format!("{n:02}-{page}.png"))
    }
}

/// One person's browser.
struct Browser {
    c: Client,
    base: String,
    shots: Rc<Shots>,
    downloads: PathBuf,
    who: String,
}

enum UserScope<'a> {
    Province(&'a str),
    Hall(&'a str),
    None,
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("{}: open {path}: {e}", self.who));
    }

    async fn refresh(&self) {
        self.c.refresh().await.expect("reload");
    }

    async fn url(&self) -> String {
        self.c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn path(&self) -> String {
        self.c
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .expect("the current URL")
    }

    /// The first element `css` matches, once there is one.
    async fn find(&self, css: &str) -> Element {
        match self
            .c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "{}: no `{css}` on {} within {WAIT:?}: {e}\n{}",
                self.who,
                self.url().await,
                self.body_text().await
            ),
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.c
            .find_all(Locator::Css(css))
            .await
            .map(|all| all.len())
            .unwrap_or_default()
    }

    async fn body_text(&self) -> String {
        match self.c.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.click().await {
            panic!("{}: click `{css}` on {}: {e}", self.who, self.url().await);
        }
    }

    /// Types `text` into an empty field.
    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear a field");
        field.send_keys(text).await.expect("type");
        let value = field.prop("value").await.expect("value");
        assert_eq!(value.as_deref(), Some(text), "{css} after typing");
    }

    /// Types a date into a date field. Its segments come in the order of the browser's
    /// locale, which the page cannot tell (Chromium lays them out month first even with
    /// `--lang=zh-CN`): each order is typed until the field reads the date back.
    async fn fill_date(&self, css: &str, date: chrono::NaiveDate) {
        let field = self.find(css).await;
        let wanted = date.format("%Y-%m-%d").to_string();
        let mut seen = Vec::new();
        // A year typed first takes up to six digits before the month.
        for order in ["%m%d%Y", "%d%m%Y", "00%Y%m%d"] {
            field.clear().await.expect("clear the date");
            field
                .send_keys(&date.format(order).to_string())
                .await
                .expect("type the date");
            let value = field
                .prop("value")
                .await
                .expect("value")
                .unwrap_or_default();
            if value == wanted {
                return;
            }
            seen.push(value);
        }
        panic!("{}: {css} never read {wanted}: {seen:?}", self.who);
    }

    /// Picks the option of `value` once the select offers it (some are loaded by the page).
    async fn select(&self, css: &str, value: &str) {
        self.find(&format!("{css} option[value='{value}']")).await;
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{}: pick {value} in {css}: {e}", self.who));
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    async fn run(&self, script: &str) -> Value {
        self.c
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.who))
    }

    async fn run_async(&self, script: &str) -> Value {
        self.c
            .execute_async(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.who))
    }

    /// Polls `script` (a function body) until it returns something truthy, and returns it.
    /// A page in the middle of loading counts as "not yet".
    async fn until(&self, what: &str, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let last = self.c.execute(script, vec![]).await;
            match &last {
                Ok(v) if truthy(v) => return v.clone(),
                _ if start.elapsed() >= WAIT => panic!(
                    "{}: {what}: not within {WAIT:?} on {} (last: {last:?})\n{}",
                    self.who,
                    self.url().await,
                    self.body_text().await
                ),
                _ => actix_web::rt::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Reloads the page until `script` holds (what the page shows is written asynchronously,
    /// as audit events are).
    async fn reload_until(&self, what: &str, script: &str) {
        let start = Instant::now();
        loop {
            let last = self.c.execute(script, vec![]).await;
            match &last {
                Ok(v) if truthy(v) => return,
                _ if start.elapsed() >= WAIT => panic!(
                    "{}: {what}: not within {WAIT:?} on {}\n{}",
                    self.who,
                    self.url().await,
                    self.body_text().await
                ),
                _ => {
                    actix_web::rt::time::sleep(Duration::from_millis(250)).await;
                    self.refresh().await;
                }
            }
        }
    }

    /// A request from the page itself, with its cookies: {status, type, disposition, text}.
    async fn fetch(&self, method: &str, path: &str, headers: Value, body: Option<&str>) -> Value {
        let script = "const [method, path, headers, body, done] = arguments; \
             fetch(path, { method, headers, body: body ?? undefined, credentials: 'same-origin' }) \
               .then(async (r) => done({ status: r.status, type: r.headers.get('content-type'), \
                  disposition: r.headers.get('content-disposition'), text: await r.text() })) \
               .catch((e) => done({ status: 0, text: String(e) }));";
        self.c
            .execute_async(
                script,
                vec![json!(method), json!(path), headers, json!(body)],
            )
            .await
            .unwrap_or_else(|e| panic!("{}: fetch {path}: {e}", self.who))
    }

    /// Accepts the confirm() dialog the last click opened.
    async fn accept_confirm(&self) {
        let start = Instant::now();
        loop {
            match self.c.accept_alert().await {
                Ok(()) => return,
                Err(e) if start.elapsed() >= WAIT => {
                    panic!("{}: no dialog to accept: {e}", self.who)
                }
                Err(_) => actix_web::rt::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn scroll_to(&self, css: &str) {
        let element = self.find(css).await;
        self.c
            .execute(
                "arguments[0].scrollIntoView({ block: 'start' })",
                vec![serde_json::to_value(&element).expect("element")],
            )
            .await
            .expect("scroll");
    }

    /// Makes the page's viewport (what a screenshot shows) `width`×`height`: the window is
    /// larger by the browser's own bars, which headless Chromium keeps too.
    async fn resize(&self, (width, height): (u32, u32)) {
        let (mut w, mut h) = (i64::from(width), i64::from(height));
        for _ in 0..3 {
            let size = |v: i64| u32::try_from(v).expect("a window size");
            self.c
                .set_window_size(size(w), size(h))
                .await
                .expect("window size");
            let inner = self
                .run("return [window.innerWidth, window.innerHeight]")
                .await;
            let (iw, ih) = (
                inner[0].as_i64().expect("a width"),
                inner[1].as_i64().expect("a height"),
            );
            if (iw, ih) == (i64::from(width), i64::from(height)) {
                return;
            }
            w += i64::from(width) - iw;
            h += i64::from(height) - ih;
        }
        panic!("{}: no {width}×{height} viewport", self.who);
    }

    /// Saves what the window shows now as the next numbered screenshot.
    async fn shot(&self, page: &str) {
        // Chromium's PDF viewer paints a framed PDF a moment after the frame loads, with no
        // event to wait for: a pause, for the picture only (no assertion depends on it).
        if self.count("ul.evidence iframe").await > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
        }
        let png = self.c.screenshot().await.expect("a screenshot");
        let path = self.shots.next(page);
        std::fs::write(&path, png).expect("save the screenshot");
    }

    /// Signs in on the login page; the console then shows the role's start page.
    async fn login(&self, username: &str) {
        self.login_with(username, PASSWORD).await;
    }

    async fn login_with(&self, username: &str, password: &str) {
        self.goto("/console/login").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        if self.shots.taken.get() == 0 {
            self.shot("login").await;
        }
        self.click("form[action='/console/login'] button[type='submit']")
            .await;
        self.until(
            "the start page after signing in",
            "return location.pathname !== '/console/login' && document.readyState === 'complete'",
        )
        .await;
        let who = self.text("header .who").await;
        assert!(who.contains(username), "{who}");
    }

    /// Fills and sends the hall form; the hall's id as the table shows it.
    async fn create_hall(&self, code: &str, name: &str, address: &str) -> String {
        self.fill("#hall-code", code).await;
        self.fill("#hall-name", name).await;
        self.select("#hall-province", "37").await;
        self.select("#hall-city", "370100").await;
        self.fill("#hall-address", address).await;
        self.fill(
            "#hall-email",
            &format!("{}@halls.example.cn", code.to_lowercase()),
        )
        .await;
        self.click("#new-hall button[type='submit']").await;
        let id = self
            .until(
                "the new hall in the table",
                &format!(
                    "const row = [...document.querySelectorAll('#halls tbody tr')] \
                       .find((r) => r.cells[0].textContent === '{code}'); \
                     return row && document.readyState === 'complete' \
                       ? row.querySelector('code').textContent : null"
                ),
            )
            .await;
        id.as_str().expect("a hall id").to_owned()
    }

    async fn create_user(&self, username: &str, role: &str, scope: UserScope<'_>) {
        self.fill("#user-name", username).await;
        self.fill("#user-password", PASSWORD).await;
        self.select("#user-role", role).await;
        match scope {
            UserScope::Province(p) => self.select("#user-province", p).await,
            UserScope::Hall(h) => self.select("#user-hall", h).await,
            UserScope::None => {}
        }
        self.fill("#user-email", &format!("{username}@example.cn"))
            .await;
        self.click("#new-user button[type='submit']").await;
        self.until(
            "the new user in the table",
            &format!(
                "return document.readyState === 'complete' && \
                 [...document.querySelectorAll('#users tbody tr')] \
                   .some((r) => r.cells[0].textContent === '{username}')"
            ),
        )
        .await;
    }

    async fn close(self) {
        let _ = self.c.close().await;
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::Array(_) | Value::Object(_) => true,
    }
}

// ---------------------------------------------------------------------------------------
// The files a hall sends back: real images and a real PDF, so the browser can show them.

struct EvidenceFiles {
    /// Kind, file, bytes.
    items: Vec<(&'static str, PathBuf, Vec<u8>)>,
}

impl EvidenceFiles {
    fn write(dir: &Path) -> Self {
        let files = [
            (
                "id_front",
                "id-front.png",
                card_png([232, 240, 250], [70, 110, 170]),
            ),
            ("id_back", "id-back.pdf", pdf("ID card, back")),
            (
                "live_photo",
                "live-photo.png",
                card_png([245, 236, 226], [180, 120, 90]),
            ),
        ];
        let items = files
            .into_iter()
            .map(|(kind, name, bytes)| {
                let path = dir.join(name);
                std::fs::write(&path, &bytes).expect("write an evidence file");
                (kind, path, bytes)
            })
            .collect();
        Self { items }
    }
}

/// A 120×76 PNG: a card of colour `paper` with a block of `ink` where a photo would be.
fn card_png(paper: [u8; 3], ink: [u8; 3]) -> Vec<u8> {
    let (width, height) = (120u32, 76u32);
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            let photo = (8..44).contains(&x) && (10..66).contains(&y);
            let line = (52..112).contains(&x) && y % 12 == 4 && y > 10 && y < 66;
            raw.extend_from_slice(if photo || line { &ink } else { &paper });
        }
    }
    // zlib, stored blocks (no compression): valid, and small enough at this size.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).expect("a block");
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", z), (b"IEND", Vec::new())] {
        png.extend_from_slice(&u32::try_from(data.len()).expect("a chunk").to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A one-page PDF saying `text` (ASCII: the built-in font has nothing else).
fn pdf(text: &str) -> Vec<u8> {
    assert!(text.is_ascii(), "{text}");
    let content = format!("BT /F1 14 Tf 16 50 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 240 120] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
