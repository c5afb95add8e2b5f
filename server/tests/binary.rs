//! The server binary as operators run it, configured by its environment:
//! - with telemetry on, its spans and metrics reach a real OTLP receiver (a tonic server implementing the
//!   collector's trace and metrics services), Prometheus scrapes the operator address, and its JSON logs tie
//!   each line to the call and its trace, without secrets;
//! - (customers' emails over TLS are `mail.rs`; an instance killed under load is `crash.rs`.)
//!
//! Each test starts the binary on the embedded defaults (its own data directory, port 0) and learns its
//! addresses from its own log lines.

use std::net::SocketAddr;

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use aerobook_proto::v1::{
    self as pb, auth_service_client::AuthServiceClient, flight_service_client::FlightServiceClient,
};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::ExportMetricsServiceResponse,
        trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    },
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind},
};
use support::{
    PATIENCE, Server, http_get,
    otlp::{Receiver, attribute, names, string_attribute},
    search_request,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tonic::Request;

/// Every wait below ends on what it waits for; this only bounds a broken run.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const WEB_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// `message` sent as a call of the caller's trace ([`TRACE_ID`], from its span [`PARENT_SPAN_ID`]).
fn traced<T>(message: T, correlation_id: &str) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01").parse().unwrap());
    metadata.insert("x-correlation-id", correlation_id.parse().unwrap());
    request
}

#[tokio::test]
async fn the_spans_of_a_call_reach_an_otlp_receiver_in_the_callers_trace() {
    let mut receiver = Receiver::start().await;
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let channel = server.channel().await;
    let mut flights = FlightServiceClient::new(channel.clone());
    flights.search_flights(traced(search_request(), "trace-test-search")).await.expect("search");
    let register = pb::RegisterRequest {
        email: "traced@example.com".into(),
        password: "Traced-Password-123".into(),
        full_name: "Traced Caller".into(),
    };
    AuthServiceClient::new(channel).register(traced(register, "trace-test-register")).await.expect("register");
    let mut refused = Request::new(pb::GetFlightRequest { flight_id: "not-a-uuid".into() });
    refused.metadata_mut().insert("x-correlation-id", "trace-test-refused".parse().unwrap());
    let status = flights.get_flight(refused).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // A browser's gRPC-web call (HTTP/1.1) carries the trace context in its headers the same way.
    let web_status = grpc_web_search(server.addr, &format!("00-{WEB_TRACE_ID}-{PARENT_SPAN_ID}-01")).await;
    assert_eq!(web_status, 200);

    let rpc_name = "aerobook.v1.FlightService/SearchFlights";
    let spans = receiver
        .spans_until(|spans| {
            let names = names(spans);
            spans.iter().any(|(_, span)| span.name == rpc_name && hex(&span.trace_id) == WEB_TRACE_ID)
                && names.contains(&rpc_name)
                && names.contains(&"aerobook.v1.AuthService/Register")
                && names.contains(&"aerobook.v1.FlightService/GetFlight")
                && names.contains(&"db accounts.insert_account")
        })
        .await;

    let (resource, call) = spans
        .iter()
        .find(|(_, span)| span.name == rpc_name && hex(&span.trace_id) == TRACE_ID)
        .expect("the call's span");
    assert_eq!(string_attribute(resource, "service.name"), Some("aerobook-server"));
    assert_eq!(hex(&call.trace_id), TRACE_ID, "continues the caller's trace");
    assert_eq!(hex(&call.parent_span_id), PARENT_SPAN_ID, "child of the caller's span");
    assert_eq!(call.kind, SpanKind::Server as i32);
    assert_eq!(string_attribute(&call.attributes, "rpc.system"), Some("grpc"));
    assert_eq!(string_attribute(&call.attributes, "rpc.service"), Some("aerobook.v1.FlightService"));
    assert_eq!(string_attribute(&call.attributes, "rpc.method"), Some("SearchFlights"));
    assert_eq!(attribute(&call.attributes, "rpc.grpc.status_code"), Some(&Value::IntValue(0)));
    assert_eq!(string_attribute(&call.attributes, "correlation_id"), Some("trace-test-search"));

    // Use cases and queries are spans of the caller's trace, each with its call's correlation id.
    let inner: Vec<&Span> = spans
        .iter()
        .map(|(_, span)| span)
        .filter(|span| hex(&span.trace_id) == TRACE_ID && span.parent_span_id != call.parent_span_id)
        .collect();
    let use_case = inner.iter().find(|span| span.parent_span_id == call.span_id).expect("the use case under the call");
    assert_eq!(string_attribute(&use_case.attributes, "correlation_id"), Some("trace-test-search"));
    let query = inner.iter().find(|span| span.name == "db accounts.insert_account").expect("a query span");
    assert_eq!(query.kind, SpanKind::Client as i32);
    assert_eq!(string_attribute(&query.attributes, "correlation_id"), Some("trace-test-register"));
    for span in &inner {
        let id = string_attribute(&span.attributes, "correlation_id");
        assert!(matches!(id, Some("trace-test-search" | "trace-test-register")), "{}: {id:?}", span.name);
    }

    let (_, refused) =
        spans.iter().find(|(_, span)| span.name == "aerobook.v1.FlightService/GetFlight").expect("refused call's span");
    assert_eq!(attribute(&refused.attributes, "rpc.grpc.status_code"), Some(&Value::IntValue(3)));
    assert_eq!(string_attribute(&refused.attributes, "error_code"), Some("VALIDATION_ERROR"));
    assert_eq!(string_attribute(&refused.attributes, "correlation_id"), Some("trace-test-refused"));

    // Every JSON log line of the call carries its correlation id and its trace.
    let logs = server.stop().await;
    let answered = logs
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "call answered" && line["correlation_id"] == "trace-test-search")
        .expect("the call's log line");
    assert_eq!(answered["trace_id"], TRACE_ID);
    assert_eq!(answered["span_id"].as_str().map(str::len), Some(16));
    assert_eq!(answered["rpc.method"], "SearchFlights");
}

/// OTLP/gRPC over TLS: an `https://` collector whose certificate is signed by the CA in
/// `OTEL_EXPORTER_OTLP_CERTIFICATE` gets the spans.
#[tokio::test]
async fn spans_reach_a_collector_over_tls() {
    let (mut receiver, ca_pem) = Receiver::start_tls().await;
    let ca = tempfile::NamedTempFile::new().expect("CA file");
    std::fs::write(ca.path(), ca_pem).expect("write CA");
    let ca_path = ca.path().display().to_string();
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_path.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let mut flights = FlightServiceClient::new(server.channel().await);
    flights.search_flights(traced(search_request(), "tls-export")).await.expect("search");
    let rpc_name = "aerobook.v1.FlightService/SearchFlights";
    let spans = receiver.spans_until(|spans| names(spans).contains(&rpc_name)).await;
    let (_, call) = spans.iter().find(|(_, span)| span.name == rpc_name).expect("the call's span");
    assert_eq!(string_attribute(&call.attributes, "correlation_id"), Some("tls-export"));
    server.stop().await;
}

/// Spans follow `AEROBOOK_TRACE_FILTER`, not `RUST_LOG`: at the usual production log level (`warn`) every
/// call's server span and its children (the use case, each query) are still exported. (The start-up line
/// stays at info so the test can read the bound address from the log.)
#[tokio::test]
async fn spans_are_exported_whatever_the_log_level() {
    let mut receiver = Receiver::start().await;
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("RUST_LOG", "warn,aerobook_server::startup=info"),
    ])
    .await;
    let register = pb::RegisterRequest {
        email: "quiet@example.com".into(),
        password: "Quiet-Password-123".into(),
        full_name: "Quiet Caller".into(),
    };
    let mut auth = AuthServiceClient::new(server.channel().await);
    let tokens = auth.register(traced(register, "quiet-logs")).await.expect("register").into_inner();
    // A reused refresh token is logged as a warning: at this level no span of the call is on, the line
    // still names the call.
    let refresh = || pb::RefreshTokenRequest { refresh_token: tokens.refresh_token.clone() };
    auth.refresh_token(traced(refresh(), "first-refresh")).await.expect("rotated");
    auth.refresh_token(traced(refresh(), "reused-refresh")).await.expect_err("reused");
    let spans = receiver
        .spans_until(|spans| {
            let names = names(spans);
            names.contains(&"aerobook.v1.AuthService/Register") && names.contains(&"db accounts.insert_account")
        })
        .await;
    let call = spans.iter().find(|(_, span)| span.name == "aerobook.v1.AuthService/Register").expect("the call");
    assert_eq!(string_attribute(&call.1.attributes, "correlation_id"), Some("quiet-logs"));
    let logs = server.stop().await;
    assert!(
        !logs.iter().any(|line| line.contains("\"level\":\"INFO\"") && line.contains("call answered")),
        "no info lines"
    );
    let reused = logs
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["level"] == "WARN" && line["message"].as_str().is_some_and(|m| m.contains("reused")))
        .expect("the reuse warning");
    assert_eq!(reused["correlation_id"], "reused-refresh");
}

/// No password, token or signing key sent to or by the server reaches a trace: every exported span of a
/// whole session (its name, every attribute, event and status message) is searched for each of them, as is
/// every error message the caller got.
#[tokio::test]
async fn no_span_attribute_or_error_message_carries_a_secret() {
    let mut receiver = Receiver::start().await;
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let (password, wrong_password) = ("Span-Secret-Password-1", "Span-Wrong-Guess-22");
    let mut auth = AuthServiceClient::new(server.channel().await);
    let email = "spans@example.com";
    let register =
        pb::RegisterRequest { email: email.into(), password: password.into(), full_name: "Span Reader".into() };
    let registered = auth.register(register).await.expect("register").into_inner();
    let signed_in = auth
        .login(pb::LoginRequest { email: email.into(), password: password.into() })
        .await
        .expect("login")
        .into_inner();
    let refused = auth
        .login(pb::LoginRequest { email: email.into(), password: wrong_password.into() })
        .await
        .expect_err("a wrong password");
    let mut me = Request::new(pb::GetMeRequest {});
    me.metadata_mut().insert("authorization", format!("Bearer {}", signed_in.access_token).parse().unwrap());
    auth.get_me(me).await.expect("me");
    let rotated = auth
        .refresh_token(pb::RefreshTokenRequest { refresh_token: signed_in.refresh_token.clone() })
        .await
        .expect("refresh")
        .into_inner();
    let reused = auth
        .refresh_token(pb::RefreshTokenRequest { refresh_token: signed_in.refresh_token.clone() })
        .await
        .expect_err("a rotated token");
    auth.logout(pb::LogoutRequest { refresh_token: rotated.refresh_token.clone() }).await.expect("logout");

    let spans = receiver.spans_until(|spans| names(spans).contains(&"aerobook.v1.AuthService/Logout")).await;
    let exported = format!("{spans:?}");
    assert!(exported.contains("aerobook.v1.AuthService/Login"), "the session was traced at all");
    let errors = [refused, reused].map(|status| format!("{status:?}"));
    for secret in [
        password,
        wrong_password,
        &registered.access_token,
        &registered.refresh_token,
        &signed_in.access_token,
        &signed_in.refresh_token,
        &rotated.access_token,
        &rotated.refresh_token,
        support::JWT_SECRET,
    ] {
        assert!(!exported.contains(secret), "a secret reached a span: {secret}");
        assert!(!errors.iter().any(|error| error.contains(secret)), "a secret reached an error: {secret}");
    }
    server.stop().await;
}

/// The same spans over OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`): a receiver taking
/// protobuf posts on `/v1/traces` gets them.
#[tokio::test]
async fn spans_also_reach_an_otlp_http_receiver() {
    use axum::{Router, body::Bytes, extract::State, routing::post};
    use prost::Message as _;

    let (traces_tx, mut traces) = mpsc::unbounded_channel::<ExportTraceServiceRequest>();
    let receive = async |State(traces): State<mpsc::UnboundedSender<ExportTraceServiceRequest>>, body: Bytes| {
        if let Ok(export) = ExportTraceServiceRequest::decode(body) {
            let _ = traces.send(export);
        }
        ExportTraceServiceResponse { partial_success: None }.encode_to_vec()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(
            listener,
            Router::new()
                .route("/v1/traces", post(receive))
                // Metrics are exported on the same endpoint; this test reads only the spans.
                .route(
                    "/v1/metrics",
                    post(async || ExportMetricsServiceResponse { partial_success: None }.encode_to_vec()),
                )
                .with_state(traces_tx),
        )
        .into_future(),
    );
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let mut flights = FlightServiceClient::new(server.channel().await);
    flights.search_flights(traced(search_request(), "http-export")).await.expect("search");
    let arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            let export = traces.recv().await.expect("receiver open");
            let spans = export.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
            if let Some(span) = spans.into_iter().find(|span| span.name == "aerobook.v1.FlightService/SearchFlights") {
                return span;
            }
        }
    })
    .await
    .expect("the call's span arrives over OTLP/HTTP");
    assert_eq!(hex(&arrived.trace_id), TRACE_ID);
    assert_eq!(string_attribute(&arrived.attributes, "correlation_id"), Some("http-export"));
    server.stop().await;
}

/// A gRPC-web `SearchFlights` over HTTP/1.1 with `traceparent`; returns the HTTP status.
async fn grpc_web_search(addr: SocketAddr, traceparent: &str) -> u16 {
    use prost::Message as _;
    let message = search_request().encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST /aerobook.v1.FlightService/SearchFlights HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nTraceparent: {traceparent}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(&body).await.expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn metrics_are_scraped_on_the_operator_address_and_pushed_over_otlp() {
    let mut receiver = Receiver::start().await;
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ("AEROBOOK_METRICS_ADDR", "127.0.0.1:0"),
    ])
    .await;
    let mut flights = FlightServiceClient::new(server.channel().await);
    flights.search_flights(search_request()).await.expect("search");
    flights.search_flights(search_request()).await.expect("search again (from the cache)");
    flights.get_flight(pb::GetFlightRequest { flight_id: "not-a-uuid".into() }).await.expect_err("refused");

    let metrics_addr = server.metrics_addr.expect("metrics address");
    let (status, text) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    let has = |prefix: &str, parts: &[&str]| {
        text.lines().any(|line| line.starts_with(prefix) && parts.iter().all(|part| line.contains(part)))
    };
    assert!(
        has(
            "rpc_server_call_duration_seconds_count{",
            &["rpc_method=\"SearchFlights\"", "rpc_grpc_status_code=\"0\"", "} 2"]
        ),
        "{text}"
    );
    assert!(has("rpc_server_call_duration_seconds_bucket{", &["rpc_method=\"GetFlight\"", "le=\"0.5\""]), "{text}");
    assert!(
        has(
            "aerobook_rpc_server_errors_total{",
            &["rpc_method=\"GetFlight\"", "error_code=\"VALIDATION_ERROR\"", "} 1"]
        ),
        "{text}"
    );
    assert!(has("aerobook_cache_lookups_total{", &["result=\"hit\"", "} 1"]), "{text}");
    assert!(has("aerobook_cache_lookups_total{", &["result=\"miss\"", "} 1"]), "{text}");
    assert!(has("aerobook_health_serving{", &["} 1"]), "{text}");
    // The public port does not serve metrics (it answers as gRPC does for an unknown path).
    let (_, public) = http_get(server.addr, "/metrics").await;
    assert!(!public.contains("rpc_server_call_duration"), "{public}");

    receiver.metric_arrives("rpc.server.call.duration").await;
    server.stop().await;
}
