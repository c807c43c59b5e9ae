//! Evidence endpoints: raw-byte uploads, listing, and downloads streamed with their type.

use crate::domain::text::ceiling::Code;
use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::extract::{authenticate, query, services, Caller};
use super::openapi::{Binary, Operations, Problems};
use super::problem::ApiError;
use super::work_orders::OrderPath;
use crate::domain::evidence::{EvidenceKind, MediaType, SNIFF_LEN};
use crate::domain::{Detail, WorkOrderId};
use crate::http::problem::ErrorCode;
use crate::service::evidence::{EvidenceList, EvidenceView};
use crate::service::Error;

type Reply = Result<HttpResponse, ApiError>;

/// Each operation routed as its `#[utoipa::path]` declares (paths relative to `/api/v1`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        Operations::new()
            .op(__path_upload, upload)
            .op(__path_list, list)
            .op(__path_download, download),
    );
}

/// `{id}/evidence/{sha256}`: one file of an order.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EvidencePath {
    /// The work order's id.
    #[param(value_type = String)]
    pub id: WorkOrderId,
    /// The file's SHA-256, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `id_front`, `id_back`, `live_photo`, `registration_form` or `other`.
    pub kind: Option<Code>,
}

/// Upload one evidence file (the claiming staff member, while the order is claimed). The body
/// is the file's raw bytes; its type must match its magic bytes.
#[utoipa::path(post, path = "/work-orders/{id}/evidence", tag = "evidence", params(OrderPath, UploadQuery),
    request_body(description = "the file's bytes, labelled with its type",
        content((Binary = "image/jpeg"), (Binary = "image/png"), (Binary = "application/pdf"))),
    responses((status = 201, body = EvidenceView), Problems))]
pub async fn upload(req: HttpRequest, mut body: web::Payload, path: web::Path<OrderPath>) -> Reply {
    let id = path.into_inner().id;
    let services = services(&req)?;
    // The contract's order of refusals: 413 → 415 → 401 → 400.
    let limit = services.settings().limits.evidence_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            Some("body"),
            Detail::new(
                format!("核验材料文件不得超过 {limit} 字节"),
                format!("an evidence file may be at most {limit} bytes"),
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(MediaType::from_content_type)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                Some("Content-Type"),
                Detail::new(
                    "核验材料文件须以 image/jpeg、image/png 或 application/pdf 发送",
                    "an evidence file must be sent as image/jpeg, image/png or application/pdf",
                ),
            )
        })?;
    // The first bytes say what the file is: a mislabelled file is 415 whoever sends it.
    let unreadable = || {
        ApiError::new(
            ErrorCode::InvalidRequest,
            None,
            super::extract::body_unreadable(),
        )
    };
    let mut head = web::BytesMut::new();
    while head.len() < SNIFF_LEN {
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(unreadable()),
            None => break,
        }
    }
    if head.len() > limit {
        return Err(too_large());
    }
    media.check_label(&head[..head.len().min(SNIFF_LEN)])?;
    let caller = authenticate(&req, &services).await?;
    let q: UploadQuery = query(&req)?;
    let kind = q
        .kind
        .as_deref()
        .and_then(EvidenceKind::parse)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                Some("kind"),
                Detail::new(
                    "kind 须为 id_front、id_back、live_photo、registration_form、other 之一",
                    "kind must be one of id_front, id_back, live_photo, registration_form, other",
                ),
            )
        })?;
    super::idempotency::refuse_malformed_key(&req)?;
    let actor = caller.admit(&services)?;
    // Past this point the size is counted as the bytes stream in (a body without
    // Content-Length is refused with 413 once it passes the limit).
    let rest = body.map(|chunk| {
        chunk.map_err(|_| Error::bad_request(None, super::extract::body_unreadable()))
    });
    let bytes = futures_util::stream::iter([Ok(head.freeze())]).chain(rest);
    let file = services
        .upload_evidence(actor, id.clone(), kind, media, bytes)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/work-orders/{id}/evidence/{}", file.sha256),
        ))
        .json(file))
}

/// The order's evidence files (anyone who sees the order).
#[utoipa::path(get, path = "/work-orders/{id}/evidence", operation_id = "list_evidence", tag = "evidence", params(OrderPath),
    responses((status = 200, body = EvidenceList), Problems))]
pub async fn list(req: HttpRequest, caller: Caller, path: web::Path<OrderPath>) -> Reply {
    Ok(HttpResponse::Ok().json(
        services(&req)?
            .list_evidence(caller.0, path.into_inner().id)
            .await?,
    ))
}

/// One file's bytes (home clerks, auditors, the claiming hall's staff); every read is audited.
#[utoipa::path(get, path = "/work-orders/{id}/evidence/{sha256}", tag = "evidence", params(EvidencePath),
    responses((status = 200, description = "the file's bytes, with the type it was uploaded as",
        content((Binary = "image/jpeg"), (Binary = "image/png"), (Binary = "application/pdf"))), Problems))]
pub async fn download(req: HttpRequest, caller: Caller, path: web::Path<EvidencePath>) -> Reply {
    let EvidencePath { id, sha256 } = path.into_inner();
    let download = services(&req)?
        .download_evidence(caller.0, id, sha256)
        .await?;
    let file = download.file;
    let size = u64::try_from(file.size).unwrap_or_default();
    let extension = match MediaType::from_content_type(&file.content_type) {
        Some(MediaType::Jpeg) => "jpg",
        Some(MediaType::Png) => "png",
        _ => "pdf",
    };
    Ok(HttpResponse::Ok()
        .content_type(file.content_type.as_str())
        .insert_header((header::ETAG, format!("\"{}\"", file.sha256)))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}-{}.{extension}\"",
                file.kind,
                &file.sha256[..12.min(file.sha256.len())]
            ),
        ))
        .body(SizedStream::new(size, download.bytes)))
}
