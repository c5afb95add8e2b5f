//! `POST /webhooks/stripe`: payment provider events, on the same port as gRPC.
//!
//! The delivery is verified on its raw body, its event id recorded and its processing queued in the
//! outbox, all before the 2xx answer; a redelivered event is acknowledged and ignored. Rejected deliveries
//! get a 400 with a one-line reason (the provider shows it in its dashboard) and change nothing. Each
//! client address has a budget of deliveries (`AEROBOOK_RATE_LIMIT_WEBHOOK`); past it, 429 with
//! `Retry-After`, and the provider delivers again later.

use std::sync::Arc;

use axum::{
    Extension, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};

use crate::{
    app::payments::Payments,
    config::Secret,
    infra::{payments::webhook, rate_limit::RateLimiter},
    layers::client_address::ClientAddress,
};

pub const WEBHOOK_PATH: &str = "/webhooks/stripe";
/// The rate-limit bucket of webhook deliveries, per client address.
pub const WEBHOOK_BUCKET: &str = "webhook";
/// The largest webhook body accepted. Stripe's payment and refund events are a few KiB.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct Webhooks {
    payments: Payments,
    secrets: Arc<[Secret]>,
    limiter: RateLimiter,
}

pub fn router(payments: Payments, secrets: Vec<Secret>, limiter: RateLimiter) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(Webhooks { payments, secrets: secrets.into(), limiter })
}

async fn receive(
    State(webhooks): State<Webhooks>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(wait) = webhooks.limiter.check(WEBHOOK_BUCKET, &client.principal()).await {
        tracing::warn!(client = ?client.0, "webhook deliveries over the rate limit");
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = reply(StatusCode::TOO_MANY_REQUESTS, "too many deliveries; deliver again later");
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        return response;
    }
    let Ok(payload) = std::str::from_utf8(&body) else {
        return reply(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let received = match webhook::verify(payload, signature, &webhooks.secrets) {
        Ok(received) => received,
        Err(rejection) => {
            tracing::warn!(%rejection, "webhook delivery rejected");
            return reply(StatusCode::BAD_REQUEST, &rejection.to_string());
        }
    };
    let (event_id, event_type) = (received.id.clone(), received.event_type.clone());
    match webhooks.payments.receive_event(received).await {
        Ok(true) => {
            tracing::info!(event_id, event_type, "webhook event recorded");
            reply(StatusCode::OK, "received")
        }
        Ok(false) => {
            tracing::info!(event_id, event_type, "webhook event already received; ignored");
            reply(StatusCode::OK, "duplicate; already received")
        }
        Err(error) => {
            // Not recorded: the provider delivers it again later.
            tracing::error!(event_id, %error, "could not record a webhook event");
            reply(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; deliver again later")
        }
    }
}

fn reply(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{text}\n")).into_response()
}
