//! Cross-cutting rules applied to every call as tower layers, in this order (outermost first):
//! CORS -> gRPC-web translation -> correlation id -> client address -> deadline and concurrency limit ->
//! proto policy (authentication, role, rate limit, idempotency key) -> the services.
//!
//! Driven by configuration and by the `(aerobook.v1.policy)` option of each RPC; knows nothing of the
//! use cases behind the services.

pub mod auth;
pub mod client_address;
pub mod correlation;
pub mod cors;
pub mod errors;
pub mod grpc_code;
pub mod grpc_web;
pub mod idempotency;
pub mod limits;
pub mod policy;

use axum::response::Response;

use self::{correlation::CorrelationId, errors::ApiError};

/// A gRPC error response produced by a layer before the call reaches a service.
pub(crate) fn reject(error: ApiError, correlation_id: &CorrelationId) -> Response {
    error.into_status(correlation_id).into_http()
}
