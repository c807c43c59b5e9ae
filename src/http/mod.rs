//! HTTP: thin handlers over `service`. Extraction order, problem responses, routes.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod evidence;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod system;
pub mod work_orders;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};

use crate::http::problem::ErrorCode;
use problem::ApiError;

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(system::healthz))
        .route("/readyz", web::get().to(system::readyz))
        .route("/metrics", web::get().to(system::metrics))
        .route("/.well-known/jwks.json", web::get().to(system::jwks))
        .route("/api/v1/openapi.json", web::get().to(system::openapi))
        .service(
            web::scope("/api/v1")
                .configure(auth::routes)
                .configure(work_orders::routes)
                .configure(evidence::routes)
                .configure(admin::routes)
                .configure(audit::routes),
        );
}

/// Anything unrouted: 404 for unknown paths, 405 for a known path with another method.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let _ = req;
    Err(ApiError::new(ErrorCode::NotFound, None, "no such resource"))
}

/// Serves the request inside its language, so every problem is rendered in it.
pub async fn language(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let lang = problem::negotiate(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    problem::LANG.scope(lang, next.call(req)).await
}
