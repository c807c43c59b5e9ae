//! The web console: pages rendered here from the same services the API calls, and small
//! scripts (served from this binary) that make their changes through the API itself, with the
//! session cookie and its CSRF token. No business rule lives here: what a page offers comes
//! from the services (an order's `actions`, the caller's scope).

mod assets;
mod pages;
pub mod plots;
pub mod session;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use chrono::{DateTime, FixedOffset, Utc};

use crate::domain::access::{Actor, Role};
use crate::http::problem::{ApiError, ErrorCode, Lang, LANG};
use crate::service::auth::Admission;
use crate::service::Services;

/// Pages may load this binary's own scripts, styles and images only; evidence files may be
/// framed by the console's own pages (a PDF shown inline), nothing else.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";
/// An evidence file shown inside a console page.
const FRAMED_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
     plugin-types application/pdf; frame-ancestors 'self'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The service's address opens the console: what a person typing it expects.
    cfg.route("/", web::get().to(pages::home))
        .route("/console", web::get().to(pages::home))
        .route("/console/", web::get().to(pages::home))
        .route("/console/login", web::get().to(pages::login_form))
        .route("/console/login", web::post().to(pages::login))
        .route("/console/logout", web::post().to(pages::logout))
        .route("/console/lang", web::get().to(pages::switch_language))
        .route("/console/password", web::get().to(pages::password))
        .route("/console/orders", web::get().to(pages::orders))
        .route("/console/orders/new", web::get().to(pages::new_order))
        .route("/console/orders/{id}", web::get().to(pages::order))
        .route("/console/orders/{id}/verify", web::get().to(pages::verify))
        .route(
            "/console/orders/{id}/receipt.jws",
            web::get().to(pages::receipt),
        )
        .route(
            "/console/orders/{id}/evidence/{sha256}",
            web::get().to(pages::evidence_file),
        )
        .route("/console/inbox", web::get().to(pages::inbox))
        .route("/console/keys", web::get().to(pages::device_keys))
        .route("/console/audit", web::get().to(pages::audit))
        .route("/console/admin/halls", web::get().to(pages::halls))
        .route("/console/admin/users", web::get().to(pages::users))
        .route("/console/admin/keys", web::get().to(pages::admin_keys))
        .route(
            "/console/admin/operations",
            web::get().to(pages::operations),
        )
        .route("/console/assets/{name}", web::get().to(assets::serve));
}

/// The language of the console's text: the `crossprov_lang` cookie the switch sets, else the
/// browser's `Accept-Language` (the `language` middleware decides it once per request).
pub fn cookie_language(req: &actix_web::dev::ServiceRequest) -> Option<Lang> {
    match req.cookie(session::LANG_COOKIE)?.value() {
        "en" => Some(Lang::En),
        "zh" => Some(Lang::Zh),
        _ => None,
    }
}

fn current_lang() -> Lang {
    LANG.try_with(|l| *l).unwrap_or_default()
}

/// Times as people at the counters read them: Asia/Shanghai (no daylight saving).
fn shanghai() -> FixedOffset {
    use chrono::Offset;
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// What every page shows around its content, and the helpers its template calls.
pub struct Chrome {
    pub lang: Lang,
    pub csrf: String,
    pub username: String,
    pub role: Option<Role>,
    /// When the session ends (RFC 3339 for the script, local time for people).
    pub expires_at: String,
    pub expires_local: String,
    pub path: String,
    pub nav: Vec<NavItem>,
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Chrome {
    fn anonymous(path: &str) -> Self {
        Self {
            lang: current_lang(),
            csrf: String::new(),
            username: String::new(),
            role: None,
            expires_at: String::new(),
            expires_local: String::new(),
            path: path.to_owned(),
            nav: Vec::new(),
        }
    }

    /// One text in the page's language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn lang_tag(&self) -> &'static str {
        match self.lang {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language the switch offers.
    pub fn other_lang(&self) -> (&'static str, &'static str) {
        match self.lang {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        }
    }

    pub fn time(&self, t: &DateTime<Utc>) -> String {
        t.with_timezone(&shanghai())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    pub fn time_opt(&self, t: &Option<DateTime<Utc>>) -> String {
        t.as_ref()
            .map(|t| self.time(t))
            .unwrap_or_else(|| "—".into())
    }

    /// An RFC 3339 time as the console shows times (audit events carry strings).
    pub fn time_str(&self, t: &str) -> String {
        DateTime::parse_from_rfc3339(t)
            .map(|t| self.time(&t.with_timezone(&Utc)))
            .unwrap_or_else(|_| t.to_owned())
    }

    pub fn role_label(&self, role: &str) -> &'static str {
        let (zh, en) = match role {
            "clerk" => ("归属地业务员", "Home-province clerk"),
            "hall_staff" => ("营业厅人员", "Hall staff"),
            "auditor" => ("审计员", "Auditor"),
            "admin" => ("管理员", "Administrator"),
            _ => ("—", "—"),
        };
        self.t(zh, en)
    }

    /// The hall's verification method, one line per thing it says: the three the console's
    /// form fills in by name, anything else a client sent as `key: value`.
    pub fn method_lines(&self, method: &serde_json::Value) -> Vec<String> {
        let Some(fields) = method.as_object() else {
            return vec![method.to_string()];
        };
        fields
            .iter()
            .map(|(key, value)| {
                // The name people read, and whether a true/false is said as yes/no.
                let (name, yes_no) = match key.as_str() {
                    "chip_read" => (self.t("读取证件芯片", "ID chip read"), true),
                    "operator_checked" => (self.t("工作人员人工核对", "Checked by staff"), true),
                    "face_match_score" => (self.t("人脸比对分数", "Face match score"), false),
                    other => (other, false),
                };
                match value.as_bool() {
                    Some(b) if yes_no => {
                        let said = if b {
                            self.t("是", "yes")
                        } else {
                            self.t("否", "no")
                        };
                        format!("{name}: {said}")
                    }
                    _ => format!("{name}: {value}"),
                }
            })
            .collect()
    }

    pub fn state_label(&self, state: &str) -> &'static str {
        let (zh, en) = match state {
            "open" => ("待认领", "Open"),
            "claimed" => ("已认领", "Claimed"),
            "submitted" => ("待审核", "Submitted"),
            "awaiting_second_approval" => ("待复核", "Awaiting second approval"),
            "completed" => ("已办结", "Completed"),
            "failed" => ("已失败", "Failed"),
            "cancelled" => ("已取消", "Cancelled"),
            "expired" => ("已过期", "Expired"),
            _ => ("—", "—"),
        };
        self.t(zh, en)
    }

    pub fn province_name(&self, code: &str) -> String {
        match crate::domain::region::province(code) {
            Some(p) => match self.lang {
                Lang::Zh => p.name_zh.to_owned(),
                Lang::En => p.name_en.to_owned(),
            },
            None => code.to_owned(),
        }
    }

    pub fn city_name(&self, code: &str) -> String {
        crate::domain::region::city(code)
            .map(|c| c.name_zh.to_owned())
            .unwrap_or_else(|| code.to_owned())
    }

    pub fn province_of(&self, city: &str) -> String {
        city.chars().take(2).collect()
    }

    pub fn outcome_label(&self, outcome: &str) -> &'static str {
        let (zh, en) = match outcome {
            "match" => ("一致", "Match"),
            "mismatch" => ("不一致", "Mismatch"),
            "no_show" => ("本人未到场", "No show"),
            "document_invalid" => ("证件无效", "Document invalid"),
            _ => ("—", "—"),
        };
        self.t(zh, en)
    }

    pub fn kind_label(&self, kind: &str) -> &'static str {
        let (zh, en) = match kind {
            "id_front" => ("身份证人像面", "ID card, front"),
            "id_back" => ("身份证国徽面", "ID card, back"),
            "live_photo" => ("现场照片", "Live photo"),
            "registration_form" => ("登记表", "Registration form"),
            "other" => ("其他", "Other"),
            _ => ("—", "—"),
        };
        self.t(zh, en)
    }

    /// An audit action as people read it; the code itself for one the console does not name.
    pub fn action_label<'a>(&self, action: &'a str) -> &'a str {
        let (zh, en) = match action {
            "work_order.opened" => ("开单", "Opened"),
            "work_order.claimed" => ("认领", "Claimed"),
            "work_order.released" => ("释放", "Released"),
            "work_order.result_submitted" => ("提交核验结果", "Result submitted"),
            "work_order.result_rejected" => ("核验结果被拒", "Result rejected"),
            "work_order.approved" => ("审核通过", "Approved"),
            "work_order.returned" => ("退回", "Returned"),
            "work_order.completed" => ("办结", "Completed"),
            "work_order.failed" => ("置为失败", "Failed"),
            "work_order.cancelled" => ("取消", "Cancelled"),
            "work_order.rerouted" => ("改派", "Rerouted"),
            "work_order.expired" => ("过期", "Expired"),
            "work_order.reminded" => ("催办", "Reminder sent"),
            "work_order.escalated" => ("升级", "Escalated"),
            "evidence.uploaded" => ("上传材料", "Evidence uploaded"),
            "evidence.viewed" => ("查看材料", "Evidence viewed"),
            _ => return action,
        };
        self.t(zh, en)
    }

    pub fn role_text(&self) -> &'static str {
        self.role.map_or("", |r| self.role_label(r.as_str()))
    }

    /// This page's path, for the language switch to come back to.
    pub fn path_encoded(&self) -> String {
        percent_encoding::utf8_percent_encode(&self.path, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    }

    /// How close a time is, for highlighting: `late` once past, `soon` within four hours.
    pub fn urgency(&self, t: &DateTime<Utc>) -> &'static str {
        let left = *t - Utc::now();
        if left < chrono::Duration::zero() {
            "late"
        } else if left < chrono::Duration::hours(4) {
            "soon"
        } else {
            ""
        }
    }
}

/// The signed-in caller of a page, with the page's chrome.
pub struct Viewer {
    pub actor: Actor,
    pub chrome: Chrome,
    /// An admin reset the password: only the password page opens.
    pub must_change_password: bool,
}

impl Viewer {
    /// The hall of a staff member, or an empty string for everyone else (pages use it as is).
    fn hall_id(&self) -> String {
        self.actor
            .hall
            .as_ref()
            .map(|h| h.id.to_string())
            .unwrap_or_default()
    }

    /// The caller of a console page: its session cookie's token, admitted like an API call
    /// (a revoked, expired or disabled session goes back to the login page).
    async fn of(req: &HttpRequest, services: &Services) -> Result<Self, ConsoleError> {
        let path = req.path().to_owned();
        let login = || ConsoleError::Login { next: path.clone() };
        let token = session::session_token(req).ok_or_else(login)?;
        let holder = services.authenticate(&token).await.map_err(|_| login())?;
        let certificate = crate::http::extract::client_certificate(req);
        if holder.password_change_required && path != "/console/password" {
            return Err(ConsoleError::Redirect("/console/password".into()));
        }
        let admission = if holder.password_change_required {
            Admission::OwnPasswordChange
        } else {
            Admission::Any
        };
        services
            .admit(&holder, certificate.as_ref(), admission)
            .map_err(ApiError::from)?;
        let expires = holder.expires_at;
        let must_change_password = holder.password_change_required;
        let actor = holder.actor;
        let mut chrome = Chrome::anonymous(&path);
        chrome.csrf = session::csrf_of(&token);
        chrome.username = actor.username.to_string();
        chrome.role = Some(actor.role);
        chrome.expires_at = expires.to_rfc3339();
        chrome.expires_local = chrome.time(&expires);
        // Until the person picks their own password, no other page opens: none is offered.
        if !must_change_password {
            chrome.nav = nav(actor.role, &path, chrome.lang);
        }
        Ok(Self {
            actor,
            chrome,
            must_change_password,
        })
    }

    /// Refuses a page the caller's role never sees (403, as the API would).
    fn require(&self, roles: &[Role]) -> Result<(), ConsoleError> {
        if roles.contains(&self.actor.role) {
            Ok(())
        } else {
            Err(ConsoleError::Problem(ApiError::new(
                ErrorCode::Forbidden,
                None,
                crate::domain::Detail::new(
                    "你的角色不能打开此页面",
                    "your role may not open this page",
                ),
            )))
        }
    }
}

fn nav(role: Role, path: &str, lang: Lang) -> Vec<NavItem> {
    let items: &[(&str, &str, &str)] = match role {
        Role::Clerk => &[
            ("/console/orders", "工单队列", "Orders"),
            ("/console/orders/new", "新建工单", "Open an order"),
        ],
        Role::HallStaff => &[
            ("/console/inbox", "营业厅待办", "Hall inbox"),
            ("/console/keys", "签名设备密钥", "Device key"),
        ],
        Role::Auditor => &[
            ("/console/audit", "审计查询", "Audit"),
            ("/console/orders", "工单", "Orders"),
            ("/console/admin/operations", "运行概况", "Operations"),
        ],
        Role::Admin => &[
            ("/console/admin/operations", "运行概况", "Operations"),
            ("/console/admin/halls", "营业厅", "Halls"),
            ("/console/admin/users", "用户", "Users"),
            ("/console/admin/keys", "营业厅密钥", "Hall keys"),
        ],
    };
    items
        .iter()
        .map(|(href, zh, en)| NavItem {
            href,
            label: match lang {
                Lang::Zh => zh,
                Lang::En => en,
            },
            current: path == *href,
        })
        .collect()
}

/// Where a role starts.
fn start_page(role: Role) -> &'static str {
    match role {
        Role::Clerk => "/console/orders",
        Role::HallStaff => "/console/inbox",
        Role::Auditor => "/console/audit",
        Role::Admin => "/console/admin/operations",
    }
}

/// What a page answers instead of itself.
#[derive(Debug)]
pub enum ConsoleError {
    /// No usable session: to the login page, and back here afterwards.
    Login {
        next: String,
    },
    Redirect(String),
    /// A refusal from the services, shown as a page in the user's language.
    Problem(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self::Problem(e)
    }
}

impl From<crate::service::Error> for ConsoleError {
    fn from(e: crate::service::Error) -> Self {
        Self::Problem(e.into())
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Login { next } => write!(f, "login needed for {next}"),
            Self::Redirect(to) => write!(f, "see {to}"),
            Self::Problem(e) => write!(f, "{e}"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/problem.html")]
struct ProblemPage<'a> {
    c: Chrome,
    status: u16,
    title: &'a str,
    detail: String,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Login { .. } | Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Problem(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Login { next } => see_other(&format!(
                "/console/login?next={}",
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            )),
            Self::Redirect(to) => see_other(to),
            Self::Problem(e) => {
                let c = Chrome::anonymous("");
                let lang = c.lang;
                let detail = e
                    .detail
                    .as_ref()
                    .map(|d| match lang {
                        Lang::Zh => d.zh().to_owned(),
                        Lang::En => d.en().to_owned(),
                    })
                    .unwrap_or_default();
                let page = ProblemPage {
                    status: e.status_code().as_u16(),
                    title: e.code.title(lang),
                    detail,
                    c,
                };
                html(e.status_code(), page.render())
            }
        }
    }
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// Under the API's `no-referrer`, a browser sends `Origin: null` with a page's own form posts,
/// which `session::cross_site` must refuse (a sandboxed frame of any site sends the same):
/// console pages name their origin to themselves, and still nothing to other sites.
const PAGE_REFERRER_POLICY: &str = "same-origin";

/// A rendered page, with the console's security headers.
fn html(status: StatusCode, rendered: askama::Result<String>) -> HttpResponse {
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
            .insert_header((header::REFERRER_POLICY, PAGE_REFERRER_POLICY))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "a console page failed to render");
            HttpResponse::InternalServerError()
                .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("页面渲染失败 / the page failed to render")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_is_said_in_words_and_what_the_form_does_not_know_as_sent() {
        let mut c = Chrome::anonymous("/");
        c.lang = Lang::Zh;
        let method = serde_json::json!({
            "chip_read": true, "operator_checked": false, "face_match_score": 0.97,
            "liveness": true, "note": "x"
        });
        assert_eq!(
            c.method_lines(&method),
            [
                "读取证件芯片: 是",
                "人脸比对分数: 0.97",
                "liveness: true",
                "note: \"x\"",
                "工作人员人工核对: 否",
            ]
        );
        c.lang = Lang::En;
        assert_eq!(
            c.method_lines(&serde_json::json!({"chip_read": "yes"})),
            ["ID chip read: \"yes\""]
        );
        assert_eq!(c.method_lines(&serde_json::json!("by eye")), ["\"by eye\""]);
    }
}
