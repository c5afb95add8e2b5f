//! A slow database under a burst: one server process on PostgreSQL + Redis whose database answers 200 ms
//! late (a relay in between), then far more holds at once than it can serve. Calls beyond the waiting queue
//! are shed at once (`SERVICE_UNAVAILABLE`, retryable, with a retry delay) instead of each waiting out its
//! deadline; no call outlives the deadline; the process's memory stays bounded; nothing is booked twice or
//! lost (the operators' check). Needs PostgreSQL and Redis: skipped without them, except under CI.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use std::time::{Duration, Instant};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
};
use futures::future::join_all;
use support::{
    Server,
    deployment::{Deployment, record},
    economy_available,
    latency::LatencyRelay,
    new_customer_token, one_seat_hold, search_request,
};
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;

/// What the database's answers are delayed by.
const LATENCY: Duration = Duration::from_millis(200);
/// Holds sent at once: many times what the server lets run or wait.
const BURST: usize = 3_000;
/// The server's deadline (`AEROBOOK_REQUEST_TIMEOUT_MS`, its default).
const DEADLINE: Duration = Duration::from_secs(10);
/// Slots and queue places: with 16 database connections and a hold taking over a dozen round trips (over
/// 3 s at this latency), the server finishes a few holds a second, so nearly all of the burst is beyond them.
const CONCURRENT: &str = "32";
const WAITING: &str = "64";
/// How much the process's peak memory may grow over the burst. Each of the 3,000 calls is a stream with its
/// request decoded; were they all kept to their deadline with their database work, the growth would be
/// the burst times a call's footprint, not a fixed allowance.
const MEMORY_ALLOWANCE_KIB: u64 = 64 * 1024;

#[derive(Debug, Default)]
struct Tally {
    booked: usize,
    shed: usize,
    past_deadline: usize,
    slowest: Duration,
    slowest_shed: Duration,
}

async fn hold(channel: Channel, flight_id: String) -> (Duration, Result<(), tonic::Status>) {
    let mut request = Request::new(one_seat_hold(&flight_id));
    let bearer = format!("Bearer {}", new_customer_token());
    request.metadata_mut().insert("authorization", bearer.parse().unwrap());
    let key = uuid::Uuid::new_v4().to_string();
    request.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    let sent = Instant::now();
    let answer = BookingServiceClient::new(channel).create_booking(request).await;
    (sent.elapsed(), answer.map(drop))
}

fn tally(answers: Vec<(Duration, Result<(), tonic::Status>)>) -> Tally {
    let mut tally = Tally::default();
    for (took, answer) in answers {
        tally.slowest = tally.slowest.max(took);
        match answer {
            Ok(()) => tally.booked += 1,
            Err(status) if status.code() == Code::Unavailable => {
                let details = status.get_error_details();
                let reason = details.error_info().map(|info| info.reason.as_str());
                assert_eq!(reason, Some("SERVICE_UNAVAILABLE"), "{status:?}");
                assert!(
                    details.retry_info().and_then(|retry| retry.retry_delay).is_some(),
                    "a retry delay: {status:?}"
                );
                tally.shed += 1;
                tally.slowest_shed = tally.slowest_shed.max(took);
            }
            Err(status) if status.code() == Code::DeadlineExceeded => tally.past_deadline += 1,
            Err(status) => panic!("neither booked, shed nor past its deadline: {status:?}"),
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_sheds_the_excess_at_once_keeps_deadlines_and_memory_bounded() {
    let Some(deployment) = Deployment::on_postgres_and_redis().await else { return };
    let (relay, via_relay) = LatencyRelay::in_front_of(&deployment.database_url).await;
    let deadline_ms = DEADLINE.as_millis().to_string();
    let mut settings = deployment.settings(&via_relay);
    settings.extend([
        ("AEROBOOK_REQUEST_TIMEOUT_MS", deadline_ms.as_str()),
        ("AEROBOOK_MAX_CONCURRENT_CALLS", CONCURRENT),
        ("AEROBOOK_MAX_WAITING_CALLS", WAITING),
    ]);
    let server = Server::start(&settings).await;
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(server.channel().await);
    }
    let found = FlightServiceClient::new(channels[0].clone()).search_flights(search_request()).await.expect("search");
    let flight = found.into_inner().flights.into_iter().next().expect("a demo flight tomorrow");
    let seats_before = economy_available(&flight);
    // Warm: every pool connection open and every statement prepared before the baseline.
    let warm_up = join_all((0..32).map(|i| hold(channels[i % 8].clone(), flight.id.clone()))).await;
    assert!(warm_up.iter().all(|(_, answer)| answer.is_ok()), "{warm_up:?}");
    let baseline_kib = server.peak_memory_kib();

    relay.set_latency(LATENCY);
    let answers = join_all((0..BURST).map(|i| hold(channels[i % 8].clone(), flight.id.clone()))).await;
    let tally = tally(answers);
    let grown_kib = server.peak_memory_kib().saturating_sub(baseline_kib);
    eprintln!("{tally:?}, peak memory grew {} MiB", grown_kib / 1024);
    relay.set_latency(Duration::ZERO);

    assert!(tally.booked > 0, "the server kept booking: {tally:?}");
    assert!(tally.shed > BURST / 2, "most of the burst shed: {tally:?}");
    assert!(tally.slowest < DEADLINE + Duration::from_secs(1), "no call outlived its deadline: {tally:?}");
    assert!(tally.slowest_shed < DEADLINE / 3, "shed at once, not at the deadline: {tally:?}");
    assert!(grown_kib < MEMORY_ALLOWANCE_KIB, "memory grew {grown_kib} KiB over the burst");

    // Every booking answered exists, and a call cut at its deadline booked at most its own seat.
    let read = pb::GetFlightRequest { flight_id: flight.id.clone() };
    let after = FlightServiceClient::new(channels[0].clone()).get_flight(read).await.expect("flight");
    let sold = usize::try_from(seats_before - economy_available(&after.into_inner())).unwrap();
    assert!((warm_up.len() + tally.booked..=warm_up.len() + tally.booked + tally.past_deadline).contains(&sold));
    let checks = deployment.admin_check().await;
    record("database answering 200 ms late under a burst of 3,000 holds", BURST, 1, checks);
    server.stop().await;
    deployment.drop_schema().await;
}
