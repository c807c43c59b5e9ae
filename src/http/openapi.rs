//! The OpenAPI document. Its paths are not listed here: every `/api/v1` operation is routed
//! by [`Operations::op`] from its own `#[utoipa::path]` (path and method), and
//! `utoipa-actix-web` collects the same registrations into the document, so the router and
//! `/api/v1/openapi.json` cannot disagree.

use std::collections::BTreeMap;

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder, Route};
use strum::IntoEnumIterator;
use utoipa::openapi::content::Content;
use utoipa::openapi::path::{HttpMethod, Parameter, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_actix_web::OpenApiFactory;

use super::problem::{ErrorCode, Problem};

/// What the routes do not say: title, description, the bearer scheme every operation uses
/// (the login overrides it with none), and the problem every refusal answers with.
#[derive(OpenApi)]
#[openapi(
    info(title = "crossprov", description = "跨省实名登记工单 — cross-province real-name registration work orders"),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The media type of every refusal and failure (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

fn problem_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
        .into()
}

/// Every operation's refusals (4XX) and failures (5XX): a problem whose `code` says which.
pub struct Problems;

impl IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([
            (
                "4XX".to_owned(),
                problem_response("请求被拒绝，`code` 说明原因 — refused; `code` says why"),
            ),
            (
                "5XX".to_owned(),
                problem_response(
                    "服务内部错误或暂不可用 — failed inside the service (`internal`, \
                     `evidence_corrupted`) or unavailable (`unavailable`)",
                ),
            ),
        ])
    }
}

/// The answer of a state-changing call whose `If-Match` is stale (`version_conflict`).
pub struct Stale;

impl IntoResponses for Stale {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        BTreeMap::from([(
            "412".to_owned(),
            problem_response(
                "`If-Match` 版本已过期 — the `If-Match` version is stale (`version_conflict`)",
            ),
        )])
    }
}

/// The `If-Match` header a state-changing call accepts.
pub struct IfMatch;

impl IntoParams for IfMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("If-Match")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "`\"<version>\"` as the order's `ETag` gave it; when stale, 412 `version_conflict`",
            ))
            .schema(Some(String::schema()))
            .build()]
    }
}

/// Every `POST` but the login takes an `Idempotency-Key` (the middleware in `idempotency.rs`
/// sees all of them, so the document says so for all of them in one place) and may answer a
/// replay marked `Idempotent-Replayed`.
pub fn declare_idempotency_keys(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    for (path, item) in document.paths.paths.iter_mut() {
        if path == "/api/v1/auth/token" {
            continue;
        }
        let Some(post) = item.post.as_mut() else {
            continue;
        };
        post.parameters.get_or_insert_with(Vec::new).push(
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "1–255 visible ASCII characters; a repeat of the same request with the same \
                     key answers the first answer again (docs/api.md, \"Idempotent retries\")",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255)),
                ))
                .build(),
        );
        for response in post.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response.headers.insert(
                    "Idempotent-Replayed".to_owned(),
                    HeaderBuilder::new()
                        .schema(String::schema())
                        .description(Some("`true` when this is a stored answer replayed"))
                        .build(),
                );
            }
        }
    }
}

/// A file's raw bytes, as a request or response body.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// A problem's `code`: one of [`ErrorCode`]'s strings, listed so clients (and the test that
/// holds `docs/api.md` to the document) know them all.
pub fn error_code_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::iter().map(ErrorCode::as_str)))
        .description(Some(
            "stable machine-readable code (`docs/api.md`, \"Error codes\")",
        ))
        .into()
}

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

/// A group of operations, each routed at the path and method its `#[utoipa::path]` declares.
/// Operations on one path share one resource, so another method there answers 405, not 404.
#[derive(Default)]
pub struct Operations {
    /// Routes by path, in the order first declared (actix matches in registration order).
    routes: Vec<(String, Vec<Route>)>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Operations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `handler` as `doc` (the `__path_<handler>` that `#[utoipa::path]` generates)
    /// declares, and documents it.
    pub fn op<D, F, Args>(mut self, doc: D, handler: F) -> Self
    where
        D: utoipa::Path + OpenApiFactory,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        // Pairing a handler with another handler's document would route one and document the
        // other; `#[utoipa::path]` names the document `__path_<handler>`, so the pair must agree
        // (operation ids may differ from the handler's name: they are unique in the document).
        debug_assert_eq!(
            std::any::type_name::<D>()
                .rsplit("::")
                .next()
                .and_then(|d| d.strip_prefix("__path_")),
            std::any::type_name::<F>().rsplit("::").next(),
            "a handler routed under another handler's #[utoipa::path]"
        );
        let path = D::path();
        let routes = match self.routes.iter().position(|(p, _)| *p == path) {
            Some(i) => &mut self.routes[i].1,
            None => {
                self.routes.push((path, Vec::new()));
                let last = self.routes.len() - 1;
                &mut self.routes[last].1
            }
        };
        for method in D::methods() {
            routes.push(
                web::route()
                    .method(actix_method(method))
                    .to(handler.clone()),
            );
        }
        self.paths.merge(doc.paths());
        doc.schemas(&mut self.schemas);
        self
    }
}

fn actix_method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

impl HttpServiceFactory for Operations {
    fn register(self, config: &mut AppService) {
        for (path, routes) in self.routes {
            let resource = routes
                .into_iter()
                .fold(web::resource(path), |resource, route| resource.route(route));
            HttpServiceFactory::register(resource, config);
        }
    }
}

impl OpenApiFactory for Operations {
    fn paths(&self) -> Paths {
        self.paths.clone()
    }

    fn schemas(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend(self.schemas.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every operation of the contract (`api.md`), as the document must list it.
    const CONTRACT: &[(&str, &str)] = &[
        ("post", "/api/v1/auth/token"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/work-orders"),
        ("get", "/api/v1/work-orders"),
        ("get", "/api/v1/work-orders/{id}"),
        ("post", "/api/v1/work-orders/{id}/claim"),
        ("post", "/api/v1/work-orders/{id}/release"),
        ("post", "/api/v1/work-orders/{id}/verification"),
        ("post", "/api/v1/work-orders/{id}/complete"),
        ("post", "/api/v1/work-orders/{id}/return"),
        ("post", "/api/v1/work-orders/{id}/fail"),
        ("post", "/api/v1/work-orders/{id}/cancel"),
        ("post", "/api/v1/work-orders/{id}/reroute"),
        ("get", "/api/v1/work-orders/{id}/events"),
        ("post", "/api/v1/work-orders/{id}/evidence"),
        ("get", "/api/v1/work-orders/{id}/evidence"),
        ("get", "/api/v1/work-orders/{id}/evidence/{sha256}"),
        ("get", "/api/v1/provinces"),
        ("get", "/api/v1/halls"),
        ("post", "/api/v1/halls"),
        ("post", "/api/v1/halls/{id}/keys"),
        ("post", "/api/v1/halls/{id}/keys/{kid}/revoke"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/subscribers/{msisdn}"),
        ("get", "/api/v1/audit/events"),
        ("get", "/api/v1/audit/verify"),
        ("get", "/api/v1/audit/checkpoint"),
        ("get", "/api/v1/audit/proof/inclusion"),
        ("get", "/api/v1/audit/proof/consistency"),
    ];

    /// What this service adds (`docs/api.md`), listed in the document beside the contract's.
    const ADDED: &[(&str, &str)] = &[
        ("post", "/api/v1/work-orders/{id}/suspension"),
        ("get", "/api/v1/work-orders/{id}/verification/result"),
        ("get", "/api/v1/admin/outbox"),
        ("post", "/api/v1/admin/outbox/{id}/retry"),
        ("post", "/api/v1/admin/clock"),
        ("post", "/api/v1/users/{username}/disable"),
        ("post", "/api/v1/users/{username}/enable"),
        ("post", "/api/v1/users/{username}/password"),
        ("post", "/api/v1/users/{username}/unlock"),
        ("post", "/api/v1/me/password"),
        ("get", "/api/v1/users"),
        ("get", "/api/v1/users/{username}"),
        ("get", "/api/v1/halls/{id}"),
        ("patch", "/api/v1/halls/{id}"),
        ("post", "/api/v1/halls/{id}/deactivate"),
        ("post", "/api/v1/halls/{id}/reactivate"),
        ("get", "/api/v1/audit/checkpoint/note"),
        ("post", "/api/v1/audit/checkpoint/note"),
        ("post", "/api/v1/device-keys"),
        ("get", "/api/v1/device-keys"),
        ("get", "/api/v1/device-keys/{id}"),
        ("post", "/api/v1/device-keys/{id}/approve"),
        ("post", "/api/v1/device-keys/{id}/reject"),
    ];

    fn document() -> serde_json::Value {
        let (_, doc) = crate::http::with_routes(actix_web::App::new());
        serde_json::to_value(doc).unwrap()
    }

    #[test]
    fn the_document_the_routes_make_lists_exactly_the_contracts_operations_and_ours() {
        let doc = document();
        let listed: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().unwrap().keys().cloned();
                methods.map(move |m| (m, path.clone()))
            })
            .collect();
        let contract: BTreeSet<(String, String)> = CONTRACT
            .iter()
            .chain(ADDED)
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(listed, contract);
    }

    #[test]
    fn the_document_keeps_its_info_schemas_and_bearer_scheme() {
        let doc = document();
        assert_eq!(doc["info"]["title"], "crossprov");
        assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["scheme"], "bearer");
        assert_eq!(bearer["bearerFormat"], "JWT");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["Problem", "WorkOrderView", "OpenOrder", "EvidenceView"] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let ops = doc["paths"].as_object().unwrap().values();
        for op in ops.flat_map(|item| item.as_object().unwrap().values()) {
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{op}");
        }
    }
}
