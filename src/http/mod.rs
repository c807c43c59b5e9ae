//! HTTP: thin handlers over `service`. Extraction order, problem responses, routes.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod console;
pub mod device_keys;
pub mod evidence;
pub mod extract;
pub mod headers;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod system;
pub mod work_orders;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, App, HttpRequest};
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use crate::http::problem::ErrorCode;
use problem::ApiError;

/// `app` with every route of the service, and the OpenAPI document those same registrations
/// make (serve it as app data: `system::openapi` reads it from there).
pub fn with_routes<T>(app: App<T>) -> (App<T>, utoipa::openapi::OpenApi)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, mut document) = app
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    openapi::declare_idempotency_keys(&mut document);
    // The console's pages are not API operations: outside the document.
    (app.configure(console::routes), document)
}

/// Every route of the service. Those under `/api/v1` are `openapi::Operations`, so each is in
/// the document; the service endpoints outside it are not part of the API and are not.
fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/healthz", web::get().to(system::healthz))
        .route("/readyz", web::get().to(system::readyz))
        .route("/metrics", web::get().to(system::metrics))
        .route("/.well-known/jwks.json", web::get().to(system::jwks))
        // Before the scope, which would otherwise take every /api/v1 path.
        .route("/api/v1/openapi.json", web::get().to(system::openapi))
        .service(
            scope("/api/v1")
                .configure(auth::routes)
                .configure(work_orders::routes)
                .configure(evidence::routes)
                .configure(admin::routes)
                .configure(device_keys::routes)
                .configure(audit::routes),
        );
}

/// Anything unrouted: 404 for unknown paths, 405 for a known path with another method.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let _ = req;
    Err(ApiError::new(
        ErrorCode::NotFound,
        None,
        crate::domain::Detail::new("没有这个资源", "no such resource"),
    ))
}

/// Serves the request inside its language, so every problem is rendered in it.
pub async fn language(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The console's language switch wins over the browser's preference.
    let lang = console::cookie_language(&req).unwrap_or_else(|| {
        problem::negotiate(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    });
    problem::LANG.scope(lang, next.call(req)).await
}
