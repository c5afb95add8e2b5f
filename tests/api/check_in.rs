//! Online check-in, on SQLite and PostgreSQL (plus Redis): the window on the server's clock, sequence numbers
//! in check-in order, boarding passes whose barcode string reads back field by field, travel documents
//! required between two countries (each fault named, nothing changed), and swept after the trip. Boarding,
//! the manifest, concurrency and the boarding-pass email: `check_in_gate.rs`.

use aerobook_proto::v1 as pb;
use aerobook_sdk::Bcbp;
use aerobook_tests::{ContractError, Role, TestApp, backend_tests, create_flight_request, idempotency_key, request};
use chrono::{DateTime, Datelike as _, Duration, Utc};
use tonic::{Response, Status};
use uuid::Uuid;

use crate::{
    bookings::{Customer, adult, hold},
    changes::{change, quote},
};

/// A customer who stays signed in however far the test moves the server's clock.
pub(crate) struct Traveller(Uuid);

impl Traveller {
    pub(crate) fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub(crate) fn now(&self, app: &TestApp) -> Customer {
        Customer { bearer: app.bearer_for(self.0, Role::Customer) }
    }
}

/// A flight departing `hours` after the server's clock, RUH to `destination`, economy rows 10..=12 ABC.
pub(crate) async fn flight_in(app: &TestApp, hours: i64, destination: &str) -> pb::Flight {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(100);
    let mut flight =
        create_flight_request(&format!("CK{}", NEXT.fetch_add(1, Ordering::Relaxed)), "RUH", destination, 0);
    let departs = app.clock.now() + Duration::hours(hours);
    let departs = departs - Duration::seconds(departs.timestamp() % 60);
    flight.departs_at = Some(prost_types::Timestamp { seconds: departs.timestamp(), nanos: 0 });
    flight.arrives_at =
        Some(prost_types::Timestamp { seconds: (departs + Duration::minutes(150)).timestamp(), nanos: 0 });
    let headers = [("authorization", app.bearer_now(Role::Operator)), ("idempotency-key", idempotency_key())];
    let headers: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.flights().create_flight(request(flight, &headers)).await.expect("flight created").into_inner()
}

/// A booking of `traveller`'s on `flight`, confirmed by an operator.
pub(crate) async fn confirmed(
    app: &TestApp,
    traveller: &Traveller,
    flight: &pb::Flight,
    party: Vec<pb::Passenger>,
) -> pb::Booking {
    let held = traveller.now(app).book(app, hold(flight, party, &[])).await.expect("held");
    let confirm = pb::ConfirmBookingRequest { booking_id: held.id.clone(), note: "paid at the desk".into() };
    let headers = [("authorization", app.bearer_now(Role::Operator)), ("idempotency-key", idempotency_key())];
    let headers: Vec<(&'static str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.bookings().confirm_booking(request(confirm, &headers)).await.expect("confirmed").into_inner()
}

pub(crate) fn asking(
    booking: &pb::Booking,
    flight: &pb::Flight,
    indexes: &[i32],
    documents: Vec<pb::TravelDocument>,
) -> pb::CheckInRequest {
    pb::CheckInRequest {
        booking_id: booking.id.clone(),
        flight_id: flight.id.clone(),
        passenger_indexes: indexes.to_vec(),
        documents,
    }
}

pub(crate) async fn check_in(
    app: &TestApp,
    traveller: &Traveller,
    message: pb::CheckInRequest,
    key: &str,
) -> Result<Response<pb::CheckInResponse>, Status> {
    app.check_in().check_in(traveller.now(app).keyed(message, key)).await
}

pub(crate) fn passport(number: &str, expires_on: &str) -> pb::TravelDocument {
    pb::TravelDocument {
        r#type: pb::TravelDocumentType::Passport.into(),
        number: number.into(),
        issuing_country: "SA".into(),
        nationality: "SA".into(),
        expires_on: expires_on.into(),
    }
}

fn at(timestamp: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let timestamp = timestamp.as_ref().expect("a time");
    DateTime::from_timestamp(timestamp.seconds, 0).expect("a valid time")
}

fn ticket_status(booking: &pb::Booking, index: i32) -> pb::TicketStatus {
    booking.tickets.iter().find(|t| t.passenger_index == index).expect("a ticket").status()
}

/// Moves the server's clock to `to`.
pub(crate) fn travel_to(app: &TestApp, to: DateTime<Utc>) {
    app.clock.advance((to - app.clock.now()).to_std().expect("forward in time"));
}

backend_tests! {
    async fn check_in_opens_a_day_before_departure_and_closes_an_hour_before(app: TestApp) {
        let flight = flight_in(&app, 30, "JED").await;
        let departs = at(&flight.departs_at);
        let [sara, omar, lina] = [Traveller::new(), Traveller::new(), Traveller::new()];
        let mut booked = Vec::new();
        for (traveller, name) in [(&sara, "Sara"), (&omar, "Omar"), (&lina, "Lina")] {
            booked.push(confirmed(&app, traveller, &flight, vec![adult(name)]).await);
        }
        let early = check_in(&app, &sara, asking(&booked[0], &flight, &[], vec![]), &idempotency_key()).await.unwrap_err();
        let early = ContractError::from_status(&early);
        assert_eq!(
            (early.code, early.reason.as_str(), early.retryable),
            (tonic::Code::FailedPrecondition, "CHECK_IN_NOT_OPEN", false)
        );
        let opens_at: DateTime<Utc> = early.metadata["opensAt"].parse().expect("opensAt in RFC 3339");
        assert_eq!(opens_at, departs - Duration::hours(24));

        travel_to(&app, opens_at);
        check_in(&app, &sara, asking(&booked[0], &flight, &[], vec![]), &idempotency_key()).await.expect("open on the dot");
        travel_to(&app, departs - Duration::minutes(61));
        check_in(&app, &omar, asking(&booked[1], &flight, &[], vec![]), &idempotency_key()).await.expect("still open");
        travel_to(&app, departs - Duration::minutes(60));
        let late = check_in(&app, &lina, asking(&booked[2], &flight, &[], vec![]), &idempotency_key()).await.unwrap_err();
        let late = ContractError::from_status(&late);
        assert_eq!((late.code, late.reason.as_str()), (tonic::Code::FailedPrecondition, "CHECK_IN_CLOSED"));
        let lina_now = lina.now(&app).get(&app, &booked[2]).await.unwrap();
        assert_eq!(ticket_status(&lina_now, 0), pb::TicketStatus::Open, "nothing changed");
        app.assert_invariants().await;
    }

    async fn a_party_checks_in_in_order_and_its_passes_read_back_field_by_field(app: TestApp) {
        let flight = flight_in(&app, 5, "JED").await;
        let (sara, omar) = (Traveller::new(), Traveller::new());
        let party = vec![adult("Sara"), adult("Maha")];
        let booking = confirmed(&app, &sara, &flight, party).await;
        let other = confirmed(&app, &omar, &flight, vec![adult("Omar")]).await;

        // The second passenger first: sequence numbers follow the order of check-in.
        let key = idempotency_key();
        let first = check_in(&app, &sara, asking(&booking, &flight, &[1], vec![]), &key).await.unwrap().into_inner();
        let replay = check_in(&app, &sara, asking(&booking, &flight, &[1], vec![]), &key).await.unwrap();
        assert_eq!(replay.metadata().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
        assert_eq!(replay.into_inner(), first);
        check_in(&app, &omar, asking(&other, &flight, &[], vec![]), &idempotency_key()).await.unwrap();
        let all = check_in(&app, &sara, asking(&booking, &flight, &[], vec![]), &idempotency_key()).await.unwrap().into_inner();
        let sequences: Vec<i32> = all.boarding_passes.iter().map(|pass| pass.sequence_number).collect();
        assert_eq!(sequences, [3, 1], "Maha kept hers; Sara came after Omar's 2");
        assert_eq!(all.boarding_passes[1], first.boarding_passes[0], "a pass given again is the same pass");

        let read = sara.now(&app).get(&app, &booking).await.unwrap();
        assert!(read.tickets.iter().all(|t| t.status() == pb::TicketStatus::CheckedIn));
        let pass = &all.boarding_passes[0];
        let ticket = read.tickets.iter().find(|t| t.passenger_index == 0).unwrap();
        assert_eq!(
            (pass.ticket_number.as_str(), pass.passenger_name.as_str(), pass.flight_number.as_str(), pass.seat_number.as_str()),
            (ticket.ticket_number.as_str(), "Sara Haddad", flight.flight_number.as_str(), read.seat_numbers[0].as_str())
        );
        assert_eq!((pass.origin.as_str(), pass.destination.as_str(), pass.cabin()), ("RUH", "JED", pb::CabinClass::Economy));
        assert_eq!(at(&pass.boarding_time), at(&flight.departs_at) - Duration::minutes(45));

        let decoded = Bcbp::decode(&pass.bcbp).expect("the pass reads back");
        let local_date = aerobook_sdk::local_times(&flight).unwrap().departure_date();
        assert_eq!(decoded.passenger_name, "HADDAD/SARA");
        assert!(decoded.electronic_ticket);
        assert_eq!(decoded.booking_reference, booking.reference);
        assert_eq!((decoded.from.as_str(), decoded.to.as_str()), ("RUH", "JED"));
        assert_eq!(format!("{}{}", decoded.carrier, decoded.flight_number), flight.flight_number);
        assert_eq!(u32::from(decoded.day_of_year), local_date.ordinal());
        assert_eq!((decoded.compartment, decoded.seat.as_str()), ('Y', pass.seat_number.as_str()));
        assert_eq!((decoded.sequence_number, decoded.passenger_status), (3, '1'));
        assert_eq!(decoded.ticket_number.as_deref(), Some(ticket.ticket_number.as_str()));

        let get = pb::GetBoardingPassRequest { booking_id: booking.id.clone(), flight_id: flight.id.clone(), passenger_index: 0 };
        let again = app.check_in().get_boarding_pass(sara.now(&app).plain(get.clone())).await.unwrap().into_inner();
        assert_eq!(&again, pass);
        let stranger = app.check_in().get_boarding_pass(omar.now(&app).plain(get)).await.unwrap_err();
        assert_eq!(stranger.code(), tonic::Code::NotFound, "another customer's pass is not theirs to see");
        app.assert_invariants().await;
    }

    async fn check_in_needs_a_confirmed_booking_of_the_caller_on_that_flight(app: TestApp) {
        let (flight, elsewhere) = (flight_in(&app, 5, "JED").await, flight_in(&app, 6, "JED").await);
        let sara = Traveller::new();
        let held = sara.now(&app).book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let refused = check_in(&app, &sara, asking(&held, &flight, &[], vec![]), &idempotency_key()).await.unwrap_err();
        let refused = ContractError::from_status(&refused);
        assert_eq!((refused.reason.as_str(), refused.metadata["currentStatus"].as_str()), ("INVALID_STATE_TRANSITION", "HELD"));

        let booking = confirmed(&app, &sara, &flight, vec![adult("Sara")]).await;
        let stranger = check_in(&app, &Traveller::new(), asking(&booking, &flight, &[], vec![]), &idempotency_key()).await;
        assert_eq!(stranger.unwrap_err().code(), tonic::Code::NotFound);
        let wrong_flight = check_in(&app, &sara, asking(&booking, &elsewhere, &[], vec![]), &idempotency_key()).await;
        ContractError::from_status(&wrong_flight.unwrap_err()).assert_validation(&["flight_id"]);
        let bad_indexes = check_in(&app, &sara, asking(&booking, &flight, &[1, -1], vec![]), &idempotency_key()).await;
        ContractError::from_status(&bad_indexes.unwrap_err()).assert_validation(&["passenger_indexes[1]"]);
        let out_of_party = check_in(&app, &sara, asking(&booking, &flight, &[0, 0, 3], vec![]), &idempotency_key()).await;
        ContractError::from_status(&out_of_party.unwrap_err())
            .assert_validation(&["passenger_indexes[1]", "passenger_indexes[2]"]);
        let booking = sara.now(&app).get(&app, &booking).await.unwrap();
        assert_eq!(ticket_status(&booking, 0), pb::TicketStatus::Open, "nothing changed");
    }

    async fn a_flight_between_two_countries_needs_valid_documents_kept_until_after_the_trip(app: TestApp) {
        let flight = flight_in(&app, 5, "DXB").await;
        let sara = Traveller::new();
        let booking = confirmed(&app, &sara, &flight, vec![adult("Sara"), adult("Maha")]).await;
        let missing = check_in(&app, &sara, asking(&booking, &flight, &[], vec![]), &idempotency_key()).await.unwrap_err();
        let missing = ContractError::from_status(&missing);
        assert_eq!((missing.code, missing.reason.as_str()), (tonic::Code::FailedPrecondition, "DOCUMENTS_REQUIRED"));
        assert_eq!(missing.fields, ["documents[0]", "documents[1]"]);

        let day_before_arrival = (at(&flight.arrives_at) - Duration::days(1)).date_naive().to_string();
        let wrong = vec![
            pb::TravelDocument { issuing_country: "XX".into(), ..passport("A1234567", "2031-01-01") },
            pb::TravelDocument { nationality: "sa".into(), ..passport("1", &day_before_arrival) },
        ];
        let invalid = check_in(&app, &sara, asking(&booking, &flight, &[], wrong), &idempotency_key()).await.unwrap_err();
        let invalid = ContractError::from_status(&invalid);
        assert_eq!(invalid.reason, "DOCUMENTS_REQUIRED");
        assert_eq!(
            invalid.fields,
            ["documents[0].issuing_country", "documents[1].number", "documents[1].nationality", "documents[1].expires_on"]
        );
        let one_document = asking(&booking, &flight, &[], vec![passport("A1234567", "2031-01-01")]);
        let uneven = check_in(&app, &sara, one_document, &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&uneven).assert_validation(&["documents"]);
        let unchanged = sara.now(&app).get(&app, &booking).await.unwrap();
        assert!(unchanged.tickets.iter().all(|t| t.status() == pb::TicketStatus::Open), "nothing changed");
        assert!(unchanged.passengers.iter().all(|p| p.document.is_none()));

        let documents = vec![passport("A1234567", "2031-01-01"), passport("B7654321", "2030-06-30")];
        let done = check_in(&app, &sara, asking(&booking, &flight, &[0], documents[..1].to_vec()), &idempotency_key()).await;
        assert_eq!(done.expect("valid documents").into_inner().boarding_passes.len(), 1);
        // The second passenger's document comes with a later check-in; the first's stays on file.
        let later = check_in(&app, &sara, asking(&booking, &flight, &[1], documents[1..].to_vec()), &idempotency_key()).await;
        assert_eq!(later.expect("the second passenger").into_inner().boarding_passes[0].sequence_number, 2);
        let on_file = check_in(&app, &sara, asking(&booking, &flight, &[], vec![]), &idempotency_key()).await;
        assert_eq!(on_file.expect("documents on file").into_inner().boarding_passes.len(), 2);
        let read = sara.now(&app).get(&app, &booking).await.unwrap();
        let shown: Vec<_> = read.passengers.iter().map(|p| p.document.clone()).collect();
        assert_eq!(shown, documents.into_iter().map(Some).collect::<Vec<_>>(), "shown to their owner");
        assert!(read.version > booking.version, "checking in changed the booking");

        // A change to a later flight: its answer, kept under its key, leaves the documents out; they are
        // now kept until a day after the later flight lands.
        let later = flight_in(&app, 9, "DXB").await;
        let quoted = quote(&app, &sara.now(&app), &read, &flight, &later).await.expect("quoted");
        let changed = change(&app, &sara.now(&app), &read, &quoted, &idempotency_key()).await.expect("changed");
        assert!(changed.into_inner().passengers.iter().all(|p| p.document.is_none()), "not in a keyed answer");
        let arrival = at(&later.arrives_at);

        // Kept until a day after the flight lands, then swept (by this sweep, or by the sweeper the
        // clock's jump woke).
        travel_to(&app, arrival + Duration::days(1) - Duration::minutes(1));
        app.sweep_retention().await;
        let read = sara.now(&app).get(&app, &booking).await.unwrap();
        assert!(read.passengers.iter().all(|p| p.document.is_some()), "kept until then");
        travel_to(&app, arrival + Duration::days(1));
        app.sweep_retention().await;
        let read = sara.now(&app).get(&app, &booking).await.unwrap();
        assert!(read.passengers.iter().all(|p| p.document.is_none()), "swept");
        app.assert_invariants().await;
    }

    async fn documents_are_given_at_check_in_not_when_booking(app: TestApp) {
        let flight = flight_in(&app, 5, "DXB").await;
        let mut passenger = adult("Sara");
        passenger.document = Some(passport("A1234567", "2031-01-01"));
        let refused = Traveller::new().now(&app).book(&app, hold(&flight, vec![passenger], &[])).await.unwrap_err();
        ContractError::from_status(&refused).assert_validation(&["passengers[0].document"]);
    }
}
