//! Building and running the HTTP server. Binding happens in `build`, so tests can ask for
//! port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::http::headers::SecurityHeaders;
use crate::http::problem::ErrorCode;
use crate::http::{self, metrics::Metrics, problem};
use crate::service::{self, Services};
use crate::tls::ServerTls;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Service(#[from] service::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Mail(#[from] crate::notify::NotifyError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    mailer: std::sync::Arc<crate::notify::Mailer>,
    /// Reloads the certificate on SIGHUP or file change; None for plain HTTP.
    tls: Option<std::sync::Arc<crate::tls::Reloader>>,
}

/// A 405 from the router has no body: give it the problem document every error has.
fn method_not_allowed<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let lang = problem::negotiate(
        res.request()
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let err = problem::ApiError::new(
        ErrorCode::MethodNotAllowed,
        None,
        "this method is not allowed here",
    );
    let body = serde_json::to_vec(&err.problem(lang)).unwrap_or_default();
    let (req, res) = res.into_parts();
    let mut res = res.set_body(actix_web::body::BoxBody::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, res).map_into_right_body(),
    ))
}

impl Application {
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        // Certificate files are checked before the database is touched.
        let tls = ServerTls::from_settings(&settings.tls)?;
        let services = Services::build(settings)?;
        Self::start(services, tls)
    }

    pub fn with_services(services: Services) -> Result<Self, StartupError> {
        let tls = ServerTls::from_settings(&services.settings().tls)?;
        Self::start(services, tls)
    }

    fn start(services: Services, tls: Option<ServerTls>) -> Result<Self, StartupError> {
        // Refuses to start on mail settings that could never send (checked before listening).
        let mailer = crate::notify::Mailer::from_settings(services.settings())?;
        let listen = services.settings().server.listen.clone();
        let listener =
            TcpListener::bind(&listen).map_err(|e| StartupError::Listen(listen.clone(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Listen(listen.clone(), e))?
            .port();
        let metrics = Metrics::new()?;
        metrics.register(Box::new(services.evidence_failures()))?;
        for collector in services.storage_health_collectors() {
            metrics.register(collector)?;
        }
        for collector in services.background_metrics().collectors() {
            metrics.register(collector)?;
        }
        if services.settings().testing.movable_clock {
            tracing::warn!(
                "testing.movable_clock is on: POST /api/v1/admin/clock moves this service's clock; \
                 never run it so in production"
            );
        }
        let metrics = web::Data::new(metrics);
        let data = web::Data::new(services.clone());
        let headers = web::Data::new(SecurityHeaders {
            hsts: tls.is_some(),
        });
        let workers = services.settings().server.workers;
        let server = HttpServer::new(move || {
            let (app, document) = http::with_routes(App::new());
            app.app_data(web::Data::new(document))
                .app_data(data.clone())
                .app_data(metrics.clone())
                .app_data(headers.clone())
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed),
                )
                .wrap(from_fn(http::language))
                .wrap(from_fn(http::metrics::record))
                .wrap(TracingLogger::default())
                // Outermost, so every answer gets them, problems and 404s included.
                .wrap(from_fn(http::headers::security))
                .default_service(web::to(http::not_found))
        })
        // Keeps the names of the client certificate a connection presented (mutual TLS).
        .on_connect(crate::tls::peer::on_connect);
        let mut server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.config()),
            None => server.listen(listener),
        }
        .map_err(|e| StartupError::Listen(listen.clone(), e))?;
        if workers > 0 {
            server = server.workers(workers);
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mutual = tls.as_ref().is_some_and(ServerTls::mutual);
        tracing::info!(address = %listen, port, scheme, mutual_tls = mutual, backend = ?services.backend(), "crossprov listening");
        Ok(Self {
            port,
            server: server.run(),
            services,
            mailer: std::sync::Arc::new(mailer),
            tls: tls.map(|t| t.reloader()),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until stopped, with this instance's background work beside it: the SLA
    /// scheduler and the mail worker.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let services = self.services.clone();
        let scheduler = supervised("SLA scheduler", move || {
            crate::scheduler::run(services.clone())
        });
        let (services, mailer) = (self.services.clone(), self.mailer.clone());
        let worker = supervised("mail worker", move || {
            crate::notify::worker::run(services.clone(), mailer.clone())
        });
        let services = self.services.clone();
        let retention = supervised("retention", move || {
            crate::service::retention::run(services.clone())
        });
        let reloader = self
            .tls
            .map(|tls| supervised("TLS reloader", move || tls.clone().run()));
        let served = self.server.await;
        scheduler.abort();
        worker.abort();
        retention.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        served
    }
}

/// Runs background work for as long as the server runs: a task that ends (it never should; a
/// panic would be a bug) is logged and started again, rather than leaving mail or timers
/// silently stopped.
fn supervised<F, Fut>(name: &'static str, start: F) -> actix_web::rt::task::JoinHandle<()>
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    use futures_util::FutureExt;
    actix_web::rt::spawn(async move {
        loop {
            let ended = std::panic::AssertUnwindSafe(start()).catch_unwind().await;
            let how = if ended.is_err() { "panicked" } else { "ended" };
            tracing::error!(
                task = name,
                how,
                "background work stopped; starting it again in 1 s"
            );
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}
