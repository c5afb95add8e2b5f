//! An OTLP/gRPC receiver (a tonic server implementing the collector's trace and metrics services) that the
//! server binary exports to, and the helpers that read what it received.

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::Span,
};
use tokio::{net::TcpListener, sync::mpsc};
use tonic::{Request, Response, Status};

use super::PATIENCE;

/// An OTLP/gRPC receiver: what it is sent arrives on its channels.
pub struct Receiver {
    pub endpoint: String,
    traces: mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    metrics: mpsc::UnboundedReceiver<ExportMetricsServiceRequest>,
}

#[derive(Clone)]
struct Collector {
    traces: mpsc::UnboundedSender<ExportTraceServiceRequest>,
    metrics: mpsc::UnboundedSender<ExportMetricsServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.traces.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let _ = self.metrics.send(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// Over TLS, with a certificate for `localhost` signed by itself; returns its PEM for clients to trust.
    pub async fn start_tls() -> (Self, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let cert_pem = certified.cert.pem();
        let identity = tonic::transport::Identity::from_pem(&cert_pem, certified.signing_key.serialize_pem());
        (Self::serve(Some(identity)).await, cert_pem)
    }

    async fn serve(tls: Option<tonic::transport::Identity>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let port = listener.local_addr().expect("receiver address").port();
        let (traces_tx, traces) = mpsc::unbounded_channel();
        let (metrics_tx, metrics) = mpsc::unbounded_channel();
        let collector = Collector { traces: traces_tx, metrics: metrics_tx };
        let mut server = tonic::transport::Server::builder();
        let endpoint = match tls {
            Some(identity) => {
                server = server
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                    .expect("TLS configuration");
                format!("https://localhost:{port}")
            }
            None => format!("http://127.0.0.1:{port}"),
        };
        tokio::spawn(
            server
                .add_service(TraceServiceServer::new(collector.clone()))
                .add_service(MetricsServiceServer::new(collector))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Self { endpoint, traces, metrics }
    }

    /// Spans received until `found` says the wanted ones are among them.
    pub async fn spans_until(
        &mut self,
        found: impl Fn(&[(Vec<KeyValue>, Span)]) -> bool,
    ) -> Vec<(Vec<KeyValue>, Span)> {
        let mut spans = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while !found(&spans) {
                let export = self.traces.recv().await.expect("receiver open");
                for resource_spans in export.resource_spans {
                    let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
                    for scope in resource_spans.scope_spans {
                        spans.extend(scope.spans.into_iter().map(|span| (resource.clone(), span)));
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("spans did not arrive; got {:?}", names(&spans)));
        spans
    }

    /// Metric names received until `wanted` is among them.
    pub async fn metric_arrives(&mut self, wanted: &str) {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let export = self.metrics.recv().await.expect("receiver open");
                let names = export
                    .resource_metrics
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                    .map(|m| m.name.as_str());
                if names.into_iter().any(|name| name == wanted) {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("metric {wanted} did not arrive over OTLP"));
    }
}

pub fn names(spans: &[(Vec<KeyValue>, Span)]) -> Vec<&str> {
    spans.iter().map(|(_, span)| span.name.as_str()).collect()
}

pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

pub fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key) {
        Some(Value::StringValue(value)) => Some(value),
        _ => None,
    }
}
