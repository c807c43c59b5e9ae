//! Service endpoints: health, readiness, metrics, the JWKS, the OpenAPI document.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::services;
use super::metrics::Metrics;
use super::problem::ApiError;
use crate::http::problem::ErrorCode;

type Reply = Result<HttpResponse, ApiError>;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(req: HttpRequest) -> Reply {
    if services(&req)?.database_answers().await {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
    } else {
        Err(ApiError::new(
            ErrorCode::Unavailable,
            None,
            "the database does not answer",
        ))
    }
}

pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(metrics.render())
}

pub async fn jwks(req: HttpRequest) -> Reply {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(services(&req)?.jwks().await?))
}

/// The document `http::with_routes` built from the routes.
pub async fn openapi(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}
