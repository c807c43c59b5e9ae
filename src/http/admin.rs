//! Reference data and administration: provinces, halls, hall keys, users, subscribers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{query, services, Call, Caller, NoBody};
use super::openapi::Operations;
use super::problem::{ApiError, Problem};
use crate::domain::HallId;
use crate::service::halls::{HallKeyView, HallList, HallView, NewHall, NewHallKey, ProvinceList};
use crate::service::subscribers::SubscriberView;
use crate::service::users::{NewUser, UserView};

type Reply = Result<HttpResponse, ApiError>;

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_provinces, provinces)
            .op(__path_list_halls, list_halls)
            .op(__path_create_hall, create_hall)
            .op(__path_register_key, register_key)
            .op(__path_revoke_key, revoke_key)
            .op(__path_create_user, create_user)
            .op(__path_subscriber, subscriber),
    );
}

#[utoipa::path(get, path = "/provinces", tag = "reference data",
    responses((status = 200, body = ProvinceList), (status = "4XX", body = Problem)))]
/// Any authenticated caller may read reference data.
pub async fn provinces(req: HttpRequest, _caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.provinces()))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HallQuery {
    pub province: Option<String>,
    pub city: Option<String>,
}

#[utoipa::path(get, path = "/halls", tag = "reference data", params(HallQuery),
    responses((status = 200, body = HallList), (status = "4XX", body = Problem)))]
pub async fn list_halls(req: HttpRequest, _caller: Caller) -> Reply {
    let q: HallQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.list_halls(q.province, q.city).await?))
}

#[utoipa::path(post, path = "/halls", tag = "administration", request_body = NewHall,
    responses((status = 201, body = HallView), (status = "4XX", body = Problem)))]
pub async fn create_hall(req: HttpRequest, call: Call<NewHall>) -> Reply {
    Ok(HttpResponse::Created().json(services(&req)?.create_hall(call.actor, call.body).await?))
}

#[utoipa::path(post, path = "/halls/{id}/keys", tag = "administration", request_body = NewHallKey,
    responses((status = 201, body = HallKeyView), (status = "4XX", body = Problem)))]
pub async fn register_key(
    req: HttpRequest,
    call: Call<NewHallKey>,
    id: web::Path<HallId>,
) -> Reply {
    let key = services(&req)?
        .register_hall_key(call.actor, id.into_inner(), call.body)
        .await?;
    Ok(HttpResponse::Created().json(key))
}

#[utoipa::path(post, path = "/halls/{id}/keys/{kid}/revoke", tag = "administration",
    responses((status = 200, body = HallKeyView), (status = "4XX", body = Problem)))]
pub async fn revoke_key(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<(HallId, String)>,
) -> Reply {
    let (hall_id, kid) = path.into_inner();
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .revoke_hall_key(call.actor, hall_id, kid)
            .await?,
    ))
}

#[utoipa::path(post, path = "/users", tag = "administration", request_body = NewUser,
    responses((status = 201, body = UserView), (status = "4XX", body = Problem)))]
pub async fn create_user(req: HttpRequest, call: Call<NewUser>) -> Reply {
    Ok(HttpResponse::Created().json(services(&req)?.create_user(call.actor, call.body).await?))
}

/// A subscriber's real-name record (masked); every read is audited.
#[utoipa::path(get, path = "/subscribers/{msisdn}", tag = "subscribers",
    responses((status = 200, body = SubscriberView), (status = "4XX", body = Problem)))]
pub async fn subscriber(req: HttpRequest, caller: Caller, msisdn: web::Path<String>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .view_subscriber(caller.0, msisdn.into_inner())
            .await?,
    ))
}
