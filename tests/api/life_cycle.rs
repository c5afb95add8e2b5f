//! A booking's life cycle: due holds read as expired and released once by the sweeper (on demand and on its
//! own schedule), a confirmation racing the expiry, and every illegal transition refused with the current
//! status; on SQLite and PostgreSQL (plus Redis).

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, Role, backend_tests, request};
use futures::{StreamExt as _, future::join_all};
use tonic::{Code, Status};

use crate::bookings::*;

backend_tests! {
    async fn due_holds_read_as_expired_and_the_sweeper_releases_their_seats_once(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&flight, vec![adult("Sara"), adult("Omar")], &[])).await.unwrap();
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Lina")], &[])).await.unwrap();
        assert_eq!(app.sweep().await, 0, "nothing is due yet");
        app.clock.advance(PAST_HOLD_TTL);

        let read = sara.get(&app, &held).await.unwrap();
        assert_eq!((read.status(), read.hold_expires_at), (pb::BookingStatus::Expired, None), "expired before any sweep");
        assert_eq!(reason(&confirm(&app, &held).await.unwrap_err()), "BOOKING_EXPIRED");
        assert_eq!(app.sweep().await, 2);
        assert_eq!(app.sweep().await, 0, "each hold expires once");
        assert_eq!(economy_available(&app, &flight).await, 4);
        assert!(taken_seats(&app, &flight).await.is_empty());
        let read = sara.get(&app, &held).await.unwrap();
        assert_eq!((read.status(), read.version), (pb::BookingStatus::Expired, 2));
        assert_eq!(reason(&sara.cancel(&app, &held).await.unwrap_err()), "INVALID_STATE_TRANSITION");
    }

    async fn confirmation_racing_expiry_ends_confirmed_or_expired_never_both(app: TestApp) {
        let flight = flight_with_economy(&app, 4, "ABCDE").await;
        let mut holds = Vec::new();
        for i in 0..20 {
            holds.push(Customer::new(&app).book(&app, hold(&flight, vec![adult(&format!("P{i}"))], &[])).await.unwrap());
        }
        let confirmations = join_all(holds.iter().map(|booking| async {
            loop {
                match confirm(&app, booking).await {
                    Err(status) if reason(&status) == "BOOKING_CONFLICT" => continue,
                    other => return other,
                }
            }
        }));
        let expiry = async {
            app.clock.advance(PAST_HOLD_TTL);
            app.sweep().await
        };
        let (confirmations, swept) = tokio::join!(confirmations, expiry);
        let mut confirmed = 0;
        for (booking, outcome) in holds.iter().zip(&confirmations) {
            let operator = app.bearer(Role::Operator);
            let now = app.bookings()
                .get_booking(request(pb::GetBookingRequest { booking_id: booking.id.clone() }, &[("authorization", &operator)]))
                .await
                .unwrap()
                .into_inner();
            match outcome {
                Ok(_) => {
                    assert_eq!(now.status(), pb::BookingStatus::Confirmed);
                    confirmed += 1;
                }
                Err(status) => {
                    assert_eq!(reason(status), "BOOKING_EXPIRED");
                    assert_eq!(now.status(), pb::BookingStatus::Expired);
                }
            }
        }
        let swept = swept + app.sweep().await;
        assert_eq!(confirmed + swept, 20, "every hold ended exactly one way");
        assert_eq!(economy_available(&app, &flight).await, 20 - confirmed as i32);
        assert_eq!(taken_seats(&app, &flight).await.len(), confirmed);
    }

    async fn every_illegal_transition_is_refused_with_the_current_status(app: TestApp) {
        let flight = flight_with_economy(&app, 4, "ABC").await;
        let sara = Customer::new(&app);
        let refused = |result: Result<pb::Booking, Status>, current: &str| {
            let error = ContractError::from_status(&result.unwrap_err());
            assert_eq!((error.code, error.reason.as_str()), (Code::FailedPrecondition, "INVALID_STATE_TRANSITION"));
            assert_eq!(error.metadata["currentStatus"], current);
        };
        let cancelled = sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let after = sara.cancel(&app, &cancelled).await.unwrap();
        assert_eq!((after.status(), after.version, after.hold_expires_at), (pb::BookingStatus::Cancelled, 2, None));
        refused(sara.cancel(&app, &cancelled).await, "CANCELLED");
        refused(confirm(&app, &cancelled).await, "CANCELLED");
        refused(sara.change_seats(&app, &cancelled, &["11A"]).await, "CANCELLED");

        let confirmed = sara.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        assert_eq!(confirm(&app, &confirmed).await.unwrap().status(), pb::BookingStatus::Confirmed);
        refused(confirm(&app, &confirmed).await, "CONFIRMED");
        refused(sara.cancel(&app, &confirmed).await, "CONFIRMED");
        refused(sara.change_seats(&app, &confirmed, &["11A"]).await, "CONFIRMED");
        assert_eq!(economy_available(&app, &flight).await, 11, "cancelled seats came back once, confirmed ones stay sold");
    }

    async fn the_background_sweeper_expires_holds_on_its_own(app: TestApp, settings = [("AEROBOOK_SWEEP_INTERVAL_SECONDS", "600")]) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let mut updates = app.flights()
            .watch_availability(pb::WatchAvailabilityRequest { flight_id: flight.id.clone() })
            .await
            .unwrap()
            .into_inner();
        let economy = |update: pb::AvailabilityUpdate| update.cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).unwrap().seats_available;
        assert_eq!(economy(updates.next().await.unwrap().unwrap()), 3);
        // The sweeper runs on the server's clock: moving it past the hold's expiry (and the 600 s sweep
        // interval) runs the sweep now, where ten minutes of wall time would fail the timeout.
        app.clock.advance(PAST_HOLD_TTL);
        let released = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.expect("released by the sweep the clock made due");
        assert_eq!(economy(released.unwrap().unwrap()), 4);
    }

}
