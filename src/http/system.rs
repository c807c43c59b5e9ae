//! Service endpoints: health, readiness, metrics, the JWKS, the OpenAPI document.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::services;
use super::metrics::Metrics;
use super::problem::ApiError;
use crate::domain::Detail;
use crate::http::problem::ErrorCode;

type Reply = Result<HttpResponse, ApiError>;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(req: HttpRequest) -> Reply {
    let services = services(&req)?;
    // Unready first, so a load balancer sends nothing new while requests in flight finish.
    if services.wake().is_stopping() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            None,
            Detail::new("服务正在停止", "the service is stopping"),
        ));
    }
    if let Some((store, why)) = services.storage_refusal().await {
        let store_zh = match store {
            crate::service::storage_health::RefusingStore::Database => "数据库",
            crate::service::storage_health::RefusingStore::Evidence => "核验材料存储",
        };
        let why_zh = match why {
            crate::storage::error::WriteRefusal::DiskFull => "空间已满",
            crate::storage::error::WriteRefusal::ReadOnly => "只读",
        };
        let store: &'static str = store.into();
        let mut refused = ApiError::new(
            ErrorCode::StorageFull,
            None,
            Detail::new(
                format!("{store_zh}（{store}）拒绝写入：{why_zh}（{why}）"),
                format!("the {store} refuses writes ({why})"),
            ),
        );
        refused.retry_after = Some(crate::service::STORAGE_FULL_RETRY_SECONDS);
        return Err(refused);
    }
    if services.database_answers().await {
        let mut body = serde_json::json!({ "status": "ready" });
        // Said where every check looks: a service whose clock tests can move is no production one.
        if services.settings().testing.movable_clock {
            body["movable_clock"] = serde_json::Value::Bool(true);
        }
        Ok(HttpResponse::Ok().json(body))
    } else {
        Err(ApiError::new(
            ErrorCode::Unavailable,
            None,
            Detail::new("数据库没有响应", "the database does not answer"),
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
