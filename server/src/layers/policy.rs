//! Enforces each RPC's `(aerobook.v1.policy)` option before the call reaches its service. Today: the
//! idempotency-key rule. The key, once validated, travels to the service in the request extensions.

use axum::{extract::Request, middleware::Next, response::Response};

use super::{correlation::CorrelationId, errors::ApiError, idempotency::IdempotencyKey, reject};

pub async fn enforce_policy(mut request: Request, next: Next) -> Response {
    let Some(policy) = aerobook_proto::rpc_policy(request.uri().path()) else {
        return next.run(request).await;
    };
    if policy.idempotency_key_required {
        match IdempotencyKey::from_headers(request.headers()) {
            Ok(key) => {
                request.extensions_mut().insert(key);
            }
            Err(violation) => {
                let correlation_id =
                    request.extensions().get::<CorrelationId>().cloned().unwrap_or_else(CorrelationId::generate);
                return reject(ApiError::validation(vec![violation]), &correlation_id);
            }
        }
    }
    request.extensions_mut().insert(policy);
    next.run(request).await
}
