//! On highly available Redis of the test's own (redis-server processes): a Redis Cluster of three masters
//! with a replica each, where the flash sale's Redis parts (waiting room, sold-out gate, rate limits) keep
//! each flight's keys in one slot, and a master killed mid-sale, its replica promoted, loses no booking
//! and sells no seat twice; the same failover under Sentinel. The rest of the Redis-backed suite runs on a
//! cluster too (scripts/test, scripts/redis-cluster).

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    Backend, ContractError, TestApp,
    redis_ha::{RedisCluster, RedisSentinel},
    search_request,
};
use tonic::Status;

use crate::{
    bookings::{Customer, flight_with_economy},
    waiting_room::{AT_ONCE, configure, join, last_status, watch, with_pass},
};

/// How long a buyer keeps trying through a failover.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server on the Redis at `url` (and PostgreSQL when configured); `None` when neither `DATABASE_URL` nor
/// `REDIS_URL` is set, as for the other external tests.
async fn on(url: &str, settings: &[(&str, &str)]) -> Option<TestApp> {
    let mut settings = settings.to_vec();
    settings.push(("REDIS_URL", url));
    TestApp::spawn(Backend::External, &settings).await
}

/// Sells a flight of four seats to eight buyers through its waiting room, `fail` striking after the first
/// two: exactly four bookings, on four seats, and the invariants hold.
async fn sell_out_through(app: &TestApp, fail: impl AsyncFnOnce(&pb::Flight)) {
    let flight = flight_with_economy(app, 2, "AB").await;
    configure(app, &flight, AT_ONCE, None).await.expect("room configured");
    let buyers: Vec<Customer> = (0..8).map(|_| Customer::new(app)).collect();
    let mut outcomes = Vec::new();
    for buyer in &buyers[..2] {
        outcomes.push(buy(app, buyer, &flight).await);
    }
    fail(&flight).await;
    for buyer in &buyers[2..] {
        outcomes.push(buy(app, buyer, &flight).await);
    }
    let booked: Vec<&pb::Booking> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
    assert_eq!(booked.len(), 4, "four seats, four bookings, however the failover went: {outcomes:?}");
    let mut seats: Vec<&String> = booked.iter().flat_map(|booking| &booking.seat_numbers).collect();
    seats.sort();
    seats.dedup();
    assert_eq!(seats.len(), 4, "no seat sold twice");
    app.assert_invariants().await;
}

/// The buyer queues, takes the pass and holds one seat: the booking, or the refusal that ends the attempt
/// (the flight sold out). Retryable failures (Redis failing over) are repeated until [`PATIENCE`].
async fn buy(app: &TestApp, buyer: &Customer, flight: &pb::Flight) -> Result<pb::Booking, String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let attempt: Result<Result<pb::Booking, String>, Status> = async {
            let ticket = join(app, buyer, flight).await?;
            let status = last_status(watch(app, buyer, &ticket).await?).await;
            if status.sold_out {
                return Ok(Err("sold out".to_owned()));
            }
            match buyer.book(app, with_pass(flight, &status.pass)).await {
                Ok(booking) => Ok(Ok(booking)),
                Err(refused) if !ContractError::from_status(&refused).retryable => {
                    Ok(Err(ContractError::from_status(&refused).reason))
                }
                Err(retryable) => Err(retryable),
            }
        }
        .await;
        match attempt {
            Ok(outcome) => return outcome,
            Err(status) => {
                assert!(ContractError::from_status(&status).retryable, "a failover fails calls retryably: {status:?}");
                assert!(tokio::time::Instant::now() < deadline, "the sale did not recover from the failover");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sale_keeps_each_flight_s_keys_in_one_slot_and_limits_callers() {
    let Some(cluster) = RedisCluster::start(3).await else { return };
    let Some(app) = on(&cluster.url(), &[("AEROBOOK_RATE_LIMIT_SEARCH", "3/60")]).await else { return };
    let prefix = app.redis_prefix.clone().expect("a key prefix");
    let flight = flight_with_economy(&app, 1, "AB").await;
    configure(&app, &flight, AT_ONCE, None).await.expect("room configured");
    let buyers: Vec<Customer> = (0..3).map(|_| Customer::new(&app)).collect();
    let mut outcomes = Vec::new();
    for buyer in &buyers {
        outcomes.push(buy(&app, buyer, &flight).await);
    }
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 2, "two seats, two bookings: {outcomes:?}");

    // The room's and the gate's keys exist on the cluster: their scripts ran there.
    let keys = cluster.keys(&format!("{prefix}*")).await;
    let tag = format!("{{{}}}", flight.id);
    for family in ["waiting-room:", "sold-out:"] {
        assert!(
            keys.iter().any(|key| key.contains(family) && key.contains(&tag)),
            "{family} keys of the flight on the cluster: {keys:?}"
        );
    }
    // Rate limits: the fourth search of one caller in a minute is refused, its bucket on the cluster.
    limited_on(&app, &cluster, &prefix).await;
    app.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_mid_sale_loses_no_booking_and_sells_no_seat_twice() {
    let Some(mut cluster) = RedisCluster::start(3).await else { return };
    let Some(app) = on(&cluster.url(), &[("AEROBOOK_RATE_LIMIT_SEARCH", "3/60")]).await else { return };
    let prefix = app.redis_prefix.clone().expect("a key prefix");
    // The master serving the flight's slot (its room and its gate) dies; its replica takes over.
    let kill = async |flight: &pb::Flight| {
        cluster.kill_master_of(&format!("{prefix}waiting-room:{{{}}}:state", flight.id)).await;
    };
    sell_out_through(&app, kill).await;
    // Rate limits come back to the cluster that is left: the instance reconnects within seconds (meanwhile
    // its limits fall back to its own buckets), and the caller's searches then run out there.
    let request = search_request("RUH", "JED", &aerobook_tests::riyadh_date(1));
    let search = async || app.flights().search_flights(request.clone()).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while cluster.keys(&format!("{prefix}rl:search:*")).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the instance never came back to the cluster");
        let _ = search().await;
    }
    // The search that made the bucket took one of its three.
    search().await.expect("the second of three");
    search().await.expect("the third of three");
    let refused = search().await.expect_err("the fourth search is limited");
    assert_eq!(ContractError::from_status(&refused).reason, "RATE_LIMITED");
}

/// A caller's fourth search within the minute is `RATE_LIMITED` (the server allows 3), its bucket on the
/// cluster.
async fn limited_on(app: &TestApp, cluster: &RedisCluster, prefix: &str) {
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(app.flights().search_flights(search_request("RUH", "JED", &aerobook_tests::riyadh_date(1))).await);
    }
    let refused = answers.pop().expect("four answers").expect_err("the fourth search is limited");
    assert_eq!(ContractError::from_status(&refused).reason, "RATE_LIMITED");
    assert!(!cluster.keys(&format!("{prefix}rl:search:*")).await.is_empty(), "the bucket lives on the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_sale_loses_no_booking_and_sells_no_seat_twice() {
    let Some(mut sentinel) = RedisSentinel::start().await else { return };
    let Some(app) = on(&sentinel.url(), &[]).await else { return };
    sell_out_through(&app, async |_: &pb::Flight| sentinel.kill_master().await).await;
}
