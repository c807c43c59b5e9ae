//! The console's session: the same bearer token the API issues, kept in an HttpOnly,
//! SameSite=Strict cookie, and a CSRF token derived from it that every change must carry.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine;

use crate::domain::Detail;
use crate::http::problem::{ApiError, ErrorCode};

pub const SESSION_COOKIE: &str = "crossprov_session";
pub const LANG_COOKIE: &str = "crossprov_lang";
/// The header the console's scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session's CSRF token: a hash of the session token. A page of another site can neither
/// read the cookie (HttpOnly) nor this page (same-origin policy), so it cannot know it; and it
/// needs no state of its own on any instance.
pub fn csrf_of(session_token: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("crossprov console csrf\0{session_token}").as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Whether a presented CSRF token is the session's. Their hashes are compared, so the time
/// the comparison takes tells nothing about the expected token.
pub fn csrf_matches(session_token: &str, presented: &str) -> bool {
    let hash = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    hash(&csrf_of(session_token)).as_ref() == hash(presented).as_ref()
}

pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// For an API call without `Authorization`: the console session's token, when the call
/// carries the session cookie and the session's CSRF token in `X-CSRF-Token` (403
/// `csrf_rejected` when the cookie comes without it). None: no cookie, the call is anonymous.
pub fn api_session_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(token) = session_token(req) else {
        return Ok(None);
    };
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !csrf_matches(&token, presented) {
        return Err(csrf_rejected());
    }
    Ok(Some(token))
}

pub fn csrf_rejected() -> ApiError {
    ApiError::new(
        ErrorCode::CsrfRejected,
        None,
        Detail::new(
            "缺少本会话的 CSRF 令牌或令牌不符",
            "the session's CSRF token is missing or wrong",
        ),
    )
}

/// The cookie that holds a session for `ttl_seconds` (Secure when served over HTTPS).
pub fn session_cookie(token: &str, ttl_seconds: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(ttl_seconds))
        .finish()
}

/// The cookie that ends the session in the browser.
pub fn ended_session_cookie(secure: bool) -> Cookie<'static> {
    let mut c = session_cookie("", 0, secure);
    c.make_removal();
    c
}

/// Whether the request came over HTTPS (cookies then say `Secure`).
pub fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A form post from another site: its `Origin` (or, without one, `Referer`) names another
/// host. Browsers send `Origin` on every POST; SameSite=Strict already keeps the cookie off
/// such posts, this also stops a login forced from elsewhere.
pub fn cross_site(req: &HttpRequest) -> bool {
    let host = req.connection_info().host().to_owned();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match origin {
        None => false,
        Some(o) => {
            let rest = o.split_once("://").map_or(o, |(_, rest)| rest);
            rest.split('/').next() != Some(host.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_bound_to_its_session() {
        let a = csrf_of("token-a");
        assert_eq!(a, csrf_of("token-a"));
        assert_ne!(a, csrf_of("token-b"));
        assert!(csrf_matches("token-a", &a));
        assert!(!csrf_matches("token-b", &a));
        assert!(!csrf_matches("token-a", ""));
    }
}
