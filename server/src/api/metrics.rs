//! `GET /metrics`: Prometheus text, served only on the operator address (`AEROBOOK_METRICS_ADDR`), never on
//! the public port. The text is the OpenTelemetry Prometheus exporter's, encoded by the `prometheus` crate.

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus::{Encoder as _, TextEncoder};
use tokio::net::TcpListener;

/// The operator router: `GET /metrics` and nothing else.
pub fn router(registry: prometheus::Registry) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(registry)
}

async fn metrics(State(registry): State<prometheus::Registry>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut text = Vec::new();
    match encoder.encode(&registry.gather(), &mut text) {
        Ok(()) => (StatusCode::OK, [(http::header::CONTENT_TYPE, encoder.format_type().to_owned())], text),
        Err(error) => {
            tracing::error!(%error, "encoding metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, [(http::header::CONTENT_TYPE, "text/plain".to_owned())], Vec::new())
        }
    }
}

/// Serves the router on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, registry: prometheus::Registry) {
    if let Err(error) = axum::serve(listener, router(registry)).await {
        tracing::error!(%error, "the metrics endpoint stopped");
    }
}
