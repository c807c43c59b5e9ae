//! Nobody waits unseen: notification mail through the outbox, spoken over SMTP to a real
//! server (`smtp_sink`) or written as files, through outages, crashes and several instances;
//! the SLA timers driven by the movable clock; the suspension date; the admin outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use crossprov::config::{MailTransport, Settings};
use serde_json::{json, Value};

use crate::helpers::ErrorCode::*;
use crate::helpers::{
    eventually, post, spawn_app_with, Backend, Configure, Deployment, Serve, TestApp, World, ADMIN,
    ID_NUMBER, NAME, PASSWORD,
};
use crate::smtp_sink::{read_messages, summary, Mail, SmtpSink};
use crate::{on_both_backends, provokes};

const HALL_A: &str = "jn-a@halls.example.cn";
const HALL_B: &str = "jn-b@halls.example.cn";
const CLERK: &str = "clerk.yn@example.cn";
/// The supervisor of the home province 53 (`sla.supervisors."53"`) in these tests.
const SUPERVISOR: &str = "supervisor.yn@example.cn";
/// `mail.from`'s domain by default: every `Message-ID` is `<row id@crossprov.invalid>`.
const FROM_DOMAIN: &str = "crossprov.invalid";
const BASE_URL: &str = "https://crossprov.example.cn";
const CLOCK: &str = "/api/v1/admin/clock";
const OUTBOX: &str = "/api/v1/admin/outbox";

/// How long mail caused by a step may take to arrive (the worker polls every 200 ms here).
const MAIL_WAIT: Duration = Duration::from_secs(30);
/// The contract: mail flows within 60 s of the server's return, a dead process's lease is
/// taken over within 60 s.
const CONTRACT_MINUTE: Duration = Duration::from_secs(60);
/// The contract: timers due by an advance of the clock fire within 5 s.
const TIMERS_WAIT: Duration = Duration::from_secs(5);

fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("id").to_owned()
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("a time: {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// Settings changes, applied one after the other.
fn settings(f: impl Fn(&mut Settings) + Send + Sync + 'static) -> Configure {
    Arc::new(f)
}

/// Mail over SMTP to `sink`, polled often, linking to `BASE_URL`.
fn smtp_to(sink: &SmtpSink, more: impl Fn(&mut Settings) + Send + Sync + 'static) -> Configure {
    let url = sink.url();
    settings(move |s| {
        s.mail.transport = MailTransport::Smtp;
        s.mail.smtp_url = url.clone().into();
        s.mail.poll_interval_ms = 200;
        s.mail.base_url = BASE_URL.into();
        more(s);
    })
}

/// The movable clock on, and the province 53's supervisor on file.
fn movable_clock(s: &mut Settings) {
    s.testing.movable_clock = true;
    s.sla.supervisors.insert("53".into(), SUPERVISOR.into());
}

/// Who got what: `(order, event, recipient)`, sorted, once per message received.
type Deliveries = Vec<(String, String, String)>;

fn deliveries(mails: &[Mail], orders: &[&str]) -> Deliveries {
    let mut got: Deliveries = mails
        .iter()
        .filter(|m| orders.contains(&m.work_order.as_str()))
        .map(|m| {
            (
                m.work_order.clone(),
                m.event.clone(),
                m.recipient().to_owned(),
            )
        })
        .collect();
    got.sort();
    got
}

/// The deliveries a list of `(order, event, recipients)` promises, each recipient once.
fn promised(rows: &[(&str, &str, &[&str])]) -> Deliveries {
    let mut want: Deliveries = rows
        .iter()
        .flat_map(|(order, event, to)| {
            to.iter()
                .map(|r| (order.to_string(), event.to_string(), r.to_string()))
        })
        .collect();
    want.sort();
    want
}

/// The orders a promise is about.
fn orders_in(want: &Deliveries) -> Vec<String> {
    let mut ids: Vec<String> = want.iter().map(|(o, _, _)| o.clone()).collect();
    ids.dedup();
    ids
}

/// Waits until the sink holds exactly `want` for the orders it names, then until no row is
/// pending, and checks again: what arrived is all that will arrive, each message once.
async fn exactly_delivered(
    app: &TestApp,
    sink: &SmtpSink,
    within: Duration,
    want: &Deliveries,
) -> Vec<Mail> {
    let ids = orders_in(want);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    sink.received_when(within, "the promised mail", |mails| {
        deliveries(mails, &ids) == *want
    })
    .await;
    outbox_drained(app).await;
    let mails = sink.received();
    assert_eq!(
        deliveries(&mails, &ids),
        *want,
        "each mail exactly once: {}",
        summary(&mails)
    );
    mails
        .into_iter()
        .filter(|m| ids.contains(&m.work_order.as_str()))
        .collect()
}

/// Waits until the outbox has no pending row (all sent, or failed).
async fn outbox_drained(app: &TestApp) {
    let admin = app.admin().await;
    eventually(MAIL_WAIT, "an outbox with nothing pending", || {
        let (app, admin) = (app, admin.clone());
        async move {
            let r = app
                .get(&format!("{OUTBOX}?state=pending&limit=200"), &admin)
                .await;
            let items = r.items();
            if items.is_empty() {
                Ok(())
            } else {
                Err(format!("{} pending: {:?}", items.len(), items))
            }
        }
    })
    .await;
}

/// The reference of each order, by id.
fn references(orders: &[&Value]) -> BTreeMap<String, String> {
    orders
        .iter()
        .map(|o| (id_of(o), o["reference"].as_str().expect("ref").to_owned()))
        .collect()
}

/// The contract's headers and what a reader may see: the reference in the Subject, a
/// `Message-ID` of the row, the `X-Crossprov-*` headers, text and HTML, a link to the order,
/// Chinese with English, only masked personal data.
#[track_caller]
fn assert_well_formed(mail: &Mail, reference: &str, msisdn: &str) {
    let at = mail.file.display().to_string();
    assert!(
        mail.subject.contains(reference),
        "{at}: the Subject {:?} names {reference}",
        mail.subject
    );
    let id = mail
        .message_id
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix(&format!("@{FROM_DOMAIN}>")))
        .unwrap_or_else(|| panic!("{at}: Message-ID {:?}", mail.message_id));
    assert!(
        !id.is_empty() && !id.contains(['@', '<', '>', ' ']),
        "{at}: Message-ID {:?}",
        mail.message_id
    );
    assert_eq!(mail.header_values("Message-ID").len(), 1, "{at}");
    assert_eq!(
        mail.header_values("X-Crossprov-Work-Order").len(),
        1,
        "{at}"
    );
    assert_eq!(mail.header_values("X-Crossprov-Event").len(), 1, "{at}");
    assert!(
        [
            "opened",
            "claimed",
            "submitted",
            "returned",
            "completed",
            "failed",
            "cancelled",
            "rerouted",
            "reminder",
            "escalation",
            "expired"
        ]
        .contains(&mail.event.as_str()),
        "{at}: X-Crossprov-Event {:?}",
        mail.event
    );
    assert!(
        mail.from.contains(&format!("noreply@{FROM_DOMAIN}")),
        "{at}: From {:?}",
        mail.from
    );
    assert!(
        mail.to.to_lowercase().contains(mail.recipient()),
        "{at}: To {:?} is the recipient {:?}",
        mail.to,
        mail.recipient()
    );
    assert!(
        mail.part_types.iter().any(|t| t == "text/plain")
            && mail.part_types.iter().any(|t| t == "text/html"),
        "{at}: text and HTML alternatives, got {:?}",
        mail.part_types
    );
    let link = format!("{BASE_URL}/api/v1/work-orders/{}", mail.work_order);
    assert!(
        mail.text.contains(&link),
        "{at}: link in text: {}",
        mail.text
    );
    assert!(
        mail.html.contains(&link),
        "{at}: link in HTML: {}",
        mail.html
    );
    assert!(
        mail.text
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{at}: Simplified Chinese: {}",
        mail.text
    );
    assert!(
        mail.text.to_lowercase().contains("order"),
        "{at}: an English part: {}",
        mail.text
    );
    // Only masked personal data: never the whole number, the name or the ID number,
    // decoded or raw.
    let readable = mail.readable();
    let raw = String::from_utf8_lossy(&mail.raw);
    for secret in [msisdn, NAME, ID_NUMBER] {
        assert!(
            !readable.contains(secret) && !raw.contains(secret),
            "{at}: {secret:?} in the mail: {readable}"
        );
    }
    let masked_number = format!("{}****{}", &msisdn[..3], &msisdn[7..]);
    for part in [&mail.text, &mail.html] {
        assert!(
            part.contains(&masked_number) && part.contains("张*"),
            "{at}: {masked_number} and 张* in {part}"
        );
    }
}

/// Checks every mail of `mails` against its order, and that no two share a `Message-ID`.
fn assert_all_well_formed(mails: &[Mail], orders: &[&Value]) {
    let refs = references(orders);
    let numbers: BTreeMap<String, String> = orders
        .iter()
        .map(|o| (id_of(o), o["msisdn"].as_str().expect("msisdn").to_owned()))
        .collect();
    for mail in mails {
        assert_well_formed(mail, &refs[&mail.work_order], &numbers[&mail.work_order]);
    }
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "one Message-ID per row: {ids:?}");
}

/// Runs a scenario that starts its own sink (or processes) once per backend.
macro_rules! each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
}

// ---------------------------------------------------------------------------------------
// Who gets what

async fn each_event_reaches_its_recipients_once_with_the_contracts_headers(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, smtp_to(&sink, |_| {})).await else {
        return;
    };
    let w = World::new(app).await;
    let qingdao = w.app.create_hall(&w.admin, "QD-1", "37", "370200").await;
    let qd = "qd-1@halls.example.cn";
    // A clerk with no address on file: told nothing.
    let quiet_clerk = {
        let body = json!({
            "username": "clerk.quiet", "password": PASSWORD, "role": "clerk", "province": "53",
        });
        w.app
            .post("/api/v1/users", &w.admin, &body)
            .await
            .assert_status(201);
        w.app.token("clerk.quiet").await
    };
    let act = |id: String, action: &'static str, token: String, body: Value| {
        let app = &w.app;
        async move {
            app.act(&id, action, &token, &body)
                .await
                .assert_status(200)
                .clone()
        }
    };
    let reason = json!({ "reason": "材料不全，请补充" });

    // One order through its whole life, returned once, with a refused result on the way.
    let full = w.claimed_order().await;
    let full_id = id_of(&full);
    act(
        full_id.clone(),
        "release",
        w.staff.clone(),
        json!({ "reason": "换班" }),
    )
    .await;
    act(full_id.clone(), "claim", w.staff.clone(), json!({})).await;
    let first = w.signer.sign(&w.payload(&full, "match"));
    w.submit(&full, &first).await.assert_status(201);
    act(full_id.clone(), "return", w.clerk.clone(), reason.clone()).await;
    w.submit(&full, &first).await.problem(ReplayedResult);
    let second = w.signer.sign(&w.payload(&full, "match"));
    w.submit(&full, &second).await.assert_status(201);
    act(full_id.clone(), "complete", w.clerk.clone(), json!({})).await;

    // To the city (every hall of it), rerouted to a hall there, then to another city, then
    // cancelled while open.
    let routed = w.open_order_to(None).await;
    let routed_id = id_of(&routed);
    let to_b = json!({ "target_province": "37", "target_city": "370100", "target_hall_id": w.hall_b, "reason": "就近办理" });
    act(routed_id.clone(), "reroute", w.clerk.clone(), to_b).await;
    let to_qd = json!({ "target_province": "37", "target_city": "370200", "target_hall_id": qingdao, "reason": "用户已搬到青岛" });
    act(routed_id.clone(), "reroute", w.clerk.clone(), to_qd).await;
    act(routed_id.clone(), "cancel", w.clerk.clone(), reason.clone()).await;

    // Claimed, then cancelled: only the claiming hall hears of it.
    let claimed = w.claimed_order().await;
    let claimed_id = id_of(&claimed);
    act(
        claimed_id.clone(),
        "cancel",
        w.clerk.clone(),
        reason.clone(),
    )
    .await;

    // A mismatch, failed.
    let mismatch = w.submitted_order("mismatch").await;
    let mismatch_id = id_of(&mismatch);
    act(mismatch_id.clone(), "fail", w.clerk.clone(), reason.clone()).await;

    // Open to the city, cancelled: every hall of the city.
    let city = w.open_order_to(None).await;
    let city_id = id_of(&city);
    act(city_id.clone(), "cancel", w.clerk.clone(), reason.clone()).await;

    // Opened by the clerk without an address: the halls hear, the clerk does not.
    let body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": w.hall_a, "reason": "用户长期在济南居住", "expected_name": NAME,
    });
    let quiet = w
        .app
        .post("/api/v1/work-orders", &quiet_clerk, &body)
        .await
        .assert_status(201)
        .clone();
    let quiet_id = id_of(&quiet);
    act(quiet_id.clone(), "claim", w.staff.clone(), json!({})).await;
    w.upload_required(&quiet).await;
    let jws = w.signer.sign(&w.payload(&quiet, "match"));
    w.submit(&quiet, &jws).await.assert_status(201);
    act(quiet_id.clone(), "complete", quiet_clerk.clone(), json!({})).await;

    let want = promised(&[
        (&full_id, "opened", &[HALL_A]),
        // Claimed twice (after a release, which tells nobody).
        (&full_id, "claimed", &[CLERK, CLERK]),
        // Once per accepted result: the replayed one is not.
        (&full_id, "submitted", &[CLERK, CLERK]),
        (&full_id, "returned", &[HALL_A]),
        (&full_id, "completed", &[HALL_A, CLERK]),
        (&routed_id, "opened", &[HALL_A, HALL_B]),
        // New and previous halls, each address once per event.
        (&routed_id, "rerouted", &[HALL_A, HALL_B]),
        (&routed_id, "rerouted", &[HALL_B, qd]),
        (&routed_id, "cancelled", &[qd]),
        (&claimed_id, "opened", &[HALL_A]),
        (&claimed_id, "claimed", &[CLERK]),
        (&claimed_id, "cancelled", &[HALL_A]),
        (&mismatch_id, "opened", &[HALL_A]),
        (&mismatch_id, "claimed", &[CLERK]),
        (&mismatch_id, "submitted", &[CLERK]),
        (&mismatch_id, "failed", &[HALL_A]),
        (&city_id, "opened", &[HALL_A, HALL_B]),
        (&city_id, "cancelled", &[HALL_A, HALL_B]),
        (&quiet_id, "opened", &[HALL_A]),
        (&quiet_id, "completed", &[HALL_A]),
    ]);
    let mails = exactly_delivered(&w.app, &sink, MAIL_WAIT, &want).await;
    assert_all_well_formed(
        &mails,
        &[&full, &routed, &claimed, &mismatch, &city, &quiet],
    );
    // Nothing about anything else: every message received is one of these.
    assert_eq!(
        sink.received().len(),
        want.len(),
        "{}",
        summary(&sink.received())
    );
}

async fn the_file_transport_writes_each_message_atomically_to_the_outbox_folder(app: TestApp) {
    let w = World::new(app).await;
    let order = w.claimed_order().await;
    let id = id_of(&order);
    let folder = w.app.dir.path().join("outbox");
    eventually(MAIL_WAIT, "two .eml files", || {
        let folder = folder.clone();
        async move {
            let mails = read_messages(&folder);
            if mails.len() >= 2 {
                Ok(mails)
            } else {
                Err(summary(&mails))
            }
        }
    })
    .await;
    outbox_drained(&w.app).await;
    let mails = read_messages(&folder);
    assert_eq!(
        deliveries(&mails, &[&id]),
        promised(&[(&id, "opened", &[HALL_A]), (&id, "claimed", &[CLERK])]),
        "{}",
        summary(&mails)
    );
    let refs = references(&[&order]);
    let msisdn = order["msisdn"].as_str().unwrap();
    // The default base URL, as no setting changed it.
    for mail in &mails {
        assert!(mail.subject.contains(&refs[&id]), "{}", mail.subject);
        assert!(mail.part_types.iter().any(|t| t == "text/html"));
        let masked_number = format!("{}****{}", &msisdn[..3], &msisdn[7..]);
        assert!(mail.text.contains(&masked_number), "{}", mail.text);
        assert!(!mail.readable().contains(msisdn) && !mail.readable().contains(NAME));
        // `<row id>.eml`, and the row id is the Message-ID's local part.
        let stem = mail.file.file_stem().unwrap().to_str().unwrap();
        assert_eq!(mail.message_id, format!("<{stem}@{FROM_DOMAIN}>"));
    }
    // The admin sees them sent, under the same ids and Message-IDs.
    let sent = w
        .app
        .get(&format!("{OUTBOX}?state=sent"), &w.admin)
        .await
        .items();
    for mail in &mails {
        let stem = mail.file.file_stem().unwrap().to_str().unwrap();
        let row = sent
            .iter()
            .find(|r| r["id"] == stem)
            .unwrap_or_else(|| panic!("row {stem} sent: {sent:?}"));
        assert_eq!(row["message_id"], mail.message_id.as_str());
        assert_eq!(row["work_order"], id.as_str());
        assert_eq!(row["event"], mail.event.as_str());
        assert_eq!(row["state"], "sent");
        assert!(row["sent_at"].is_string(), "{row}");
    }
}

// ---------------------------------------------------------------------------------------
// Outages and crashes

async fn mail_held_through_an_smtp_outage_arrives_once_within_a_minute_of_its_return(
    backend: Backend,
) {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, smtp_to(&sink, |_| {})).await else {
        return;
    };
    let w = World::new(app).await;
    // Mail flows before the outage.
    let before = w.open_order().await;
    let before_id = id_of(&before);
    exactly_delivered(
        &w.app,
        &sink,
        MAIL_WAIT,
        &promised(&[(&before_id, "opened", &[HALL_A])]),
    )
    .await;

    sink.stop();
    let mut orders = vec![];
    for _ in 0..2 {
        let order = w.submitted_order("match").await;
        let id = id_of(&order);
        w.app
            .act(&id, "complete", &w.clerk, &json!({}))
            .await
            .assert_status(200);
        orders.push(order);
    }
    // The worker has met the outage: the rows wait, none is charged or given up.
    let admin = w.admin.clone();
    eventually(MAIL_WAIT, "ten pending rows", || {
        let (app, admin) = (&w.app, admin.clone());
        async move {
            let pending = app
                .get(&format!("{OUTBOX}?state=pending&limit=200"), &admin)
                .await
                .items();
            if pending.len() == 10 {
                Ok(())
            } else {
                Err(format!("{pending:?}"))
            }
        }
    })
    .await;
    assert!(
        sink.received().len() == 1,
        "nothing arrives while it is down"
    );

    sink.start_again().await;
    let back = Instant::now();
    let mut rows = vec![(before_id.as_str(), "opened", &[HALL_A][..])];
    let ids: Vec<String> = orders.iter().map(id_of).collect();
    for id in &ids {
        rows.extend([
            (id.as_str(), "opened", &[HALL_A][..]),
            (id.as_str(), "claimed", &[CLERK][..]),
            (id.as_str(), "submitted", &[CLERK][..]),
            (id.as_str(), "completed", &[HALL_A, CLERK][..]),
        ]);
    }
    let mails = exactly_delivered(&w.app, &sink, CONTRACT_MINUTE, &promised(&rows)).await;
    assert!(back.elapsed() < CONTRACT_MINUTE, "{:?}", back.elapsed());
    let refs: Vec<&Value> = orders.iter().chain([&before]).collect();
    assert_all_well_formed(&mails, &refs);
    let failed = w
        .app
        .get(&format!("{OUTBOX}?state=failed"), &w.admin)
        .await
        .items();
    assert!(failed.is_empty(), "an outage fails nothing: {failed:?}");
}

/// The settings of `serve` processes that send mail over SMTP.
impl Deployment {
    /// Writes the config of the instance `name`: this database, its own `data_dir`, mail
    /// over SMTP to `sink`, then `extra` (TOML, sections included).
    /// `extra` lands in the `[mail]` section.
    fn config(&self, name: &str, sink: &SmtpSink, extra: &str) -> PathBuf {
        let data = self.dir.path().join(format!("{name}-data"));
        // Every instance on the database shares one KEK (PostgreSQL requires it given).
        let kek = self.dir.path().join("kek.hex");
        if !kek.exists() {
            std::fs::write(&kek, hex::encode(crate::helpers::rand_bytes())).expect("kek");
        }
        let text = format!(
            "data_dir = {data:?}\n\
             [server]\nworkers = 2\n\
             [database]\nurl = {url:?}\npool_size = 4\n\
             [crypto]\nkek_file = {kek:?}\n\
             [mail]\ntransport = \"smtp\"\nsmtp_url = {smtp:?}\npoll_interval_ms = 200\n\
             base_url = {BASE_URL:?}\n\
             {extra}\n",
            data = data.display().to_string(),
            url = self.database_url,
            smtp = sink.url(),
            kek = kek.display().to_string(),
        );
        let file = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).expect("config");
        file
    }
}

async fn a_mail_whose_sender_was_killed_mid_delivery_arrives_with_the_same_message_id(
    backend: Backend,
) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(deployment) = Deployment::new(backend) else {
        return;
    };
    let config = deployment.config(
        "crashing",
        &sink,
        "lease_seconds = 5\ntimeout_seconds = 4\n",
    );
    deployment.add_admin(&config);
    sink.hang(true);
    let mut first = Serve::start(&config, "first").await;
    let w = World::new(deployment.client_of(&first)).await;
    let order = w.open_order().await;
    let id = id_of(&order);

    // The row is leased and its message handed over; the server has not answered yet.
    let hung = eventually(MAIL_WAIT, "the message held at DATA", || {
        let hung = sink.hung();
        let log = first.log_tail();
        async move {
            match hung.first() {
                Some(m) => Ok(m.clone()),
                None => Err(log),
            }
        }
    })
    .await;
    assert_eq!(hung.work_order, id);
    first.kill();
    sink.hang(false);

    let second = Serve::start(&config, "second").await;
    let taken_over = Instant::now();
    sink.received_when(
        CONTRACT_MINUTE,
        "the mail, sent by the second process",
        |m| !deliveries(m, &[&id]).is_empty(),
    )
    .await;
    assert!(taken_over.elapsed() < CONTRACT_MINUTE);
    let mut app = w.app;
    app.base = second.base.clone();
    outbox_drained(&app).await;
    let mails: Vec<Mail> = sink
        .received()
        .into_iter()
        .filter(|m| m.work_order == id)
        .collect();
    assert!(!mails.is_empty(), "{}", summary(&mails));
    for mail in &mails {
        assert_eq!(mail.event, "opened");
        assert_eq!(mail.recipient(), HALL_A);
        assert_eq!(
            mail.message_id, hung.message_id,
            "a repeated delivery is recognisable by its Message-ID"
        );
    }
    drop(second);
}

// ---------------------------------------------------------------------------------------
// The movable clock and the timers it drives

/// `POST /api/v1/admin/clock`: moves the service's clock `seconds` ahead; its new time.
async fn advance(app: &TestApp, admin: &str, seconds: i64) -> DateTime<Utc> {
    let r = app
        .post(CLOCK, admin, &json!({ "advance_seconds": seconds }))
        .await;
    time_of(&r.assert_status(200)["now"])
}

/// Moves the service's clock to `target` or just past it (it never moves back).
async fn advance_to(app: &TestApp, target: DateTime<Utc>) -> DateTime<Utc> {
    let admin = app.admin().await;
    let now = advance(app, &admin, 1).await;
    let seconds = (target - now).num_seconds() + 1;
    assert!(
        seconds >= 1,
        "{target} is already past: the clock is at {now}"
    );
    let now = advance(app, &admin, seconds).await;
    assert!(now >= target, "{now} < {target}");
    now
}

/// The coming 20:00 in Beijing, at least a minute after the service's `now`: an evening,
/// so orders opened then all start counting at the next day's opening, whenever the suite runs.
fn next_evening(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&beijing());
    let mut day = local.date_naive();
    loop {
        let evening = beijing()
            .from_local_datetime(&day.and_hms_opt(20, 0, 0).expect("20:00"))
            .single()
            .expect("a fixed offset")
            .with_timezone(&Utc);
        if evening > now + chrono::Duration::minutes(1) {
            return evening;
        }
        day = day.succ_opt().expect("a next day");
    }
}

/// The service's clock, read by moving it one second.
async fn service_now(app: &TestApp) -> DateTime<Utc> {
    let admin = app.admin().await;
    advance(app, &admin, 1).await
}

/// New tokens for the cast: an advance of hours outlives every token issued before it.
async fn fresh_tokens(w: &mut World) {
    w.admin = w.app.token(ADMIN).await;
    w.clerk = w.app.token("clerk.yn").await;
    w.staff = w.app.token("staff.a").await;
    w.auditor = w.app.token("auditor").await;
}

/// The audit events of `action` per order, counted, as an auditor queries them.
async fn audit_counts(app: &TestApp, auditor: &str, action: &str) -> BTreeMap<String, usize> {
    let events = app
        .get(
            &format!("/api/v1/audit/events?action={action}&limit=1000"),
            auditor,
        )
        .await
        .items();
    let mut counts = BTreeMap::new();
    for e in events {
        assert_eq!(e["actor"], "system", "{e}");
        *counts
            .entry(e["work_order"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    counts
}

/// Waits (at most the contract's 5 s) until each of `orders` has exactly one `action`.
async fn fired_once(app: &TestApp, action: &str, orders: &[&str]) {
    let auditor = app.token("auditor").await;
    let want: BTreeMap<String, usize> = orders.iter().map(|o| (o.to_string(), 1)).collect();
    eventually(TIMERS_WAIT, action, || {
        let (auditor, want) = (auditor.clone(), want.clone());
        async move {
            let got = audit_counts(app, &auditor, action).await;
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}, want {want:?}"))
            }
        }
    })
    .await;
}

/// The earliest and latest `due_at` and `deadline_at` of orders opened together: the same
/// instant when opened outside opening hours on a calendar year, seconds apart otherwise;
/// a step of the clock between them is past every order's earlier timer and before its later.
fn due_and_deadline(
    orders: &[&Value],
) -> (
    std::ops::Range<DateTime<Utc>>,
    std::ops::Range<DateTime<Utc>>,
) {
    let span = |field: &str| {
        let times: Vec<DateTime<Utc>> = orders.iter().map(|o| time_of(&o[field])).collect();
        let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        assert!(
            *max - *min < chrono::Duration::minutes(10),
            "{field}: {times:?}"
        );
        *min..*max
    };
    let (due, deadline) = (span("due_at"), span("deadline_at"));
    assert!(
        due.end + chrono::Duration::minutes(2) < deadline.start,
        "{due:?} {deadline:?}"
    );
    (due, deadline)
}

/// A match result submitted with `iat` on the service's clock, which runs `ahead` of ours.
async fn submitted_on_the_services_clock(w: &World, ahead: chrono::Duration) -> Value {
    let order = w.claimed_order().await;
    let mut payload = w.payload(&order, "match");
    payload["iat"] = json!((Utc::now() + ahead).timestamp());
    let jws = w.signer.sign(&payload);
    w.submit(&order, &jws).await.assert_status(201).clone()
}

async fn fetch_order(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/work-orders/{id}"), token)
        .await
        .assert_status(200)
        .clone()
}

async fn reminder_escalation_and_expiry_each_fire_once_on_the_movable_clock(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, smtp_to(&sink, movable_clock)).await else {
        return;
    };
    let mut w = World::new(app).await;
    let now = service_now(&w.app).await;
    let evening = advance_to(&w.app, next_evening(now)).await;
    let ahead = evening - Utc::now();
    fresh_tokens(&mut w).await;

    let to_hall = w.open_order().await;
    let claimed_from_city = w.open_order_to(None).await;
    let claimed_id = id_of(&claimed_from_city);
    w.app
        .act(&claimed_id, "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    let to_city = w.open_order_to(None).await;
    // Submitted: waiting on the clerk, not on a hall; no timer fires for it.
    let submitted = submitted_on_the_services_clock(&w, ahead).await;
    let (hall_id, city_id, submitted_id) = (id_of(&to_hall), id_of(&to_city), id_of(&submitted));
    let timed = [hall_id.as_str(), claimed_id.as_str(), city_id.as_str()];

    let all = [&to_hall, &claimed_from_city, &to_city, &submitted];
    let (due, deadline) = due_and_deadline(&all);
    for o in all {
        assert!(
            o["reminded_at"].is_null() && o["escalated_at"].is_null(),
            "{o}"
        );
    }
    let mut rows: Vec<(&str, &str, &[&str])> = vec![
        (&hall_id, "opened", &[HALL_A]),
        (&claimed_id, "opened", &[HALL_A, HALL_B]),
        (&claimed_id, "claimed", &[CLERK]),
        (&city_id, "opened", &[HALL_A, HALL_B]),
        (&submitted_id, "opened", &[HALL_A]),
        (&submitted_id, "claimed", &[CLERK]),
        (&submitted_id, "submitted", &[CLERK]),
    ];
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;

    // A minute before due: the reminder (4 working hours before due_at) is past.
    advance_to(&w.app, due.start - chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.reminded", &timed).await;
    rows.extend([
        (hall_id.as_str(), "reminder", &[HALL_A][..]),
        // The claiming hall only, no longer the whole city.
        (claimed_id.as_str(), "reminder", &[HALL_A][..]),
        (city_id.as_str(), "reminder", &[HALL_A, HALL_B][..]),
    ]);
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;
    fresh_tokens(&mut w).await;
    for id in timed {
        let o = fetch_order(&w.app, &w.clerk, id).await;
        assert!(o["reminded_at"].is_string(), "{o}");
        assert!(o["escalated_at"].is_null(), "{o}");
    }
    assert!(fetch_order(&w.app, &w.clerk, &submitted_id).await["reminded_at"].is_null());
    assert!(audit_counts(&w.app, &w.auditor, "work_order.escalated")
        .await
        .is_empty());

    // A minute past due: escalation, to the halls and the home province's supervisor.
    advance_to(&w.app, due.end + chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.escalated", &timed).await;
    rows.extend([
        (hall_id.as_str(), "escalation", &[HALL_A, SUPERVISOR][..]),
        (claimed_id.as_str(), "escalation", &[HALL_A, SUPERVISOR][..]),
        (
            city_id.as_str(),
            "escalation",
            &[HALL_A, HALL_B, SUPERVISOR][..],
        ),
    ]);
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;
    fresh_tokens(&mut w).await;
    for id in timed {
        let o = fetch_order(&w.app, &w.clerk, id).await;
        assert!(o["escalated_at"].is_string(), "{o}");
        assert_ne!(o["state"], "expired");
    }
    assert!(audit_counts(&w.app, &w.auditor, "work_order.expired")
        .await
        .is_empty());

    // A minute past the deadline: expired, told to the halls and the opening clerk.
    advance_to(&w.app, deadline.end + chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.expired", &timed).await;
    rows.extend([
        (hall_id.as_str(), "expired", &[HALL_A, CLERK][..]),
        (claimed_id.as_str(), "expired", &[HALL_A, CLERK][..]),
        (city_id.as_str(), "expired", &[HALL_A, HALL_B, CLERK][..]),
    ]);
    let mails = exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;
    fresh_tokens(&mut w).await;
    for id in timed {
        assert_eq!(fetch_order(&w.app, &w.clerk, id).await["state"], "expired");
    }
    assert_eq!(
        fetch_order(&w.app, &w.clerk, &submitted_id).await["state"],
        "submitted"
    );
    // Still once each, after all three moves.
    for action in [
        "work_order.reminded",
        "work_order.escalated",
        "work_order.expired",
    ] {
        let want: BTreeMap<String, usize> = timed.iter().map(|o| (o.to_string(), 1)).collect();
        assert_eq!(
            audit_counts(&w.app, &w.auditor, action).await,
            want,
            "{action}"
        );
    }
    assert_all_well_formed(
        &mails,
        &[&to_hall, &claimed_from_city, &to_city, &submitted],
    );
}

async fn one_jump_past_the_deadline_fires_reminder_escalation_and_expiry_in_order(
    backend: Backend,
) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(app) = spawn_app_with(backend, smtp_to(&sink, movable_clock)).await else {
        return;
    };
    let w = World::new(app).await;
    let opened = w.open_order().await;
    let id = id_of(&opened);
    advance_to(
        &w.app,
        time_of(&opened["deadline_at"]) + chrono::Duration::minutes(1),
    )
    .await;
    for action in [
        "work_order.reminded",
        "work_order.escalated",
        "work_order.expired",
    ] {
        fired_once(&w.app, action, &[&id]).await;
    }
    let auditor = w.app.token("auditor").await;
    let actions: Vec<String> = w
        .app
        .get(&format!("/api/v1/work-orders/{id}/events"), &auditor)
        .await
        .items()
        .into_iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .filter(|a| a.starts_with("work_order."))
        .collect();
    assert_eq!(
        actions,
        [
            "work_order.opened",
            "work_order.reminded",
            "work_order.escalated",
            "work_order.expired"
        ]
    );
    let mails = exactly_delivered(
        &w.app,
        &sink,
        MAIL_WAIT,
        &promised(&[
            (&id, "opened", &[HALL_A]),
            (&id, "reminder", &[HALL_A]),
            (&id, "escalation", &[HALL_A, SUPERVISOR]),
            (&id, "expired", &[HALL_A, CLERK]),
        ]),
    )
    .await;
    assert_all_well_formed(&mails, &[&opened]);
}

/// National Day 2027 in the compiled-in calendar (`config/calendar/2027.toml`): 1–7 October
/// off, Saturday 9 October a 调休 working day. The eve is Thursday 30 September; 15:00 there.
const NATIONAL_DAY_EVE_1500: &str = "2027-09-30T07:00:00Z";
/// 24 working hours from 15:00 on the eve: 2 that afternoon, 8 on Friday the 8th, 8 on
/// Saturday the 9th, the last 6 on Monday the 11th: 15:00 Beijing.
const DUE_FROM_EVE_1500: &str = "2027-10-11T07:00:00Z";
/// Opened that evening (20:00), counting starts on the 8th at 09:00: due at 17:00 on the 11th.
const NATIONAL_DAY_EVE_2000: &str = "2027-09-30T12:00:00Z";
const DUE_FROM_EVE_2000: &str = "2027-10-11T09:00:00Z";

async fn an_order_opened_on_the_eve_of_national_day_is_due_after_the_holiday(app: TestApp) {
    let mut w = World::new(app).await;
    let eve = time_of(&json!(NATIONAL_DAY_EVE_1500));
    assert!(
        service_now(&w.app).await < eve,
        "the clock is past {eve}: move this test to the next holiday in config/calendar/"
    );
    let opened_at = advance_to(&w.app, eve).await;
    fresh_tokens(&mut w).await;
    let afternoon = w.open_order().await;
    let due = time_of(&afternoon["due_at"]);
    let want = time_of(&json!(DUE_FROM_EVE_1500));
    // Opened a moment after 15:00: due the same moment after 15:00 on the day.
    let late = time_of(&afternoon["created_at"]) - eve;
    assert!(
        due >= want && due <= want + late + chrono::Duration::seconds(1),
        "due_at {due}, want {want} (opened {opened_at}, +{late})"
    );
    assert!(time_of(&afternoon["deadline_at"]) > due);
    assert!(afternoon["reminded_at"].is_null());

    advance_to(&w.app, time_of(&json!(NATIONAL_DAY_EVE_2000))).await;
    fresh_tokens(&mut w).await;
    let evening = w.open_order().await;
    assert_eq!(
        time_of(&evening["due_at"]),
        time_of(&json!(DUE_FROM_EVE_2000)),
        "{evening}"
    );
}

// ---------------------------------------------------------------------------------------
// The clock's endpoint

async fn the_clock_moves_forward_for_an_admin_is_audited_and_readyz_says_so(app: TestApp) {
    let w = World::new(app).await;
    let ready = w.app.get_anon("/readyz").await;
    assert_eq!(
        ready.assert_status(200)["movable_clock"],
        true,
        "{}",
        ready.body
    );
    let before = service_now(&w.app).await;
    let admin = w.app.admin().await;
    let now = advance(&w.app, &admin, 3600).await;
    assert!(
        now >= before + chrono::Duration::seconds(3600),
        "{before} → {now}"
    );
    assert!(
        now < before + chrono::Duration::seconds(3700),
        "{before} → {now}"
    );
    // Orders opened now carry the moved time.
    let clerk = w.app.token("clerk.yn").await;
    let body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "reason": "用户长期在济南居住",
    });
    let opened = w.app.post("/api/v1/work-orders", &clerk, &body).await;
    assert!(time_of(&opened.assert_status(201)["created_at"]) >= now);
    let auditor = w.app.token("auditor").await;
    let events = w
        .app
        .get("/api/v1/audit/events?action=clock.advanced", &auditor)
        .await
        .items();
    // service_now moved it by 1 s, then the hour.
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["actor"] == ADMIN));
}

async fn only_an_admin_moves_the_clock(app: TestApp) {
    let w = World::new(app).await;
    let body = json!({ "advance_seconds": 60 });
    let calls = [&w.clerk, &w.staff, &w.auditor].map(|t| post(CLOCK).by(t).json(&body));
    w.app.answers(Forbidden, calls).await;
}

async fn moving_the_clock_needs_a_token(app: TestApp) {
    let w = World::new(app).await;
    let call = post(CLOCK).json(&json!({ "advance_seconds": 60 }));
    w.app.answers(Unauthenticated, [call]).await;
}

async fn the_clock_moves_by_a_whole_number_of_seconds_of_at_least_one(app: TestApp) {
    let w = World::new(app).await;
    let calls = [0, -5, -3600].map(|n| {
        post(CLOCK)
            .by(&w.admin)
            .json(&json!({ "advance_seconds": n }))
    });
    w.app
        .answers_at(InvalidField, "advance_seconds", calls)
        .await;
}

async fn a_clock_advance_without_advance_seconds_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let calls = [
        post(CLOCK).by(&w.admin).json(&json!({})),
        post(CLOCK).by(&w.admin).json(&json!({ "seconds": 60 })),
    ];
    w.app.answers(InvalidRequest, calls).await;
}

async fn without_the_setting_the_clock_is_not_found(app: TestApp) {
    let w = World::new(app).await;
    let body = json!({ "advance_seconds": 60 });
    let calls = [&w.admin, &w.clerk].map(|t| post(CLOCK).by(t).json(&body));
    w.app.answers(NotFound, calls).await;
    let ready = w.app.get_anon("/readyz").await;
    assert_ne!(ready.assert_status(200)["movable_clock"], true);
}

// ---------------------------------------------------------------------------------------
// Two instances on one PostgreSQL

mod two_serve_processes_on_one_postgres {
    #[actix_web::test]
    async fn postgres() {
        super::two_serve_processes_send_every_mail_and_fire_every_timer_once().await;
    }
}

/// Opens an order through the instance `app`.
async fn open_through(app: &TestApp, clerk: &str, hall: Option<&str>) -> Value {
    let body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": hall, "reason": "用户长期在济南居住", "expected_name": NAME,
    });
    app.post("/api/v1/work-orders", clerk, &body)
        .await
        .assert_status(201)
        .clone()
}

async fn two_serve_processes_send_every_mail_and_fire_every_timer_once() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let Some(deployment) = Deployment::new(Backend::Postgres) else {
        return;
    };
    // With the movable clock each instance sweeps every second, so a second firing by either
    // would show within the quiet period at the end.
    let extra = format!(
        "[testing]\nmovable_clock = true\n\
         [sla]\ntimer_interval_seconds = 2\n\
         [sla.supervisors]\n\"53\" = {SUPERVISOR:?}\n"
    );
    let config_a = deployment.config("a", &sink, &extra);
    let config_b = deployment.config("b", &sink, &extra);
    deployment.add_admin(&config_a);
    let a = Serve::start(&config_a, "a").await;
    let b = Serve::start(&config_b, "b").await;
    let through_b = TestApp::of_process(
        b.base.clone(),
        Backend::Postgres,
        deployment.database_url.clone(),
        tempfile::tempdir().unwrap(),
        None,
    );
    let mut w = World::new(deployment.client_of(&a)).await;
    let now = service_now(&w.app).await;
    let evening = advance_to(&w.app, next_evening(now)).await;
    fresh_tokens(&mut w).await;

    // Orders opened through both, one claimed through the other instance. The clock moved
    // through `a` is the clock of `b` as soon as the move is answered.
    let hall = Some(w.hall_a.as_str());
    let o1 = open_through(&through_b, &w.clerk, hall).await;
    let o2 = open_through(&w.app, &w.clerk, hall).await;
    let o3 = open_through(&w.app, &w.clerk, None).await;
    let o4 = open_through(&through_b, &w.clerk, hall).await;
    for o in [&o1, &o2, &o3, &o4] {
        assert!(
            time_of(&o["created_at"]) >= evening,
            "opened on the moved clock: {o}"
        );
    }
    let ids: Vec<String> = [&o1, &o2, &o3, &o4].iter().map(|o| id_of(o)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    through_b
        .act(ids[3], "claim", &w.staff, &json!({}))
        .await
        .assert_status(200);
    let (due, deadline) = due_and_deadline(&[&o1, &o2, &o3, &o4]);
    let mut rows: Vec<(&str, &str, &[&str])> = vec![
        (ids[0], "opened", &[HALL_A]),
        (ids[1], "opened", &[HALL_A]),
        (ids[2], "opened", &[HALL_A, HALL_B]),
        (ids[3], "opened", &[HALL_A]),
        (ids[3], "claimed", &[CLERK]),
    ];
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;

    // The clock moves through one instance; the timers fire once among both.
    advance_to(&w.app, due.start - chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.reminded", &ids).await;
    for &id in &ids[..2] {
        rows.push((id, "reminder", &[HALL_A]));
    }
    rows.push((ids[2], "reminder", &[HALL_A, HALL_B]));
    rows.push((ids[3], "reminder", &[HALL_A]));
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;

    advance_to(&w.app, due.end + chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.escalated", &ids).await;
    for &id in &ids[..2] {
        rows.push((id, "escalation", &[HALL_A, SUPERVISOR]));
    }
    rows.push((ids[2], "escalation", &[HALL_A, HALL_B, SUPERVISOR]));
    rows.push((ids[3], "escalation", &[HALL_A, SUPERVISOR]));
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &promised(&rows)).await;

    advance_to(&w.app, deadline.end + chrono::Duration::minutes(1)).await;
    fired_once(&w.app, "work_order.expired", &ids).await;
    for &id in &ids[..2] {
        rows.push((id, "expired", &[HALL_A, CLERK]));
    }
    rows.push((ids[2], "expired", &[HALL_A, HALL_B, CLERK]));
    rows.push((ids[3], "expired", &[HALL_A, CLERK]));
    let want = promised(&rows);
    exactly_delivered(&w.app, &sink, MAIL_WAIT, &want).await;

    // A quiet period longer than two sweeps of each instance: nothing fires or arrives twice.
    fresh_tokens(&mut w).await;
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(5) {
        for action in [
            "work_order.reminded",
            "work_order.escalated",
            "work_order.expired",
        ] {
            let want: BTreeMap<String, usize> = ids.iter().map(|o| (o.to_string(), 1)).collect();
            let got = audit_counts(&through_b, &w.auditor, action).await;
            assert_eq!(got, want, "{action}");
        }
        assert_eq!(deliveries(&sink.received(), &ids), want);
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    for id in &ids {
        assert_eq!(
            fetch_order(&through_b, &w.clerk, id).await["state"],
            "expired"
        );
    }
    drop((a, b));
}

// ---------------------------------------------------------------------------------------
// The admin's outbox

async fn a_refused_mail_fails_after_its_attempts_and_an_admin_retry_sends_it(backend: Backend) {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    sink.refuse(true);
    let configure = smtp_to(&sink, |s| {
        s.mail.max_attempts = 2;
        s.mail.retry_base_seconds = 1;
        s.mail.retry_max_seconds = 1;
    });
    let Some(app) = spawn_app_with(backend, configure).await else {
        return;
    };
    let w = World::new(app).await;
    let order = w.open_order_to(None).await;
    let id = id_of(&order);

    let w = &w;
    let failed = eventually(MAIL_WAIT, "both rows failed", || async move {
        let items = w
            .app
            .get(&format!("{OUTBOX}?state=failed"), &w.admin)
            .await
            .items();
        if items.len() == 2 {
            Ok(items)
        } else {
            Err(format!("{items:?}"))
        }
    })
    .await;
    let mut recipients: Vec<String> = vec![];
    for row in &failed {
        assert_eq!(row["state"], "failed", "{row}");
        assert_eq!(row["attempts"], 2, "{row}");
        assert_eq!(row["work_order"], id.as_str(), "{row}");
        assert_eq!(row["event"], "opened", "{row}");
        assert!(row["sent_at"].is_null(), "{row}");
        let error = row["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("550"), "the server's reply is kept: {row}");
        assert!(!error.contains(order["msisdn"].as_str().unwrap()), "{row}");
        for key in [
            "id",
            "recipient",
            "next_attempt_at",
            "created_at",
            "message_id",
        ] {
            assert!(row.get(key).is_some(), "{key} in {row}");
        }
        recipients.push(row["recipient"].as_str().unwrap().to_lowercase());
    }
    recipients.sort();
    assert_eq!(recipients, [HALL_A, HALL_B]);
    assert!(sink.received().is_empty());
    let pending = w
        .app
        .get(&format!("{OUTBOX}?state=pending"), &w.admin)
        .await
        .items();
    assert!(pending.is_empty(), "{pending:?}");

    // Paged one at a time: two pages, then none.
    let page = w
        .app
        .get(&format!("{OUTBOX}?state=failed&limit=1"), &w.admin)
        .await;
    let first = page.items();
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let page = w
        .app
        .get(
            &format!("{OUTBOX}?state=failed&limit=1&cursor={cursor}"),
            &w.admin,
        )
        .await;
    let second = page.items();
    assert_eq!(first.len() + second.len(), 2);
    assert_ne!(first[0]["id"], second[0]["id"]);
    if let Some(cursor) = page.body["next_cursor"].as_str() {
        let last = w
            .app
            .get(
                &format!("{OUTBOX}?state=failed&limit=1&cursor={cursor}"),
                &w.admin,
            )
            .await;
        assert!(last.items().is_empty());
    }

    // The server takes mail again; the admin sends one row again, then the other.
    sink.refuse(false);
    let retried_at = Utc::now();
    let row = &failed[0];
    let row_id = row["id"].as_str().unwrap();
    let again = w
        .app
        .post(&format!("{OUTBOX}/{row_id}/retry"), &w.admin, &json!({}))
        .await;
    let again = again.assert_status(200);
    assert_eq!(again["id"], row_id);
    assert_eq!(again["state"], "pending");
    assert_eq!(again["attempts"], 0);
    assert!(time_of(&again["next_attempt_at"]) <= retried_at + chrono::Duration::seconds(5));
    let mails = sink
        .received_when(MAIL_WAIT, "the retried row", |m| m.len() == 1)
        .await;
    assert_eq!(
        mails[0].recipient(),
        row["recipient"].as_str().unwrap().to_lowercase()
    );
    let sent = eventually(MAIL_WAIT, "the row marked sent", || async move {
        let sent = w
            .app
            .get(&format!("{OUTBOX}?state=sent"), &w.admin)
            .await
            .items();
        match sent.iter().find(|r| r["id"] == row_id) {
            Some(r) => Ok(r.clone()),
            None => Err(format!("{sent:?}")),
        }
    })
    .await;
    assert_eq!(sent["message_id"], mails[0].message_id.as_str());
    assert!(sent["sent_at"].is_string());
    let still_failed = w
        .app
        .get(&format!("{OUTBOX}?state=failed"), &w.admin)
        .await
        .items();
    assert_eq!(
        still_failed.len(),
        1,
        "the other row waits for the admin: {still_failed:?}"
    );
    let other = failed[1]["id"].as_str().unwrap();
    w.app
        .post(&format!("{OUTBOX}/{other}/retry"), &w.admin, &json!({}))
        .await
        .assert_status(200);
    exactly_delivered(
        &w.app,
        &sink,
        MAIL_WAIT,
        &promised(&[(&id, "opened", &[HALL_A, HALL_B])]),
    )
    .await;
    let retried = w.audit_events("action=outbox.retried").await;
    assert_eq!(retried.len(), 2, "{retried:?}");
    assert!(retried.iter().all(|e| e["actor"] == ADMIN));
}

/// The first outbox row of an order once it is sent (the file transport sends at once).
async fn a_sent_row(w: &World) -> Value {
    let order = w.open_order().await;
    let id = &id_of(&order);
    eventually(MAIL_WAIT, "the row sent", || async move {
        let sent = w
            .app
            .get(&format!("{OUTBOX}?state=sent"), &w.admin)
            .await
            .items();
        sent.into_iter()
            .find(|r| r["work_order"] == id.as_str())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
}

/// The movable clock on, sent rows kept one day, and the pruning pass every second.
fn movable_clock_and_a_day_of_sent_mail(s: &mut Settings) {
    movable_clock(s);
    s.mail.keep_sent_days = 1;
    s.mail.prune_interval_seconds = 1;
}

/// Sent rows (which hold addresses) go `mail.keep_sent_days` after they were sent, by the
/// pass `serve` runs; rows sent since stay.
async fn sent_mail_is_deleted_once_kept_long_enough(app: TestApp) {
    let mut w = World::new(app).await;
    let old = a_sent_row(&w).await;
    let old_order = old["work_order"].as_str().unwrap().to_owned();
    advance(&w.app, &w.admin, 2 * 86_400).await;
    fresh_tokens(&mut w).await;
    let new = a_sent_row(&w).await;
    let new_order = new["work_order"].as_str().unwrap().to_owned();
    let w = &w;
    let (old_order, new_order) = (&old_order, &new_order);
    eventually(
        MAIL_WAIT,
        "the old order's sent rows deleted, the new one's kept",
        || async move {
            let sent = w
                .app
                .get(&format!("{OUTBOX}?state=sent&limit=200"), &w.admin)
                .await
                .items();
            let of = |order: &str| sent.iter().filter(|r| r["work_order"] == order).count();
            match (of(old_order), of(new_order)) {
                (0, n) if n > 0 => Ok(()),
                (o, n) => Err(format!("{o} old rows, {n} new rows")),
            }
        },
    )
    .await;
}

async fn only_an_admin_sees_or_retries_the_outbox(app: TestApp) {
    let w = World::new(app).await;
    let row = a_sent_row(&w).await;
    let retry = format!("{OUTBOX}/{}/retry", row["id"].as_str().unwrap());
    let mut calls = vec![];
    for token in [&w.clerk, &w.staff, &w.auditor] {
        calls.push(crate::helpers::get(OUTBOX).by(token));
        calls.push(crate::helpers::get(format!("{OUTBOX}?state=failed")).by(token));
        calls.push(post(retry.clone()).by(token).json(&json!({})));
    }
    w.app.answers(Forbidden, calls).await;
}

async fn retrying_an_unknown_outbox_row_is_not_found(app: TestApp) {
    let w = World::new(app).await;
    let calls = ["00000000-0000-7000-8000-000000000000", "no-such-row"].map(|id| {
        post(format!("{OUTBOX}/{id}/retry"))
            .by(&w.admin)
            .json(&json!({}))
    });
    w.app.answers(NotFound, calls).await;
}

async fn retrying_a_sent_mail_is_invalid_state(app: TestApp) {
    let w = World::new(app).await;
    let row = a_sent_row(&w).await;
    let path = format!("{OUTBOX}/{}/retry", row["id"].as_str().unwrap());
    w.app
        .answers(InvalidState, [post(path).by(&w.admin).json(&json!({}))])
        .await;
    // Nothing changed: still sent, once.
    let sent = w
        .app
        .get(&format!("{OUTBOX}?state=sent"), &w.admin)
        .await
        .items();
    assert_eq!(sent.iter().filter(|r| r["id"] == row["id"]).count(), 1);
}

async fn an_unknown_outbox_state_is_invalid_request(app: TestApp) {
    let w = World::new(app).await;
    let calls =
        ["lost", "SENT"].map(|s| crate::helpers::get(format!("{OUTBOX}?state={s}")).by(&w.admin));
    w.app.answers_at(InvalidRequest, "state", calls).await;
    // A known state with no rows is an empty page.
    let r = w.app.get(&format!("{OUTBOX}?state=failed"), &w.admin).await;
    assert!(r.items().is_empty());
    assert!(r.body["next_cursor"].is_null(), "{}", r.body);
}

// ---------------------------------------------------------------------------------------
// The number's suspension date

/// Noon in Beijing `days` days after `now`, whole seconds: the same date in UTC and Beijing.
fn noon_in(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let day = (now + chrono::Duration::days(days))
        .with_timezone(&beijing())
        .date_naive();
    beijing()
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
        .single()
        .expect("a fixed offset")
        .with_timezone(&Utc)
}

fn open_body(hall: &str, suspend_at: Option<DateTime<Utc>>) -> Value {
    let mut body = json!({
        "msisdn": World::next_msisdn(), "target_province": "37", "target_city": "370100",
        "target_hall_id": hall, "reason": "用户长期在济南居住", "expected_name": NAME,
    });
    if let Some(at) = suspend_at {
        body["suspend_at"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    body
}

async fn a_suspension_date_caps_the_deadline_is_told_in_the_mail_and_sorts_the_list(app: TestApp) {
    let w = World::new(app).await;
    let now = Utc::now();
    let suspend_at = noon_in(now, 2);
    let opened = w
        .app
        .post(
            "/api/v1/work-orders",
            &w.clerk,
            &open_body(&w.hall_a, Some(suspend_at)),
        )
        .await;
    let opened = opened.assert_status(201).clone();
    let id = id_of(&opened);
    assert_eq!(time_of(&opened["suspend_at"]), suspend_at);
    let check_times = |o: &Value, suspend_at: DateTime<Utc>| {
        let (created, due, deadline) = (
            time_of(&o["created_at"]),
            time_of(&o["due_at"]),
            time_of(&o["deadline_at"]),
        );
        assert!(
            deadline <= suspend_at,
            "deadline_at never after suspend_at: {o}"
        );
        assert!(created <= due && due <= deadline, "{o}");
        // Due a margin of working hours (at least as many calendar hours) before it.
        assert!(due <= suspend_at - chrono::Duration::hours(8), "{o}");
    };
    check_times(&opened, suspend_at);
    // 72 hours, working or not, end after two days: the suspension date is the deadline.
    assert_eq!(time_of(&opened["deadline_at"]), suspend_at);
    assert!(opened["reminded_at"].is_null() && opened["escalated_at"].is_null());

    // The mail says it plainly: the 停机 date, as a date people read (Beijing's).
    let folder = w.app.dir.path().join("outbox");
    let date = suspend_at
        .with_timezone(&beijing())
        .format("%Y-%m-%d")
        .to_string();
    let mail = eventually(MAIL_WAIT, "the opened mail", || {
        let folder = folder.clone();
        let id = id.clone();
        async move {
            let mails = read_messages(&folder);
            mails
                .into_iter()
                .find(|m| m.work_order == id)
                .ok_or_else(|| "not yet".to_owned())
        }
    })
    .await;
    for part in [&mail.text, &mail.html] {
        assert!(part.contains("停机"), "{part}");
        assert!(part.contains(&date), "{date} in {part}");
    }

    // The clerk moves it earlier: recomputed, audited.
    let sooner = noon_in(now, 1);
    let moved = w
        .app
        .post(
            &format!("/api/v1/work-orders/{id}/suspension"),
            &w.clerk,
            &json!({ "suspend_at": sooner.to_rfc3339(), "reason": "运营商通知提前停机" }),
        )
        .await;
    let moved = moved.assert_status(200).clone();
    assert_eq!(time_of(&moved["suspend_at"]), sooner);
    assert_eq!(time_of(&moved["deadline_at"]), sooner);
    check_times(&moved, sooner);
    assert!(moved["version"].as_i64() > opened["version"].as_i64());
    let set = w
        .audit_events(&format!("work_order={id}&action=work_order.suspension_set"))
        .await;
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0]["actor"], "clerk.yn");
    assert!(!set[0]["detail"].to_string().contains(NAME));

    // Lists: only orders with a date, earliest first; and those before a date.
    let later = w
        .app
        .post(
            "/api/v1/work-orders",
            &w.clerk,
            &open_body(&w.hall_a, Some(noon_in(now, 3))),
        )
        .await
        .assert_status(201)
        .clone();
    let without = w
        .app
        .post("/api/v1/work-orders", &w.clerk, &open_body(&w.hall_a, None))
        .await
        .assert_status(201)
        .clone();
    assert!(without["suspend_at"].is_null(), "{without}");
    let sorted = w
        .app
        .get("/api/v1/work-orders?sort=suspend_at", &w.clerk)
        .await
        .items();
    let ids: Vec<String> = sorted.iter().map(id_of).collect();
    assert_eq!(ids, [id.clone(), id_of(&later)]);
    // Between the two dates (whether `before` includes its own instant is not at stake).
    let before = (noon_in(now, 3) - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let soon = w
        .app
        .get(
            &format!("/api/v1/work-orders?suspend_before={before}"),
            &w.clerk,
        )
        .await
        .items();
    let ids: Vec<String> = soon.iter().map(id_of).collect();
    assert_eq!(ids, [id.as_str()]);
}

async fn a_suspension_date_not_in_the_future_is_invalid_field(app: TestApp) {
    let w = World::new(app).await;
    let past = Utc::now() - chrono::Duration::hours(1);
    let open = post("/api/v1/work-orders")
        .by(&w.clerk)
        .json(&open_body(&w.hall_a, Some(past)));
    w.app.answers_at(InvalidField, "suspend_at", [open]).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    let set = post(format!("/api/v1/work-orders/{id}/suspension"))
        .by(&w.clerk)
        .json(&json!({ "suspend_at": past.to_rfc3339(), "reason": "运营商通知" }));
    w.app.answers_at(InvalidField, "suspend_at", [set]).await;
    let unchanged = fetch_order(&w.app, &w.clerk, &id).await;
    assert!(unchanged["suspend_at"].is_null());
}

async fn only_the_home_clerk_sets_a_suspension_date(app: TestApp) {
    let w = World::new(app).await;
    let order = w.open_order().await;
    let id = id_of(&order);
    let body = json!({ "suspend_at": noon_in(Utc::now(), 5).to_rfc3339(), "reason": "运营商通知" });
    let path = format!("/api/v1/work-orders/{id}/suspension");
    w.app
        .answers(
            Forbidden,
            [&w.staff, &w.auditor].map(|t| post(path.clone()).by(t).json(&body)),
        )
        .await;
    // Another province's clerk does not find it.
    w.app
        .answers(
            NotFound,
            [post(path.clone()).by(&w.other_clerk).json(&body)],
        )
        .await;
    // Not once it is done with.
    let cancelled = w
        .app
        .act(&id, "cancel", &w.clerk, &json!({ "reason": "用户撤回" }))
        .await;
    cancelled.assert_status(200);
    w.app
        .answers(InvalidState, [post(path).by(&w.clerk).json(&body)])
        .await;
}

// ---------------------------------------------------------------------------------------
// The tables

each_backend!(
    each_event_reaches_its_recipients_once_with_the_contracts_headers,
    mail_held_through_an_smtp_outage_arrives_once_within_a_minute_of_its_return,
    a_mail_whose_sender_was_killed_mid_delivery_arrives_with_the_same_message_id,
    reminder_escalation_and_expiry_each_fire_once_on_the_movable_clock,
    one_jump_past_the_deadline_fires_reminder_escalation_and_expiry_in_order,
    a_refused_mail_fails_after_its_attempts_and_an_admin_retry_sends_it,
);

on_both_backends!(
    the_file_transport_writes_each_message_atomically_to_the_outbox_folder,
    a_suspension_date_caps_the_deadline_is_told_in_the_mail_and_sorts_the_list,
);

on_both_backends!(with movable_clock_and_a_day_of_sent_mail:
    sent_mail_is_deleted_once_kept_long_enough,
);

on_both_backends!(with movable_clock:
    the_clock_moves_forward_for_an_admin_is_audited_and_readyz_says_so,
    an_order_opened_on_the_eve_of_national_day_is_due_after_the_holiday,
);

provokes!(PROVOKED {
    NotFound => [
        without_the_setting_the_clock_is_not_found,
        retrying_an_unknown_outbox_row_is_not_found,
    ],
    Forbidden => [
        only_an_admin_sees_or_retries_the_outbox,
        only_the_home_clerk_sets_a_suspension_date,
    ],
    InvalidState => [retrying_a_sent_mail_is_invalid_state],
    InvalidRequest => [an_unknown_outbox_state_is_invalid_request],
    InvalidField => [a_suspension_date_not_in_the_future_is_invalid_field],
});

provokes!(PROVOKED_ON_A_MOVABLE_CLOCK with movable_clock {
    Forbidden => [only_an_admin_moves_the_clock],
    Unauthenticated => [moving_the_clock_needs_a_token],
    InvalidField => [the_clock_moves_by_a_whole_number_of_seconds_of_at_least_one],
    InvalidRequest => [a_clock_advance_without_advance_seconds_is_invalid_request],
});
