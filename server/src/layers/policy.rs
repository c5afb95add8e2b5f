//! Enforces each RPC's `(aerobook.v1.policy)` option before the call reaches its service. Today: the
//! idempotency-key rule (its presence and format; what a key means is the idempotency store's business).

use axum::{extract::Request, middleware::Next, response::Response};

use super::{correlation::CorrelationId, errors::ApiError, idempotency::IdempotencyKey, reject};

pub async fn enforce_policy(request: Request, next: Next) -> Response {
    let Some(policy) = aerobook_proto::rpc_policy(request.uri().path()) else {
        return next.run(request).await;
    };
    if policy.idempotency_key_required
        && let Err(violation) = IdempotencyKey::from_headers(request.headers())
    {
        return reject(ApiError::validation(vec![violation]), &CorrelationId::of(request.extensions()));
    }
    next.run(request).await
}
