//! Health, reflection, plain HTTP on the shared port, transport limits and graceful shutdown.

use aerobook_proto::v1::flight_service_client::FlightServiceClient;
use aerobook_tests::{Backend, TestApp, backend_tests, grpc_web, proxy::TcpSwitch, search_request};
use http_body_util::{BodyExt as _, Empty};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};
use tokio_stream::StreamExt as _;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

const CONTRACT_SERVICES: [&str; 5] = [
    "aerobook.v1.AuthService",
    "aerobook.v1.BookingService",
    "aerobook.v1.FlightService",
    "aerobook.v1.PaymentService",
    "aerobook.v1.WaitingRoomService",
];

backend_tests! {
    async fn health_reports_serving(app: TestApp) {
        let mut health = HealthClient::new(app.channel.clone());
        for service in ["", "aerobook.v1.FlightService"] {
            let response = health.check(HealthCheckRequest { service: service.into() }).await.expect("check").into_inner();
            assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
        }
        let unknown = health.check(HealthCheckRequest { service: "nope.Service".into() }).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    }

    async fn reflection_lists_every_service(app: TestApp) {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
        let mut client = ServerReflectionClient::new(app.channel.clone());
        let mut stream = client.server_reflection_info(tokio_stream::iter([request.clone()])).await.expect("v1").into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) = stream.next().await.expect("a response").expect("ok").message_response else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for expected in CONTRACT_SERVICES.iter().chain(&["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }

        // A client resolving a method's types, as grpcurl does.
        let symbol = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol("aerobook.v1.FlightService".into())),
        };
        let mut stream = client.server_reflection_info(tokio_stream::iter([symbol])).await.expect("v1").into_inner();
        let Some(MessageResponse::FileDescriptorResponse(files)) = stream.next().await.expect("a response").expect("ok").message_response else {
            panic!("expected descriptors");
        };
        assert!(!files.file_descriptor_proto.is_empty());

        // The older v1alpha protocol, still used by many tools.
        use tonic_reflection::pb::v1alpha as alpha;
        let mut old = alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        };
        let mut stream = old.server_reflection_info(tokio_stream::iter([request])).await.expect("v1alpha").into_inner();
        let response = stream.next().await.expect("a response").expect("ok");
        let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("expected a service list");
        };
        assert!(list.service.iter().any(|s| s.name == "aerobook.v1.FlightService"));
    }

    /// What grpcurl does: learn the types from reflection alone, then call with a message built from them.
    async fn a_reflection_only_client_can_search(app: TestApp) {
        let pool = descriptors_by_reflection(&app, "aerobook.v1.FlightService").await;
        let method = pool.get_service_by_name("aerobook.v1.FlightService").unwrap().methods().find(|m| m.name() == "SearchFlights").unwrap();
        let mut search = DynamicMessage::new(method.input());
        search.set_field_by_name("origin", Value::String("RUH".into()));
        search.set_field_by_name("destination", Value::String("JED".into()));
        search.set_field_by_name("departure_date", Value::String(aerobook_tests::riyadh_date(1)));
        search.set_field_by_name("passengers", Value::I32(1));
        let economy = pool.get_enum_by_name("aerobook.v1.CabinClass").unwrap().get_value_by_name("CABIN_CLASS_ECONOMY").unwrap();
        search.set_field_by_name("cabin", Value::EnumNumber(economy.number()));
        let response = grpc_web::call_raw(app.addr, "/aerobook.v1.FlightService/SearchFlights", &search.encode_to_vec(), grpc_web::Encoding::Binary, &[]).await;
        assert_eq!(response.grpc_status(), Some(0));
        let found = DynamicMessage::decode(method.output(), response.messages[0].clone()).unwrap();
        assert_eq!(found.get_field_by_name("flights").unwrap().as_list().unwrap().len(), 4);

        let rpc = descriptors_by_reflection(&app, "google.rpc.ErrorInfo").await;
        assert!(rpc.get_message_by_name("google.rpc.BadRequest").is_some(), "error details are decodable too");
    }

    async fn plain_http_shares_the_port(app: TestApp) {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Empty<bytes::Bytes>>();
        let response = client.get(format!("http://{}/healthz", app.addr).parse().unwrap()).await.expect("HTTP/1.1");
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(response.headers().contains_key("x-correlation-id"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"serving\n");
    }

    async fn unknown_methods_are_unimplemented_and_harmless(app: TestApp) {
        let response = grpc_web::call(app.addr, "/aerobook.v1.FlightService/NoSuchMethod", &search_request("RUH", "JED", "2030-01-01"), grpc_web::Encoding::Binary, &[]).await;
        assert_eq!(response.grpc_status(), Some(tonic::Code::Unimplemented as i32));
        assert_serving(&app).await;
    }
}

/// Fetches the file defining `symbol` and, file by file, everything it imports, as grpcurl does.
async fn descriptors_by_reflection(app: &TestApp, symbol: &str) -> DescriptorPool {
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    let mut wanted = vec![MessageRequest::FileContainingSymbol(symbol.to_owned())];
    while let Some(request) = wanted.pop() {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
        let mut stream = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
        let Some(MessageResponse::FileDescriptorResponse(response)) =
            stream.next().await.unwrap().unwrap().message_response
        else {
            panic!("expected descriptors");
        };
        for bytes in response.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            if files.iter().all(|known| known.name != file.name) {
                files.push(file);
            }
        }
        for file in &files {
            for dependency in &file.dependency {
                if files.iter().all(|known| known.name() != dependency) {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
        }
    }
    DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: files }).expect("a complete descriptor set")
}

pub async fn assert_serving(app: &TestApp) {
    let status = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("server still answers")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
}

/// An oversized message keeps the code gRPC gives it, an undecodable request is the caller's error
/// (`INVALID_ARGUMENT`), and the server stays healthy.
#[tokio::test]
async fn transport_failures_keep_grpc_codes_and_the_server_healthy() {
    let app = TestApp::spawn(Backend::Embedded, &[("AEROBOOK_MAX_MESSAGE_BYTES", "4096")]).await.unwrap();
    let mut oversized = search_request("RUH", "JED", "2030-01-01");
    oversized.page_token = "x".repeat(5000);
    let status = app.flights().search_flights(oversized).await.unwrap_err();
    assert!(matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{status:?}");

    let garbage = grpc_web::call_raw(
        app.addr,
        "/aerobook.v1.FlightService/SearchFlights",
        &[0xff, 0xff, 0xff],
        grpc_web::Encoding::Binary,
        &[],
    )
    .await;
    assert_eq!(garbage.grpc_status(), Some(tonic::Code::InvalidArgument as i32), "the caller's error: {garbage:?}");
    assert_serving(&app).await;
}

/// On shutdown, health turns NOT_SERVING for watchers before connections close, and the server stops.
#[tokio::test]
async fn shutdown_reports_not_serving_then_stops() {
    let mut app = TestApp::embedded().await;
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    app.trigger_shutdown();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);
    app.stopped().await.expect("clean stop");
    let after = HealthClient::new(app.channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
    assert!(after.is_err(), "no longer answering");
}

/// Every service accepts gzip and zstd request messages and compresses its answer with the encoding the
/// caller accepts.
#[tokio::test]
async fn gzip_and_zstd_are_accepted_and_offered() {
    use tonic::codec::CompressionEncoding::{Gzip, Zstd};
    let app = TestApp::embedded().await;
    for (sent, accepted, name) in [(Gzip, Zstd, "zstd"), (Zstd, Gzip, "gzip")] {
        let mut client =
            FlightServiceClient::new(app.channel.clone()).send_compressed(sent).accept_compressed(accepted);
        let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
        let response = client.search_flights(request).await.expect("compressed call");
        assert_eq!(response.metadata().get("grpc-encoding").and_then(|v| v.to_str().ok()), Some(name));
        assert_eq!(response.into_inner().flights.len(), 4);
    }
    let plain = FlightServiceClient::new(app.channel.clone())
        .search_flights(search_request("RUH", "JED", &aerobook_tests::riyadh_date(1)))
        .await
        .expect("plain call");
    assert!(plain.metadata().get("grpc-encoding").is_none(), "uncompressed unless the caller accepts it");
}

/// A server whose database is not ready listens anyway: health says NOT_SERVING and calls are answered
/// SERVICE_UNAVAILABLE (retryable, with the error contract) while it retries; once the database opens and is
/// migrated, the application takes over the same port and serves, without a restart.
#[tokio::test]
async fn a_server_is_not_serving_until_its_database_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let database_dir = dir.path().join("mounted-later");
    let settings = [
        ("AEROBOOK_DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", format!("sqlite://{}/aerobook.db?mode=rwc", database_dir.display())),
        ("AEROBOOK_SEED_DEMO_DATA", "true".into()),
        ("AEROBOOK_DEMO_DAYS", "3".into()),
        ("AEROBOOK_JWT_SECRET", aerobook_tests::JWT_SECRET.into()),
        ("AEROBOOK_SHUTDOWN_DRAIN_SECONDS", "0".into()),
    ];
    let config =
        aerobook_server::Config::from_source(&settings.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(aerobook_server::run_when_ready(config, listener, None, async {
        let _ = stopped.await;
    }));

    let early =
        tonic::transport::Channel::from_shared(url.clone()).unwrap().connect().await.expect("listening at once");
    let mut watch = HealthClient::new(early.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .expect("health answers while starting")
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    let refused = FlightServiceClient::new(early).search_flights(request.clone()).await.expect_err("not ready");
    let contract = aerobook_tests::ContractError::from_status(&refused);
    assert_eq!(
        (contract.code, contract.reason.as_str(), contract.retryable),
        (tonic::Code::Unavailable, "SERVICE_UNAVAILABLE", true)
    );
    assert!(!contract.correlation_id.is_empty());

    std::fs::create_dir_all(&database_dir).unwrap();
    // The starting server steps aside (its watch ends); the application answers on the same port.
    while let Ok(Some(update)) = watch.message().await {
        assert_eq!(update.status(), ServingStatus::NotServing, "no SERVING before the handover");
    }
    let ready = tonic::transport::Channel::from_shared(url).unwrap().connect().await.expect("same port");
    let mut watch = HealthClient::new(ready.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let flights = FlightServiceClient::new(ready).search_flights(request).await.expect("serving").into_inner().flights;
    assert_eq!(flights.len(), 4);

    drop(watch);
    stop.send(()).unwrap();
    server.await.unwrap().expect("clean stop");
}

/// Shutdown turns health NOT_SERVING first and keeps taking new connections and calls for the drain
/// delay, so a load balancer that has not yet seen the change loses nothing; then the listener closes.
#[tokio::test]
async fn shutdown_keeps_serving_for_the_drain_delay_after_not_serving() {
    let mut app = TestApp::spawn(Backend::Embedded, &[("AEROBOOK_SHUTDOWN_DRAIN_SECONDS", "3")]).await.unwrap();
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    app.trigger_shutdown();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);
    let url = format!("http://{}", app.addr);
    let late =
        tonic::transport::Channel::from_shared(url.clone()).unwrap().connect().await.expect("listener still open");
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    FlightServiceClient::new(late).search_flights(request).await.expect("served during the drain delay");

    app.stopped().await.expect("clean stop");
    assert!(tonic::transport::Channel::from_shared(url).unwrap().connect().await.is_err(), "listener closed");
}

/// Health follows the database on its own (a probe loop, not a query per health call): NOT_SERVING while
/// the database does not answer, SERVING again once it does, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_database_outage_and_recovers() {
    // Needs PostgreSQL behind a switch the test can cut; SQLite has no connection to lose.
    let Ok(url) = std::env::var("DATABASE_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set DATABASE_URL to a PostgreSQL database");
        eprintln!("skipped: DATABASE_URL is not set");
        return;
    };
    let (credentials, rest) = url.split_once('@').expect("DATABASE_URL names user@host:port/db");
    let (authority, database) = rest.split_once('/').expect("DATABASE_URL names a database");
    let target = tokio::net::lookup_host(authority).await.expect("database host").next().expect("an address");
    let switch = TcpSwitch::start(target).await;
    let via_switch = format!("{credentials}@{}/{database}", switch.addr());
    let Some(app) =
        TestApp::on_postgres(&[("DATABASE_URL", &via_switch), ("AEROBOOK_HEALTH_PROBE_INTERVAL_MS", "100")]).await
    else {
        return;
    };
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    switch.cut();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);
    let service = health.check(HealthCheckRequest { service: "aerobook.v1.BookingService".into() }).await.unwrap();
    assert_eq!(service.into_inner().status(), ServingStatus::NotServing, "every service follows");

    switch.restore();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    app.flights().search_flights(request).await.expect("serving again");
}

/// With Redis configured but unreachable, searches are answered from the database.
#[tokio::test]
async fn an_unreachable_redis_never_fails_a_read() {
    let app = TestApp::spawn(Backend::Embedded, &[("REDIS_URL", "redis://127.0.0.1:1")]).await.unwrap();
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    for _ in 0..2 {
        let flights = app.flights().search_flights(request.clone()).await.expect("search works").into_inner().flights;
        assert_eq!(flights.len(), 4);
    }
}

/// With every slot busy and the queue full, a call is shed at once (`SERVICE_UNAVAILABLE`, retryable, with
/// a retry delay) instead of waiting out its deadline behind a slow database; health is never shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_queue_are_shed_at_once() {
    // Needs PostgreSQL: its lock waits show that the one slot is taken, without guessing with a sleep.
    let settings = [("AEROBOOK_MAX_CONCURRENT_CALLS", "1"), ("AEROBOOK_MAX_WAITING_CALLS", "0")];
    let Some(app) = TestApp::on_postgres(&settings).await else { return };
    let blocker = app.block_writes().await;
    let mut flights = app.flights();
    let operator = app.bearer(aerobook_tests::Role::Operator);
    let slow = tokio::spawn(async move {
        let flight = aerobook_tests::create_flight_request("XY971", "RUH", "JED", 2);
        let headers = [("idempotency-key", aerobook_tests::idempotency_key()), ("authorization", operator)];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        flights.create_flight(aerobook_tests::request(flight, &headers)).await
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !app.server_waits_for_a_lock().await {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the slow call holds the only slot");

    let started = std::time::Instant::now();
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    let shed = app.flights().search_flights(request).await.expect_err("shed");
    let error = aerobook_tests::ContractError::from_status(&shed);
    assert_eq!((shed.code(), error.reason.as_str()), (tonic::Code::Unavailable, "SERVICE_UNAVAILABLE"));
    assert!(error.retryable && started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    let mut health = HealthClient::new(app.channel.clone());
    let serving = health.check(HealthCheckRequest { service: String::new() }).await.expect("health is never shed");
    assert_eq!(serving.into_inner().status(), ServingStatus::Serving);

    blocker.rollback().await.unwrap();
    slow.await.unwrap().expect("the slow call completes");
}

/// A call in flight when shutdown starts still completes, and then the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_calls_in_flight() {
    // Needs PostgreSQL: its lock waits are visible in pg_stat_activity, so the test knows the call is in
    // flight without guessing with a sleep.
    let Some(mut app) = TestApp::on_postgres(&[]).await else { return };
    let db = app.database().await;
    let blocker = db.begin().await.unwrap();
    blocker.execute_unprepared("LOCK TABLE flights IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let mut flights = app.flights();
    let operator = app.bearer(aerobook_tests::Role::Operator);
    let in_flight = tokio::spawn(async move {
        let flight = aerobook_tests::create_flight_request("XY970", "RUH", "JED", 2);
        flights
            .create_flight(aerobook_tests::request(
                flight,
                &[("idempotency-key", &aerobook_tests::idempotency_key()), ("authorization", &operator)],
            ))
            .await
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !app.server_waits_for_a_lock().await {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the call reaches the database");

    app.trigger_shutdown();
    blocker.rollback().await.unwrap();
    let created = in_flight.await.unwrap().expect("the in-flight call completes during the drain");
    assert_eq!(created.into_inner().flight_number, "XY970");
    app.stopped().await.expect("clean stop once drained");
}

backend_tests! {
    /// Seeding again changes nothing, and a flight an operator created in a seeded slot is kept.
    async fn reseeding_is_idempotent_and_keeps_operator_flights(app: TestApp) {
        let store = app.store().await;
        let db = store.conn().clone();
        let count = || async {
            let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM flights")).await.unwrap().unwrap();
            row.try_get::<i64>("", "n").unwrap()
        };
        let seeded = count().await;
        let search = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
        let slot = app.flights().search_flights(search).await.unwrap().into_inner().flights.remove(1);
        db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), "DELETE FROM flight_cabins WHERE flight_id = $1", [uuid::Uuid::parse_str(&slot.id).unwrap().into()])).await.unwrap();
        db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), "DELETE FROM flights WHERE id = $1", [uuid::Uuid::parse_str(&slot.id).unwrap().into()])).await.unwrap();
        let mut replacement = aerobook_tests::create_flight_request(&slot.flight_number, "RUH", "JED", 1);
        replacement.departs_at = slot.departs_at;
        replacement.arrives_at = slot.arrives_at;
        let operator = app.flights()
            .create_flight(aerobook_tests::request(replacement, &[("idempotency-key", &aerobook_tests::idempotency_key()), ("authorization", &app.bearer(aerobook_tests::Role::Operator))]))
            .await
            .unwrap()
            .into_inner();

        aerobook_server::seed_demo_data(&store, chrono::Utc::now(), 3).await.expect("reseeding succeeds");
        assert_eq!(count().await, seeded, "nothing seeded twice");
        let kept = app.flights().get_flight(pb_get(&operator.id)).await.unwrap().into_inner();
        assert_eq!(kept, operator, "the operator's flight and cabins are untouched");
    }
}

fn pb_get(id: &str) -> aerobook_proto::v1::GetFlightRequest {
    aerobook_proto::v1::GetFlightRequest { flight_id: id.to_owned() }
}
