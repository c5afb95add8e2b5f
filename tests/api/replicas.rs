//! PostgreSQL read replicas (`AEROBOOK_DATABASE_READ_URL`), on a primary and a streaming standby of the
//! test's own: searches are served by the replica while it is fresh, by the primary once its replay lags
//! past `AEROBOOK_REPLICA_MAX_LAG_MS` or it is away, and by the replica again once it caught up.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{Backend, TestApp, pg_ha::PgPair, search_request};
use sea_orm::{ConnectionTrait as _, Database};

use crate::bookings::flight_between;

/// How long a replica's state may take to show in where searches go (the lag is measured every 250 ms).
const PATIENCE: Duration = Duration::from_secs(20);

/// Whether a search of the flight's route and day lists it.
async fn listed(app: &TestApp, flight: &pb::Flight) -> bool {
    let day = aerobook_sdk::local_times(flight).expect("local times").departure_date().to_string();
    let search = search_request(&flight.origin, &flight.destination, &day);
    let found = app.flights().search_flights(search).await.expect("a search").into_inner();
    found.flights.iter().any(|listed| listed.id == flight.id)
}

/// Searches until `wanted` is whether the flight is listed; false when it never is within [`PATIENCE`].
async fn until_listed(app: &TestApp, flight: &pb::Flight, wanted: bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while listed(app, flight).await != wanted {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_read_a_fresh_replica_and_the_primary_while_it_lags_or_is_away() {
    let Some(pair) = PgPair::start() else { return };
    let (primary, standby) = (pair.primary_url(), pair.standby_url());
    let settings = [
        ("DATABASE_URL", primary.as_str()),
        ("AEROBOOK_DATABASE_READ_URL", standby.as_str()),
        ("AEROBOOK_REPLICA_MAX_LAG_MS", "3000"),
        ("AEROBOOK_SEARCH_CACHE_TTL_SECONDS", "0"),
    ];
    let Some(app) = TestApp::spawn(Backend::External, &settings).await else { return };
    let replica = Database::connect(standby.as_str()).await.expect("the standby answers");

    // Fresh: a flight added on the primary is searched from the replica once replayed.
    let first = flight_between(&app, ("RUH", "AHB"), 3, 1, "A").await;
    assert!(until_listed(&app, &first, true).await, "the replica replays the first flight");

    // Replay paused: a new flight is on the primary only, and searches do not list it while the replica is
    // within its bound (served by the replica)...
    replica.execute_unprepared("SELECT pg_wal_replay_pause()").await.expect("pause replay");
    let second = flight_between(&app, ("RUH", "AHB"), 3, 1, "A").await;
    assert!(!listed(&app, &second).await, "served by the replica, which has not replayed it");
    // ...then do, once its lag passes 3 s: the primary serves.
    assert!(until_listed(&app, &second, true).await, "a lagging replica is bypassed");

    // Caught up again, the replica serves (and has the flight).
    replica.execute_unprepared("SELECT pg_wal_replay_resume()").await.expect("resume replay");
    let third = flight_between(&app, ("RUH", "AHB"), 3, 1, "A").await;
    assert!(until_listed(&app, &third, true).await);

    // Away: the primary serves.
    pair.stop_standby();
    let fourth = flight_between(&app, ("RUH", "AHB"), 3, 1, "A").await;
    assert!(until_listed(&app, &fourth, true).await, "searches go on without the replica");
    app.assert_invariants().await;
}
