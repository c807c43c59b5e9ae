//! `Idempotency-Key` on every `POST` under `/api/v1` that creates or changes something (the
//! login excepted: it has no caller to keep a key for, and its answer is a token, which must
//! not be stored). The key is reserved before the handler runs and completed with its
//! response after (`service::idempotency`); a repeat is answered from the stored response.
//!
//! The request's body is hashed as it streams through to the handler, so an upload is never
//! held in memory; whatever the handler left unread (a refusal answered early) is hashed
//! after it, up to the size limits.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures_util::{Stream, StreamExt};

use super::extract;
use super::problem::{ApiError, ErrorCode};
use crate::crypto::replay::BodyDigest;
use crate::domain::idempotency::{IdempotencyKey, Target};
use crate::domain::Detail;
use crate::service::idempotency::{Begin, Replay, StoredResponse, Ticket};
use crate::service::Services;

pub const KEY_HEADER: &str = "idempotency-key";
/// On a response answered from the stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The headers kept with a response: what a client relies on besides status and body.
const KEPT_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::ETAG,
    header::RETRY_AFTER,
];

/// Set on a request whose key is malformed: the extractors refuse it at the contract's 400
/// step ([`refuse_malformed_key`]), so 413, 415 and 401 still outrank it.
#[derive(Debug, Clone, Copy)]
struct MalformedKey;

/// 400 `invalid_idempotency_key` when the request's key is malformed.
pub fn refuse_malformed_key(req: &HttpRequest) -> Result<(), ApiError> {
    if req.extensions().get::<MalformedKey>().is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            Some("Idempotency-Key"),
            Detail::new(
                "Idempotency-Key 须为 1 到 255 个可见 ASCII 字符",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ),
        ));
    }
    Ok(())
}

fn is_keyed_call(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && req.path().starts_with("/api/v1/")
        && req.path() != "/api/v1/auth/token"
}

pub async fn keyed(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let raw = is_keyed_call(&req)
        .then(|| req.headers().get(KEY_HEADER))
        .flatten()
        .map(|v| v.as_bytes().to_vec());
    let (Some(raw), Ok(services)) = (raw, extract::services(req.request())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Keys are kept per caller: without a good token there is none, and the handler answers
    // 401 as it would (a 401 is not kept).
    let Ok(caller) = extract::authenticate(req.request(), &services).await else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(key) = IdempotencyKey::parse(&raw) else {
        req.extensions_mut().insert(MalformedKey);
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let target = Target {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned()),
    };
    match services
        .begin_idempotent(caller.username(), key, target)
        .await
    {
        Err(e) => Ok(refused(req, e.into())),
        Ok(Begin::Proceed(ticket)) => proceed(req, next, &services, ticket).await,
        Ok(Begin::Replay(stored)) => replay(req, &services, stored).await,
        Ok(Begin::InFlight) => {
            let mut e = ApiError::new(
                ErrorCode::IdempotencyKeyInFlight,
                Some("Idempotency-Key"),
                Detail::new(
                    "使用此 Idempotency-Key 的请求仍在处理中，请稍后重试",
                    "a request with this Idempotency-Key is still in progress; retry it later",
                ),
            );
            e.retry_after = Some(1);
            Ok(refused(req, e))
        }
        Ok(Begin::Reused) => Ok(refused(req, reused())),
    }
}

fn reused() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyKeyReused,
        Some("Idempotency-Key"),
        Detail::new(
            "此 Idempotency-Key 已用于另一个不同的请求（方法、路径或请求体不同）",
            "this Idempotency-Key was used for a different request (method, path or body)",
        ),
    )
}

fn refused(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(e.error_response())
}

/// The largest body any call takes: past it a body is not read just to be hashed.
fn body_limit(services: &Services) -> u64 {
    let limits = &services.settings().limits;
    limits.body_bytes.max(limits.evidence_bytes) as u64
}

/// Whether an answer is kept with its key: 2xx and 4xx, but not 429, which asks the client
/// to come back later (kept, it would refuse the retry it invites), nor 5xx (the client may
/// retry).
fn is_kept(status: StatusCode) -> bool {
    (status.is_success() || status.is_client_error()) && status != StatusCode::TOO_MANY_REQUESTS
}

/// A `Content-Length` over `limit`: such a body is refused unread and not read to be hashed.
fn declared_over(req: &ServiceRequest, limit: u64) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

/// Runs the handler with the body hashed on its way in; keeps the answer with the key when
/// [`is_kept`], frees the key otherwise or when the body is too large to hash.
async fn proceed(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    services: &Services,
    ticket: Ticket,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = body_limit(services);
    let oversize = declared_over(&req, limit);
    let tap = Tap::new(req.take_payload(), services.request_digest());
    req.set_payload(Payload::Stream {
        payload: Box::pin(tap.clone()),
    });
    let res = match next.call(req).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(e) => {
            release(services, ticket).await;
            return Err(e);
        }
    };
    if !is_kept(res.status()) || oversize || !tap.drain(limit).await {
        release(services, ticket).await;
        return Ok(res);
    }
    let Some((digest, bytes)) = tap.finish() else {
        release(services, ticket).await;
        return Ok(res);
    };
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let Ok(body) = actix_web::body::to_bytes(body).await else {
        release(services, ticket).await;
        let e = ApiError::new(
            ErrorCode::Internal,
            None,
            Detail::new("响应无法读取", "the response could not be read"),
        );
        return Ok(ServiceResponse::new(req, e.error_response()));
    };
    let stored = StoredResponse {
        status: head.status().as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = head.headers().get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    match services
        .complete_idempotent(ticket, digest, bytes, &stored)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "an idempotency key was taken over while its request ran (past idempotency.lease_seconds)"
        ),
        // The work is done and answered; the key stays in flight until its lease runs out.
        Err(e) => tracing::error!(error = %e, "storing a response with its idempotency key failed"),
    }
    Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(body))))
}

async fn release(services: &Services, ticket: Ticket) {
    if let Err(e) = services.release_idempotent(ticket).await {
        // The key stays in flight until its lease runs out; then a repeat takes it over.
        tracing::warn!(error = %e, "freeing an idempotency key failed");
    }
}

/// Answers the stored response when this body is the first request's, byte for byte.
async fn replay(
    mut req: ServiceRequest,
    services: &Services,
    stored: Replay,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut payload = req.take_payload();
    let mut digest = services.request_digest();
    let mut bytes = 0u64;
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            let e = ApiError::new(ErrorCode::InvalidRequest, None, extract::body_unreadable());
            return Ok(refused(req, e));
        };
        bytes += chunk.len() as u64;
        // Longer than the first request's body: another request, whatever follows.
        if bytes > stored.request_bytes {
            return Ok(refused(req, reused()));
        }
        digest.update(&chunk);
    }
    if bytes != stored.request_bytes || digest.finish() != stored.request_digest {
        return Ok(refused(req, reused()));
    }
    let response = stored.response;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    for (name, value) in &response.headers {
        res.insert_header((name.as_str(), value.as_str()));
    }
    res.insert_header((REPLAYED_HEADER, HeaderValue::from_static("true")));
    Ok(req.into_response(res.body(response.body)))
}

/// The request body on its way to the handler, hashed as it passes. Shared with the
/// middleware, which hashes what the handler left unread once it has answered.
#[derive(Clone)]
struct Tap(Rc<RefCell<TapState>>);

struct TapState {
    inner: Payload,
    digest: Option<BodyDigest>,
    bytes: u64,
    ended: bool,
    /// The body could not be read whole: it cannot be compared, so nothing is kept.
    broken: bool,
}

impl Tap {
    fn new(inner: Payload, digest: BodyDigest) -> Self {
        Self(Rc::new(RefCell::new(TapState {
            inner,
            digest: Some(digest),
            bytes: 0,
            ended: false,
            broken: false,
        })))
    }

    /// Reads what the handler left of the body, up to `limit` bytes in all; true when the
    /// whole body was hashed.
    async fn drain(&self, limit: u64) -> bool {
        let mut tap = self.clone();
        loop {
            {
                let state = self.0.borrow();
                if state.ended || state.broken {
                    return state.ended && !state.broken;
                }
                if state.bytes > limit {
                    return false;
                }
            }
            if tap.next().await.is_none() {
                let state = self.0.borrow();
                return state.ended && !state.broken;
            }
        }
    }

    /// The body's digest and length, once it has been read whole.
    fn finish(&self) -> Option<(String, u64)> {
        let mut state = self.0.borrow_mut();
        if !state.ended || state.broken {
            return None;
        }
        let digest = state.digest.take()?;
        Some((digest.finish(), state.bytes))
    }
}

impl Stream for Tap {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.0.borrow_mut();
        if state.ended || state.broken {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut state.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                state.bytes += chunk.len() as u64;
                if let Some(d) = state.digest.as_mut() {
                    d.update(chunk);
                }
            }
            Poll::Ready(Some(Err(_))) => state.broken = true,
            Poll::Ready(None) => state.ended = true,
            Poll::Pending => {}
        }
        polled
    }
}
