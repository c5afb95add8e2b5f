//! Bookings: holds, inventory that cannot oversell, seat changes, ownership, and the helpers every booking
//! test uses, on SQLite and PostgreSQL (plus Redis). The idempotency store, the life cycle and live
//! availability have files of their own.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    ContractError, Role, TestApp, backend_tests, create_flight_request,
    grpc_web::{Encoding, call as call_web},
    idempotency_key, request,
};
use futures::future::join_all;
use tonic::{Code, Response, Status};
use uuid::Uuid;

/// Past the default 10-minute hold.
pub(crate) const PAST_HOLD_TTL: Duration = Duration::from_secs(601);

/// A new flight whose economy cabin has `rows` x `letters` seats (rows from 10), priced 400.00 SAR.
pub(crate) async fn flight_with_economy(app: &TestApp, rows: i32, letters: &str) -> pb::Flight {
    flight_between(app, ("RUH", "JED"), 2, rows, letters).await
}

/// A new flight on `route` departing in `days_ahead` days, whose economy cabin has `rows` x `letters` seats
/// (rows from 10), priced 400.00 SAR.
pub(crate) async fn flight_between(
    app: &TestApp,
    (origin, destination): (&str, &str),
    days_ahead: i64,
    rows: i32,
    letters: &str,
) -> pb::Flight {
    // Distinct numbers: flights created within one minute depart at the same time.
    static NEXT_NUMBER: AtomicU32 = AtomicU32::new(1000);
    let number = format!("XY{}", NEXT_NUMBER.fetch_add(1, Ordering::Relaxed));
    let mut flight = create_flight_request(&number, origin, destination, days_ahead);
    flight.cabins[1].rows = rows;
    flight.cabins[1].seat_letters = letters.into();
    let operator = app.bearer(Role::Operator);
    app.flights()
        .create_flight(request(flight, &[("authorization", &operator), ("idempotency-key", &idempotency_key())]))
        .await
        .expect("flight created")
        .into_inner()
}

fn passenger(given_name: &str, kind: pb::PassengerType, date_of_birth: &str) -> pb::Passenger {
    pb::Passenger {
        given_name: given_name.into(),
        family_name: "Haddad".into(),
        date_of_birth: date_of_birth.into(),
        r#type: kind.into(),
        ..Default::default()
    }
}

pub(crate) fn adult(given_name: &str) -> pb::Passenger {
    passenger(given_name, pb::PassengerType::Adult, "1990-04-01")
}

pub(crate) fn hold(flight: &pb::Flight, passengers: Vec<pb::Passenger>, seats: &[&str]) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        flight_id: flight.id.clone(),
        cabin: pb::CabinClass::Economy.into(),
        passengers,
        seat_numbers: seats.iter().map(|s| (*s).to_owned()).collect(),
        contact_email: "sara@example.com".into(),
        ..Default::default()
    }
}

/// A signed-in customer with a stable identity.
pub(crate) struct Customer {
    pub(crate) bearer: String,
}

impl Customer {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self { bearer: app.bearer_for(Uuid::now_v7(), Role::Customer) }
    }

    pub(crate) fn keyed<T>(&self, message: T, key: &str) -> tonic::Request<T> {
        request(message, &[("authorization", &self.bearer), ("idempotency-key", key)])
    }

    pub(crate) fn plain<T>(&self, message: T) -> tonic::Request<T> {
        request(message, &[("authorization", &self.bearer)])
    }

    pub(crate) async fn book(&self, app: &TestApp, message: pb::CreateBookingRequest) -> Result<pb::Booking, Status> {
        app.bookings().create_booking(self.keyed(message, &idempotency_key())).await.map(Response::into_inner)
    }

    pub(crate) async fn get(&self, app: &TestApp, booking: &pb::Booking) -> Result<pb::Booking, Status> {
        let id = pb::GetBookingRequest { booking_id: booking.id.clone() };
        app.bookings().get_booking(self.plain(id)).await.map(Response::into_inner)
    }

    pub(crate) async fn cancel(&self, app: &TestApp, booking: &pb::Booking) -> Result<pb::Booking, Status> {
        let cancel = pb::CancelBookingRequest { booking_id: booking.id.clone(), reason: "plans changed".into() };
        app.bookings().cancel_booking(self.keyed(cancel, &idempotency_key())).await.map(Response::into_inner)
    }

    pub(crate) async fn change_seats(
        &self,
        app: &TestApp,
        booking: &pb::Booking,
        seats: &[&str],
    ) -> Result<pb::Booking, Status> {
        let change = pb::ChangeSeatsRequest {
            booking_id: booking.id.clone(),
            seat_numbers: seats.iter().map(|s| (*s).to_owned()).collect(),
            flight_id: String::new(),
        };
        app.bookings().change_seats(self.keyed(change, &idempotency_key())).await.map(Response::into_inner)
    }
}

pub(crate) async fn confirm(app: &TestApp, booking: &pb::Booking) -> Result<pb::Booking, Status> {
    let confirm = pb::ConfirmBookingRequest { booking_id: booking.id.clone(), note: "paid at the desk".into() };
    let (operator, key) = (app.bearer(Role::Operator), idempotency_key());
    let headers = [("authorization", operator.as_str()), ("idempotency-key", key.as_str())];
    app.bookings().confirm_booking(request(confirm, &headers)).await.map(Response::into_inner)
}

pub(crate) async fn economy_available(app: &TestApp, flight: &pb::Flight) -> i32 {
    let flight = app.flights().get_flight(pb::GetFlightRequest { flight_id: flight.id.clone() }).await.unwrap();
    flight.into_inner().cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).unwrap().seats_available
}

pub(crate) async fn taken_seats(app: &TestApp, flight: &pb::Flight) -> BTreeSet<String> {
    let map = pb::GetSeatMapRequest { flight_id: flight.id.clone(), cabin: pb::CabinClass::Economy.into() };
    let seats = app.flights().get_seat_map(map).await.unwrap().into_inner().seats;
    seats.into_iter().filter(|s| !s.available).map(|s| s.seat_number).collect()
}

pub(crate) fn reason(status: &Status) -> String {
    ContractError::from_status(status).reason
}

pub(crate) fn is_replayed<T>(response: &Response<T>) -> bool {
    response.metadata().get("idempotent-replayed").is_some_and(|v| v == "true")
}

/// Counts of outcomes, by `ErrorInfo.reason` ("OK" for success).
pub(crate) fn tally<T>(results: &[Result<T, Status>]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for result in results {
        let key = match result {
            Ok(_) => "OK".to_owned(),
            Err(status) => reason(status),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

pub(crate) fn counts(pairs: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

backend_tests! {
    async fn a_hold_takes_seats_is_priced_by_the_server_and_shows_everywhere(app: TestApp) {
        let flight = flight_with_economy(&app, 3, "ABC").await;
        let sara = Customer::new(&app);
        let party = vec![adult("Sara"), adult("Omar"), passenger("Lina", pb::PassengerType::Child, "2018-06-01")];
        let before = chrono::Utc::now();
        let booking = sara.book(&app, hold(&flight, party, &[])).await.expect("held");

        assert_eq!(booking.status(), pb::BookingStatus::Held);
        assert_eq!(booking.reference.len(), 6);
        assert_eq!(booking.version, 1);
        assert_eq!(booking.seat_numbers, ["10A", "10B", "10C"], "the party sits together");
        // 2 adults + 1 child at 75%: 40000 * 2.75
        assert_eq!(booking.total_price, Some(pb::Money { currency_code: "SAR".into(), amount_minor: 110_000 }));
        let expires = booking.hold_expires_at.unwrap().seconds - before.timestamp();
        assert!((599..=601).contains(&expires), "held for ten minutes, got {expires} s");
        let one_flight = pb::Segment {
            flight_id: flight.id.clone(),
            cabin: pb::CabinClass::Economy.into(),
            seat_numbers: booking.seat_numbers.clone(),
            price: booking.total_price.clone(),
            origin: flight.origin.clone(),
            destination: flight.destination.clone(),
            departs_at: flight.departs_at,
            arrives_at: flight.arrives_at,
        };
        assert_eq!(booking.segments, [one_flight], "a single flight is the booking's one segment");
        assert_eq!(sara.get(&app, &booking).await.expect("read").segments, booking.segments, "as stored");

        assert_eq!(economy_available(&app, &flight).await, 6);
        assert_eq!(taken_seats(&app, &flight).await, ["10A", "10B", "10C"].map(String::from).into());
        assert_eq!(sara.get(&app, &booking).await.unwrap(), booking);
        let listed = app.bookings().list_bookings(sara.plain(pb::ListBookingsRequest::default())).await.unwrap();
        assert_eq!(listed.into_inner().bookings, [booking]);
    }

    async fn two_hundred_concurrent_holds_on_fifty_seats_sell_exactly_fifty(app: TestApp) {
        let flight = flight_with_economy(&app, 10, "ABCDE").await;
        let calls = (0..200).map(|i| {
            let (app, flight) = (&app, &flight);
            async move { Customer::new(app).book(app, hold(flight, vec![adult(&format!("P{i}"))], &[])).await }
        });
        let results = join_all(calls).await;
        assert_eq!(tally(&results), counts(&[("OK", 50), ("SEATS_UNAVAILABLE", 150)]));
        let seats: BTreeSet<String> = results.iter().flatten().map(|b| b.seat_numbers[0].clone()).collect();
        assert_eq!(seats.len(), 50, "fifty different seats");
        assert_eq!(economy_available(&app, &flight).await, 0);
        assert_eq!(taken_seats(&app, &flight).await, seats);
        let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(ContractError::from_status(refused).metadata["seatsAvailable"], "0");
        app.assert_invariants().await;
    }

    async fn a_crowd_on_one_cabin_gets_each_its_own_answer(app: TestApp) {
        // Concurrent holds for one cabin are decided together, a batch to a transaction: each caller must
        // still get its own outcome, and a bad request must not fail the others.
        let flight = flight_with_economy(&app, 5, "ABCD").await; // 20 seats, 10A to 14D
        let mut calls = Vec::new();
        for _ in 0..10 {
            let (customer, key) = (Customer::new(&app), idempotency_key());
            for _ in 0..2 {
                calls.push(("double tap", customer.keyed(hold(&flight, vec![adult("Sara")], &[]), &key)));
            }
        }
        let infant_born_long_ago = passenger("Baby", pb::PassengerType::Infant, "1990-04-01");
        for _ in 0..5 {
            let invalid = hold(&flight, vec![infant_born_long_ago.clone()], &[]);
            calls.push(("invalid", Customer::new(&app).keyed(invalid, &idempotency_key())));
        }
        for _ in 0..3 {
            // The server places parties from the front: nobody else gets the last seat.
            let last_seat = hold(&flight, vec![adult("Omar")], &["14D"]);
            calls.push(("last seat", Customer::new(&app).keyed(last_seat, &idempotency_key())));
        }
        let greedy = Customer::new(&app);
        for _ in 0..6 {
            calls.push(("greedy", greedy.keyed(hold(&flight, vec![adult("Lina")], &[]), &idempotency_key())));
        }
        let results = join_all(calls.into_iter().map(|(label, request)| {
            let mut client = app.bookings();
            async move { (label, client.create_booking(request).await) }
        }))
        .await;
        let outcomes = |label: &str| -> Vec<Result<pb::Booking, Status>> {
            results.iter().filter(|(l, _)| *l == label).map(|(_, r)| r.as_ref().map(|b| b.get_ref().clone()).map_err(Clone::clone)).collect()
        };

        let taps: Vec<&Result<Response<pb::Booking>, Status>> =
            results.iter().filter(|(l, _)| *l == "double tap").map(|(_, r)| r).collect();
        for pair in taps.chunks(2) {
            let (first, second) = (pair[0].as_ref().unwrap(), pair[1].as_ref().unwrap());
            assert_eq!(first.get_ref().id, second.get_ref().id, "both taps answer the same booking");
            assert_eq!([first, second].into_iter().filter(|r| !is_replayed(r)).count(), 1, "executed once");
        }
        assert_eq!(tally(&outcomes("invalid")), counts(&[("VALIDATION_ERROR", 5)]));
        assert_eq!(tally(&outcomes("last seat")), counts(&[("OK", 1), ("SEATS_UNAVAILABLE", 2)]));
        assert_eq!(tally(&outcomes("greedy")), counts(&[("OK", 4), ("MAX_PER_USER_EXCEEDED", 2)]));

        let booked: BTreeSet<String> = ["double tap", "last seat", "greedy"]
            .into_iter()
            .flat_map(|label| outcomes(label).into_iter().flatten())
            .flat_map(|booking| booking.seat_numbers)
            .collect();
        assert_eq!(booked.len(), 10 + 1 + 4, "every placed passenger has a seat of their own");
        assert!(booked.contains("14D"));
        assert_eq!(taken_seats(&app, &flight).await, booked);
        assert_eq!(economy_available(&app, &flight).await, 20 - 15);
        app.assert_invariants().await;
    }

    async fn one_seat_asked_for_by_fifty_callers_has_one_winner(app: TestApp) {
        let flight = flight_with_economy(&app, 10, "ABCDE").await;
        let calls = (0..50).map(|_| {
            let (app, flight) = (&app, &flight);
            async move { Customer::new(app).book(app, hold(flight, vec![adult("Sara")], &["12C"])).await }
        });
        let results = join_all(calls).await;
        assert_eq!(tally(&results), counts(&[("OK", 1), ("SEATS_UNAVAILABLE", 49)]));
        let refused = ContractError::from_status(results.iter().find_map(|r| r.as_ref().err()).unwrap());
        assert_eq!(refused.metadata["takenSeats"], "12C");
        assert_eq!(economy_available(&app, &flight).await, 49);
        assert_eq!(taken_seats(&app, &flight).await, ["12C".to_owned()].into());
        app.assert_invariants().await;
    }

    async fn a_sold_out_cabin_is_refused_without_the_database_and_reopens_when_seats_return(app: TestApp) {
        let flight = flight_with_economy(&app, 1, "A").await;
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let omar = Customer::new(&app);
        let late = hold(&flight, vec![adult("Omar")], &[]);
        assert_eq!(reason(&omar.book(&app, late.clone()).await.unwrap_err()), "SEATS_UNAVAILABLE", "the database says so once");

        // Every write (and on PostgreSQL every read of the flight) now waits: the answer must not need one.
        let blocker = app.block_writes().await;
        let key = idempotency_key();
        let gated = tokio::time::timeout(Duration::from_secs(5), app.bookings().create_booking(omar.keyed(late.clone(), &key)))
            .await
            .expect("answered by the sold-out gate while the database is busy")
            .unwrap_err();
        let error = ContractError::from_status(&gated);
        assert_eq!((error.code, error.reason.as_str()), (Code::FailedPrecondition, "SEATS_UNAVAILABLE"));
        assert_eq!(error.metadata["seatsAvailable"], "0");
        blocker.rollback().await.unwrap();

        // The gate's answer executed nothing and was not stored: once the seat is back, the same key books it.
        sara.cancel(&app, &held).await.unwrap();
        let booked = app.bookings().create_booking(omar.keyed(late, &key)).await.expect("the gate reopened with the seat");
        assert!(!is_replayed(&booked));
        assert_eq!(booked.into_inner().seat_numbers, ["10A"]);
        assert_eq!(economy_available(&app, &flight).await, 0);
    }

    async fn invalid_holds_name_every_field_and_change_nothing(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let mut message = hold(&flight, vec![adult(""), passenger("Omar", pb::PassengerType::Adult, "2999-01-01")], &["10A"]);
        message.cabin = 0;
        message.contact_email = "not-an-email".into();
        message.passengers[1].r#type = 0;
        let status = sara.book(&app, message).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&[
            "cabin",
            "contact_email",
            "passengers[0].given_name",
            "passengers[1].date_of_birth",
            "passengers[1].type",
            "seat_numbers",
        ]);

        let ten = (0..10).map(|i| adult(&format!("P{i}"))).collect();
        ContractError::from_status(&sara.book(&app, hold(&flight, ten, &[])).await.unwrap_err()).assert_validation(&["passengers"]);
        let alone = vec![passenger("Lina", pb::PassengerType::Child, "2018-06-01")];
        ContractError::from_status(&sara.book(&app, hold(&flight, alone, &[])).await.unwrap_err()).assert_validation(&["passengers"]);
        let twice = hold(&flight, vec![adult("Sara"), adult("Omar")], &["10A", "10A"]);
        ContractError::from_status(&sara.book(&app, twice).await.unwrap_err()).assert_validation(&["seat_numbers[1]"]);
        // Checked against the flight: the passenger's age on the day of travel decides the type.
        let grown_child = vec![adult("Sara"), passenger("Omar", pb::PassengerType::Child, "1990-01-01")];
        ContractError::from_status(&sara.book(&app, hold(&flight, grown_child, &[])).await.unwrap_err()).assert_validation(&["passengers[1].type"]);
        let mut business = hold(&flight, vec![adult("Sara")], &[]);
        business.cabin = pb::CabinClass::First.into();
        ContractError::from_status(&sara.book(&app, business).await.unwrap_err()).assert_validation(&["cabin"]);
        let mut nowhere = hold(&flight, vec![adult("Sara")], &[]);
        nowhere.flight_id = Uuid::now_v7().to_string();
        assert_eq!(reason(&sara.book(&app, nowhere).await.unwrap_err()), "NOT_FOUND");

        assert_eq!(economy_available(&app, &flight).await, 4);
        let mine = app.bookings().list_bookings(sara.plain(pb::ListBookingsRequest::default())).await.unwrap();
        assert!(mine.into_inner().bookings.is_empty());
    }

    async fn live_holds_per_user_and_flight_are_limited(app: TestApp, settings = [("AEROBOOK_MAX_HOLDS_PER_USER", "2")]) {
        let flight = flight_with_economy(&app, 5, "ABC").await;
        let sara = Customer::new(&app);
        let first = sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let status = sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap_err();
        let error = ContractError::from_status(&status);
        assert_eq!((error.code, error.reason.as_str()), (Code::FailedPrecondition, "MAX_PER_USER_EXCEEDED"));
        assert_eq!(error.metadata["limit"], "2");
        assert!(Customer::new(&app).book(&app, hold(&flight, vec![adult("Omar")], &[])).await.is_ok(), "per user");
        sara.cancel(&app, &first).await.unwrap();
        assert!(sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.is_ok(), "a cancelled hold no longer counts");
    }

    async fn customers_see_only_their_own_bookings(app: TestApp) {
        let flight = flight_with_economy(&app, 4, "ABC").await;
        let (sara, omar) = (Customer::new(&app), Customer::new(&app));
        let mut saras = Vec::new();
        for name in ["A", "B", "C"] {
            saras.push(sara.book(&app, hold(&flight, vec![adult(name)], &[])).await.unwrap());
        }
        let first = &saras[0];
        assert_eq!(reason(&omar.get(&app, first).await.unwrap_err()), "NOT_FOUND");
        assert_eq!(reason(&omar.cancel(&app, first).await.unwrap_err()), "NOT_FOUND");
        assert_eq!(reason(&omar.change_seats(&app, first, &["13C"]).await.unwrap_err()), "NOT_FOUND");
        let missing = pb::Booking { id: Uuid::now_v7().to_string(), ..first.clone() };
        assert_eq!(reason(&omar.get(&app, &missing).await.unwrap_err()), "NOT_FOUND", "indistinguishable from missing");
        assert_eq!(sara.get(&app, first).await.unwrap().status(), pb::BookingStatus::Held);
        let omars = app.bookings().list_bookings(omar.plain(pb::ListBookingsRequest::default())).await.unwrap();
        assert!(omars.into_inner().bookings.is_empty());

        // Newest first, two per page.
        let page = |token: String| pb::ListBookingsRequest { page_size: 2, page_token: token, flight_id: String::new() };
        let one = app.bookings().list_bookings(sara.plain(page(String::new()))).await.unwrap().into_inner();
        let ids: Vec<&str> = one.bookings.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, [saras[2].id.as_str(), saras[1].id.as_str()]);
        let two = app.bookings().list_bookings(sara.plain(page(one.next_page_token))).await.unwrap().into_inner();
        assert_eq!((two.bookings.len(), two.bookings[0].id.as_str(), two.next_page_token.as_str()), (1, first.id.as_str(), ""));

        let operator = app.bearer(Role::Operator);
        let by_flight = pb::ListBookingsRequest { page_size: 100, page_token: String::new(), flight_id: flight.id.clone() };
        let all = app.bookings().list_bookings(request(by_flight, &[("authorization", &operator)])).await.unwrap();
        assert_eq!(all.into_inner().bookings.len(), 3);
        let bad = pb::ListBookingsRequest { page_size: 101, page_token: "garbage!".into(), flight_id: "x".into() };
        let status = app.bookings().list_bookings(sara.plain(bad)).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["flight_id", "page_token", "page_size"]);
    }

    async fn changing_seats_moves_the_party_and_respects_taken_seats(app: TestApp) {
        let flight = flight_with_economy(&app, 4, "ABC").await;
        let sara = Customer::new(&app);
        let booking = sara.book(&app, hold(&flight, vec![adult("Sara"), adult("Omar")], &[])).await.unwrap();
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Lina")], &["13C"])).await.unwrap();

        let moved = sara.change_seats(&app, &booking, &["12B", "10A"]).await.unwrap();
        assert_eq!((moved.seat_numbers.clone(), moved.version, moved.status()), (vec!["12B".to_owned(), "10A".to_owned()], 2, pb::BookingStatus::Held));
        assert_eq!(moved.hold_expires_at, booking.hold_expires_at, "the hold keeps its expiry");
        let stored = sara.get(&app, &booking).await.unwrap();
        assert_eq!(stored.segments[0].seat_numbers, ["12B", "10A"], "the segment's seats moved with the booking's");
        assert_eq!(taken_seats(&app, &flight).await, ["10A", "12B", "13C"].map(String::from).into());

        let status = sara.change_seats(&app, &booking, &["12B", "13C"]).await.unwrap_err();
        let error = ContractError::from_status(&status);
        assert_eq!((error.reason.as_str(), error.metadata["takenSeats"].as_str()), ("SEATS_UNAVAILABLE", "13C"));
        let status = sara.change_seats(&app, &booking, &["11A"]).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["seat_numbers"]);
        let status = sara.change_seats(&app, &booking, &["11A", "1A"]).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["seat_numbers[1]"]);
        let on = |flight_id: &str| pb::ChangeSeatsRequest {
            booking_id: booking.id.clone(),
            seat_numbers: vec!["11A".into(), "11B".into()],
            flight_id: flight_id.to_owned(),
        };
        let other_flight = uuid::Uuid::now_v7().to_string();
        let status = app.bookings().change_seats(sara.keyed(on(&other_flight), &idempotency_key())).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["flight_id"]);
        assert_eq!(sara.get(&app, &booking).await.unwrap(), moved, "refused changes changed nothing");
        let named = app.bookings().change_seats(sara.keyed(on(&flight.id), &idempotency_key())).await.unwrap();
        assert_eq!(named.into_inner().segments[0].seat_numbers, ["11A", "11B"], "the segment named by its flight");
        assert_eq!(economy_available(&app, &flight).await, 9);
    }

    async fn browsers_hold_seats_over_grpc_web_and_see_replays(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let message = hold(&flight, vec![adult("Sara")], &["11B"]);
        let headers = [("origin", "http://localhost:5173"), ("authorization", sara.bearer.as_str()), ("idempotency-key", key.as_str())];
        let path = "/aerobook.v1.BookingService/CreateBooking";
        let first = call_web(app.addr, path, &message, Encoding::Text, &headers).await;
        assert_eq!(first.grpc_status(), Some(0), "{first:?}");
        let booking: pb::Booking = first.decode();
        assert_eq!((booking.seat_numbers.as_slice(), booking.status()), (&["11B".to_owned()][..], pb::BookingStatus::Held));
        assert!(!first.headers.contains_key("idempotent-replayed"));

        let again = call_web(app.addr, path, &message, Encoding::Binary, &headers).await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(again.messages, first.messages, "the same bytes");
        let taken = call_web(app.addr, path, &message, Encoding::Binary, &[headers[0], ("authorization", &Customer::new(&app).bearer), ("idempotency-key", &idempotency_key())]).await;
        assert_eq!(taken.grpc_status(), Some(Code::FailedPrecondition as i32));
    }

}
