//! Hostile input, generated from the contract: every field of every RPC's request (walked from the
//! compiled descriptors, so a new field is covered the day it lands) gets empty, too long, control
//! characters, unknown enum numbers, out-of-range numbers, malformed ids, injection strings, invalid UTF-8
//! and wrong wire types; every RPC gets bodies of random bytes; over gRPC and gRPC-web. The rules:
//! - never an internal error, and every error carries the call's correlation id;
//! - a `VALIDATION_ERROR` for a value that must be refused names its field;
//! - too long, control characters, unknown enum numbers and undecodable bodies are always refused:
//!   `VALIDATION_ERROR` naming the field, or the transport's own `INVALID_ARGUMENT`/`RESOURCE_EXHAUSTED`;
//! - a call refused as bad input writes no row (every table counted before and after);
//! - the server is still serving at the end.

use std::collections::BTreeMap;

use aerobook_proto::{RPC_POLICIES, RpcPolicy, v1 as pb};
use aerobook_tests::{
    ContractError, Role, TestApp, backend_tests, create_flight_request, grpc_web,
    hostile::{self, Mutation},
    idempotency_key, request, search_request,
};
use prost::Message as _;
use prost_reflect::DynamicMessage;
use sea_orm::{ConnectionTrait as _, Statement};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt as _;

use crate::bookings::{Customer, adult, flight_with_economy, hold};

/// A valid request for each RPC (by method name), on a world of one flight, one customer and their held
/// booking; the mutations start from it.
async fn baselines(app: &TestApp, customer: &Customer) -> BTreeMap<&'static str, Vec<u8>> {
    let flight = flight_with_economy(app, 30, "ABCDEF").await;
    let booking = customer.book(app, hold(&flight, vec![adult("Sara")], &[])).await.expect("held");
    let other_flight = flight_with_economy(app, 30, "ABCDEF").await;
    let email = format!("hostile-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "correct horse battery staple".to_owned();
    let register =
        pb::RegisterRequest { email: email.clone(), password: password.clone(), full_name: "Sara Haddad".into() };
    let tokens = app.auth().register(register.clone()).await.expect("registered").into_inner();
    let (flight_id, booking_id) = (flight.id.clone(), booking.id.clone());
    let some_id = uuid::Uuid::now_v7().to_string();
    let airport = pb::Airport {
        code: "NRT".into(),
        name: "Narita International Airport".into(),
        city: "Tokyo".into(),
        country_code: "JP".into(),
        time_zone: "Asia/Tokyo".into(),
    };
    let by_booking = || pb::GetBookingRequest { booking_id: booking_id.clone() }.encode_to_vec();
    BTreeMap::from([
        (
            "ListJobs",
            pb::ListJobsRequest { page_size: 10, kind: "SEND_EMAIL".into(), ..Default::default() }.encode_to_vec(),
        ),
        ("RetryJob", pb::RetryJobRequest { job_id: some_id.clone() }.encode_to_vec()),
        ("DiscardJob", pb::DiscardJobRequest { job_id: some_id.clone() }.encode_to_vec()),
        (
            "RetryJobs",
            pb::RetryJobsRequest { state: pb::JobState::Dead.into(), kind: "SEND_EMAIL".into() }.encode_to_vec(),
        ),
        ("GetQueueStats", pb::GetQueueStatsRequest {}.encode_to_vec()),
        (
            "ListAirports",
            pb::ListAirportsRequest { query: "Riy".into(), page_size: 10, page_token: String::new() }.encode_to_vec(),
        ),
        ("GetAirport", pb::GetAirportRequest { code: "RUH".into() }.encode_to_vec()),
        ("UpsertAirport", pb::UpsertAirportRequest { airport: Some(airport) }.encode_to_vec()),
        ("Register", register.encode_to_vec()),
        ("Login", pb::LoginRequest { email, password }.encode_to_vec()),
        ("RefreshToken", pb::RefreshTokenRequest { refresh_token: tokens.refresh_token.clone() }.encode_to_vec()),
        ("Logout", pb::LogoutRequest { refresh_token: tokens.refresh_token }.encode_to_vec()),
        ("GetMe", pb::GetMeRequest {}.encode_to_vec()),
        ("CreateBooking", hold(&flight, vec![adult("Omar")], &[]).encode_to_vec()),
        ("GetBooking", by_booking()),
        (
            "ListBookings",
            pb::ListBookingsRequest { page_size: 10, page_token: String::new(), flight_id: flight_id.clone() }
                .encode_to_vec(),
        ),
        (
            "CancelBooking",
            pb::CancelBookingRequest { booking_id: booking_id.clone(), reason: "plans changed".into() }.encode_to_vec(),
        ),
        (
            "ChangeSeats",
            pb::ChangeSeatsRequest {
                booking_id: booking_id.clone(),
                seat_numbers: vec!["12A".into()],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "QuoteChange",
            pb::QuoteChangeRequest {
                booking_id: booking_id.clone(),
                flight_id: flight_id.clone(),
                new_flight_id: other_flight.id.clone(),
                new_cabin: pb::CabinClass::Economy.into(),
            }
            .encode_to_vec(),
        ),
        (
            "ChangeFlight",
            pb::ChangeFlightRequest { booking_id: booking_id.clone(), quote_id: some_id.clone() }.encode_to_vec(),
        ),
        (
            "CheckIn",
            pb::CheckInRequest {
                booking_id: booking_id.clone(),
                flight_id: flight_id.clone(),
                passenger_indexes: vec![0],
                documents: vec![crate::check_in::passport("A1234567", "2031-01-01")],
            }
            .encode_to_vec(),
        ),
        (
            "GetBoardingPass",
            pb::GetBoardingPassRequest {
                booking_id: booking_id.clone(),
                flight_id: flight_id.clone(),
                passenger_index: 0,
            }
            .encode_to_vec(),
        ),
        (
            "ListPassengers",
            pb::ListPassengersRequest { flight_id: flight_id.clone(), page_size: 10, page_token: String::new() }
                .encode_to_vec(),
        ),
        (
            "BoardPassenger",
            pb::BoardPassengerRequest {
                flight_id: flight_id.clone(),
                bcbp: "M1HADDAD/SARA         EABC123 RUHJEDAB 0101 061Y010A0001 100".into(),
            }
            .encode_to_vec(),
        ),
        (
            "ConfirmBooking",
            pb::ConfirmBookingRequest { booking_id: booking_id.clone(), note: "paid at the desk".into() }
                .encode_to_vec(),
        ),
        ("SearchFlights", search_request("RUH", "JED", &aerobook_tests::riyadh_date(2)).encode_to_vec()),
        (
            "SearchTrips",
            pb::SearchTripsRequest {
                legs: vec![pb::TripLeg {
                    origin: "RUH".into(),
                    destination: "JED".into(),
                    departure_date: aerobook_tests::riyadh_date(2),
                }],
                passengers: 1,
                cabin: pb::CabinClass::Economy.into(),
            }
            .encode_to_vec(),
        ),
        ("GetFlight", pb::GetFlightRequest { flight_id: flight_id.clone() }.encode_to_vec()),
        (
            "GetSeatMap",
            pb::GetSeatMapRequest { flight_id: flight_id.clone(), cabin: pb::CabinClass::Economy.into() }
                .encode_to_vec(),
        ),
        ("WatchAvailability", pb::WatchAvailabilityRequest { flight_id: flight_id.clone() }.encode_to_vec()),
        ("CreateFlight", create_flight_request("HQ901", "RUH", "JED", 5).encode_to_vec()),
        ("CreatePaymentIntent", pb::CreatePaymentIntentRequest { booking_id: booking_id.clone() }.encode_to_vec()),
        ("GetPayment", pb::GetPaymentRequest { booking_id: booking_id.clone() }.encode_to_vec()),
        ("RefundBooking", pb::RefundBookingRequest { booking_id, reason: "plans changed".into() }.encode_to_vec()),
        ("ReconcilePayments", pb::ReconcilePaymentsRequest {}.encode_to_vec()),
        ("JoinWaitingRoom", pb::JoinWaitingRoomRequest { flight_id: flight_id.clone() }.encode_to_vec()),
        ("WatchWaitingRoom", pb::WatchWaitingRoomRequest { ticket_id: some_id }.encode_to_vec()),
        (
            "ConfigureWaitingRoom",
            pb::ConfigureWaitingRoomRequest {
                flight_id: flight_id.clone(),
                enabled: false,
                admit_per_minute: 600,
                pass_ttl_seconds: 300,
                opens_at: None,
            }
            .encode_to_vec(),
        ),
        ("GetWaitingRoom", pb::GetWaitingRoomRequest { flight_id }.encode_to_vec()),
    ])
}

/// The headers a caller the RPC admits sends: an operator where only operators may call, else the
/// customer; an idempotency key of its own where one is required.
fn headers(app: &TestApp, customer: &Customer, policy: &RpcPolicy) -> Vec<(&'static str, String)> {
    let operator_only = !policy.roles.is_empty() && !policy.admits(pb::Role::Customer);
    let bearer = if operator_only { app.bearer(Role::Operator) } else { customer.bearer.clone() };
    let mut headers = vec![("authorization", bearer)];
    if policy.idempotency_key_required {
        headers.push(("idempotency-key", idempotency_key()));
    }
    headers
}

/// Every table's row count, in one statement.
async fn row_counts(db: &sea_orm::DatabaseConnection, tables: &[String]) -> Vec<i64> {
    let columns: Vec<String> =
        tables.iter().enumerate().map(|(i, table)| format!("(SELECT COUNT(*) FROM \"{table}\") AS c{i}")).collect();
    let sql = format!("SELECT {}", columns.join(", "));
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect("counts").expect("a row");
    (0..tables.len()).map(|i| row.try_get::<i64>("", &format!("c{i}")).expect("a count")).collect()
}

async fn tables(db: &sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = current_schema()",
    };
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect("tables");
    rows.iter().map(|row| row.try_get::<String>("", "t").expect("a name")).collect()
}

/// What is wrong with `answer` to `mutation`, if anything.
fn judge(mutation: &Mutation, answer: &Result<(), tonic::Status>) -> Option<String> {
    let Err(status) = answer else {
        return mutation.probe.must_be_refused().then(|| "accepted".to_owned());
    };
    if matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::Unimplemented | Code::Unavailable | Code::DataLoss
    ) {
        return Some(format!("answered {:?}: {}", status.code(), status.message()));
    }
    if !status.metadata().contains_key("x-correlation-id") {
        return Some(format!("no x-correlation-id on {:?}", status.code()));
    }
    let from_application = status.get_error_details().error_info().is_some();
    if !from_application {
        // The transport's own refusal of an undecodable or oversized body: no error details to check.
        let transport_refusal = matches!(status.code(), Code::InvalidArgument | Code::ResourceExhausted);
        return (!transport_refusal)
            .then(|| format!("{:?} without the error contract: {}", status.code(), status.message()));
    }
    let refused = ContractError::from_status(status);
    if refused.reason == "VALIDATION_ERROR" {
        // A value that may well be valid can meet another field's refusal (the baseline's email, taken
        // by an earlier accepted probe); a value that must be refused must be named.
        let named = refused.fields.iter().any(|field| names(field, &mutation.field));
        return (!named && !mutation.field.is_empty() && mutation.probe.must_be_refused())
            .then(|| format!("VALIDATION_ERROR naming {:?}, not the bad field", refused.fields));
    }
    mutation.probe.must_be_refused().then(|| {
        format!("refused with {} ({:?}), not as bad input: {}", refused.reason, status.code(), refused.message)
    })
}

/// Whether a violation of `named` points at `field`: the same path, or one containing the other
/// (`passengers` for `passengers[0].given_name`, `departs_at` for `departs_at.seconds`).
fn names(named: &str, field: &str) -> bool {
    let within = |outer: &str, inner: &str| {
        inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    named == field || within(named, field) || within(field, named)
}

backend_tests! {
    async fn every_field_of_every_request_refuses_hostile_input_cleanly(
        app: TestApp,
        settings = [("AEROBOOK_RATE_LIMITS", "disabled")]
    ) {
        let pool = hostile::contract();
        let customer = Customer::new(&app);
        let baselines = baselines(&app, &customer).await;
        let db = app.database().await;
        let tables = tables(&db).await;
        let mut failures = Vec::new();
        let mut calls = 0;
        for policy in RPC_POLICIES {
            let (service, method) = policy.path.trim_start_matches('/').split_once('/').expect("a gRPC path");
            let descriptor = pool.get_service_by_name(service).expect("a contract service");
            let input = descriptor.methods().find(|m| m.name() == method).expect("a contract method").input();
            let baseline = baselines.get(method).unwrap_or_else(|| panic!("no baseline for {method}"));
            let baseline = DynamicMessage::decode(input, baseline.as_slice()).expect("a baseline decodes");
            for mutation in hostile::mutations(&baseline) {
                // What earlier accepted probes queued (emails) is sent now, not during the next probe.
                app.run_jobs().await;
                let before = row_counts(&db, &tables).await;
                let headers = headers(&app, &customer, policy);
                let grpc = hostile::call(app.channel.clone(), policy.path, policy.server_streaming, mutation.body.clone(), &headers).await;
                let grpc = grpc.map(drop);
                let mut answers = vec![("gRPC", grpc)];
                if !policy.server_streaming {
                    let headers = self::headers(&app, &customer, policy);
                    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
                    let web = grpc_web::call_raw(app.addr, policy.path, &mutation.body, grpc_web::Encoding::Binary, &headers).await;
                    let web = if web.grpc_status() == Some(0) { Ok(()) } else { Err(web.status()) };
                    answers.push(("gRPC-web", web));
                }
                for (transport, answer) in &answers {
                    calls += 1;
                    if let Some(wrong) = judge(&mutation, answer) {
                        failures.push(format!("{method} {} ({:?}) over {transport}: {wrong}", mutation.field, mutation.probe));
                    }
                }
                // Refused as bad input, nothing may be written; a business refusal is stored under its key.
                let bad_input = |answer: &Result<(), tonic::Status>| {
                    answer.as_ref().is_err_and(|status| matches!(status.code(), Code::InvalidArgument | Code::ResourceExhausted))
                };
                if answers.iter().all(|(_, answer)| bad_input(answer)) {
                    let after = row_counts(&db, &tables).await;
                    let changed: Vec<&String> = tables.iter().zip(before.iter().zip(&after)).filter(|(_, (b, a))| b != a).map(|(t, _)| t).collect();
                    if !changed.is_empty() {
                        failures.push(format!("{method} {} ({:?}): refused, yet wrote to {changed:?}", mutation.field, mutation.probe));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{} of {calls} hostile calls answered wrongly:\n{}", failures.len(), failures.join("\n"));
        let health = HealthClient::new(app.channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
        assert_eq!(health.expect("health").into_inner().status(), ServingStatus::Serving);
        assert!(calls > 1_000, "{calls} calls");
    }
}

backend_tests! {
    /// Text a person may write, or an attacker may send, where free text belongs: stored and returned byte
    /// for byte, over gRPC and read back over gRPC-web.
    async fn accepted_text_is_stored_and_returned_byte_for_byte(app: TestApp) {
        let texts = hostile::HUMAN_TEXT.iter().chain(&["Robert'); DROP TABLE bookings;--", "<b>Sara</b>"]);
        let flight = flight_with_economy(&app, 10, "ABCDEF").await;
        for text in texts {
            let email = format!("text-{}@example.com", uuid::Uuid::new_v4().simple());
            let register = pb::RegisterRequest { email, password: "correct horse battery staple".into(), full_name: (*text).into() };
            let tokens = app.auth().register(register).await.expect("registered").into_inner();
            let bearer = format!("Bearer {}", tokens.access_token);
            let me = app.auth().get_me(request(pb::GetMeRequest {}, &[("authorization", &bearer)])).await.expect("me");
            assert_eq!(me.into_inner().full_name.as_bytes(), text.as_bytes());

            let customer = Customer::new(&app);
            let mut passenger = adult(text);
            passenger.family_name = (*text).into();
            let booking = customer.book(&app, hold(&flight, vec![passenger], &[])).await.expect("held");
            let get = pb::GetBookingRequest { booking_id: booking.id.clone() };
            let headers = [("authorization", customer.bearer.as_str())];
            let web = grpc_web::call(app.addr, "/aerobook.v1.BookingService/GetBooking", &get, grpc_web::Encoding::Text, &headers).await;
            let read: pb::Booking = web.decode();
            assert_eq!(read.passengers[0].given_name.as_bytes(), text.as_bytes());
            assert_eq!(read.passengers[0].family_name.as_bytes(), text.as_bytes());
        }
    }
}

backend_tests! {
    /// Every RPC a customer may call that names a booking (found from the descriptors: a `booking_id`
    /// field), called by another customer with the owner's valid request: `NOT_FOUND`, as if the booking
    /// did not exist, and nothing changes; another customer's list shows none of it.
    async fn no_customer_reaches_another_customers_booking(app: TestApp) {
        let pool = hostile::contract();
        let (owner, stranger) = (Customer::new(&app), Customer::new(&app));
        let baselines = baselines(&app, &owner).await;
        let mut checked = Vec::new();
        for policy in RPC_POLICIES.iter().filter(|policy| policy.admits(pb::Role::Customer) && !policy.public) {
            let (service, method) = policy.path.trim_start_matches('/').split_once('/').expect("a gRPC path");
            let descriptor = pool.get_service_by_name(service).expect("a contract service");
            let input = descriptor.methods().find(|m| m.name() == method).expect("a contract method").input();
            if input.get_field_by_name("booking_id").is_none() {
                continue;
            }
            let headers = headers(&app, &stranger, policy);
            let answer = hostile::call(app.channel.clone(), policy.path, policy.server_streaming, baselines[method].clone(), &headers).await;
            let refused = answer.expect_err(method);
            assert_eq!(ContractError::from_status(&refused).reason, "NOT_FOUND", "{method} as another customer");
            checked.push(method);
        }
        assert!(checked.len() >= 5, "the booking RPCs were found: {checked:?}");
        let list = pb::ListBookingsRequest { page_size: 50, page_token: String::new(), flight_id: String::new() };
        let listed = app.bookings().list_bookings(request(list, &[("authorization", stranger.bearer.as_str())])).await;
        assert!(listed.expect("listed").into_inner().bookings.is_empty(), "none of the owner's bookings");
        let booking_id = pb::GetBookingRequest::decode(baselines["GetBooking"].as_slice()).expect("a request").booking_id;
        let mine = app.bookings().get_booking(owner.plain(pb::GetBookingRequest { booking_id })).await.expect("the owner's");
        assert_eq!(mine.into_inner().status(), pb::BookingStatus::Held, "nothing the stranger sent changed it");
    }
}
