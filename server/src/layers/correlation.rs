//! Correlation ids and call observation: the id is accepted from the caller when well-formed, generated
//! otherwise, attached to the call's server span and to the task serving it (so every span and log line
//! of the call carries it, whatever the log level) and returned in the response metadata. The same layer
//! names the span after the RPC, continues the caller's trace, and records the call's status, duration and
//! error code once the response has ended.

use std::{fmt, time::Instant};

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderMap, HeaderValue};
use opentelemetry::KeyValue;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::grpc_code::grpc_code_name;
use crate::infra::{metrics, telemetry};

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

/// Middleware: decides the call's correlation id, runs the call inside its server span (continuing the
/// caller's W3C trace), returns the id in the `x-correlation-id` response header, and observes the call
/// until its response body ends, when its gRPC status is known: the span then records it, the call is
/// logged once, and the call metrics are recorded.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let id = CorrelationId::from_headers(request.headers());
    let call = CallName::of(request.method(), request.uri().path());
    let span = call.span(&id);
    // Fails only when traces are not exported (no OpenTelemetry layer): then there is nothing to continue.
    let _ = span.set_parent(telemetry::incoming_context(request.headers(), id.as_str()));
    request.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let mut response = telemetry::in_call(id.as_str().to_owned(), next.run(request).instrument(span.clone())).await;
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(CORRELATION_ID_HEADER, value);
    }
    let observation = Observation { call, span, started, http_status: response.status(), finished: false };
    // Errors answered before any message travel as trailers-only responses: their status is a header.
    let status_in_headers = observation.call.is_grpc().then(|| GrpcOutcome::from_headers(response.headers())).flatten();
    let (parts, body) = response.into_parts();
    let mut observed = ObservedBody { inner: body, observation, status_in_headers };
    if observed.status_in_headers.is_some() && http_body::Body::is_end_stream(&observed.inner) {
        observed.finish(None);
    }
    Response::from_parts(parts, axum::body::Body::new(observed))
}

/// What a request is: a gRPC method (`/package.Service/Method`) or a plain HTTP route.
#[derive(Debug, Clone)]
enum CallName {
    Grpc { service: String, method: String },
    Http { method: http::Method, path: String },
}

impl CallName {
    fn of(method: &http::Method, path: &str) -> Self {
        match path.strip_prefix('/').and_then(|rest| rest.split_once('/')) {
            Some((service, rpc)) if service.contains('.') && !rpc.is_empty() && !rpc.contains('/') => {
                Self::Grpc { service: service.to_owned(), method: rpc.to_owned() }
            }
            _ => Self::Http { method: method.clone(), path: path.to_owned() },
        }
    }

    fn is_grpc(&self) -> bool {
        matches!(self, Self::Grpc { .. })
    }

    /// The server span, named as OpenTelemetry's RPC conventions name it (`package.Service/Method`); its
    /// target is [`telemetry::SERVER_SPAN_TARGET`].
    fn span(&self, id: &CorrelationId) -> tracing::Span {
        match self {
            Self::Grpc { service, method } => tracing::info_span!(
                target: telemetry::SERVER_SPAN_TARGET,
                "rpc",
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
                error_code = tracing::field::Empty,
                correlation_id = %id,
            ),
            Self::Http { method, path } => tracing::info_span!(
                target: telemetry::SERVER_SPAN_TARGET,
                "http",
                otel.name = %format_args!("{method} {path}"),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                http.request.method = %method,
                url.path = %path,
                http.response.status_code = tracing::field::Empty,
                correlation_id = %id,
            ),
        }
    }
}

/// A gRPC status code and, for errors, the contract's error code from the rich details.
#[derive(Debug, Clone)]
struct GrpcOutcome {
    code: i32,
    error_code: Option<String>,
}

impl GrpcOutcome {
    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
        let error_code = (code != 0)
            .then(|| tonic::Status::from_header_map(headers))
            .flatten()
            .and_then(|status| tonic_types::StatusExt::get_details_error_info(&status))
            .map(|info| info.reason);
        Some(Self { code, error_code })
    }
}

/// Status codes that mean the server failed, as OpenTelemetry's gRPC conventions count them for servers.
fn is_server_error(code: i32) -> bool {
    use tonic::Code;
    [Code::Unknown, Code::DeadlineExceeded, Code::Unimplemented, Code::Internal, Code::Unavailable, Code::DataLoss]
        .iter()
        .any(|server_side| *server_side as i32 == code)
}

struct Observation {
    call: CallName,
    span: tracing::Span,
    started: Instant,
    http_status: http::StatusCode,
    finished: bool,
}

impl Observation {
    /// Records the call's outcome once: `None` for a gRPC call whose body ended without a status (the
    /// client went away: CANCELLED).
    fn finish(&mut self, outcome: Option<GrpcOutcome>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let metrics = metrics::metrics();
        match &self.call {
            CallName::Grpc { service, method } => {
                let outcome = outcome.unwrap_or(GrpcOutcome { code: tonic::Code::Cancelled as i32, error_code: None });
                self.span.record("rpc.grpc.status_code", outcome.code);
                if is_server_error(outcome.code) {
                    self.span.record("otel.status_code", "ERROR");
                }
                let labels = [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service.clone()),
                    KeyValue::new("rpc.method", method.clone()),
                    KeyValue::new("rpc.grpc.status_code", i64::from(outcome.code)),
                ];
                metrics.rpc_duration.record(elapsed.as_secs_f64(), &labels);
                if outcome.code != 0 {
                    let error_code = outcome
                        .error_code
                        .clone()
                        .unwrap_or_else(|| grpc_code_name(tonic::Code::from_i32(outcome.code)));
                    self.span.record("error_code", error_code.as_str());
                    metrics.rpc_errors.add(
                        1,
                        &[
                            KeyValue::new("rpc.service", service.clone()),
                            KeyValue::new("rpc.method", method.clone()),
                            KeyValue::new("error_code", error_code),
                        ],
                    );
                }
                self.span.in_scope(|| {
                    tracing::info!(
                        grpc_status = outcome.code,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "call answered"
                    );
                });
            }
            CallName::Http { .. } => {
                let status = self.http_status.as_u16();
                self.span.record("http.response.status_code", status);
                if self.http_status.is_server_error() {
                    self.span.record("otel.status_code", "ERROR");
                }
                self.span.in_scope(|| {
                    tracing::info!(http_status = status, elapsed_ms = elapsed.as_millis() as u64, "request answered");
                });
            }
        }
    }
}

/// The response body, watched for its end: the trailers (a gRPC status) or the last frame.
struct ObservedBody {
    inner: axum::body::Body,
    observation: Observation,
    status_in_headers: Option<GrpcOutcome>,
}

impl ObservedBody {
    fn finish(&mut self, trailers: Option<&HeaderMap>) {
        let outcome = trailers.and_then(GrpcOutcome::from_headers).or_else(|| self.status_in_headers.clone());
        self.observation.finish(outcome);
    }
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.finish(Some(trailers));
                }
            }
            std::task::Poll::Ready(None) | std::task::Poll::Ready(Some(Err(_))) => this.finish(None),
            std::task::Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        // A body dropped before its end: the client went away (or the server is stopping).
        self.finish(None);
    }
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
    fn calls_are_named_as_rpcs_or_http_routes() {
        let get = http::Method::POST;
        assert!(matches!(
            CallName::of(&get, "/aerobook.v1.BookingService/CreateBooking"),
            CallName::Grpc { service, method } if service == "aerobook.v1.BookingService" && method == "CreateBooking"
        ));
        for path in ["/healthz", "/webhooks/stripe", "/", "/a.B/"] {
            assert!(matches!(CallName::of(&get, path), CallName::Http { .. }), "{path}");
        }
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
