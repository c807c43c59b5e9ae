//! Auditors' endpoints.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{query, services, Caller};
use super::openapi::{Operations, Problems};
use super::problem::ApiError;
use crate::http::problem::ErrorCode;
use crate::service::audit::{
    CheckpointView, ConsistencyProof, ConsistencyQuery, EventPage, EventQuery, ExportFormat,
    InclusionProof, InclusionQuery, VerifyView,
};

type Reply = Result<HttpResponse, ApiError>;

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_events, events)
            .op(__path_verify, verify)
            .op(__path_checkpoint, checkpoint)
            .op(__path_checkpoint_note, checkpoint_note)
            .op(__path_checkpoint_note_now, checkpoint_note_now)
            .op(__path_inclusion, inclusion)
            .op(__path_consistency, consistency),
    );
}

/// Query the trail (paged JSON), or export every matching event with `format=ndjson|csv`.
#[utoipa::path(get, path = "/audit/events", operation_id = "audit_events", tag = "audit", params(EventQuery),
    responses((status = 200, description = "a page of events, or with `format` every matching event",
        content((EventPage = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
        Problems))]
pub async fn events(req: HttpRequest, caller: Caller) -> Reply {
    let q: EventQuery = query(&req)?;
    let services = services(&req)?;
    match q.format.clone() {
        None => Ok(HttpResponse::Ok().json(services.audit_events(caller.0, q).await?)),
        Some(f) => {
            let format = ExportFormat::parse(&f).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    Some("format"),
                    crate::domain::Detail::new(
                        "format 须为 ndjson 或 csv",
                        "format must be ndjson or csv",
                    ),
                )
            })?;
            let pages = services.export_audit(caller.0, q, format).await?;
            let body = futures_util::StreamExt::map(pages, |page| {
                page.map(actix_web::web::Bytes::from)
                    .map_err(ApiError::from)
            });
            Ok(HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, format.content_type()))
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"audit-events.{}\"", format.as_str()),
                ))
                .streaming(body))
        }
    }
}

/// Re-hash the whole chain and report the first altered event.
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyView), Problems))]
pub async fn verify(req: HttpRequest, caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.verify_audit(caller.0).await?))
}

/// A signed checkpoint of the log's current head, for auditors to keep elsewhere.
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit",
    responses((status = 200, body = CheckpointView), Problems))]
pub async fn checkpoint(req: HttpRequest, caller: Caller) -> Reply {
    Ok(HttpResponse::Ok().json(services(&req)?.audit_checkpoint(caller.0).await?))
}

/// The latest checkpoint as a C2SP signed note cosigned by `audit.quorum` witnesses, with
/// their cosignature lines.
#[utoipa::path(get, path = "/audit/checkpoint/note", tag = "audit",
    responses((status = 200, description = "the signed note", content((String = "text/plain"))), Problems))]
pub async fn checkpoint_note(req: HttpRequest, caller: Caller) -> Reply {
    let note = services(&req)?.cosigned_note(caller.0).await?;
    Ok(note_reply(note))
}

/// Takes a checkpoint now (JWS and signed note), pushes it to the witnesses, and answers
/// the note with the cosignatures gathered.
#[utoipa::path(post, path = "/audit/checkpoint/note", operation_id = "audit_checkpoint_note_now", tag = "audit",
    responses((status = 200, description = "the signed note", content((String = "text/plain"))), Problems))]
pub async fn checkpoint_note_now(req: HttpRequest, caller: Caller) -> Reply {
    let note = services(&req)?.checkpoint_note_now(caller.0).await?;
    Ok(note_reply(note))
}

fn note_reply(note: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(note)
}

/// RFC 9162 inclusion proof of event `seq` in the tree of the first `size` events.
#[utoipa::path(get, path = "/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), Problems))]
pub async fn inclusion(req: HttpRequest, caller: Caller) -> Reply {
    let q: InclusionQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.inclusion_proof(caller.0, q).await?))
}

/// RFC 9162 consistency proof between the trees of sizes `from` and `to`.
#[utoipa::path(get, path = "/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), Problems))]
pub async fn consistency(req: HttpRequest, caller: Caller) -> Reply {
    let q: ConsistencyQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(services(&req)?.consistency_proof(caller.0, q).await?))
}
