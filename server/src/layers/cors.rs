//! CORS for browsers calling over gRPC-web: only configured origins, mirrored back (never `*`), with the
//! request and response headers of the contract.

use std::{sync::Arc, time::Duration};

use http::{HeaderName, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::OriginPattern;

/// Headers a browser may send: the contract's, and W3C trace context, so a traced web app's calls join its
/// trace.
pub const ALLOWED_HEADERS: [&str; 9] = [
    "authorization",
    "idempotency-key",
    "x-correlation-id",
    "x-grpc-web",
    "content-type",
    "grpc-timeout",
    "x-user-agent",
    "traceparent",
    "tracestate",
];
/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: [&str; 5] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-correlation-id", "idempotent-replayed"];

pub fn cors_layer(origins: &[OriginPattern]) -> CorsLayer {
    let origins: Arc<[OriginPattern]> = origins.into();
    let header_names = |names: &[&'static str]| names.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|origin| origins.iter().any(|pattern| pattern.matches(origin)))
        }))
        .allow_credentials(true)
        .allow_methods([Method::POST])
        .allow_headers(header_names(&ALLOWED_HEADERS))
        .expose_headers(header_names(&EXPOSED_HEADERS))
        .max_age(Duration::from_secs(3600))
}
