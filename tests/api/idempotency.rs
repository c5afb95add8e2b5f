//! The idempotency store through CreateBooking (and CreateFlight): one execution per key under concurrent
//! duplicates, conflicts for a key reused with another request, replays of answers and refusals, and keys
//! forgotten after a day; on SQLite and PostgreSQL (plus Redis).

use std::{collections::BTreeSet, time::Duration};

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, Role, backend_tests, create_flight_request, idempotency_key, request};
use futures::future::join_all;
use prost::Message as _;
use tonic::{Code, Response};

use crate::bookings::*;

backend_tests! {
    async fn fifty_identical_calls_with_one_key_book_once(app: TestApp) {
        let flight = flight_with_economy(&app, 10, "ABCDE").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let message = hold(&flight, vec![adult("Sara"), adult("Omar")], &[]);
        let calls = (0..50).map(|_| {
            let mut client = app.bookings();
            let request = sara.keyed(message.clone(), &key);
            async move { client.create_booking(request).await }
        });
        let results = join_all(calls).await;
        let booked: Vec<&Response<pb::Booking>> = results.iter().flatten().collect();
        for failure in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(reason(failure), "IDEMPOTENCY_IN_PROGRESS", "{failure:?}");
        }
        assert!(!booked.is_empty());
        let ids: BTreeSet<&str> = booked.iter().map(|r| r.get_ref().id.as_str()).collect();
        assert_eq!(ids.len(), 1, "one booking");
        assert_eq!(booked.iter().filter(|r| !is_replayed(r)).count(), 1, "executed once; every other answer is a replay");
        assert_eq!(economy_available(&app, &flight).await, 48);

        let replay = app.bookings().create_booking(sara.keyed(message, &key)).await.unwrap();
        assert!(is_replayed(&replay));
        let first = booked.iter().find(|r| !is_replayed(r)).unwrap();
        assert_eq!(replay.get_ref().encode_to_vec(), first.get_ref().encode_to_vec(), "byte-identical");
        let mine = app.bookings().list_bookings(sara.plain(pb::ListBookingsRequest::default())).await.unwrap();
        assert_eq!(mine.into_inner().bookings.len(), 1);
    }

    async fn concurrent_calls_with_one_key_and_two_requests_execute_one_and_conflict_the_other(app: TestApp) {
        // The calls that wait for the first with their key (in its batch, or answered in process once it
        // ends) must still be checked against its request.
        let flight = flight_with_economy(&app, 10, "ABCDE").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let (one, two) = (hold(&flight, vec![adult("Sara")], &[]), hold(&flight, vec![adult("Sara"), adult("Omar")], &[]));
        let calls = (0..40).map(|i| {
            let mut client = app.bookings();
            let message = if i % 2 == 0 { one.clone() } else { two.clone() };
            let request = sara.keyed(message.clone(), &key);
            async move { (message, client.create_booking(request).await) }
        });
        let results = join_all(calls).await;
        let executed: Vec<_> = results.iter().filter(|(_, r)| r.as_ref().is_ok_and(|r| !is_replayed(r))).collect();
        assert_eq!(executed.len(), 1, "executed once");
        let (winner, first) = (&executed[0].0, executed[0].1.as_ref().unwrap());
        for (message, result) in &results {
            match result {
                Ok(answer) => {
                    assert_eq!(message, winner, "only the executed request is answered with its booking");
                    assert_eq!(answer.get_ref().encode_to_vec(), first.get_ref().encode_to_vec());
                }
                Err(status) if message == winner => assert_eq!(reason(status), "IDEMPOTENCY_IN_PROGRESS", "{status:?}"),
                Err(status) => assert_eq!(reason(status), "IDEMPOTENCY_CONFLICT", "{status:?}"),
            }
        }
        assert_eq!(economy_available(&app, &flight).await, 50 - winner.passengers.len() as i32);
    }

    async fn a_key_reused_for_another_request_or_method_conflicts_and_changes_nothing(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let booking = app.bookings()
            .create_booking(sara.keyed(hold(&flight, vec![adult("Sara")], &[]), &key))
            .await
            .unwrap()
            .into_inner();
        let other_request = hold(&flight, vec![adult("Sara"), adult("Omar")], &[]);
        let status = app.bookings().create_booking(sara.keyed(other_request, &key)).await.unwrap_err();
        let error = ContractError::from_status(&status);
        assert_eq!((error.code, error.reason.as_str(), error.retryable), (Code::FailedPrecondition, "IDEMPOTENCY_CONFLICT", false));
        let cancel = pb::CancelBookingRequest { booking_id: booking.id.clone(), reason: String::new() };
        let status = app.bookings().cancel_booking(sara.keyed(cancel, &key)).await.unwrap_err();
        assert_eq!(reason(&status), "IDEMPOTENCY_CONFLICT");

        assert_eq!(sara.get(&app, &booking).await.unwrap().status(), pb::BookingStatus::Held);
        assert_eq!(economy_available(&app, &flight).await, 3);
        // Keys are scoped per caller: another customer's identical key is theirs alone.
        let omar = Customer::new(&app);
        let theirs = app.bookings().create_booking(omar.keyed(hold(&flight, vec![adult("Omar")], &[]), &key)).await.unwrap();
        assert!(!is_replayed(&theirs));
        assert_ne!(theirs.get_ref().id, booking.id);
    }

    async fn finished_calls_replay_and_conflict_while_key_writes_wait(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let message = hold(&flight, vec![adult("Sara")], &[]);
        let first = app.bookings().create_booking(sara.keyed(message.clone(), &key)).await.unwrap();
        // Every write of a key waits for this transaction (SQLite: the write lock; PostgreSQL: the table lock):
        // answering a finished call must not need one.
        use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
        let db = app.database().await;
        let blocker = db.begin().await.unwrap();
        let lock = if app.is_postgres() { "LOCK TABLE idempotency_keys IN EXCLUSIVE MODE" } else { "UPDATE airports SET name = name" };
        blocker.execute_unprepared(lock).await.unwrap();
        async fn within<T>(call: impl std::future::Future<Output = T>) -> T {
            tokio::time::timeout(Duration::from_secs(5), call).await.expect("answered while key writes wait")
        }
        let replay = within(app.bookings().create_booking(sara.keyed(message, &key))).await.unwrap();
        assert!(is_replayed(&replay));
        assert_eq!(replay.get_ref().encode_to_vec(), first.get_ref().encode_to_vec(), "byte-identical");
        let other = hold(&flight, vec![adult("Sara"), adult("Omar")], &[]);
        let status = within(app.bookings().create_booking(sara.keyed(other, &key))).await.unwrap_err();
        assert_eq!(reason(&status), "IDEMPOTENCY_CONFLICT");
        blocker.rollback().await.unwrap();
    }

    async fn validation_does_not_consume_the_key_and_refusals_are_replayed(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let (sara, omar) = (Customer::new(&app), Customer::new(&app));
        let key = idempotency_key();
        let status = app.bookings().create_booking(sara.keyed(hold(&flight, vec![adult(" ")], &[]), &key)).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["passengers[0].given_name"]);
        let status = app.bookings().create_booking(sara.keyed(hold(&flight, vec![adult("Sara")], &["99A"]), &key)).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["seat_numbers[0]"]);
        let held = app.bookings().create_booking(sara.keyed(hold(&flight, vec![adult("Sara")], &["10A"]), &key)).await.unwrap();
        assert!(!is_replayed(&held), "the failed attempts did not use up the key");

        let omar_key = idempotency_key();
        let wants_10a = hold(&flight, vec![adult("Omar")], &["10A"]);
        let status = app.bookings().create_booking(omar.keyed(wants_10a.clone(), &omar_key)).await.unwrap_err();
        assert_eq!(reason(&status), "SEATS_UNAVAILABLE");
        assert!(status.metadata().get("idempotent-replayed").is_none());
        sara.cancel(&app, held.get_ref()).await.unwrap();
        assert!(taken_seats(&app, &flight).await.is_empty());

        let replayed = app.bookings().create_booking(omar.keyed(wants_10a.clone(), &omar_key)).await.unwrap_err();
        assert_eq!(reason(&replayed), "SEATS_UNAVAILABLE", "the stored outcome, although 10A is free now");
        assert_eq!(replayed.metadata().get("idempotent-replayed").unwrap(), "true");
        assert!(taken_seats(&app, &flight).await.is_empty(), "a replay changes nothing");
        let fresh = omar.book(&app, wants_10a).await.unwrap();
        assert_eq!(fresh.seat_numbers, ["10A"]);
    }

    async fn keys_are_kept_a_day_then_forgotten(app: TestApp) {
        let flight = flight_with_economy(&app, 4, "ABC").await;
        let sara = Customer::new(&app);
        let (kept, forgotten) = (idempotency_key(), idempotency_key());
        let message = hold(&flight, vec![adult("Sara")], &[]);
        let first = app.bookings().create_booking(sara.keyed(message.clone(), &kept)).await.unwrap().into_inner();
        app.bookings().create_booking(sara.keyed(message.clone(), &forgotten)).await.unwrap();
        app.clock.advance(Duration::from_secs(23 * 3600));
        assert_eq!(app.forget_expired_keys().await, 0, "kept at least 24 hours");
        let replay = app.bookings().create_booking(sara.keyed(message.clone(), &kept)).await.unwrap();
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner().id, first.id);

        app.clock.advance(Duration::from_secs(2 * 3600));
        let anew = app.bookings().create_booking(sara.keyed(message, &kept)).await.unwrap();
        assert!(!is_replayed(&anew), "an expired key is a new key");
        assert_ne!(anew.into_inner().id, first.id);
        // The flight's key and `forgotten` are gone; `kept` was claimed again a moment ago. The sweeper may
        // have forgotten them first (the clock passed its interval), so count what is left, not who deleted.
        app.forget_expired_keys().await;
        assert_eq!(crate::payments::count(&app, "SELECT COUNT(*) AS n FROM idempotency_keys").await, 1);
        assert_eq!(app.forget_expired_keys().await, 0);
    }

    async fn a_retried_create_flight_replays_the_same_flight(app: TestApp) {
        let operator = app.bearer(Role::Operator);
        let key = idempotency_key();
        let flight = create_flight_request("XY777", "RUH", "DMM", 3);
        let first = app.flights().create_flight(request(flight.clone(), &[("authorization", &operator), ("idempotency-key", &key)])).await.unwrap();
        let again = app.flights().create_flight(request(flight, &[("authorization", &operator), ("idempotency-key", &key)])).await.unwrap();
        assert!(!is_replayed(&first) && is_replayed(&again));
        assert_eq!(first.get_ref().encode_to_vec(), again.get_ref().encode_to_vec());
    }
}
