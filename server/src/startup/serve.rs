//! Serving, and the orderly shutdown: drain delay, grace period, background work stopped.

use std::{future::Future, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot};
use tonic::service::Routes;

use super::{Application, StartupError};
use crate::{
    jobs::{self, Background, gauges, sweeper},
    layers::{cors::cors_layer, grpc_web::GrpcWebOrPlainLayer},
};

/// How long the answer to a keepalive ping may take before the connection is closed.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Application {
    /// Serves Prometheus `GET /metrics` from `registry` on `AEROBOOK_METRICS_ADDR` (when set), until the
    /// server stops.
    pub async fn serve_metrics(&mut self, registry: prometheus::Registry) -> Result<(), StartupError> {
        let Some(addr) = self.config.telemetry.metrics_addr else {
            return Ok(());
        };
        let listener = TcpListener::bind(addr).await.map_err(StartupError::Listen)?;
        let bound = listener.local_addr().map_err(StartupError::Listen)?;
        tracing::info!(%bound, "serving Prometheus metrics on /metrics");
        self.metrics_endpoint = Some(tokio::spawn(crate::api::metrics::serve(listener, registry)));
        Ok(())
    }

    /// Serves until `shutdown` resolves. Then health turns NOT_SERVING (for watchers and on open
    /// connections) and new calls are still taken for the drain delay, so load balancers stop sending first;
    /// then no new connections are accepted, and in-flight calls get the configured grace period to finish;
    /// after it, this returns without waiting for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Self {
            listener,
            local_addr,
            router,
            readiness,
            metrics_endpoint,
            store,
            redis,
            background: Background { bookings, payments, outbox, retention, .. },
            clock,
            feed,
            config,
        } = self;
        tracing::info!(%local_addr, "serving gRPC, gRPC-web and HTTP");
        let sweeping = tokio::spawn(sweeper::run(bookings, retention, clock.clone(), config.bookings.sweep_interval));
        let (stop_working, working_stops) = oneshot::channel::<()>();
        let mut working = tokio::spawn(jobs::outbox::run(outbox, config.jobs.poll_interval, working_stops));
        let reconciling = tokio::spawn(jobs::reconciler::run(payments, config.payments.reconcile_interval));
        let probing = tokio::spawn(readiness.clone().probe(store.clone(), config.transport.health_probe_interval));
        let sampling =
            config.telemetry.exports_metrics().then(|| tokio::spawn(gauges::run(store.clone(), clock.clone())));
        let relay = feed.listen().await;
        let (draining_tx, draining_rx) = oneshot::channel::<()>();
        let drain = config.limits.shutdown_drain;
        let signal = async move {
            shutdown.await;
            tracing::info!(
                drain_s = drain.as_secs(),
                "shutting down: NOT_SERVING, still taking calls for the drain delay"
            );
            readiness.drain().await;
            tokio::time::sleep(drain).await;
            tracing::info!("shutting down: listener closed, draining in-flight calls");
            let _ = draining_tx.send(());
        };
        let transport = &config.transport;
        let server = tonic::transport::Server::builder()
            .accept_http1(true)
            // Pings idle connections, so a client that vanished (its streams included) is closed.
            .http2_keepalive_interval(Some(transport.keepalive_interval))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            // Old connections are asked to go away, so clients rebalance onto new instances.
            .max_connection_age(transport.max_connection_age)
            .max_concurrent_streams(Some(transport.max_concurrent_streams))
            .layer(cors_layer(&config.cors_origins))
            .layer(GrpcWebOrPlainLayer)
            .add_routes(Routes::from(router))
            .serve_with_incoming_shutdown(connections(listener), signal);
        let grace = config.limits.shutdown_grace;
        let drain_deadline = async move {
            match draining_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let drained = tokio::select! {
            result = server => {
                result?;
                true
            }
            () = drain_deadline => {
                // Connections run in tasks of their own: they end with the process (or the test's runtime).
                tracing::warn!(grace_s = grace.as_secs(), "calls still open after the grace period; no longer waiting");
                false
            }
        };
        probing.abort();
        if let Some(sampling) = sampling {
            sampling.abort();
        }
        if let Some(metrics_endpoint) = metrics_endpoint {
            metrics_endpoint.abort();
        }
        sweeping.abort();
        // Jobs already running get the grace period to finish (an email half sent is the one way to send it
        // twice); the rest wait in the database for the next instance.
        let _ = stop_working.send(());
        if tokio::time::timeout(grace, &mut working).await.is_err() {
            working.abort();
            tracing::warn!(
                grace_s = grace.as_secs(),
                "background jobs still running after the grace period; they run again after their lease"
            );
        }
        reconciling.abort();
        if let Some(relay) = relay {
            relay.stop();
        }
        if let Some(redis) = redis {
            redis.quit().await;
        }
        // Calls still running after the grace period keep their pool; a clean drain releases it.
        if drained && let Err(error) = store.close().await {
            tracing::warn!(%error, "closing the database pool");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off (small gRPC frames go out at once).
pub(super) fn connections(
    listener: Arc<TcpListener>,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, _)| stream.set_nodelay(true).map(|()| stream));
        Some((accepted, listener))
    })
}
