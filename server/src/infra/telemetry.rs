//! Logs, traces and metrics.
//!
//! - Logs: `tracing` to stdout, as text or as JSON lines that carry the fields of every enclosing span (so the
//!   call's `correlation_id`) and, when traces are exported, the `trace_id` and `span_id` of the line.
//! - Traces: exported over OTLP (gRPC, or HTTP with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`) when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set; nothing is exported otherwise. An `https://` gRPC endpoint is
//!   reached over TLS (public roots, plus the CA in `OTEL_EXPORTER_OTLP_CERTIFICATE`). W3C trace context continues the
//!   caller's trace. The other standard `OTEL_*` variables (service name, resource attributes, sampler,
//!   headers, timeouts, export interval) are read by the OpenTelemetry SDK itself.
//! - Metrics: the same OTLP endpoint, and Prometheus text on `AEROBOOK_METRICS_ADDR` (see `metrics`).
//!
//! The span processor and metric reader export on the tokio runtime: the SDK's default ones run the export on
//! a thread of their own, where the tonic exporter finds no runtime and nothing ever arrives.

use std::{fmt, time::Duration};

use http::HeaderMap;
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector},
    trace::{SpanContext, TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource,
    metrics::SdkMeterProvider,
    propagation::TraceContextPropagator,
    runtime,
    trace::{SdkTracerProvider, Span, SpanProcessor, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    EnvFilter, Layer as _,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{Format, Writer},
    },
    layer::SubscriberExt as _,
    registry::LookupSpan,
    util::SubscriberInitExt as _,
};

use crate::config::{Config, LogFormat, OtlpProtocol};

/// `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` name another.
pub const SERVICE_NAME: &str = "aerobook-server";
/// The attribute (and log field) carrying a call's correlation id, on every span of the call.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";
/// How long shutdown waits for the last spans and metrics to be exported.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP certificate {0}: {1}")]
    Certificate(std::path::PathBuf, #[source] std::io::Error),
    #[error("Prometheus exporter: {0}")]
    Prometheus(#[from] opentelemetry_sdk::error::OTelSdkError),
    #[error("a global subscriber is already installed: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes exported spans and metrics when dropped at shutdown; holds the Prometheus registry.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    prometheus: Option<prometheus::Registry>,
}

impl Telemetry {
    /// The registry behind `GET /metrics`, when `AEROBOOK_METRICS_ADDR` is set.
    pub fn prometheus_registry(&self) -> Option<prometheus::Registry> {
        self.prometheus.clone()
    }
}

/// The target of every call's server span (opened by the correlation layer).
pub const SERVER_SPAN_TARGET: &str = "aerobook_server::call";

/// Installs the global subscriber, propagator and meter provider. Must run inside the tokio runtime (the
/// exporters run on it) and before the first metric instrument is created.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = resource();
    let telemetry = &config.telemetry;
    let tls = match &telemetry.otlp_certificate {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| TelemetryError::Certificate(path.clone(), error))?;
            ClientTlsConfig::new().with_enabled_roots().ca_certificate(Certificate::from_pem(pem))
        }
        None => ClientTlsConfig::new().with_enabled_roots(),
    };
    let tracer_provider = match &telemetry.otlp_endpoint {
        Some(endpoint) => {
            let exporter = match telemetry.otlp_protocol {
                OtlpProtocol::Grpc => grpc_target(SpanExporter::builder().with_tonic(), endpoint, &tls).build()?,
                OtlpProtocol::HttpProtobuf => {
                    SpanExporter::builder().with_http().with_endpoint(signal_url(endpoint, "traces")).build()?
                }
            };
            Some(
                SdkTracerProvider::builder()
                    .with_span_processor(StampCorrelation)
                    .with_span_processor(BatchSpanProcessor::builder(exporter, runtime::Tokio).build())
                    .with_resource(resource.clone())
                    .build(),
            )
        }
        None => None,
    };
    let mut meter_provider = None;
    let mut prometheus = None;
    if telemetry.exports_metrics() {
        let mut builder = SdkMeterProvider::builder().with_resource(resource);
        if let Some(endpoint) = &telemetry.otlp_endpoint {
            let exporter = match telemetry.otlp_protocol {
                OtlpProtocol::Grpc => grpc_target(MetricExporter::builder().with_tonic(), endpoint, &tls).build()?,
                OtlpProtocol::HttpProtobuf => {
                    MetricExporter::builder().with_http().with_endpoint(signal_url(endpoint, "metrics")).build()?
                }
            };
            builder = builder.with_reader(
                opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
                    exporter,
                    runtime::Tokio,
                )
                .build(),
            );
        }
        if telemetry.metrics_addr.is_some() {
            let registry = prometheus::Registry::new();
            builder =
                builder.with_reader(opentelemetry_prometheus::exporter().with_registry(registry.clone()).build()?);
            prometheus = Some(registry);
        }
        let provider = builder.build();
        opentelemetry::global::set_meter_provider(provider.clone());
        meter_provider = Some(provider);
    }

    // One filter per layer: `RUST_LOG` chooses the log lines, `AEROBOOK_TRACE_FILTER` the exported spans, so
    // a quiet log level does not silence tracing (a global filter would disable the spans for both). Below
    // info nothing keeps the call's server span for the log lines: a line written during a call then
    // carries its correlation id from [`in_call`]. (Keeping the span on at `RUST_LOG=warn` for that cost 40 %
    // of the ping rate with nothing exported: every call built it and entered it at every poll.)
    let log_filter = EnvFilter::try_new(&config.log_filter)?;
    let trace_filter = EnvFilter::try_new(&telemetry.trace_filter)?;
    let fmt = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().event_format(TextLines(Format::default())).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines)
            .boxed(),
    };
    let otel = tracer_provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(SERVICE_NAME)).with_filter(trace_filter));
    tracing_subscriber::registry().with(otel).with(fmt.with_filter(log_filter)).try_init()?;
    Ok(Telemetry { tracer_provider, meter_provider, prometheus })
}

/// The resource from the SDK's detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), named
/// `aerobook-server` when neither names the service.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    match named {
        true => detected,
        false => Resource::builder().with_service_name(SERVICE_NAME).build(),
    }
}

/// An OTLP/gRPC exporter aimed at `endpoint`, over TLS for `https://` (the exporter's own default TLS trusts
/// no root at all).
fn grpc_target<B: WithExportConfig + WithTonicConfig>(builder: B, endpoint: &str, tls: &ClientTlsConfig) -> B {
    let builder = builder.with_endpoint(endpoint);
    match endpoint.starts_with("https://") {
        true => builder.with_tls_config(tls.clone()),
        false => builder,
    }
}

/// The per-signal URL of an OTLP/HTTP base endpoint, as the specification builds it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn signal_url(endpoint: &str, signal: &str) -> String {
    format!("{}/v1/{signal}", endpoint.trim_end_matches('/'))
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            eprintln!("flushing traces failed: {error}");
        }
        if let Some(provider) = self.meter_provider.take()
            && let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            eprintln!("flushing metrics failed: {error}");
        }
    }
}

/// The call's correlation id, carried in the OpenTelemetry context from the call's span to every span
/// opened under it, where [`StampCorrelation`] copies it into the span's attributes.
#[derive(Debug, Clone)]
struct CallCorrelation(String);

/// Copies the call's correlation id onto every span of the call as it starts.
#[derive(Debug)]
struct StampCorrelation;

impl SpanProcessor for StampCorrelation {
    fn on_start(&self, span: &mut Span, parent: &Context) {
        if let Some(CallCorrelation(id)) = parent.get::<CallCorrelation>() {
            use opentelemetry::trace::Span as _;
            span.set_attribute(KeyValue::new(CORRELATION_ATTRIBUTE, id.clone()));
        }
    }

    fn on_end(&self, _span: opentelemetry_sdk::trace::SpanData) {}

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// The parent context of an incoming call: the caller's trace (W3C `traceparent`/`tracestate` in the gRPC or
/// gRPC-web metadata, when present and valid) and the call's correlation id.
pub fn incoming_context(headers: &HeaderMap, correlation_id: &str) -> Context {
    let remote =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderCarrier::Read(headers)));
    remote.with_value(CallCorrelation(correlation_id.to_owned()))
}

/// The W3C `traceparent`/`tracestate` headers of the current span, for an outbound call.
pub fn outgoing_headers(headers: &mut HeaderMap) {
    let context = current_context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderCarrier::Write(headers));
    });
}

/// The current span's OpenTelemetry context (empty when traces are not exported).
pub fn current_context() -> Context {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    tracing::Span::current().context()
}

/// The current span as a `traceparent` value, to store with work done later (outbox jobs); `None` when
/// there is no sampled trace.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    outgoing_headers(&mut headers);
    headers.get("traceparent").and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// The span context a stored `traceparent` names, to link later work to the call that asked for it.
pub fn linked_span(traceparent: &str) -> Option<SpanContext> {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", traceparent.parse().ok()?);
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderCarrier::Read(&headers)));
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

enum HeaderCarrier<'a> {
    Read(&'a HeaderMap),
    Write(&'a mut HeaderMap),
}

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let headers = match self {
            Self::Read(headers) => &**headers,
            Self::Write(headers) => &**headers,
        };
        headers.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        let headers = match self {
            Self::Read(headers) => &**headers,
            Self::Write(headers) => &**headers,
        };
        headers.keys().map(http::HeaderName::as_str).collect()
    }
}

impl Injector for HeaderCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Self::Write(headers) = self
            && let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            headers.insert(name, value);
        }
    }
}

/// One JSON object per line: time, level, target, the event's fields, the fields of every enclosing span
/// (innermost wins), and the OpenTelemetry `trace_id`/`span_id` when traces are exported.
struct JsonLines;

/// The default text line, led by the call's correlation id when none of the call's spans is on.
struct TextLines(Format);

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if ctx.event_scope().is_none()
            && let Some(correlation_id) = call_correlation_id()
        {
            write!(writer, "correlation_id={correlation_id} ")?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

tokio::task_local! {
    /// The correlation id of the call the task serves.
    static CALL_CORRELATION_ID: String;
}

/// Runs `call` as the call `correlation_id` names, so its log lines carry the id whatever spans are on.
pub async fn in_call<F: Future>(correlation_id: String, call: F) -> F::Output {
    CALL_CORRELATION_ID.scope(correlation_id, call).await
}

fn call_correlation_id() -> Option<String> {
    CALL_CORRELATION_ID.try_with(Clone::clone).ok()
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = serde_json::Map::new();
        line.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(fields.as_str())
                {
                    line.extend(fields);
                }
                innermost = Some(span.id());
            }
        }
        if innermost.is_none()
            && let Some(correlation_id) = call_correlation_id()
        {
            line.insert("correlation_id".into(), correlation_id.into());
        }
        event.record(&mut JsonVisitor(&mut line));
        if let Some(id) = innermost
            && let Some(context) =
                tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(&id, dispatch))
        {
            let span = context.span();
            let span_context = span.span_context();
            if span_context.is_valid() {
                line.insert("trace_id".into(), span_context.trace_id().to_string().into());
                line.insert("span_id".into(), span_context.span_id().to_string().into());
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_traceparent_names_the_span_to_link_to() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let span = linked_span("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
        assert_eq!(span.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(linked_span("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(linked_span("garbage").is_none());
    }

    #[test]
    fn the_http_endpoint_gets_the_signal_path() {
        assert_eq!(signal_url("http://collector:4318/", "traces"), "http://collector:4318/v1/traces");
        assert_eq!(signal_url("http://collector:4318", "metrics"), "http://collector:4318/v1/metrics");
    }
}
