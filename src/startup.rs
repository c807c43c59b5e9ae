//! Building and running the HTTP server. Binding happens in `build`, so tests can ask for
//! port 0 and read the real port back.

pub mod checks;

use std::net::TcpListener;
use std::time::Duration;

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
    /// Settings that contradict each other or name unusable files, one line each.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
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
        crate::domain::Detail::new("此路径不支持该请求方法", "this method is not allowed here"),
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
        // Every refusal at once, before the database is touched.
        let refused = checks::refusals(&settings);
        if !refused.is_empty() {
            return Err(StartupError::Refused(refused));
        }
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
        metrics.register(Box::new(crate::storage::STATEMENTS.clone()))?;
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
        let shutdown_timeout = services.settings().server.shutdown_timeout_seconds;
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
                // Inside `language`, so its refusals speak the request's language; a replay
                // still passes the metrics, the log and the security headers.
                .wrap(from_fn(http::idempotency::keyed))
                .wrap(from_fn(http::language))
                .wrap(from_fn(http::metrics::record))
                .wrap(TracingLogger::default())
                // Outermost, so every answer gets them, problems and 404s included.
                .wrap(from_fn(http::headers::security))
                .default_service(web::to(http::not_found))
        })
        // Keeps the names of the client certificate a connection presented (mutual TLS).
        .on_connect(crate::tls::peer::on_connect)
        // Signals are the caller's (`run_until`): /readyz must go unready before the stop.
        .disable_signals()
        .shutdown_timeout(shutdown_timeout);
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

    /// Serves until the process ends, with this instance's background work beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves, with this instance's background work beside it (the SLA scheduler, the mail
    /// worker, retention, the TLS reloader), until `stop` resolves; then stops gracefully:
    /// `/readyz` answers 503 at once, new requests are still taken for
    /// `server.shutdown_drain_seconds`, then no new connection is accepted, requests in flight
    /// finish (within `server.shutdown_timeout_seconds`), and the mail worker finishes the
    /// batch it is sending.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let services = self.services.clone();
        let scheduler = supervised("SLA scheduler", &self.services, move || {
            crate::scheduler::run(services.clone())
        });
        let (services, mailer) = (self.services.clone(), self.mailer.clone());
        let worker = supervised("mail worker", &self.services, move || {
            crate::notify::worker::run(services.clone(), mailer.clone())
        });
        let services = self.services.clone();
        let retention = supervised("retention", &self.services, move || {
            crate::service::retention::run(services.clone())
        });
        let checkpointer =
            (self.services.backend() == crate::storage::Backend::Sqlite).then(|| {
                let services = self.services.clone();
                supervised("SQLite checkpointer", &self.services, move || {
                    let services = services.clone();
                    async move {
                        loop {
                            tokio::time::sleep(CHECKPOINT_EVERY).await;
                            services.checkpoint_database().await;
                        }
                    }
                })
            });
        let services = self.services.clone();
        let cosigning = supervised("checkpoint cosigning", &self.services, move || {
            crate::service::cosigning::run(services.clone())
        });
        let services = self.services.clone();
        let sequencer = (self.services.backend() == crate::storage::Backend::Postgres).then(|| {
            supervised("audit sequencer", &self.services, move || {
                crate::service::sequencer::run(services.clone())
            })
        });
        let services = self.services.clone();
        let idempotency = supervised("idempotency keys", &self.services, move || {
            crate::service::idempotency::run(services.clone())
        });
        let services = self.services.clone();
        let mail_pruning = supervised("sent mail pruning", &self.services, move || {
            crate::service::outbox::prune_run(services.clone())
        });
        let reloader = self
            .tls
            .map(|tls| supervised("TLS reloader", &self.services, move || tls.clone().run()));
        let handle = self.server.handle();
        let services = self.services.clone();
        let settings = &self.services.settings().server;
        let drain = Duration::from_secs(settings.shutdown_drain_seconds);
        let timeout = settings.shutdown_timeout_seconds;
        actix_web::rt::spawn(async move {
            stop.await;
            services.wake().stop();
            tracing::info!(
                drain_seconds = drain.as_secs(),
                shutdown_timeout_seconds = timeout,
                "stopping: /readyz answers 503; requests in flight will finish"
            );
            tokio::time::sleep(drain).await;
            handle.stop(true).await;
        });
        let served = self.server.await;
        self.services.wake().stop();
        // The conversation in progress ends within mail.timeout_seconds; a little more for
        // recording the batch.
        let mail_timeout = Duration::from_secs(self.services.settings().mail.timeout_seconds + 5);
        if tokio::time::timeout(mail_timeout, worker).await.is_err() {
            tracing::warn!("the mail worker did not finish its batch in time; its leases run out");
        }
        scheduler.abort();
        if let Some(sequencer) = sequencer {
            sequencer.abort();
        }
        // What this instance's last steps queued goes into the chain now rather than at the
        // next pass of another instance (or this one's next start).
        if let Err(e) = self.services.integrate_queued(true).await {
            tracing::warn!(error = %e, "queued audit events are left for the next sequencer pass");
        }
        retention.abort();
        if let Some(checkpointer) = checkpointer {
            checkpointer.abort();
        }
        idempotency.abort();
        mail_pruning.abort();
        cosigning.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        tracing::info!("stopped");
        served
    }
}

/// How often SQLite's log is copied into the database file: often enough that the log stays
/// a few thousand pages long under full load, so writers never copy it themselves.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Resolves on SIGTERM or SIGINT (Ctrl-C): what `serve` stops on.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs background work for as long as the server runs: a task that ends before the instance
/// stops (it never should; a panic would be a bug) is logged and started again, rather than
/// leaving mail or timers silently stopped.
fn supervised<F, Fut>(
    name: &'static str,
    services: &Services,
    start: F,
) -> actix_web::rt::task::JoinHandle<()>
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    use futures_util::FutureExt;
    let services = services.clone();
    actix_web::rt::spawn(async move {
        loop {
            let ended = std::panic::AssertUnwindSafe(start()).catch_unwind().await;
            if services.wake().is_stopping() {
                return;
            }
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
