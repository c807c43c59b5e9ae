//! Work-order endpoints: extract, call one service function, reply.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{if_match, query, services, Call, Caller, NoBody};
use super::openapi::{IfMatch, Operations, Problems, Stale};
use super::problem::ApiError;
use crate::domain::work_order::Kind;
use crate::domain::WorkOrderId;
use crate::service::verification::{ResultExport, SubmitResult};
use crate::service::views::{EventList, WorkOrderPage, WorkOrderView};
use crate::service::work_orders::{ListQuery, OpenOrder, Reason, Reroute, Step, Suspension};

type Reply = Result<HttpResponse, ApiError>;

/// `{id}` in an order's paths (also the evidence routes').
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderPath {
    /// The work order's id.
    #[param(value_type = String)]
    pub id: WorkOrderId,
}

fn with_etag(mut res: actix_web::HttpResponseBuilder, order: &WorkOrderView) -> HttpResponse {
    res.insert_header((header::ETAG, format!("\"{}\"", order.version)))
        .json(order)
}

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_open, open)
            .op(__path_list, list)
            .op(__path_get, get)
            .op(__path_events, events)
            .op(__path_export_result, export_result)
            .op(__path_claim, claim)
            .op(__path_release, release)
            .op(__path_submit, submit)
            .op(__path_complete, complete)
            .op(__path_return_order, return_order)
            .op(__path_fail, fail)
            .op(__path_cancel, cancel)
            .op(__path_reroute, reroute)
            .op(__path_set_suspension, set_suspension),
    );
}

/// Open a work order (home-province clerk).
#[utoipa::path(post, path = "/work-orders", tag = "work orders", request_body = OpenOrder,
    responses((status = 201, body = WorkOrderView), Problems))]
pub async fn open(req: HttpRequest, call: Call<OpenOrder>) -> Reply {
    let order = services(&req)?
        .open_work_order(call.actor, call.body)
        .await?;
    let mut res = HttpResponse::Created();
    res.insert_header((
        header::LOCATION,
        format!("/api/v1/work-orders/{}", order.id),
    ));
    Ok(with_etag(res, &order))
}

/// List the orders in the caller's scope.
#[utoipa::path(get, path = "/work-orders", operation_id = "list_work_orders", tag = "work orders", params(ListQuery),
    responses((status = 200, body = WorkOrderPage), Problems))]
pub async fn list(req: HttpRequest, caller: Caller) -> Reply {
    let q: ListQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.list_work_orders(caller.0, q).await?))
}

#[utoipa::path(get, path = "/work-orders/{id}", tag = "work orders", params(OrderPath),
    responses((status = 200, body = WorkOrderView), Problems))]
pub async fn get(req: HttpRequest, caller: Caller, path: web::Path<OrderPath>) -> Reply {
    let order = services(&req)?
        .get_work_order(caller.0, path.into_inner().id)
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &order))
}

/// The accepted signed result, verbatim, for an independent check (auditors in scope, home
/// clerks); every read is audited. 410 `shredded` after the retention period.
#[utoipa::path(get, path = "/work-orders/{id}/verification/result", tag = "work orders", params(OrderPath),
    responses((status = 200, body = ResultExport), Problems))]
pub async fn export_result(req: HttpRequest, caller: Caller, path: web::Path<OrderPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .export_result(caller.0, path.into_inner().id)
            .await?,
    ))
}

/// The order's audit events, oldest first.
#[utoipa::path(get, path = "/work-orders/{id}/events", operation_id = "work_order_events", tag = "work orders", params(OrderPath),
    responses((status = 200, body = EventList), Problems))]
pub async fn events(req: HttpRequest, caller: Caller, path: web::Path<OrderPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .work_order_events(caller.0, path.into_inner().id)
            .await?,
    ))
}

async fn transition(
    req: &HttpRequest,
    actor: crate::domain::access::Actor,
    id: WorkOrderId,
    step: Step,
) -> Reply {
    let order = services(req)?
        .transition(actor, id, if_match(req), step)
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &order))
}

/// Claim an open order (staff of the target hall, or of its city's pool).
#[utoipa::path(post, path = "/work-orders/{id}/claim", tag = "work orders", params(OrderPath, IfMatch),
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn claim(req: HttpRequest, call: Call<NoBody>, path: web::Path<OrderPath>) -> Reply {
    transition(&req, call.actor, path.into_inner().id, Step::Claim).await
}

#[utoipa::path(post, path = "/work-orders/{id}/release", tag = "work orders", params(OrderPath, IfMatch), request_body = Reason,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn release(req: HttpRequest, call: Call<Reason>, path: web::Path<OrderPath>) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Reasoned(Kind::Release, call.body.reason.into()),
    )
    .await
}

/// Submit the hall's signed verification result (the claiming staff member).
#[utoipa::path(post, path = "/work-orders/{id}/verification", tag = "work orders", params(OrderPath, IfMatch), request_body = SubmitResult,
    responses((status = 201, body = WorkOrderView), Stale, Problems))]
pub async fn submit(
    req: HttpRequest,
    call: Call<SubmitResult>,
    path: web::Path<OrderPath>,
) -> Reply {
    let order = services(&req)?
        .submit_verification(call.actor, path.into_inner().id, if_match(&req), call.body)
        .await?;
    Ok(with_etag(HttpResponse::Created(), &order))
}

/// Complete a submitted order whose result is a match; the reply carries the signed receipt.
/// A result whose quality flags need four eyes is approved by the first clerk's call
/// (`awaiting_second_approval`) and completed by a second clerk's (`docs/quality.md`).
#[utoipa::path(post, path = "/work-orders/{id}/complete", tag = "work orders", params(OrderPath, IfMatch),
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn complete(req: HttpRequest, call: Call<NoBody>, path: web::Path<OrderPath>) -> Reply {
    let order = services(&req)?
        .complete(call.actor, path.into_inner().id, if_match(&req))
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &order))
}

#[utoipa::path(post, path = "/work-orders/{id}/return", tag = "work orders", params(OrderPath, IfMatch), request_body = Reason,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn return_order(
    req: HttpRequest,
    call: Call<Reason>,
    path: web::Path<OrderPath>,
) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Reasoned(Kind::Return, call.body.reason.into()),
    )
    .await
}

#[utoipa::path(post, path = "/work-orders/{id}/fail", tag = "work orders", params(OrderPath, IfMatch), request_body = Reason,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn fail(req: HttpRequest, call: Call<Reason>, path: web::Path<OrderPath>) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Reasoned(Kind::Fail, call.body.reason.into()),
    )
    .await
}

#[utoipa::path(post, path = "/work-orders/{id}/cancel", tag = "work orders", params(OrderPath, IfMatch), request_body = Reason,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn cancel(req: HttpRequest, call: Call<Reason>, path: web::Path<OrderPath>) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Reasoned(Kind::Cancel, call.body.reason.into()),
    )
    .await
}

#[utoipa::path(post, path = "/work-orders/{id}/reroute", tag = "work orders", params(OrderPath, IfMatch), request_body = Reroute,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn reroute(req: HttpRequest, call: Call<Reroute>, path: web::Path<OrderPath>) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Reroute(call.body),
    )
    .await
}

/// Set or move the date the number's service will be suspended (home-province clerk); the
/// order's due and deadline times follow it.
#[utoipa::path(post, path = "/work-orders/{id}/suspension", tag = "work orders", params(OrderPath, IfMatch), request_body = Suspension,
    responses((status = 200, body = WorkOrderView), Stale, Problems))]
pub async fn set_suspension(
    req: HttpRequest,
    call: Call<Suspension>,
    path: web::Path<OrderPath>,
) -> Reply {
    transition(
        &req,
        call.actor,
        path.into_inner().id,
        Step::Suspension(call.body),
    )
    .await
}
