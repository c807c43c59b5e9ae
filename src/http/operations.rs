//! The operations overview an admin's console page draws (admins and auditors).

use actix_web::{HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{query, services, Caller};
use super::openapi::{Operations, Problems};
use super::problem::ApiError;
use crate::service::operations::{OperationsOverview, OverviewQuery};

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(Operations::new().op(__path_overview, overview));
}

/// Backlog by state and home province, the oldest active order, orders past due by province
/// and completions per Asia/Shanghai day (admins: every order; auditors: their scope).
#[utoipa::path(get, path = "/operations/overview", tag = "operations", params(OverviewQuery),
    responses((status = 200, body = OperationsOverview), Problems))]
pub async fn overview(req: HttpRequest, caller: Caller) -> Result<HttpResponse, ApiError> {
    let q: OverviewQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .operations_overview(caller.0, q.days)
            .await?,
    ))
}
