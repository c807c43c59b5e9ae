//! Auditors' endpoints.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{query, services, Caller};
use super::problem::{ApiError, Problem};
use crate::domain::ErrorCode;
use crate::service::audit::{EventPage, EventQuery, ExportFormat, VerifyView};

type Reply = Result<HttpResponse, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit/events").route(web::get().to(events)))
        .service(web::resource("/audit/verify").route(web::get().to(verify)));
}

/// Query the trail (paged JSON), or export every matching event with `format=ndjson|csv`.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(EventQuery),
    responses((status = 200, body = EventPage), (status = "4XX", body = Problem)))]
pub async fn events(req: HttpRequest, caller: Caller) -> Reply {
    let q: EventQuery = query(&req)?;
    let services = services(&req)?;
    match q.format.clone() {
        None => Ok(HttpResponse::Ok().json(services.audit_events(caller.0, q).await?)),
        Some(f) => {
            let format = ExportFormat::parse(&f).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    Some("format"),
                    "format must be ndjson or csv",
                )
            })?;
            let body = services.export_audit(caller.0, q, format).await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, format.content_type()))
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"audit-events.{}\"", format.as_str()),
                ))
                .body(body))
        }
    }
}

/// Re-hash the whole chain and report the first altered event.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyView), (status = "4XX", body = Problem)))]
pub async fn verify(req: HttpRequest, caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.verify_audit(caller.0).await?))
}
