//! Request extraction in the contract's order of refusals: 413 → 415 → 401 → 400.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::problem::ApiError;
use crate::domain::access::{Actor, ClientCertificate};
use crate::domain::text::TOO_LONG;
use crate::domain::Detail;
use crate::http::problem::ErrorCode;
use crate::service::auth::{Admission, TokenHolder};
use crate::service::{self, Services};

/// Deeper JSON than this is refused as malformed.
const MAX_JSON_DEPTH: usize = 64;

pub fn services(req: &HttpRequest) -> Result<web::Data<Services>, ApiError> {
    req.app_data::<web::Data<Services>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                None,
                Detail::new("服务未初始化", "services missing"),
            )
        })
}

/// A caller whose token is good, not yet admitted over its connection. The only way to its
/// `Actor` is [`Authenticated::admit`], so no handler can skip the connection check; callers
/// admit after parsing the body, as 400 outranks 403 in the contract's order.
#[derive(Debug, Clone)]
pub struct Authenticated {
    holder: TokenHolder,
    certificate: Option<ClientCertificate>,
}

impl Authenticated {
    /// Whose token it is (what idempotency keys are kept per).
    pub fn username(&self) -> &crate::domain::Username {
        &self.holder.actor.username
    }

    /// The caller, once its connection passes (403 `client_certificate_required` for hall
    /// staff without their hall's client certificate, with mutual TLS on) and it has no
    /// password to change first (403 `password_change_required`).
    pub fn admit(self, services: &Services) -> Result<Actor, ApiError> {
        self.admit_to(services, Admission::Any)
    }

    fn admit_to(self, services: &Services, admission: Admission) -> Result<Actor, ApiError> {
        services.admit(&self.holder, self.certificate.as_ref(), admission)?;
        Ok(self.holder.actor)
    }
}

/// The client certificate of the request's connection, as `tls::peer` read it at connect.
pub fn client_certificate(req: &HttpRequest) -> Option<ClientCertificate> {
    req.conn_data::<ClientCertificate>().cloned()
}

/// The bearer token's caller (401 without a good one; one database read, see
/// `Services::authenticate`); see [`Authenticated::admit`]. Read once a request: a caller
/// found earlier in the same request (by the idempotency middleware, before the handler) is
/// kept in its extensions and answered again.
pub async fn authenticate(
    req: &HttpRequest,
    services: &Services,
) -> Result<Authenticated, ApiError> {
    if let Some(found) = req.extensions().get::<Authenticated>() {
        return Ok(found.clone());
    }
    let found = authenticate_token(req, services).await?;
    req.extensions_mut().insert(found.clone());
    Ok(found)
}

async fn authenticate_token(
    req: &HttpRequest,
    services: &Services,
) -> Result<Authenticated, ApiError> {
    // Without `Authorization`, the web console's session cookie, with its CSRF token.
    let token = match bearer(req) {
        Ok(token) => token,
        Err(bad) if req.headers().contains_key(header::AUTHORIZATION) => return Err(bad),
        Err(no_bearer) => match super::console::session::api_session_token(req)? {
            Some(token) => token,
            None => return Err(no_bearer),
        },
    };
    Ok(Authenticated {
        holder: services.authenticate(&token).await?,
        certificate: client_certificate(req),
    })
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            service::Error::unauthenticated(
                "需要 Authorization: Bearer 令牌",
                "an Authorization: Bearer token is required",
            )
        })?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| {
            service::Error::unauthenticated(
                "需要 Authorization: Bearer 令牌",
                "an Authorization: Bearer token is required",
            )
        })?;
    Ok(token.trim().to_owned())
}

/// The client address logins are throttled by: the peer address, not a forwarded header a
/// client could set to dodge the throttle.
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// The authenticated caller of a call that takes no body (reads): a body, if sent at all,
/// must still be empty or `{}` as JSON, checked in the same order as any other call.
pub struct Caller(pub Actor);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let call = Call::<NoBody>::from_request(req, payload);
        Box::pin(async move { call.await.map(|c| Caller(c.actor)) })
    }
}

/// The body of a call that takes none: empty, or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoBody {}

/// An authenticated call with a JSON body of type `T`.
pub struct Call<T> {
    pub actor: Actor,
    pub body: T,
}

/// A JSON body read without authentication (the login itself).
pub struct PublicJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body within the size limit, refusing by `Content-Length` before reading.
async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            None,
            Detail::new(
                format!("请求体超过 {limit} 字节"),
                format!("the body is larger than {limit} bytes"),
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::new(ErrorCode::InvalidRequest, None, body_unreadable()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// True when arrays and objects nest deeper than `max` (strings are skipped).
fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a JSON body; an empty body counts as `{}` so bodiless calls accept both.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    if nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            None,
            Detail::new(
                format!("JSON 嵌套超过 {MAX_JSON_DEPTH} 层"),
                format!("JSON nests deeper than {MAX_JSON_DEPTH} levels"),
            ),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        describe(&e.to_string(), &path, Some(JsonAt::of(&e)))
    })?;
    de.end()
        .map_err(|e| describe(&e.to_string(), ".", Some(JsonAt::of(&e))))?;
    Ok(value)
}

/// What the caller is told when the body stops arriving midway.
pub fn body_unreadable() -> Detail {
    Detail::new("请求体无法读取", "the body could not be read")
}

/// Where and how a JSON body failed, from `serde_json::Error` itself (never its English).
#[derive(Debug, Clone, Copy)]
struct JsonAt {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl JsonAt {
    fn of(e: &serde_json::Error) -> Self {
        Self {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
    }

    /// Not JSON at all (as opposed to JSON of the wrong shape).
    fn is_syntax(self) -> bool {
        !matches!(self.category, serde_json::error::Category::Data)
    }

    fn kind_zh(self) -> &'static str {
        use serde_json::error::Category;
        match self.category {
            Category::Syntax => "语法错误",
            Category::Eof => "内容意外结束",
            Category::Io => "读取失败",
            Category::Data => "类型或取值错误",
        }
    }
}

/// Says what is wrong and where, in both languages, but never echoes a value the client sent
/// (it may be a name or an ID number). serde names unknown and missing fields in backticks;
/// `json` is where a JSON body failed (none for query strings).
fn describe(msg: &str, path: &str, json: Option<JsonAt>) -> ApiError {
    let named = msg.split('`').nth(1).unwrap_or_default().to_owned();
    let field = || Some(path.to_owned()).filter(|p| p != ".");
    let (field, detail) = if let Some(max) = msg.strip_prefix(TOO_LONG) {
        // serde_json appends the position after the bound: keep the digits only.
        let max: String = max.chars().take_while(char::is_ascii_digit).collect();
        (
            field(),
            Detail::new(
                format!("{path} 超过 {max} 个字符"),
                format!("{path} is longer than {max} characters"),
            ),
        )
    } else if msg.starts_with("unknown field") {
        (
            Some(named.clone()).filter(|n| !n.is_empty()),
            Detail::new(
                format!("未知字段 {named}"),
                format!("unknown field {named}"),
            ),
        )
    } else if msg.starts_with("missing field") {
        (
            Some(named.clone()).filter(|n| !n.is_empty()),
            Detail::new(
                format!("缺少字段 {named}"),
                format!("missing field {named}"),
            ),
        )
    } else if let Some(at) = json.filter(|at| at.is_syntax()) {
        (
            None,
            Detail::new(
                format!(
                    "JSON 格式错误：第 {} 行第 {} 列（{}）",
                    at.line,
                    at.column,
                    at.kind_zh()
                ),
                format!("malformed JSON at line {} column {}", at.line, at.column),
            ),
        )
    } else {
        (
            field(),
            Detail::new(
                format!("{path} 处的类型或取值错误"),
                format!("wrong type or value at {path}"),
            ),
        )
    };
    ApiError {
        code: ErrorCode::InvalidRequest,
        field,
        detail: Some(detail),
        retry_after: None,
    }
}

async fn extract_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Result<(web::Data<Services>, web::BytesMut), ApiError> {
    let services = services(req)?;
    let body = read_body(req, payload, services.settings().limits.body_bytes).await?;
    if !body.is_empty() && !is_json(req) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            None,
            Detail::new(
                "请求体须以 Content-Type: application/json 发送",
                "the body must be sent as Content-Type: application/json",
            ),
        ));
    }
    Ok((services, body))
}

/// The one call open to a user whose password an admin reset: changing it
/// (`POST /api/v1/me/password`). Otherwise exactly a [`Call`].
pub struct OwnPasswordCall<T>(pub Call<T>);

/// Extracts a call in the contract's order, admitting the caller to `admission`.
async fn extract_call<T: DeserializeOwned>(
    req: HttpRequest,
    mut payload: Payload,
    admission: Admission,
) -> Result<Call<T>, ApiError> {
    let (services, body) = extract_body(&req, &mut payload).await?;
    let caller = authenticate(&req, &services).await?;
    let body = parse_json(&body)?;
    super::idempotency::refuse_malformed_key(&req)?;
    let actor = caller.admit_to(&services, admission)?;
    Ok(Call { actor, body })
}

impl<T: DeserializeOwned + 'static> FromRequest for Call<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(extract_call(req.clone(), payload.take(), Admission::Any))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OwnPasswordCall<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let call = extract_call(req.clone(), payload.take(), Admission::OwnPasswordChange);
        Box::pin(async move { call.await.map(OwnPasswordCall) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for PublicJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let (_, body) = extract_body(&req, &mut payload).await?;
            Ok(PublicJson(parse_json(&body)?))
        })
    }
}

/// `If-Match: "<version>"`; anything that is not a version can never match (412).
pub fn if_match(req: &HttpRequest) -> Option<i64> {
    let raw = req.headers().get(header::IF_MATCH)?.to_str().ok()?.trim();
    if raw == "*" {
        return None;
    }
    let unquoted = raw.trim_start_matches("W/").trim_matches('"');
    Some(unquoted.parse().unwrap_or(-1))
}

/// Query parameters, parsed after authentication so 401 outranks 400; refusals name the
/// parameter, as a body's name the field.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    query_str(req.query_string())
}

/// `query` over a query string of one's own (the console drops a form's empty fields first).
pub fn query_str<T: DeserializeOwned>(query_string: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query_string.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let path = e.path().to_string();
        describe(&e.into_inner().to_string(), &path, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert!(nests_deeper_than(deep.as_bytes(), 64));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(!nests_deeper_than(ok.as_bytes(), 64));
        let in_string = format!("{{\"a\":\"{}\"}}", "[".repeat(100));
        assert!(!nests_deeper_than(in_string.as_bytes(), 64));
    }

    #[test]
    fn unknown_fields_name_the_field() {
        let err = parse_json::<NoBody>(br#"{"x":1}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.field.as_deref(), Some("x"));
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Named {
            name: u32,
        }
        let err = parse_json::<Named>("{\"name\":\"张三\"}".as_bytes()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("name"));
        assert!(
            !err.detail
                .as_ref()
                .is_some_and(|d| d.zh().contains("张三") || d.en().contains("张三")),
            "values are never echoed"
        );
        let err = parse_json::<Named>(b"{\"name\":1} trailing").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(parse_json::<NoBody>(b"").is_ok());
        assert!(parse_json::<NoBody>(b"{}").is_ok());
    }
}
