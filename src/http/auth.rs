//! Logging in and asking who one is.

use crate::domain::text::ceiling::{Name, Secret};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{
    client_address, client_certificate, services, Caller, OwnPasswordCall, PublicJson,
};
use super::openapi::{Operations, Problems};
use super::problem::ApiError;
use crate::service::auth::IssuedToken;
use crate::service::users::{PasswordChange, UserView};

type Reply = Result<HttpResponse, ApiError>;

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_token, token)
            .op(__path_me, me)
            .op(__path_change_password, change_password),
    );
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: Name,
    pub password: Secret,
}

/// Exchange a username and password for a short-lived bearer token.
#[utoipa::path(post, path = "/auth/token", tag = "auth", security(), request_body = Credentials,
    responses((status = 200, body = IssuedToken), Problems))]
pub async fn token(req: HttpRequest, creds: PublicJson<Credentials>) -> Reply {
    let address = client_address(&req);
    let c = creds.0;
    let issued = services(&req)?
        .login(
            c.username.into(),
            c.password.into(),
            address,
            client_certificate(&req),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(issued))
}

#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Object), Problems))]
pub async fn me(req: HttpRequest, caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.me(caller.0).await?))
}

/// Change one's own password (`current_password` proves it is you; a wrong one counts as a
/// failed login). Every token of the user ends, this one included: log in again. The one
/// call open to a user whose password an admin reset.
#[utoipa::path(post, path = "/me/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, body = UserView), Problems))]
pub async fn change_password(req: HttpRequest, call: OwnPasswordCall<PasswordChange>) -> Reply {
    let call = call.0;
    let address = client_address(&req);
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .change_own_password(call.actor, call.body, address)
            .await?,
    ))
}
