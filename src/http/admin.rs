//! Reference data and administration: provinces, halls, hall keys, users, subscribers.

use crate::domain::text::ceiling::Code;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{if_match, query, services, Call, Caller, NoBody};
use super::openapi::{IfMatch, Operations, Problems, Stale};
use super::problem::ApiError;
use crate::domain::HallId;
use crate::service::halls::{
    HallKeyView, HallList, HallUpdate, HallView, NewHall, NewHallKey, ProvinceList,
};
use crate::service::outbox::{OutboxPage, OutboxQuery, OutboxView};
use crate::service::subscribers::SubscriberView;
use crate::service::users::{NewUser, PasswordReset, UserPage, UserQuery, UserView};

type Reply = Result<HttpResponse, ApiError>;

/// `{id}` in a hall's paths.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HallPath {
    /// The hall's id (`hall_id`).
    #[param(value_type = String)]
    pub id: HallId,
}

/// `{id}/keys/{kid}`: one key of a hall.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HallKeyPath {
    /// The hall's id (`hall_id`).
    #[param(value_type = String)]
    pub id: HallId,
    /// The key's id, as registered.
    pub kid: String,
}

/// `{username}` in a user's paths.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    pub username: String,
}

/// `{msisdn}`: a subscriber's mobile number.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubscriberPath {
    pub msisdn: String,
}

/// `{id}` of an outbox row.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OutboxPath {
    pub id: String,
}

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_provinces, provinces)
            .op(__path_list_halls, list_halls)
            .op(__path_create_hall, create_hall)
            .op(__path_get_hall, get_hall)
            .op(__path_update_hall, update_hall)
            .op(__path_deactivate_hall, deactivate_hall)
            .op(__path_reactivate_hall, reactivate_hall)
            .op(__path_register_key, register_key)
            .op(__path_revoke_key, revoke_key)
            .op(__path_create_user, create_user)
            .op(__path_list_users, list_users)
            .op(__path_get_user, get_user)
            .op(__path_disable_user, disable_user)
            .op(__path_enable_user, enable_user)
            .op(__path_reset_password, reset_password)
            .op(__path_unlock_user, unlock_user)
            .op(__path_subscriber, subscriber)
            .op(__path_outbox, outbox)
            .op(__path_retry_outbox, retry_outbox)
            .op(__path_advance_clock, advance_clock),
    );
}

#[utoipa::path(get, path = "/provinces", tag = "reference data",
    responses((status = 200, body = ProvinceList), Problems))]
/// Any authenticated caller may read reference data.
pub async fn provinces(req: HttpRequest, _caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.provinces()))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HallQuery {
    pub province: Option<Code>,
    pub city: Option<Code>,
    /// `true`: only halls taking orders; `false`: only deactivated ones; absent: all.
    pub active: Option<bool>,
}

#[utoipa::path(get, path = "/halls", tag = "reference data", params(HallQuery),
    responses((status = 200, body = HallList), Problems))]
pub async fn list_halls(req: HttpRequest, _caller: Caller) -> Reply {
    let q: HallQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .list_halls(
                q.province.map(String::from),
                q.city.map(String::from),
                q.active,
            )
            .await?,
    ))
}

/// The hall with its version as `ETag`.
fn hall_reply(mut res: actix_web::HttpResponseBuilder, hall: &HallView) -> HttpResponse {
    res.insert_header((header::ETAG, format!("\"{}\"", hall.version)))
        .json(hall)
}

/// One hall; its `ETag` is what `If-Match` on a change compares.
#[utoipa::path(get, path = "/halls/{id}", tag = "reference data", params(HallPath),
    responses((status = 200, body = HallView), Problems))]
pub async fn get_hall(req: HttpRequest, _caller: Caller, path: web::Path<HallPath>) -> Reply {
    let hall = services(&req)?.get_hall(path.into_inner().id).await?;
    Ok(hall_reply(HttpResponse::Ok(), &hall))
}

/// Change a hall's name, address or email (members left out stay); `If-Match` optional.
#[utoipa::path(patch, path = "/halls/{id}", tag = "administration", params(HallPath, IfMatch),
    request_body = HallUpdate, responses((status = 200, body = HallView), Stale, Problems))]
pub async fn update_hall(
    req: HttpRequest,
    call: Call<HallUpdate>,
    path: web::Path<HallPath>,
) -> Reply {
    let hall = services(&req)?
        .update_hall(call.actor, path.into_inner().id, if_match(&req), call.body)
        .await?;
    Ok(hall_reply(HttpResponse::Ok(), &hall))
}

/// Deactivate a hall: no new orders may name it; what it holds stays its own.
#[utoipa::path(post, path = "/halls/{id}/deactivate", tag = "administration",
    params(HallPath, IfMatch), responses((status = 200, body = HallView), Stale, Problems))]
pub async fn deactivate_hall(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<HallPath>,
) -> Reply {
    let hall = services(&req)?
        .deactivate_hall(call.actor, path.into_inner().id, if_match(&req))
        .await?;
    Ok(hall_reply(HttpResponse::Ok(), &hall))
}

/// Let a deactivated hall take orders again.
#[utoipa::path(post, path = "/halls/{id}/reactivate", tag = "administration",
    params(HallPath, IfMatch), responses((status = 200, body = HallView), Stale, Problems))]
pub async fn reactivate_hall(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<HallPath>,
) -> Reply {
    let hall = services(&req)?
        .reactivate_hall(call.actor, path.into_inner().id, if_match(&req))
        .await?;
    Ok(hall_reply(HttpResponse::Ok(), &hall))
}

#[utoipa::path(post, path = "/halls", tag = "administration", request_body = NewHall,
    responses((status = 201, body = HallView), Problems))]
pub async fn create_hall(req: HttpRequest, call: Call<NewHall>) -> Reply {
    Ok(HttpResponse::Created().json(services(&req)?.create_hall(call.actor, call.body).await?))
}

#[utoipa::path(post, path = "/halls/{id}/keys", tag = "administration", params(HallPath), request_body = NewHallKey,
    responses((status = 201, body = HallKeyView), Problems))]
pub async fn register_key(
    req: HttpRequest,
    call: Call<NewHallKey>,
    path: web::Path<HallPath>,
) -> Reply {
    let key = services(&req)?
        .register_hall_key(call.actor, path.into_inner().id, call.body)
        .await?;
    Ok(HttpResponse::Created().json(key))
}

#[utoipa::path(post, path = "/halls/{id}/keys/{kid}/revoke", tag = "administration", params(HallKeyPath),
    responses((status = 200, body = HallKeyView), Problems))]
pub async fn revoke_key(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<HallKeyPath>,
) -> Reply {
    let HallKeyPath { id: hall_id, kid } = path.into_inner();
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .revoke_hall_key(call.actor, hall_id, kid)
            .await?,
    ))
}

#[utoipa::path(post, path = "/users", tag = "administration", request_body = NewUser,
    responses((status = 201, body = UserView), Problems))]
pub async fn create_user(req: HttpRequest, call: Call<NewUser>) -> Reply {
    Ok(HttpResponse::Created().json(services(&req)?.create_user(call.actor, call.body).await?))
}

/// Users in username order, narrowed by role, hall or province (admin).
#[utoipa::path(get, path = "/users", tag = "administration", params(UserQuery),
    responses((status = 200, body = UserPage), Problems))]
pub async fn list_users(req: HttpRequest, caller: Caller) -> Reply {
    let q: UserQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.list_users(caller.0, q).await?))
}

/// One user (admin).
#[utoipa::path(get, path = "/users/{username}", tag = "administration", params(UserPath),
    responses((status = 200, body = UserView), Problems))]
pub async fn get_user(req: HttpRequest, caller: Caller, path: web::Path<UserPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .get_user(caller.0, path.into_inner().username)
            .await?,
    ))
}

/// Disable a user: no login, and every token they hold is refused at once on every instance.
#[utoipa::path(post, path = "/users/{username}/disable", tag = "administration", params(UserPath),
    responses((status = 200, body = UserView), Problems))]
pub async fn disable_user(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<UserPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .disable_user(call.actor, path.into_inner().username)
            .await?,
    ))
}

/// Let a disabled user log in again.
#[utoipa::path(post, path = "/users/{username}/enable", tag = "administration", params(UserPath),
    responses((status = 200, body = UserView), Problems))]
pub async fn enable_user(req: HttpRequest, call: Call<NoBody>, path: web::Path<UserPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .enable_user(call.actor, path.into_inner().username)
            .await?,
    ))
}

/// Set a user's password; every token they hold ends.
#[utoipa::path(post, path = "/users/{username}/password", tag = "administration", params(UserPath),
    request_body = PasswordReset,
    responses((status = 200, body = UserView), Problems))]
pub async fn reset_password(
    req: HttpRequest,
    call: Call<PasswordReset>,
    path: web::Path<UserPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .reset_password(call.actor, path.into_inner().username, call.body)
            .await?,
    ))
}

/// Clear login throttling for this username from every address.
#[utoipa::path(post, path = "/users/{username}/unlock", tag = "administration", params(UserPath),
    responses((status = 200, body = UserView), Problems))]
pub async fn unlock_user(req: HttpRequest, call: Call<NoBody>, path: web::Path<UserPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .unlock_user(call.actor, path.into_inner().username)
            .await?,
    ))
}

/// A subscriber's real-name record (masked); every read is audited.
#[utoipa::path(get, path = "/subscribers/{msisdn}", tag = "subscribers", params(SubscriberPath),
    responses((status = 200, body = SubscriberView), Problems))]
pub async fn subscriber(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<SubscriberPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .view_subscriber(caller.0, path.into_inner().msisdn)
            .await?,
    ))
}

/// The outbox: mail waiting (`pending`, the default), given up on (`failed`) or `sent` (admin).
#[utoipa::path(get, path = "/admin/outbox", tag = "administration", params(OutboxQuery),
    responses((status = 200, body = OutboxPage), Problems))]
pub async fn outbox(req: HttpRequest, caller: Caller) -> Reply {
    let q: OutboxQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.list_outbox(caller.0, q).await?))
}

/// Send a pending or failed row again, now (admin).
#[utoipa::path(post, path = "/admin/outbox/{id}/retry", tag = "administration", params(OutboxPath),
    responses((status = 200, body = OutboxView), Problems))]
pub async fn retry_outbox(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<OutboxPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .retry_outbox(call.actor, path.into_inner().id)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Whole seconds, at least 1.
    pub advance_seconds: i64,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ClockNow {
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Move the service's clock forward on every instance (admin; only with
/// `testing.movable_clock`, otherwise 404 to everyone, before anything else is looked at).
#[utoipa::path(post, path = "/admin/clock", tag = "testing", request_body = AdvanceClock,
    responses((status = 200, body = ClockNow), Problems))]
pub async fn advance_clock(req: HttpRequest, payload: web::Payload) -> Reply {
    use actix_web::FromRequest;
    let services = services(&req)?;
    if !services.settings().testing.movable_clock {
        return Err(ApiError::new(
            crate::http::problem::ErrorCode::NotFound,
            None,
            crate::domain::Detail::new("没有这个资源", "no such resource"),
        ));
    }
    let call = Call::<AdvanceClock>::from_request(&req, &mut payload.into_inner()).await?;
    let now = services
        .advance_clock(call.actor, call.body.advance_seconds)
        .await?;
    Ok(HttpResponse::Ok().json(ClockNow { now }))
}
