//! The error contract and correlation ids, over every validation failure of the read RPCs.

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    Backend, ContractError, TestApp, backend_tests, create_flight_request, idempotency_key, request, riyadh_date,
    search_request,
};
use sea_orm::{ConnectionTrait as _, Statement};

use crate::platform::assert_serving;

/// A search with one thing wrong, and the field the error must name.
fn bad_searches() -> Vec<(pb::SearchFlightsRequest, &'static str)> {
    let good = search_request("RUH", "JED", &riyadh_date(1));
    let with = |change: fn(&mut pb::SearchFlightsRequest)| {
        let mut request = good.clone();
        change(&mut request);
        request
    };
    vec![
        (with(|r| r.origin = String::new()), "origin"),
        (with(|r| r.origin = "ruh".into()), "origin"),
        (with(|r| r.origin = "RUHX".into()), "origin"),
        (with(|r| r.destination = "J3D".into()), "destination"),
        (with(|r| r.destination = "RUH".into()), "destination"),
        (with(|r| r.departure_date = String::new()), "departure_date"),
        (with(|r| r.departure_date = "2026-02-30".into()), "departure_date"),
        (with(|r| r.departure_date = "01/12/2026".into()), "departure_date"),
        (with(|r| r.departure_date = "2000-01-01".into()), "departure_date"),
        (with(|r| r.departure_date = "2999-01-01".into()), "departure_date"),
        (with(|r| r.passengers = 0), "passengers"),
        (with(|r| r.passengers = 10), "passengers"),
        (with(|r| r.passengers = -1), "passengers"),
        (with(|r| r.cabin = 42), "cabin"),
        (with(|r| r.page_size = 101), "page_size"),
        (with(|r| r.page_size = -5), "page_size"),
        (with(|r| r.page_token = "not-a-token".into()), "page_token"),
    ]
}

backend_tests! {
    async fn every_bad_search_names_its_field(app: TestApp) {
        for (search, field) in bad_searches() {
            let status = app.flights().search_flights(search.clone()).await.unwrap_err();
            let error = ContractError::from_status(&status);
            assert_eq!(error.fields, [field], "{search:?}");
            error.assert_validation(&[field]);
        }
        assert_serving(&app).await;
    }

    async fn bad_ids_and_cabins_are_validation_errors(app: TestApp) {
        for id in ["", "42", "not-a-uuid", "0192f3c45b6a7c8d9e0f1a2b3c4d5e6f"] {
            let status = app.flights().get_flight(pb::GetFlightRequest { flight_id: id.into() }).await.unwrap_err();
            ContractError::from_status(&status).assert_validation(&["flight_id"]);
            let status = app.flights().get_seat_map(pb::GetSeatMapRequest { flight_id: id.into(), cabin: 0 }).await.unwrap_err();
            ContractError::from_status(&status).assert_validation(&["flight_id"]);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let status = app.flights().get_seat_map(pb::GetSeatMapRequest { flight_id: id, cabin: 9 }).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["cabin"]);
    }

    async fn a_client_correlation_id_is_echoed_on_success_and_in_errors(app: TestApp) {
        let good = search_request("RUH", "JED", &riyadh_date(1));
        let response = app.flights().search_flights(request(good.clone(), &[("x-correlation-id", "web:checkout.42_a-b")])).await.unwrap();
        assert_eq!(response.metadata().get("x-correlation-id").unwrap(), "web:checkout.42_a-b");

        let mut bad = good.clone();
        bad.passengers = 0;
        let status = app.flights().search_flights(request(bad.clone(), &[("x-correlation-id", "support-ticket-7")])).await.unwrap_err();
        assert_eq!(status.metadata().get("x-correlation-id").unwrap(), "support-ticket-7");
        let error = ContractError::from_status(&status);
        assert_eq!((error.correlation_id.as_str(), error.request_id.as_str()), ("support-ticket-7", "support-ticket-7"));

        let response = app.flights().search_flights(request(good.clone(), &[("x-request-id", "from-the-proxy")])).await.unwrap();
        assert_eq!(response.metadata().get("x-correlation-id").unwrap(), "from-the-proxy");
    }

    async fn malformed_or_missing_correlation_ids_are_replaced(app: TestApp) {
        let good = search_request("RUH", "JED", &riyadh_date(1));
        let too_long = "a".repeat(129);
        for headers in [vec![], vec![("x-correlation-id", "has spaces in it")], vec![("x-correlation-id", too_long.as_str())]] {
            let response = app.flights().search_flights(request(good.clone(), &headers)).await.unwrap();
            let id = response.metadata().get("x-correlation-id").unwrap().to_str().unwrap();
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7, "{headers:?}");
        }
        let mut bad = good;
        bad.passengers = 0;
        let status = app.flights().search_flights(bad).await.unwrap_err();
        let header = status.metadata().get("x-correlation-id").unwrap().to_str().unwrap().to_owned();
        let error = ContractError::from_status(&status);
        assert_eq!(error.correlation_id, header);
        assert!(uuid::Uuid::parse_str(&header).is_ok());
    }

    async fn two_calls_never_share_a_generated_id(app: TestApp) {
        let good = search_request("RUH", "JED", &riyadh_date(1));
        let first = app.flights().search_flights(good.clone()).await.unwrap();
        let second = app.flights().search_flights(good).await.unwrap();
        assert_ne!(first.metadata().get("x-correlation-id"), second.metadata().get("x-correlation-id"));
    }
}

backend_tests! {
    /// A failure inside the server is INTERNAL_ERROR with a generic message: no SQL, no table names.
    async fn internal_failures_do_not_leak_their_cause(app: TestApp) {
        let found = app.flights().search_flights(search_request("RUH", "JED", &riyadh_date(1))).await.unwrap().into_inner();
        app.database().await.execute_unprepared("DROP TABLE flight_cabins").await.unwrap();
        let status = app.flights().get_flight(pb::GetFlightRequest { flight_id: found.flights[0].id.clone() }).await.unwrap_err();
        let error = ContractError::from_status(&status);
        assert_eq!((error.code, error.reason.as_str(), error.retryable), (tonic::Code::Internal, "INTERNAL_ERROR", false));
        let message = error.message.to_lowercase();
        for leak in ["flight_cabins", "table", "sql", "select", "no such", "does not exist"] {
            assert!(!message.contains(leak), "{leak:?} leaked in {message:?}");
        }
        assert!(!error.correlation_id.is_empty());
    }
}

/// A call stuck behind a database lock gets the server's deadline as a retryable DEADLINE_EXCEEDED, and
/// what it was doing is rolled back.
async fn deadline_cuts_off_a_blocked_call(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, &[("AEROBOOK_REQUEST_TIMEOUT_MS", "300")]).await else { return };
    let db = app.database().await;
    let count = "SELECT COUNT(*) AS n FROM flights";
    let flights_before =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), count)).await.unwrap().unwrap();
    let flights_before: i64 = flights_before.try_get("", "n").unwrap();

    let blocker = app.block_writes().await;
    let flight = create_flight_request("XY950", "RUH", "JED", 2);
    let status = app
        .flights()
        .create_flight(request(
            flight,
            &[("idempotency-key", &idempotency_key()), ("authorization", &app.bearer(aerobook_tests::Role::Operator))],
        ))
        .await
        .unwrap_err();
    blocker.rollback().await.unwrap();

    let error = ContractError::from_status(&status);
    assert_eq!(
        (error.code, error.reason.as_str(), error.retryable),
        (tonic::Code::DeadlineExceeded, "DEADLINE_EXCEEDED", true)
    );
    assert!(error.has_retry_info);
    let after = db.query_one_raw(Statement::from_string(db.get_database_backend(), count)).await.unwrap().unwrap();
    assert_eq!(after.try_get::<i64>("", "n").unwrap(), flights_before, "nothing was written");
    crate::platform::assert_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_cuts_off_a_blocked_call_embedded() {
    deadline_cuts_off_a_blocked_call(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_cuts_off_a_blocked_call_external() {
    deadline_cuts_off_a_blocked_call(Backend::External).await;
}
