//! One handler per page: who may see it, one or two service calls, a template.

use actix_web::body::SizedStream;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use strum::IntoEnumIterator;

use super::session;
use super::{html, see_other, start_page, Chrome, ConsoleError, Viewer, FRAMED_CSP};
use crate::domain::access::Role;
use crate::domain::region;
use crate::domain::WorkOrderId;
use crate::http::extract::{client_address, client_certificate, query_str, services};
use crate::http::problem::{ApiError, Lang};
use crate::service::audit::{CheckpointView, EventQuery, VerifyView};
use crate::service::evidence::EvidenceView;
use crate::service::halls::HallView;
use crate::service::users::{UserQuery, UserView};
use crate::service::views::{AuditEventView, WorkOrderView};
use crate::service::work_orders::ListQuery;

type Page = Result<HttpResponse, ConsoleError>;

fn ok(rendered: askama::Result<String>) -> Page {
    Ok(html(StatusCode::OK, rendered))
}

async fn viewer(req: &HttpRequest) -> Result<Viewer, ConsoleError> {
    Viewer::of(req, &*services(req)?).await
}

pub async fn home(req: HttpRequest) -> Page {
    let v = viewer(&req).await?;
    Ok(see_other(start_page(v.actor.role)))
}

// ---------------------------------------------------------------------------------------
// Signing in and out

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a console page is a place to go back to (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}

pub async fn login_form(req: HttpRequest, q: web::Query<Next>) -> Page {
    ok(LoginPage {
        c: Chrome::anonymous(req.path()),
        next: safe_next(q.next.as_deref()),
        username: String::new(),
        error: None,
    }
    .render())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login(req: HttpRequest, form: web::Form<LoginForm>) -> Page {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    if session::cross_site(&req) {
        return Err(session::csrf_rejected().into());
    }
    let services = services(&req)?;
    let issued = services
        .login(
            form.username.clone(),
            form.password,
            client_address(&req),
            client_certificate(&req),
        )
        .await;
    match issued {
        Ok(token) => {
            let cookie = session::session_cookie(
                &token.access_token,
                token.expires_in,
                session::is_https(&req),
            );
            let to = if token.password_change_required {
                "/console/password".to_owned()
            } else {
                next
            };
            Ok(HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((header::LOCATION, to))
                .finish())
        }
        Err(e) => {
            let e = ApiError::from(e);
            let c = Chrome::anonymous(req.path());
            let error = Some(problem_text(&e, c.lang));
            Ok(html(
                actix_web::ResponseError::status_code(&e),
                LoginPage {
                    c,
                    next,
                    username: form.username,
                    error,
                }
                .render(),
            ))
        }
    }
}

fn problem_text(e: &ApiError, lang: Lang) -> String {
    let title = e.code.title(lang);
    match &e.detail {
        Some(d) => {
            let detail = match lang {
                Lang::Zh => d.zh(),
                Lang::En => d.en(),
            };
            if detail == title {
                title.to_owned()
            } else {
                format!("{title}：{detail}")
            }
        }
        None => title.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

/// Ends the session in this browser. The form must carry the session's CSRF token, so
/// another site cannot sign a clerk out.
pub async fn logout(req: HttpRequest, form: web::Form<LogoutForm>) -> Page {
    // Before looking for the cookie: SameSite=Strict keeps it off another site's post, yet
    // the answer's removal cookie would still end the session (a top-level navigation may
    // set any cookie).
    if session::cross_site(&req) {
        return Err(session::csrf_rejected().into());
    }
    if let Some(token) = session::session_token(&req) {
        let presented = form.csrf_token.as_deref().unwrap_or_default();
        if !session::csrf_matches(&token, presented) {
            return Err(session::csrf_rejected().into());
        }
    }
    Ok(HttpResponse::SeeOther()
        .cookie(session::ended_session_cookie(session::is_https(&req)))
        .insert_header((header::LOCATION, "/console/login"))
        .finish())
}

#[derive(Deserialize)]
pub struct LangSwitch {
    to: String,
    next: Option<String>,
}

pub async fn switch_language(req: HttpRequest, q: web::Query<LangSwitch>) -> Page {
    let value = if q.to == "en" { "en" } else { "zh" };
    let cookie = actix_web::cookie::Cookie::build(session::LANG_COOKIE, value)
        .path("/")
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(session::is_https(&req))
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, safe_next(q.next.as_deref())))
        .finish())
}

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    c: Chrome,
    required: bool,
}

pub async fn password(req: HttpRequest) -> Page {
    let v = viewer(&req).await?;
    ok(PasswordPage {
        required: v.must_change_password,
        c: v.chrome,
    }
    .render())
}

// ---------------------------------------------------------------------------------------
// Orders

#[derive(Template)]
#[template(path = "console/orders.html")]
struct OrdersPage {
    c: Chrome,
    items: Vec<WorkOrderView>,
    state: String,
    msisdn: String,
    /// `due_at`, `deadline_at`, or empty (the order they were opened in).
    sort: String,
    next_cursor: Option<String>,
    states: &'static [&'static str],
}

const STATES: &[&str] = &[
    "open",
    "claimed",
    "submitted",
    "awaiting_second_approval",
    "completed",
    "failed",
    "cancelled",
    "expired",
];

#[derive(Deserialize, Default)]
struct OrderFilter {
    state: Option<String>,
    msisdn: Option<String>,
    sort: Option<String>,
}

pub async fn orders(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Clerk, Role::Auditor, Role::HallStaff])?;
    let q: ListQuery = query(&req)?;
    let filter: OrderFilter = query_lenient(&req);
    let page = services.list_work_orders(v.actor, q).await?;
    ok(OrdersPage {
        c: v.chrome,
        items: page.items,
        state: filter.state.unwrap_or_default(),
        msisdn: filter.msisdn.unwrap_or_default(),
        sort: filter.sort.unwrap_or_default(),
        next_cursor: page.next_cursor,
        states: STATES,
    }
    .render())
}

/// A page's filters as the API reads them, without the fields a form left empty.
fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    query_str(&filled_query(req))
}

/// The query without empty fields, and with `since` / `until` from a `datetime-local` picker
/// (Beijing wall time, no offset) written as the RFC 3339 instants the API takes.
fn filled_query(req: &HttpRequest) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(req.query_string().as_bytes())
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    let v = match &*k {
                        "since" | "until" => beijing_instant(&v).unwrap_or_else(|| v.into_owned()),
                        _ => v.into_owned(),
                    };
                    (k, v)
                }),
        )
        .finish()
}

/// `2026-12-01T08:30` (or with seconds) as Beijing time, in RFC 3339; None for anything
/// else, which the API then judges as given.
fn beijing_instant(local: &str) -> Option<String> {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let beijing = chrono::FixedOffset::east_opt(8 * 3600)?;
    Some(naive.and_local_timezone(beijing).single()?.to_rfc3339())
}

/// The filter values to show back in a page's form (the service already refused bad ones).
fn query_lenient<T: serde::de::DeserializeOwned + Default>(req: &HttpRequest) -> T {
    serde_urlencoded::from_str::<T>(req.query_string()).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/new_order.html")]
struct NewOrderPage {
    c: Chrome,
    provinces: &'static [region::Province],
    cities: &'static [region::City],
}

pub async fn new_order(req: HttpRequest) -> Page {
    let v = viewer(&req).await?;
    v.require(&[Role::Clerk])?;
    ok(NewOrderPage {
        c: v.chrome,
        provinces: region::PROVINCES,
        cities: region::CITIES,
    }
    .render())
}

#[derive(Template)]
#[template(path = "console/order.html")]
struct OrderPage {
    c: Chrome,
    o: WorkOrderView,
    events: Vec<AuditEventView>,
    evidence: Vec<EvidenceView>,
    provinces: &'static [region::Province],
    cities: &'static [region::City],
    /// The calls that take a reason, with their buttons' labels.
    reason_calls: &'static [(&'static str, &'static str, &'static str)],
}

const REASON_CALLS: &[(&str, &str, &str)] = &[
    ("release", "释放", "Release"),
    ("return", "退回营业厅", "Return to the hall"),
    ("fail", "置为失败", "Fail"),
    ("cancel", "取消工单", "Cancel"),
];

impl OrderPage {
    fn can(&self, call: &str) -> bool {
        self.o.actions.contains(&call)
    }

    /// The clerk's `complete` gives a flagged result its first approval.
    fn approves_first(&self) -> bool {
        self.o.state == "submitted"
            && self
                .o
                .quality
                .as_ref()
                .is_some_and(|q| q.needs_second_approval)
    }

    fn detail_of(&self, e: &AuditEventView) -> String {
        match &e.detail {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

#[derive(Deserialize)]
pub struct OrderPath {
    id: WorkOrderId,
}

pub async fn order(req: HttpRequest, path: web::Path<OrderPath>) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    let id = path.into_inner().id;
    let o = services.get_work_order(v.actor.clone(), id.clone()).await?;
    let events = services
        .work_order_events(v.actor.clone(), id.clone())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let evidence = services
        .list_evidence(v.actor.clone(), id)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    ok(OrderPage {
        c: v.chrome,
        o,
        events,
        evidence,
        provinces: region::PROVINCES,
        cities: region::CITIES,
        reason_calls: REASON_CALLS,
    }
    .render())
}

#[derive(Template)]
#[template(path = "console/verify.html")]
struct VerifyPage {
    c: Chrome,
    o: WorkOrderView,
    hall_id: String,
    required: Vec<String>,
    kinds: &'static [(&'static str, &'static str, &'static str)],
}

impl VerifyPage {
    fn is_required(&self, kind: &str) -> bool {
        self.required.iter().any(|k| k == kind)
    }
}

/// The files a hall sends back, with their labels.
const EVIDENCE_KINDS: &[(&str, &str, &str)] = &[
    ("id_front", "身份证人像面", "ID card, front"),
    ("id_back", "身份证国徽面", "ID card, back"),
    ("live_photo", "现场照片", "Live photo"),
    (
        "registration_form",
        "登记表（可选）",
        "Registration form (optional)",
    ),
];

pub async fn verify(req: HttpRequest, path: web::Path<OrderPath>) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::HallStaff])?;
    let o = services
        .get_work_order(v.actor.clone(), path.into_inner().id)
        .await?;
    let hall_id = v.hall_id();
    ok(VerifyPage {
        c: v.chrome,
        o,
        hall_id,
        required: services
            .settings()
            .verification
            .required_evidence
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        kinds: EVIDENCE_KINDS,
    }
    .render())
}

/// The receipt, as a file to keep.
pub async fn receipt(req: HttpRequest, path: web::Path<OrderPath>) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    let o = services
        .get_work_order(v.actor, path.into_inner().id)
        .await?;
    let Some(receipt) = o.receipt else {
        return Err(ApiError::new(
            crate::http::problem::ErrorCode::NotFound,
            None,
            crate::domain::Detail::new("该工单尚无回执", "the order has no receipt yet"),
        )
        .into());
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jose; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"receipt-{}.jws\"", o.reference),
        ))
        .body(receipt))
}

#[derive(Deserialize)]
pub struct EvidencePath {
    id: WorkOrderId,
    sha256: String,
}

/// An evidence file shown inside the order page (an image, or a PDF inline): the same
/// download as the API's, audited as every view is, but framable by the console's own pages.
pub async fn evidence_file(req: HttpRequest, path: web::Path<EvidencePath>) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    let EvidencePath { id, sha256 } = path.into_inner();
    let download = services.download_evidence(v.actor, id, sha256).await?;
    let size = u64::try_from(download.file.size).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type(download.file.content_type.as_str())
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, FRAMED_CSP))
        .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(SizedStream::new(size, download.bytes)))
}

#[derive(Template)]
#[template(path = "console/inbox.html")]
struct InboxPage {
    c: Chrome,
    new: Vec<WorkOrderView>,
    mine: Vec<WorkOrderView>,
    returned: Vec<WorkOrderView>,
}

pub async fn inbox(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::HallStaff])?;
    let list = |state: &str| {
        let q: ListQuery =
            serde_urlencoded::from_str(&format!("state={state}&limit=200")).unwrap_or_default();
        services.list_work_orders(v.actor.clone(), q)
    };
    let new = list("open").await?.items;
    let me = v.actor.username.to_string();
    let (returned, mine): (Vec<_>, Vec<_>) = list("claimed")
        .await?
        .items
        .into_iter()
        .filter(|o| o.claimed_by.as_deref() == Some(me.as_str()))
        // A claimed order that already had a result was returned by the home clerk.
        .partition(|o| o.verification.is_some());
    ok(InboxPage {
        c: v.chrome,
        new,
        mine,
        returned,
    }
    .render())
}

// ---------------------------------------------------------------------------------------
// Device keys

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    c: Chrome,
    hall_id: String,
}

pub async fn device_keys(req: HttpRequest) -> Page {
    let v = viewer(&req).await?;
    v.require(&[Role::HallStaff])?;
    let hall_id = v.hall_id();
    ok(KeysPage {
        c: v.chrome,
        hall_id,
    }
    .render())
}

#[derive(Template)]
#[template(path = "console/admin_keys.html")]
struct AdminKeysPage {
    c: Chrome,
    halls: Vec<HallView>,
}

pub async fn admin_keys(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Admin])?;
    let halls = services.list_halls(None, None, None).await?.items;
    ok(AdminKeysPage { c: v.chrome, halls }.render())
}

// ---------------------------------------------------------------------------------------
// Audit

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    c: Chrome,
    f: AuditFilter,
    halls: Vec<HallView>,
    /// Every action the trail records, offered as the action field's suggestions.
    actions: Vec<&'static str>,
    items: Vec<AuditEventView>,
    next_after: Option<i64>,
    searched: bool,
    export_query: String,
    /// The search's own fields, carried by the integrity check's button so the page it
    /// asks for shows the same search.
    search_fields: Vec<(String, String)>,
    /// The whole-chain check, run only when asked for (`check=1`): it re-hashes every
    /// event, seconds on a long log, so an ordinary load or next page does not run it.
    verify: Option<VerifyView>,
    checkpoint: CheckpointView,
    checkpoint_payload: String,
}

#[derive(Deserialize, Default)]
struct AuditFilter {
    work_order: Option<String>,
    hall_id: Option<String>,
    msisdn: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl AuditFilter {
    fn value(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or_default()
    }

    /// A time filter as the picker shows it: Beijing wall time (a later page's link carries
    /// the RFC 3339 instant).
    fn local(v: &Option<String>) -> String {
        let v = Self::value(v);
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| Some(t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600)?)))
            .map_or_else(
                || v.to_owned(),
                |t| t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            )
    }
}

/// The audit page's parameter that asks for the integrity check.
const CHECK: &str = "check";

pub async fn audit(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Auditor])?;
    let check =
        form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, v)| k == CHECK && v == "1");
    // The search as the API reads it: the check's own parameter is the page's, not a filter.
    let search_fields: Vec<(String, String)> =
        form_urlencoded::parse(filled_query(&req).as_bytes())
            .filter(|(k, _)| k != CHECK)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let filled = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&search_fields)
        .finish();
    let q: EventQuery = query_str(&filled)?;
    let f: AuditFilter = query_lenient(&req);
    let searched = !filled.is_empty();
    let page = services.audit_events(v.actor.clone(), q).await?;
    let verify = if check {
        Some(services.verify_audit(v.actor.clone()).await?)
    } else {
        None
    };
    let halls = services.list_halls(None, None, None).await?.items;
    let checkpoint = services.audit_checkpoint(v.actor).await?;
    let checkpoint_payload = jws_payload(&checkpoint.checkpoint);
    // The same filters as the API read them, without paging, for the export buttons.
    const FILTERS: [&str; 7] = [
        "work_order",
        "hall_id",
        "msisdn",
        "actor",
        "action",
        "since",
        "until",
    ];
    let export_query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(filled.as_bytes()).filter(|(k, _)| FILTERS.contains(&&**k)),
        )
        .finish();
    ok(AuditPage {
        c: v.chrome,
        f,
        halls,
        actions: crate::domain::AuditAction::iter()
            .map(|a| a.as_str())
            .collect(),
        items: page.items,
        next_after: page.next_after,
        searched,
        export_query,
        search_fields,
        verify,
        checkpoint,
        checkpoint_payload,
    }
    .render())
}

/// The payload of a compact JWS, as JSON text (shown beside the checkpoint).
fn jws_payload(jws: &str) -> String {
    use base64::Engine;
    jws.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Administration

#[derive(Template)]
#[template(path = "console/halls.html")]
struct HallsPage {
    c: Chrome,
    halls: Vec<HallView>,
    provinces: &'static [region::Province],
    cities: &'static [region::City],
}

pub async fn halls(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Admin])?;
    let halls = services.list_halls(None, None, None).await?.items;
    ok(HallsPage {
        c: v.chrome,
        halls,
        provinces: region::PROVINCES,
        cities: region::CITIES,
    }
    .render())
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserView>,
    halls: Vec<HallView>,
    next_cursor: Option<String>,
    provinces: &'static [region::Province],
}

impl UsersPage {
    /// A hall as people know it (code and name), or its id if it is not in the list.
    fn hall_label(&self, id: &str) -> String {
        self.halls
            .iter()
            .find(|h| h.id == id)
            .map_or_else(|| id.to_owned(), |h| format!("{} {}", h.code, h.name))
    }
}

pub async fn users(req: HttpRequest) -> Page {
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Admin])?;
    let q: UserQuery = query(&req)?;
    let page = services.list_users(v.actor.clone(), q).await?;
    let halls = services.list_halls(None, None, None).await?.items;
    ok(UsersPage {
        c: v.chrome,
        users: page.items,
        halls,
        next_cursor: page.next_cursor,
        provinces: region::PROVINCES,
    }
    .render())
}

#[derive(Template)]
#[template(path = "console/operations.html")]
struct OperationsPage {
    c: Chrome,
    o: crate::service::operations::OperationsOverview,
    days: u32,
    backlog_plot: String,
    past_due_plot: String,
    completions_plot: String,
}

impl OperationsPage {
    /// The oldest active order's age as people say it: days and hours.
    fn age(&self, seconds: &i64) -> String {
        let hours = seconds / 3600;
        let (d, h) = (hours / 24, hours % 24);
        match self.c.lang {
            Lang::Zh => format!("{d} 天 {h} 小时"),
            Lang::En => format!("{d} d {h} h"),
        }
    }
}

#[derive(Deserialize, Default)]
struct DaysFilter {
    days: Option<u32>,
}

/// Backlog by province and state, orders past due by province, completions per day: the
/// overview the API gives, drawn as SVG on the server.
pub async fn operations(req: HttpRequest) -> Page {
    use crate::domain::work_order::State;
    let services = services(&req)?;
    let v = Viewer::of(&req, &services).await?;
    v.require(&[Role::Admin, Role::Auditor])?;
    let f: DaysFilter = query_lenient(&req);
    let o = services
        .operations_overview(v.actor.clone(), f.days)
        .await?;
    let c = v.chrome;
    let mut provinces: Vec<String> = o.backlog.iter().map(|b| b.province.clone()).collect();
    provinces.dedup();
    let series: Vec<(String, Vec<u64>)> = State::ACTIVE
        .iter()
        .map(|state| {
            let counts = provinces
                .iter()
                .map(|p| {
                    o.backlog
                        .iter()
                        .filter(|b| b.state == *state && &b.province == p)
                        .map(|b| b.count)
                        .sum()
                })
                .collect();
            (c.state_label(state.as_str()).to_owned(), counts)
        })
        .collect();
    let names: Vec<String> = provinces.iter().map(|p| c.province_name(p)).collect();
    let backlog_plot = super::plots::stacked_bars(
        c.t(
            "在办工单（按归属省份、状态）",
            "Active orders by home province and state",
        ),
        &names,
        &series,
    );
    let past_due: Vec<(String, u64)> = o
        .past_due
        .iter()
        .map(|p| (c.province_name(&p.province), p.count))
        .collect();
    let past_due_plot = super::plots::bars(
        c.t(
            "已超办理时限的工单（按归属省份）",
            "Orders past due by home province",
        ),
        &past_due,
    );
    let per_day: Vec<(chrono::NaiveDate, u64)> = o
        .completions_per_day
        .iter()
        .map(|d| (d.date, d.count))
        .collect();
    let completions_plot =
        super::plots::daily_bars(c.t("每日办结量", "Completions per day"), &per_day);
    let days = u32::try_from(o.completions_per_day.len()).unwrap_or(30);
    ok(OperationsPage {
        c,
        o,
        days,
        backlog_plot,
        past_due_plot,
        completions_plot,
    }
    .render())
}

#[cfg(test)]
mod tests {
    use super::beijing_instant;

    #[test]
    fn a_picked_time_is_beijing_time_and_anything_else_is_left_to_the_api() {
        assert_eq!(
            beijing_instant("2026-12-01T08:30").as_deref(),
            Some("2026-12-01T08:30:00+08:00")
        );
        assert_eq!(
            beijing_instant("2026-12-01T08:30:15").as_deref(),
            Some("2026-12-01T08:30:15+08:00")
        );
        for other in ["2026-12-01T08:30:00Z", "2026-12-01", "yesterday", ""] {
            assert_eq!(beijing_instant(other), None, "{other}");
        }
    }
}
