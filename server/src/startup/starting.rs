//! A start waiting for its database: the listener answers from the first moment (NOT_SERVING, 503,
//! `SERVICE_UNAVAILABLE`), and the application takes it over once the database is ready.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{http::StatusCode, routing::get};
use tokio::{net::TcpListener, sync::watch};
use tonic::service::Routes;
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_server::{Health, HealthServer},
};

use super::{Application, StartupError, serve::connections};
use crate::{
    config::Config,
    infra::clock::Clock,
    layers::{
        correlation::{CorrelationId, correlate},
        cors::cors_layer,
        errors::ApiError,
        grpc_web::GrpcWebOrPlainLayer,
        reject,
    },
};

/// How long a start waits before asking an unreachable database again, at first and at most.
const START_RETRY_FIRST: Duration = Duration::from_millis(250);
const START_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long the starting server gets to close its connections (health watchers) at the handover.
const HANDOVER_WAIT: Duration = Duration::from_secs(1);

/// What `aerobook-server` runs: serves on `listener` from the first moment. Until the database answers
/// and is migrated (and the demo data seeded), health says NOT_SERVING (`/healthz` 503) and every other call
/// is answered `SERVICE_UNAVAILABLE` (retryable); a start that fails on the database is retried. Then the
/// application takes over the same listener (no connection refused in between) and serves until
/// `shutdown` resolves.
pub async fn run_when_ready(
    config: Config,
    listener: TcpListener,
    metrics: Option<prometheus::Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let listener = Arc::new(listener);
    let mut shutdown = Box::pin(shutdown);
    let (handover, handed_over) = watch::channel(false);
    let mut starting = tokio::spawn(serve_starting(listener.clone(), config.clone(), handed_over));
    let mut retry = START_RETRY_FIRST;
    let mut application = loop {
        match Application::build_on(config.clone(), Clock::system(), listener.clone()).await {
            Ok(application) => break application,
            Err(StartupError::Store(error)) => {
                tracing::error!(%error, retry_in_ms = retry.as_millis() as u64, "database not ready: NOT_SERVING, retrying");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = &mut shutdown => {
                        tracing::info!("stopped before the database was ready");
                        starting.abort();
                        return Ok(());
                    }
                }
                retry = (retry * 2).min(START_RETRY_MAX);
            }
            Err(other) => {
                starting.abort();
                return Err(other);
            }
        }
    };
    let _ = handover.send(true);
    // Health watches end at the handover, so the starting server's connections close at once; should one
    // not, it is cut.
    if tokio::time::timeout(HANDOVER_WAIT, &mut starting).await.is_err() {
        starting.abort();
    }
    if let Some(registry) = metrics {
        application.serve_metrics(registry).await?;
    }
    application.run_until_stopped(shutdown).await
}

/// The server of a start waiting for its database: health (NOT_SERVING), `/healthz` (503), and
/// `SERVICE_UNAVAILABLE` with the error contract for everything else, until `handover` turns true.
async fn serve_starting(listener: Arc<TcpListener>, config: Config, handover: watch::Receiver<bool>) {
    let health = HealthServer::new(StartingHealth { handover: handover.clone() });
    let router = Routes::new(health)
        .into_axum_router()
        .route("/healthz", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "starting\n") }))
        .fallback(|request: axum::extract::Request| async move {
            reject(ApiError::unavailable(), &CorrelationId::of(request.extensions()))
        })
        .layer(axum::middleware::from_fn(correlate));
    let mut handed_over = handover;
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(cors_layer(&config.cors_origins))
        .layer(GrpcWebOrPlainLayer)
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(connections(listener), async move {
            let _ = handed_over.wait_for(|done| *done).await;
        })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "the starting server failed");
    }
}

/// The health service of a starting server: NOT_SERVING for every service; a watch reports it, then ends
/// at the handover (the watcher asks the application next).
struct StartingHealth {
    handover: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Health for StartingHealth {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse { status: ServingStatus::NotServing.into() }))
    }

    type WatchStream = futures::stream::BoxStream<'static, Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        use futures::StreamExt as _;
        let mut handover = self.handover.clone();
        let not_serving =
            futures::stream::once(async { Ok(HealthCheckResponse { status: ServingStatus::NotServing.into() }) });
        let until_handover = futures::stream::once(async move {
            let _ = handover.wait_for(|done| *done).await;
        })
        .filter_map(|()| async { None });
        Ok(tonic::Response::new(not_serving.chain(until_handover).boxed()))
    }
}
