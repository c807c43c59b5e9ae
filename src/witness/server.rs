//! The witness's HTTP face: `POST /add-checkpoint` with the protocol's statuses, and
//! `GET /healthz`.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpResponse, HttpServer};

use super::{Refusal, Witness};

/// The largest request read: 63 proof lines and a note with its signatures fit many times.
const BODY_LIMIT: usize = 64 * 1024;

async fn add_checkpoint(witness: web::Data<Arc<Witness>>, body: web::Bytes) -> HttpResponse {
    let Ok(text) = std::str::from_utf8(&body) else {
        return plain(HttpResponse::BadRequest(), "the body is not UTF-8\n");
    };
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let w = witness.clone();
    let text = text.to_owned();
    // Signing and the fsync of the state run off the server's threads.
    let answer = web::block(move || w.add_checkpoint(&text, now)).await;
    match answer {
        Ok(Ok(lines)) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(lines),
        Ok(Err(refusal)) => refused(&refusal),
        Err(e) => plain(HttpResponse::InternalServerError(), &format!("{e}\n")),
    }
}

/// A refusal as the protocol answers it; logged, since a fork or a bad proof may be
/// evidence of a misbehaving log.
fn refused(refusal: &Refusal) -> HttpResponse {
    tracing::warn!(refusal = %refusal, "checkpoint not cosigned");
    let why = format!("{refusal}\n");
    match refusal {
        Refusal::BadRequest(_) => plain(HttpResponse::BadRequest(), &why),
        Refusal::UnknownOrigin => plain(HttpResponse::NotFound(), &why),
        Refusal::Forbidden => plain(HttpResponse::Forbidden(), &why),
        Refusal::StaleSize(size) => HttpResponse::Conflict()
            .content_type("text/x.tlog.size")
            .body(format!("{size}\n")),
        Refusal::Fork => plain(HttpResponse::Conflict(), &why),
        Refusal::BadProof => plain(HttpResponse::UnprocessableEntity(), &why),
        Refusal::State(_) => plain(HttpResponse::InternalServerError(), &why),
    }
}

fn plain(mut builder: actix_web::HttpResponseBuilder, text: &str) -> HttpResponse {
    builder
        .insert_header(ContentType::plaintext())
        .body(text.to_owned())
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(witness: Witness, listen: &str) -> std::io::Result<()> {
    let witness = Arc::new(witness);
    tracing::info!(
        listen,
        vkey = %witness.vkey().encode(),
        "witness listening"
    );
    let data = web::Data::new(witness);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .route("/add-checkpoint", web::post().to(add_checkpoint))
            .route("/healthz", web::get().to(HttpResponse::Ok))
    })
    .workers(2)
    .disable_signals()
    .bind(listen)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        crate::startup::termination().await;
        handle.stop(true).await;
    });
    server.await
}
