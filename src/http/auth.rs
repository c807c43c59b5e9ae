//! Logging in and asking who one is.

use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{client_certificate, services, Caller, PublicJson};
use super::openapi::Operations;
use super::problem::{ApiError, Problem};
use crate::service::auth::IssuedToken;

type Reply = Result<HttpResponse, ApiError>;

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(Operations::new().op(__path_token, token).op(__path_me, me));
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Exchange a username and password for a short-lived bearer token.
#[utoipa::path(post, path = "/auth/token", tag = "auth", request_body = Credentials,
    responses((status = 200, body = IssuedToken), (status = "4XX", body = Problem)))]
pub async fn token(req: HttpRequest, creds: PublicJson<Credentials>) -> Reply {
    // The peer address, not a forwarded header a client could set to dodge the lockout.
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let c = creds.0;
    let issued = services(&req)?
        .login(c.username, c.password, address, client_certificate(&req))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(issued))
}

#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Object), (status = "4XX", body = Problem)))]
pub async fn me(req: HttpRequest, caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.me(caller.0).await?))
}
