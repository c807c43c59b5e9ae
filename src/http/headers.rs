//! Security headers on every response. A handler that sets one of these itself keeps its own
//! value: that is the seam for a web console, which will serve pages with a
//! `Content-Security-Policy` of its own instead of the API's "nothing may load".

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// What every response carries, decided once at start.
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    /// `Strict-Transport-Security`: only when served over HTTPS (a browser ignores it over
    /// plain HTTP, and it would be untrue there).
    pub hsts: bool,
}

/// An API answer is data for a program, never a page: nothing in it may load or be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Responses under `/api/v1` carry personal data and must not be kept by any cache; the
/// public OpenAPI document may be.
fn no_store(path: &str) -> bool {
    path.starts_with("/api/v1/") && path != "/api/v1/openapi.json"
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

pub async fn security(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let hsts = req
        .app_data::<actix_web::web::Data<SecurityHeaders>>()
        .is_some_and(|p| p.hsts);
    let no_store = no_store(req.path());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(headers, header::X_FRAME_OPTIONS, "DENY");
    set_default(headers, header::REFERRER_POLICY, "no-referrer");
    set_default(headers, header::CONTENT_SECURITY_POLICY, API_CSP);
    if hsts {
        set_default(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    // Evidence downloads say `private, no-store` themselves; that is kept.
    if no_store {
        set_default(headers, header::CACHE_CONTROL, "no-store");
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_data_is_kept_from_caches() {
        assert!(no_store("/api/v1/work-orders"));
        assert!(no_store("/api/v1/me"));
        assert!(!no_store("/api/v1/openapi.json"));
        assert!(!no_store("/healthz"));
    }
}
