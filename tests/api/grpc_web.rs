//! Browsers: gRPC-web (binary and text) over HTTP/1.1 on the same port, and CORS.

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    ContractError, TestApp, backend_tests,
    grpc_web::{self, Encoding},
    riyadh_date, search_request,
};
use http_body_util::Empty;
use prost::Message as _;

const SEARCH: &str = "/aerobook.v1.FlightService/SearchFlights";
const ORIGIN: &str = "http://localhost:5173";

backend_tests! {
    async fn grpc_web_binary_and_text_answer_like_grpc(app: TestApp) {
        let search = search_request("RUH", "JED", &riyadh_date(1));
        let expected = app.flights().search_flights(search.clone()).await.unwrap().into_inner();
        let versions = [http::Version::HTTP_11, http::Version::HTTP_2];
        for (version, encoding) in versions.into_iter().flat_map(|v| [(v, Encoding::Binary), (v, Encoding::Text)]) {
            let response = grpc_web::call_over(version, app.addr, SEARCH, &search.encode_to_vec(), encoding, &[("origin", ORIGIN)]).await;
            assert_eq!(response.http_status, http::StatusCode::OK);
            assert_eq!(response.grpc_status(), Some(0), "{version:?} {encoding:?}: {response:?}");
            assert_eq!(response.decode::<pb::SearchFlightsResponse>(), expected, "{version:?} {encoding:?}");
            assert_eq!(response.headers.get("access-control-allow-origin").unwrap(), ORIGIN);
            let exposed = header_list(&response.headers, "access-control-expose-headers");
            for header in ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-correlation-id", "idempotent-replayed"] {
                assert!(exposed.iter().any(|h| h == header), "{header} not exposed: {exposed:?}");
            }
            assert!(response.headers.contains_key("x-correlation-id"));
        }
    }

    async fn grpc_web_errors_carry_the_same_contract(app: TestApp) {
        let mut search = search_request("RUH", "JED", &riyadh_date(1));
        search.passengers = 12;
        for encoding in [Encoding::Binary, Encoding::Text] {
            let response = grpc_web::call(app.addr, SEARCH, &search, encoding, &[("x-correlation-id", "browser-1")]).await;
            let error = ContractError::from_status(&response.status());
            error.assert_validation(&["passengers"]);
            assert_eq!(error.correlation_id, "browser-1");
        }
    }

    async fn cors_preflight_allows_configured_origins_only(app: TestApp) {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let preflight = |origin: &str| {
            http::Request::options(format!("http://{}{SEARCH}", app.addr))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,x-grpc-web,authorization,idempotency-key,x-correlation-id")
                .body(Empty::new())
                .unwrap()
        };
        for allowed in [ORIGIN, "http://127.0.0.1:8080"] {
            let response = client.request(preflight(allowed)).await.unwrap();
            assert!(response.status().is_success());
            let headers = response.headers();
            assert_eq!(headers.get("access-control-allow-origin").unwrap(), allowed, "the origin itself, never *");
            assert_eq!(headers.get("access-control-allow-credentials").unwrap(), "true");
            let allowed_headers = header_list(headers, "access-control-allow-headers");
            for header in ["authorization", "idempotency-key", "x-correlation-id", "x-grpc-web", "content-type", "grpc-timeout", "x-user-agent", "traceparent", "tracestate"] {
                assert!(allowed_headers.iter().any(|h| h == header), "{header} not allowed: {allowed_headers:?}");
            }
        }
        for denied in ["https://evil.example", "http://localhost.evil.example:5173"] {
            let response = client.request(preflight(denied)).await.unwrap();
            assert!(response.headers().get("access-control-allow-origin").is_none(), "{denied}");
        }
        let call = grpc_web::call(app.addr, SEARCH, &search_request("RUH", "JED", &riyadh_date(1)), Encoding::Binary, &[("origin", "https://evil.example")]).await;
        assert!(call.headers.get("access-control-allow-origin").is_none(), "a browser would withhold the response");
    }
}

/// The comma-separated tokens of a header, so "grpc-status" is not found inside "grpc-status-details-bin".
fn header_list(headers: &http::HeaderMap, name: &str) -> Vec<String> {
    let value = headers.get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap();
    value.split(',').map(|token| token.trim().to_ascii_lowercase()).collect()
}

/// Refusals by a layer (before any service) reach browsers in the same shape.
#[tokio::test]
async fn layer_refusals_reach_browsers_with_the_contract() {
    let app = TestApp::embedded().await;
    let flight = aerobook_tests::create_flight_request("XY960", "RUH", "JED", 2);
    let path = "/aerobook.v1.FlightService/CreateFlight";
    let operator = app.bearer(aerobook_tests::Role::Operator);
    for encoding in [Encoding::Binary, Encoding::Text] {
        let headers = [("origin", ORIGIN), ("x-correlation-id", "web-2"), ("authorization", operator.as_str())];
        let response = grpc_web::call(app.addr, path, &flight, encoding, &headers).await;
        let error = ContractError::from_status(&response.status());
        error.assert_validation(&["idempotency-key"]);
        assert_eq!(error.correlation_id, "web-2");
        assert_eq!(response.headers.get("access-control-allow-origin").unwrap(), ORIGIN);
    }
}

/// The allowed origins come from configuration.
#[tokio::test]
async fn configured_origins_replace_the_development_default() {
    let app = TestApp::spawn(
        aerobook_tests::Backend::Embedded,
        &[("AEROBOOK_CORS_ORIGINS", "https://book.aerobook.example")],
    )
    .await
    .unwrap();
    let search = search_request("RUH", "JED", &riyadh_date(1));
    let allowed =
        grpc_web::call(app.addr, SEARCH, &search, Encoding::Binary, &[("origin", "https://book.aerobook.example")])
            .await;
    assert_eq!(allowed.headers.get("access-control-allow-origin").unwrap(), "https://book.aerobook.example");
    let local = grpc_web::call(app.addr, SEARCH, &search, Encoding::Binary, &[("origin", ORIGIN)]).await;
    assert!(local.headers.get("access-control-allow-origin").is_none());
}
