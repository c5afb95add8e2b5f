//! Flight changes, on SQLite and PostgreSQL (plus Redis): quotes priced by the server (the fare
//! difference for the party, the booked cabin's fee on a paid booking), a hold moved to the quoted flight
//! in one step, a paid booking changed at once when nothing is due, quotes that expire or were used, a
//! full cabin named, a trip kept in travel order, and replays.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, Role, TestApp, backend_tests, create_flight_request, idempotency_key, request};
use tonic::Response;

use crate::bookings::{Customer, adult, confirm, economy_available, hold, is_replayed, reason, taken_seats};

/// A flight in `days_ahead` days whose economy cabin has `seats` seats (row 10, from A) at `price` SAR minor
/// units per adult, and a change fee of `change_fee`.
pub(crate) async fn flight(app: &TestApp, days_ahead: i64, seats: usize, price: i64, change_fee: i64) -> pb::Flight {
    let number = format!("CH{}", 1000 + rand_suffix());
    let mut flight = create_flight_request(&number, "RUH", "JED", days_ahead);
    flight.cabins[1].rows = 1;
    flight.cabins[1].seat_letters = "ABCDEF"[..seats].into();
    let sar = |amount_minor| Some(pb::Money { currency_code: "SAR".into(), amount_minor });
    flight.cabins[1].price = sar(price);
    flight.cabins[1].change_fee = sar(change_fee);
    let operator = app.bearer(Role::Operator);
    app.flights()
        .create_flight(request(flight, &[("authorization", &operator), ("idempotency-key", &idempotency_key())]))
        .await
        .expect("flight created")
        .into_inner()
}

/// Distinct flight numbers: flights created within one minute depart at the same time.
fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) async fn quote(
    app: &TestApp,
    customer: &Customer,
    booking: &pb::Booking,
    from: &pb::Flight,
    to: &pb::Flight,
) -> Result<pb::ChangeQuote, tonic::Status> {
    let message = pb::QuoteChangeRequest {
        booking_id: booking.id.clone(),
        flight_id: from.id.clone(),
        new_flight_id: to.id.clone(),
        new_cabin: pb::CabinClass::Economy.into(),
    };
    app.bookings().quote_change(customer.plain(message)).await.map(Response::into_inner)
}

pub(crate) async fn change(
    app: &TestApp,
    customer: &Customer,
    booking: &pb::Booking,
    quote: &pb::ChangeQuote,
    key: &str,
) -> Result<Response<pb::Booking>, tonic::Status> {
    let message = pb::ChangeFlightRequest { booking_id: booking.id.clone(), quote_id: quote.quote_id.clone() };
    app.bookings().change_flight(customer.keyed(message, key)).await
}

pub(crate) fn minor(money: &Option<pb::Money>) -> i64 {
    money.as_ref().expect("an amount").amount_minor
}

backend_tests! {
    async fn a_hold_moves_to_the_quoted_flight_with_its_expiry(app: TestApp) {
        let (today, dearer) = (flight(&app, 2, 4, 40_000, 5_000).await, flight(&app, 3, 4, 45_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&today, vec![adult("Sara"), adult("Omar")], &[])).await.expect("held");
        let priced = quote(&app, &sara, &held, &today, &dearer).await.expect("quoted");
        assert_eq!(
            (minor(&priced.fare_difference), minor(&priced.change_fee), minor(&priced.amount_due)),
            (10_000, 0, 10_000),
            "two adults, 50.00 dearer each; no fee on a hold"
        );
        let lasts = priced.expires_at.unwrap().seconds - held.created_at.unwrap().seconds;
        assert!((599..=601).contains(&lasts), "a quote lasts ten minutes, got {lasts} s");
        assert_eq!(economy_available(&app, &dearer).await, 4, "a quote holds nothing");

        let key = idempotency_key();
        let moved = change(&app, &sara, &held, &priced, &key).await.expect("changed").into_inner();
        assert_eq!((moved.status(), moved.flight_id.as_str()), (pb::BookingStatus::Held, dearer.id.as_str()));
        assert_eq!(moved.segments.len(), 1);
        assert_eq!((moved.segments[0].flight_id.as_str(), moved.segments[0].seat_numbers.clone()), (dearer.id.as_str(), vec!["10A".to_owned(), "10B".to_owned()]));
        assert_eq!((minor(&moved.total_price), minor(&moved.segments[0].price)), (90_000, 90_000));
        assert_eq!(moved.hold_expires_at, held.hold_expires_at, "the hold keeps its expiry");
        assert_eq!(moved.seat_numbers, moved.segments[0].seat_numbers);
        assert_eq!((economy_available(&app, &today).await, economy_available(&app, &dearer).await), (4, 2));
        assert!(taken_seats(&app, &today).await.is_empty());
        assert_eq!(sara.get(&app, &held).await.unwrap(), moved, "stored as answered");

        let replay = change(&app, &sara, &held, &priced, &key).await.expect("replayed");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), moved);
        let again = change(&app, &sara, &held, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&again), "QUOTE_EXPIRED", "a quote is made once");
        app.assert_invariants().await;
    }

    async fn a_paid_booking_changes_at_once_when_nothing_is_due(app: TestApp) {
        let (booked, same_fare) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        confirm(&app, &held).await.expect("paid at the desk");
        let priced = quote(&app, &sara, &held, &booked, &same_fare).await.expect("quoted");
        assert_eq!(minor(&priced.amount_due), 0);
        let moved = change(&app, &sara, &held, &priced, &idempotency_key()).await.expect("changed").into_inner();
        assert_eq!((moved.status(), moved.flight_id.as_str()), (pb::BookingStatus::Confirmed, same_fare.id.as_str()));
        assert_eq!((economy_available(&app, &booked).await, economy_available(&app, &same_fare).await), (2, 1));
        app.assert_invariants().await;
    }

    /// The booked cabin's fee is due on a paid booking, even at the same fare: the change waits for it.
    async fn a_paid_booking_pays_the_booked_cabin_s_fee(app: TestApp) {
        let (booked, same_fare) = (flight(&app, 2, 2, 40_000, 7_500).await, flight(&app, 3, 2, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        confirm(&app, &held).await.expect("paid at the desk");
        let priced = quote(&app, &sara, &held, &booked, &same_fare).await.expect("quoted");
        assert_eq!((minor(&priced.fare_difference), minor(&priced.change_fee), minor(&priced.amount_due)), (0, 7_500, 7_500));
        let waiting = change(&app, &sara, &held, &priced, &idempotency_key()).await.expect("made").into_inner();
        assert_eq!(waiting.flight_id, booked.id, "unchanged until paid");
        assert_eq!(minor(&waiting.pending_change.expect("waiting for its payment").amount_due), 7_500);
    }

    async fn quotes_expire_after_ten_minutes(app: TestApp) {
        let (booked, later) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        confirm(&app, &held).await.expect("paid at the desk");
        let priced = quote(&app, &sara, &held, &booked, &later).await.expect("quoted");
        app.clock.advance(Duration::from_secs(601));
        let expired = change(&app, &sara, &held, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&expired), "QUOTE_EXPIRED");
        assert_eq!(economy_available(&app, &later).await, 2);
    }

    async fn a_change_into_a_full_cabin_names_its_flight_and_changes_nothing(app: TestApp) {
        let (booked, full) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 1, 40_000, 0).await);
        Customer::new(&app).book(&app, hold(&full, vec![adult("Lina")], &[])).await.expect("the last seat sold");
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let priced = quote(&app, &sara, &held, &booked, &full).await.expect("a quote holds nothing, so it is given");
        let refused = change(&app, &sara, &held, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&refused), "SEATS_UNAVAILABLE");
        assert_eq!(ContractError::from_status(&refused).metadata["flightId"], full.id);
        assert_eq!(sara.get(&app, &held).await.unwrap(), held, "the booking is as it was");
        assert_eq!(economy_available(&app, &booked).await, 1);
        app.assert_invariants().await;
    }

    async fn a_trip_s_return_changes_in_travel_order_only(app: TestApp) {
        let (out, back) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 5, 2, 40_000, 0).await);
        let (too_early, later) = (flight(&app, 1, 2, 40_000, 0).await, flight(&app, 6, 2, 30_000, 0).await);
        let sara = Customer::new(&app);
        let segment = |flight: &pb::Flight| pb::SegmentRequest {
            flight_id: flight.id.clone(),
            cabin: pb::CabinClass::Economy.into(),
            seat_numbers: Vec::new(),
        };
        let trip = pb::CreateBookingRequest {
            segments: vec![segment(&out), segment(&back)],
            ..hold(&out, vec![adult("Sara")], &[])
        };
        let trip = pb::CreateBookingRequest { flight_id: String::new(), cabin: 0, ..trip };
        let booked = sara.book(&app, trip).await.expect("held");
        let refused = quote(&app, &sara, &booked, &back, &too_early).await.unwrap_err();
        assert_eq!(reason(&refused), "VALIDATION_ERROR");
        assert_eq!(ContractError::from_status(&refused).fields, ["new_flight_id"]);
        let cheaper = quote(&app, &sara, &booked, &back, &later).await.expect("quoted");
        assert_eq!(minor(&cheaper.amount_due), -10_000);
        let moved = change(&app, &sara, &booked, &cheaper, &idempotency_key()).await.expect("changed").into_inner();
        let flights: Vec<&str> = moved.segments.iter().map(|s| s.flight_id.as_str()).collect();
        assert_eq!(flights, [out.id.as_str(), later.id.as_str()]);
        assert_eq!((moved.flight_id.as_str(), minor(&moved.total_price)), (out.id.as_str(), 70_000));
        assert_eq!((economy_available(&app, &back).await, economy_available(&app, &later).await), (2, 1));
        app.assert_invariants().await;
    }

    async fn bad_quotes_name_their_fields_and_others_bookings_are_not_found(app: TestApp) {
        let (booked, later) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let empty = app.bookings().quote_change(sara.plain(pb::QuoteChangeRequest::default())).await.unwrap_err();
        ContractError::from_status(&empty).assert_validation(&["booking_id", "flight_id", "new_flight_id", "new_cabin"]);
        let itself = quote(&app, &sara, &held, &booked, &booked).await.unwrap_err();
        assert_eq!(ContractError::from_status(&itself).fields, ["new_flight_id"]);
        let not_booked = quote(&app, &sara, &held, &later, &later).await.unwrap_err();
        assert_eq!(ContractError::from_status(&not_booked).fields, ["flight_id"]);
        let stranger = quote(&app, &Customer::new(&app), &held, &booked, &later).await.unwrap_err();
        assert_eq!(reason(&stranger), "NOT_FOUND");
    }
}
