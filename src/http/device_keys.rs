//! Device-key enrolment endpoints: extract, call one service function, reply.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{query, services, Call, Caller, NoBody};
use super::openapi::{Operations, Problems};
use super::problem::ApiError;
use crate::domain::EnrolmentId;
use crate::service::device_keys::{DeviceKeyList, DeviceKeyQuery, DeviceKeyView, NewDeviceKey};
use crate::service::work_orders::Reason;

type Reply = Result<HttpResponse, ApiError>;

/// `{id}` in a request's paths.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeviceKeyPath {
    /// The enrolment request's id.
    #[param(value_type = String)]
    pub id: EnrolmentId,
}

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_request_key, request_key)
            .op(__path_list_keys, list_keys)
            .op(__path_get_key, get_key)
            .op(__path_approve_key, approve_key)
            .op(__path_reject_key, reject_key),
    );
}

/// Ask for the public half of a key made on this device to become one of the caller's
/// hall's keys (hall staff); an admin approves or rejects it.
#[utoipa::path(post, path = "/device-keys", operation_id = "request_device_key", tag = "device keys",
    request_body = NewDeviceKey, responses((status = 201, body = DeviceKeyView), Problems))]
pub async fn request_key(req: HttpRequest, call: Call<NewDeviceKey>) -> Reply {
    let request = services(&req)?
        .request_device_key(call.actor, call.body)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/device-keys/{}", request.id),
        ))
        .json(request))
}

/// Enrolment requests, newest first: an admin's all, a staff member's own.
#[utoipa::path(get, path = "/device-keys", operation_id = "list_device_keys", tag = "device keys",
    params(DeviceKeyQuery), responses((status = 200, body = DeviceKeyList), Problems))]
pub async fn list_keys(req: HttpRequest, caller: Caller) -> Reply {
    let q: DeviceKeyQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.list_device_keys(caller.0, q).await?))
}

/// One request (an admin, or the staff member who made it).
#[utoipa::path(get, path = "/device-keys/{id}", operation_id = "get_device_key", tag = "device keys",
    params(DeviceKeyPath), responses((status = 200, body = DeviceKeyView), Problems))]
pub async fn get_key(req: HttpRequest, caller: Caller, path: web::Path<DeviceKeyPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .get_device_key(caller.0, path.into_inner().id)
            .await?,
    ))
}

/// Approve a pending request (admin): the key is registered for the requester's hall.
#[utoipa::path(post, path = "/device-keys/{id}/approve", operation_id = "approve_device_key",
    tag = "device keys", params(DeviceKeyPath),
    responses((status = 200, body = DeviceKeyView), Problems))]
pub async fn approve_key(
    req: HttpRequest,
    call: Call<NoBody>,
    path: web::Path<DeviceKeyPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .approve_device_key(call.actor, path.into_inner().id)
            .await?,
    ))
}

/// Reject a pending request, saying why (admin).
#[utoipa::path(post, path = "/device-keys/{id}/reject", operation_id = "reject_device_key",
    tag = "device keys", params(DeviceKeyPath), request_body = Reason,
    responses((status = 200, body = DeviceKeyView), Problems))]
pub async fn reject_key(
    req: HttpRequest,
    call: Call<Reason>,
    path: web::Path<DeviceKeyPath>,
) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .reject_device_key(call.actor, path.into_inner().id, call.body)
            .await?,
    ))
}
