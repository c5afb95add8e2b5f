//! Trips: bookings over several flights, held all or nothing, on SQLite and PostgreSQL (plus Redis): one
//! price and one expiry, the first flight short of seats named, every segment released once by cancel,
//! expiry and refund, a late payment retaking every segment, crossing trips and single holds racing on
//! the same cabins without deadlock or oversell, the per-user limit per flight, and waiting-room passes.

use std::collections::BTreeMap;

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, TestApp, backend_tests, idempotency_key, stripe_tests};
use futures::future::join_all;
use http::StatusCode;
use tonic::Response;

use crate::{
    bookings::{
        Customer, PAST_HOLD_TTL, adult, economy_available, flight_between, hold, is_replayed, reason, taken_seats,
    },
    payments::{deliver, pay},
    waiting_room::{AT_ONCE, configure, pass_for},
};

/// A trip over `flights`, in their order, for `passengers` in economy; seats chosen by the server.
pub(crate) fn trip(flights: &[&pb::Flight], passengers: Vec<pb::Passenger>) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        passengers,
        contact_email: "sara@example.com".into(),
        segments: flights
            .iter()
            .map(|flight| pb::SegmentRequest {
                flight_id: flight.id.clone(),
                cabin: pb::CabinClass::Economy.into(),
                seat_numbers: Vec::new(),
            })
            .collect(),
        ..Default::default()
    }
}

/// An outbound flight in two days and its return in five, each with `rows` rows of seats A and B. The
/// return is created first, so its id sorts first: the cabins' lock order is not the travel order.
async fn out_and_back(app: &TestApp, rows: i32) -> (pb::Flight, pb::Flight) {
    let back = flight_between(app, ("JED", "RUH"), 5, rows, "AB").await;
    let out = flight_between(app, ("RUH", "JED"), 2, rows, "AB").await;
    (out, back)
}

async fn keyed_booking(
    app: &TestApp,
    customer: &Customer,
    message: pb::CreateBookingRequest,
    key: &str,
) -> Result<Response<pb::Booking>, tonic::Status> {
    app.bookings().create_booking(customer.keyed(message, key)).await
}

/// The refusal's metadata, but for the call's own correlation id.
fn metadata(status: &tonic::Status) -> BTreeMap<String, String> {
    let mut metadata: BTreeMap<String, String> = ContractError::from_status(status).metadata.into_iter().collect();
    metadata.remove("correlationId");
    metadata
}

backend_tests! {
    async fn a_return_trip_is_one_hold_with_one_price_and_one_expiry(app: TestApp) {
        let (out, back) = out_and_back(&app, 2).await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let party = || vec![adult("Sara"), adult("Omar")];
        let booking = app.bookings().create_booking(sara.keyed(trip(&[&out, &back], party()), &key)).await;
        let booking = booking.expect("held").into_inner();

        assert_eq!(booking.status(), pb::BookingStatus::Held);
        let flights: Vec<&str> = booking.segments.iter().map(|s| s.flight_id.as_str()).collect();
        assert_eq!(flights, [out.id.as_str(), back.id.as_str()], "segments in travel order");
        assert_eq!((booking.flight_id.as_str(), booking.seat_numbers.clone()), (out.id.as_str(), booking.segments[0].seat_numbers.clone()));
        for (segment, flight) in booking.segments.iter().zip([&out, &back]) {
            assert_eq!(segment.seat_numbers, ["10A", "10B"]);
            assert_eq!(segment.price.as_ref().map(|p| p.amount_minor), Some(80_000), "two adults at 400.00");
            assert_eq!((segment.origin.as_str(), segment.departs_at), (flight.origin.as_str(), flight.departs_at));
            assert_eq!(economy_available(&app, flight).await, 2);
        }
        assert_eq!(booking.total_price, Some(pb::Money { currency_code: "SAR".into(), amount_minor: 160_000 }));
        assert!(booking.hold_expires_at.is_some());
        assert_eq!(sara.get(&app, &booking).await.expect("read"), booking, "stored as answered");

        let replay = app.bookings().create_booking(sara.keyed(trip(&[&out, &back], party()), &key)).await.expect("replayed");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), booking, "a retry holds nothing more");
        assert_eq!(economy_available(&app, &out).await, 2);
        app.assert_invariants().await;
    }

    async fn a_trip_one_flight_short_of_seats_holds_nothing_and_names_that_flight(app: TestApp) {
        let (out, back) = out_and_back(&app, 1).await;
        Customer::new(&app).book(&app, hold(&back, vec![adult("Lina")], &["10A"])).await.expect("one return seat sold");
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let party = || vec![adult("Sara"), adult("Omar")];
        let refused = app.bookings().create_booking(sara.keyed(trip(&[&out, &back], party()), &key)).await.unwrap_err();
        assert_eq!(reason(&refused), "SEATS_UNAVAILABLE");
        let metadata = metadata(&refused);
        assert_eq!((metadata["flightId"].as_str(), metadata["seatsAvailable"].as_str()), (back.id.as_str(), "1"));
        assert_eq!(economy_available(&app, &out).await, 2, "the outbound seats are not held");
        assert!(taken_seats(&app, &out).await.is_empty());
        let replay = app.bookings().create_booking(sara.keyed(trip(&[&out, &back], party()), &key)).await.unwrap_err();
        assert_eq!(self::metadata(&replay), metadata, "the refusal is stored and replayed");

        // Named seats: the taken one is listed, on its flight.
        let mut named = trip(&[&out, &back], vec![adult("Sara")]);
        named.segments[1].seat_numbers = vec!["10A".into()];
        let refused = sara.book(&app, named).await.unwrap_err();
        let metadata = self::metadata(&refused);
        assert_eq!((metadata["flightId"].as_str(), metadata["takenSeats"].as_str()), (back.id.as_str(), "10A"));
        assert_eq!(economy_available(&app, &out).await, 2);
        app.assert_invariants().await;
    }

    async fn cancel_expiry_and_refund_release_every_segment_once(app: TestApp) {
        let (out, back) = out_and_back(&app, 2).await;
        let sara = Customer::new(&app);
        let cancelled = sara.book(&app, trip(&[&out, &back], vec![adult("Sara")])).await.expect("held");
        sara.cancel(&app, &cancelled).await.expect("cancelled");
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 4, "cancelled: released on both flights");
        }

        let expiring = sara.book(&app, trip(&[&out, &back], vec![adult("Sara")])).await.expect("held");
        let paid = sara.book(&app, trip(&[&out, &back], vec![adult("Omar")])).await.expect("held");
        pay(&app, &sara, &paid, &idempotency_key()).await.expect("paying");
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &paid).await.unwrap().status(), pb::BookingStatus::Confirmed);
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1, "one trip expires, as one booking");
        assert_eq!(sara.get(&app, &expiring).await.unwrap().status(), pb::BookingStatus::Expired);
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 3, "expired: released on both flights; paid: kept");
        }

        let refund = pb::RefundBookingRequest { booking_id: paid.id.clone(), reason: "cannot travel".into() };
        app.payments().refund_booking(sara.keyed(refund, &idempotency_key())).await.expect("refund requested");
        app.run_jobs().await;
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &paid).await.unwrap().status(), pb::BookingStatus::Refunded);
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 4, "refunded: released on both flights, once");
        }
        app.assert_invariants().await;
    }

    /// Once the return is known sold out, a new trip is refused without a transaction and without storing
    /// the refusal (its key may book once seats come back), while a trip that completed still replays.
    async fn a_sold_out_segment_refuses_a_trip_at_once_and_a_completed_trip_still_replays(app: TestApp) {
        let (out, back) = out_and_back(&app, 1).await;
        Customer::new(&app).book(&app, hold(&back, vec![adult("Lina")], &["10A"])).await.expect("held");
        let sara = Customer::new(&app);
        let (booked_key, refused_key) = (idempotency_key(), idempotency_key());
        let sara_s_trip = || trip(&[&out, &back], vec![adult("Sara")]);
        let booked = keyed_booking(&app, &sara, sara_s_trip(), &booked_key).await.expect("the last return seat");
        let booked = booked.into_inner();
        let full = Customer::new(&app).book(&app, hold(&back, vec![adult("Omar")], &[])).await.unwrap_err();
        assert_eq!(reason(&full), "SEATS_UNAVAILABLE", "the return is sold out");

        let omar = Customer::new(&app);
        let omar_s_trip = || trip(&[&out, &back], vec![adult("Omar")]);
        let refused = keyed_booking(&app, &omar, omar_s_trip(), &refused_key).await.unwrap_err();
        assert_eq!(metadata(&refused)["flightId"], back.id);
        let replay = keyed_booking(&app, &sara, sara_s_trip(), &booked_key).await.expect("replayed");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), booked);

        sara.cancel(&app, &booked).await.expect("cancelled");
        let retried = keyed_booking(&app, &omar, omar_s_trip(), &refused_key).await;
        assert_eq!(retried.expect("the refusal was not stored").into_inner().segments.len(), 2);
        app.assert_invariants().await;
    }

    /// Each flight counts a trip as one of the caller's live holds (the limit is 4 per flight).
    async fn the_per_user_limit_counts_a_trip_once_on_each_of_its_flights(app: TestApp) {
        let (out, back) = out_and_back(&app, 6).await;
        let sara = Customer::new(&app);
        for i in 0..4 {
            sara.book(&app, trip(&[&out, &back], vec![adult(&format!("P{i}"))])).await.expect("held");
        }
        let fifth = sara.book(&app, trip(&[&out, &back], vec![adult("Sara")])).await.unwrap_err();
        assert_eq!(reason(&fifth), "MAX_PER_USER_EXCEEDED");
        let single = sara.book(&app, hold(&back, vec![adult("Sara")], &[])).await.unwrap_err();
        assert_eq!(reason(&single), "MAX_PER_USER_EXCEEDED", "the return flight counts the trips too");
        assert_eq!(economy_available(&app, &out).await, 8);
    }

    /// Trips and single holds racing for the same two cabins, whose lock order is not the travel order:
    /// every call answers (no deadlock), nothing is oversold, and each flight that refused someone for
    /// want of seats is sold out.
    async fn trips_and_single_holds_racing_on_the_same_cabins_never_deadlock_nor_oversell(app: TestApp) {
        let (out, back) = out_and_back(&app, 5).await;
        let trips = (0..12).map(|i| {
            let (app, out, back) = (&app, &out, &back);
            async move { Customer::new(app).book(app, trip(&[out, back], vec![adult(&format!("T{i}"))])).await }
        });
        let singles = (0..16).map(|i| {
            let (app, flight) = (&app, if i % 2 == 0 { &out } else { &back });
            async move { (flight, Customer::new(app).book(app, hold(flight, vec![adult(&format!("S{i}"))], &[])).await) }
        });
        let (trips, singles) = tokio::join!(join_all(trips), join_all(singles));
        let mut sold = BTreeMap::from([(out.id.clone(), 0), (back.id.clone(), 0)]);
        let mut short = Vec::new();
        for result in &trips {
            match result {
                Ok(booking) => booking.segments.iter().for_each(|s| *sold.get_mut(&s.flight_id).unwrap() += 1),
                Err(status) => {
                    assert_eq!(reason(status), "SEATS_UNAVAILABLE", "{status:?}");
                    short.push(metadata(status)["flightId"].clone());
                }
            }
        }
        for (flight, result) in &singles {
            match result {
                Ok(_) => *sold.get_mut(&flight.id).unwrap() += 1,
                Err(status) => {
                    assert_eq!(reason(status), "SEATS_UNAVAILABLE", "{status:?}");
                    short.push(flight.id.clone());
                }
            }
        }
        for flight in [&out, &back] {
            let available = economy_available(&app, flight).await;
            assert_eq!(sold[&flight.id] + available, 10, "every seat sold is a seat taken, once");
            assert_eq!(taken_seats(&app, flight).await.len(), sold[&flight.id] as usize);
            if short.contains(&flight.id) {
                assert_eq!(available, 0, "a refusal for want of seats means the flight was sold out");
            }
        }
        app.assert_invariants().await;
    }

    /// Bad trips name their fields and change nothing.
    async fn bad_trips_are_refused_field_by_field(app: TestApp) {
        let (out, back) = out_and_back(&app, 1).await;
        let sara = Customer::new(&app);
        let fields = |status: tonic::Status| -> Vec<String> {
            assert_eq!(reason(&status), "VALIDATION_ERROR");
            ContractError::from_status(&status).fields
        };
        let both = pb::CreateBookingRequest { flight_id: out.id.clone(), ..trip(&[&out, &back], vec![adult("Sara")]) };
        assert_eq!(fields(sara.book(&app, both).await.unwrap_err()), ["flight_id"]);
        assert_eq!(fields(sara.book(&app, trip(&[&out], vec![adult("Sara")])).await.unwrap_err()), ["segments"]);
        assert_eq!(fields(sara.book(&app, trip(&[&out, &out], vec![adult("Sara")])).await.unwrap_err()), ["segments[1].flight_id"]);
        assert_eq!(fields(sara.book(&app, trip(&[&back, &out], vec![adult("Sara")])).await.unwrap_err()), ["segments[1].flight_id"]);
        let mut seats = trip(&[&out, &back], vec![adult("Sara")]);
        seats.segments[0].seat_numbers = vec!["10A".into(), "10B".into()];
        seats.segments[1].seat_numbers = vec!["A1".into()];
        assert_eq!(fields(sara.book(&app, seats).await.unwrap_err()), ["segments[0].seat_numbers", "segments[1].seat_numbers[0]"]);
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 2);
        }
    }

    /// A trip needs a pass for each of its flights whose waiting room is on, and only those.
    async fn a_trip_needs_a_pass_for_each_flight_with_a_room(app: TestApp) {
        let (out, back) = out_and_back(&app, 2).await;
        configure(&app, &back, AT_ONCE, None).await.expect("room on");
        let sara = Customer::new(&app);
        let refused = sara.book(&app, trip(&[&out, &back], vec![adult("Sara")])).await.unwrap_err();
        assert_eq!(reason(&refused), "WAITING_ROOM_REQUIRED");
        assert_eq!(metadata(&refused)["flightId"], back.id, "the flight whose pass is missing");
        let pass = pass_for(&app, &sara, &back).await;
        let with_pass = pb::CreateBookingRequest { waiting_room_passes: vec![pass], ..trip(&[&out, &back], vec![adult("Sara")]) };
        let booked = app.bookings().create_booking(sara.keyed(with_pass, &idempotency_key())).await;
        assert_eq!(booked.map(Response::into_inner).expect("admitted").segments.len(), 2);
    }
}

stripe_tests! {
    /// A payment arriving after the trip expired takes every segment's seats again.
    async fn a_late_payment_retakes_every_segment(app: TestApp, stripe: StripeTestServer) {
        let (out, back) = out_and_back(&app, 1).await;
        let sara = Customer::new(&app);
        let booking = sara.book(&app, trip(&[&out, &back], vec![adult("Sara")])).await.expect("held");
        let intent = pay(&app, &sara, &booking, &idempotency_key()).await.expect("paying").into_inner();
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1);
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 2, "expired: released");
        }
        let succeeded = stripe.succeed(&intent.provider_reference);
        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", succeeded).await, StatusCode::OK);
        let paid = sara.get(&app, &booking).await.unwrap();
        assert_eq!(paid.status(), pb::BookingStatus::Confirmed);
        assert_eq!(paid.segments, booking.segments, "the same seats on both flights");
        for flight in [&out, &back] {
            assert_eq!(economy_available(&app, flight).await, 1);
        }
        assert!(stripe.refunds_of(&intent.provider_reference).is_empty());
        app.assert_invariants().await;
    }
}
