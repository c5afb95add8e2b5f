//! Seat choice under concurrency, on PostgreSQL (SQLite's single writer serialises every write, so these
//! interleavings cannot happen there): seat changes take the cabin's lock as holds do, a seat the server
//! chose that a concurrent change took behind the cabin's back is chosen again, and a hold queueing on a busy cabin is not cut
//! short by the idempotency key's claim timeout.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::TestApp;
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};

use crate::bookings::{Customer, adult, flight_with_economy, hold};

/// Waits (at most 10 s) until some statement of the server waits for a lock.
async fn until_the_server_waits(app: &TestApp) {
    let waiting = async {
        while !app.server_waits_for_a_lock().await {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the server waits for the lock");
}

async fn lock_economy(db: &sea_orm::DatabaseTransaction, flight: &pb::Flight) {
    let sql = format!("SELECT 1 FROM flight_cabins WHERE flight_id = '{}' AND cabin = 'ECONOMY' FOR UPDATE", flight.id);
    db.execute_unprepared(&sql).await.expect("cabin locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_changes_take_the_cabins_lock() {
    let Some(app) = TestApp::on_postgres(&[]).await else { return };
    let flight = flight_with_economy(&app, 2, "AB").await;
    let customer = Customer::new(&app);
    let booking = customer.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("held");
    let db = app.database().await;
    let blocker = db.begin().await.unwrap();
    lock_economy(&blocker, &flight).await;
    let change = async { customer.change_seats(&app, &booking, &["11B"]).await };
    let (changed, ()) = tokio::join!(change, async {
        until_the_server_waits(&app).await;
        blocker.commit().await.unwrap();
    });
    assert_eq!(changed.expect("seats changed once the cabin is free").seat_numbers, ["11B"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_the_server_chose_is_chosen_again_when_taken_meanwhile() {
    let Some(app) = TestApp::on_postgres(&[]).await else { return };
    let flight = flight_with_economy(&app, 2, "AB").await;
    let first = Customer::new(&app).book(&app, hold(&flight, vec![adult("Sara")], &["11B"])).await.expect("held");
    // A seat change that neither serialises on the cabin nor marks the cabin's taken seats (as ChangeSeats
    // once did, or an instance of a version before the cabin kept them), still uncommitted: the new hold
    // chooses 10A, then finds it taken when the change commits, and the cabin's marks are rebuilt.
    let db = app.database().await;
    let change = db.begin().await.unwrap();
    change
        .execute_unprepared(&format!(
            "UPDATE seat_assignments SET seat_number = '10A' WHERE booking_id = '{}'",
            first.id
        ))
        .await
        .unwrap();
    let customer = Customer::new(&app);
    let (held, ()) = tokio::join!(customer.book(&app, hold(&flight, vec![adult("Omar")], &[])), async {
        until_the_server_waits(&app).await;
        change.commit().await.unwrap();
    });
    let held = held.expect("a free seat is chosen instead of refusing");
    assert_eq!(held.seat_numbers, ["10B"]);
    assert_eq!(customer.get(&app, &held).await.unwrap().seat_numbers, ["10B"], "stored with the seat it holds");
    app.assert_invariants().await;
}

/// The key's claim gives up after 2 s; the hold's own statements wait as long as the call's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_queued_on_a_busy_cabin_outlasts_the_claim_timeout() {
    let Some(app) = TestApp::on_postgres(&[]).await else { return };
    let flight = flight_with_economy(&app, 2, "AB").await;
    let db = app.database().await;
    let blocker = db.begin().await.unwrap();
    lock_economy(&blocker, &flight).await;
    let customer = Customer::new(&app);
    let (held, ()) = tokio::join!(customer.book(&app, hold(&flight, vec![adult("Sara")], &[])), async {
        until_the_server_waits(&app).await;
        // Longer than the claim's lock timeout (2 s), shorter than the call deadline (10 s).
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        blocker.commit().await.unwrap();
    });
    assert_eq!(held.expect("the hold waits for the cabin").seat_numbers, ["10A"]);
}
