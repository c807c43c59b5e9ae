//! The OpenAPI document, generated from the handlers' and types' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, audit, auth, evidence, work_orders};

#[derive(OpenApi)]
#[openapi(
    info(title = "crossprov", description = "跨省实名登记工单 — cross-province real-name registration work orders"),
    paths(
        auth::token, auth::me,
        work_orders::open, work_orders::list, work_orders::get, work_orders::events, work_orders::claim,
        work_orders::release, work_orders::submit, work_orders::complete, work_orders::return_order,
        work_orders::fail, work_orders::cancel, work_orders::reroute,
        evidence::upload, evidence::list, evidence::download,
        admin::provinces, admin::list_halls, admin::create_hall, admin::register_key, admin::revoke_key,
        admin::create_user, admin::subscriber,
        audit::events, audit::verify, audit::checkpoint, audit::inclusion, audit::consistency,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
