//! Correlation ids: accepted from the caller when well-formed, generated otherwise, attached to the call's
//! tracing span (so every log line of the call carries it) and returned in the response metadata.

use std::{fmt, time::Instant};

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderMap, HeaderValue};
use tracing::Instrument as _;

pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const MAX_CORRELATION_ID_LEN: usize = 128;

/// The id tying together a call's response, error details and log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// The caller's `x-correlation-id`, else its `x-request-id`, when 1..=128 characters of
    /// `[A-Za-z0-9._:-]`; otherwise a new UUIDv7.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        [CORRELATION_ID_HEADER, REQUEST_ID_HEADER]
            .iter()
            .filter_map(|name| headers.get(*name)?.to_str().ok())
            .find(|value| Self::is_acceptable(value))
            .map_or_else(Self::generate, |value| Self(value.to_owned()))
    }

    /// The id the correlation layer gave this call. Every call passes that layer first, so a missing id is
    /// a wiring bug: debug builds stop on it, release builds answer with a fresh id rather than none.
    pub fn of(extensions: &http::Extensions) -> Self {
        let found = extensions.get::<CorrelationId>().cloned();
        debug_assert!(found.is_some(), "the correlation layer must run before this point");
        found.unwrap_or_else(Self::generate)
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    fn is_acceptable(value: &str) -> bool {
        (1..=MAX_CORRELATION_ID_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Middleware: decides the call's correlation id, runs the call inside a span that records it, and
/// returns it in the `x-correlation-id` response header, on success and on error alike.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let id = CorrelationId::from_headers(request.headers());
    let span = tracing::info_span!(
        "call",
        correlation_id = %id,
        rpc = %request.uri().path(),
        otel.kind = "server",
        grpc.status = tracing::field::Empty,
    );
    request.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    // Errors answered before any message travel as trailers-only responses: their status is a header here.
    // A successful unary call's status follows in the trailers, after this layer.
    let status = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0").to_owned();
    span.record("grpc.status", status.as_str());
    span.in_scope(|| tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "call answered"));
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(CORRELATION_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn well_formed_ids_are_kept_and_the_request_id_is_a_fallback() {
        assert_eq!(
            CorrelationId::from_headers(&headers(&[("x-correlation-id", "abc.DEF_1:2-3")])).as_str(),
            "abc.DEF_1:2-3"
        );
        assert_eq!(CorrelationId::from_headers(&headers(&[("x-request-id", "req-1")])).as_str(), "req-1");
        let both = headers(&[("x-correlation-id", "corr"), ("x-request-id", "req")]);
        assert_eq!(CorrelationId::from_headers(&both).as_str(), "corr");
        let bad_then_good = headers(&[("x-correlation-id", "has space"), ("x-request-id", "req")]);
        assert_eq!(CorrelationId::from_headers(&bad_then_good).as_str(), "req");
    }

    #[test]
    fn malformed_or_missing_ids_are_replaced_by_a_uuid_v7() {
        let long = "a".repeat(MAX_CORRELATION_ID_LEN + 1);
        for given in ["", "x/y", "ünï", long.as_str()] {
            let id = CorrelationId::from_headers(&headers(&[("x-correlation-id", given)]));
            let parsed = uuid::Uuid::parse_str(id.as_str()).expect("generated id is a UUID");
            assert_eq!(parsed.get_version_num(), 7, "for {given:?}");
        }
        assert!(CorrelationId::from_headers(&headers(&[("x-correlation-id", &"a".repeat(128))])).as_str().len() == 128);
    }
}
