//! The `watch` scenario: `WatchAvailability` streams held open on the flash sale's flights while it sells.
//!
//! Each stream belongs to its own customer (a bearer token of a new user), so per-caller stream limits do
//! not refuse them and anonymous per-address limits do not apply; streams are spread over their own
//! connections. A stream the server refuses to open is counted by code, not as a failure: the server may
//! cap streams. One that breaks after it opened is an error.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aerobook_proto::v1::{self as pb, flight_service_client::FlightServiceClient};
use serde::Serialize;
use tokio::{sync::Semaphore, task::JoinHandle};

use crate::{
    Error,
    stats::Latencies,
    target::{self, STREAMS_PER_CONNECTION, Target, Tokens},
};

/// Streams being opened at once: opening 10,000 in one burst would measure the burst, not the sale.
const OPENING_AT_ONCE: usize = 256;
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// No seat count seen yet.
const UNSEEN: i64 = -1;

pub struct Watchers {
    flights: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Streams that delivered their first message and have not ended.
    open: AtomicUsize,
    /// Streams whose opening is over, one way or the other.
    settled: AtomicUsize,
    /// Messages after each stream's first.
    updates: AtomicU64,
    ended_by_server: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Time from asking for each stream to its first message.
    opening: Mutex<Latencies>,
    /// Per stream: seats available in its flight (all cabins) in its last message.
    last_seen: Vec<AtomicI64>,
}

/// What the watchers saw; the report's `scenarios.watch`.
#[derive(Debug, Clone, Serialize)]
pub struct WatchReport {
    pub watchers: usize,
    /// Streams open when the sale was decided.
    pub streams_open: usize,
    /// Messages after each stream's first (the current state), i.e. changes pushed during the sale.
    pub updates_received: u64,
    /// `updates_received` per second of the sale.
    pub calls_per_s: f64,
    /// Time from asking for a stream to its first message.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Streams the server would not open, by error code.
    pub refused: BTreeMap<String, u64>,
    /// Streams that broke after they opened, by error code.
    pub errors: BTreeMap<String, u64>,
    /// Streams the server ended cleanly during the sale.
    pub ended_by_server: u64,
    /// Open streams whose last message showed the flight's final seat count.
    pub saw_final_state: usize,
}

impl Watchers {
    /// Opens `count` streams spread over `flights` and waits until each has opened or been refused.
    pub async fn open(target: &Target, tokens: &Tokens, flights: &[String], count: usize) -> Result<Self, Error> {
        let channels = target::connect_spread(&target.addrs, count.div_ceil(STREAMS_PER_CONNECTION)).await?;
        let shared =
            Arc::new(Shared { last_seen: (0..count).map(|_| AtomicI64::new(UNSEEN)).collect(), ..Default::default() });
        let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
        let tasks = (0..count)
            .map(|watcher| {
                let request = target::signed_in(
                    pb::WatchAvailabilityRequest { flight_id: flights[watcher % flights.len()].clone() },
                    &tokens.customer(),
                );
                let client = FlightServiceClient::new(channels[watcher / STREAMS_PER_CONNECTION].clone());
                tokio::spawn(watch(client, request, watcher, shared.clone(), opening.clone()))
            })
            .collect();
        let started = Instant::now();
        while shared.settled.load(Ordering::Relaxed) < count {
            if started.elapsed() > OPEN_TIMEOUT {
                return Err(format!("{count} watchers did not open within {OPEN_TIMEOUT:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { flights: flights.to_vec(), tasks, shared })
    }

    /// Waits up to `timeout` for every open stream to show its flight's final seat count (`final_seats` by
    /// flight id), which a stream must deliver even if it merges changes close together.
    pub async fn settle(&self, final_seats: &HashMap<String, i64>, timeout: Duration) -> usize {
        let started = Instant::now();
        loop {
            let seen = self.saw_final_state(final_seats);
            if seen >= self.shared.open.load(Ordering::Relaxed) || started.elapsed() > timeout {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn saw_final_state(&self, final_seats: &HashMap<String, i64>) -> usize {
        (self.shared.last_seen.iter().enumerate())
            .filter(|(watcher, seen)| {
                final_seats.get(&self.flights[watcher % self.flights.len()]) == Some(&seen.load(Ordering::Relaxed))
            })
            .count()
    }

    /// Closes every stream; `sale` is how long the sale took, for the rate of updates.
    pub fn close(self, final_seats: &HashMap<String, i64>, sale: Duration) -> WatchReport {
        let streams_open = self.shared.open.load(Ordering::Relaxed);
        let saw_final_state = self.saw_final_state(final_seats);
        for task in &self.tasks {
            task.abort();
        }
        let shared = &self.shared;
        let opening = shared.opening.lock().expect("no panics under this lock");
        let updates_received = shared.updates.load(Ordering::Relaxed);
        WatchReport {
            watchers: shared.last_seen.len(),
            streams_open,
            updates_received,
            calls_per_s: updates_received as f64 / sale.as_secs_f64().max(1e-9),
            p50_ms: opening.quantile_ms(0.5),
            p99_ms: opening.quantile_ms(0.99),
            p999_ms: opening.quantile_ms(0.999),
            refused: shared.refused.lock().expect("no panics under this lock").clone(),
            errors: shared.errors.lock().expect("no panics under this lock").clone(),
            ended_by_server: shared.ended_by_server.load(Ordering::Relaxed),
            saw_final_state,
        }
    }
}

async fn watch(
    mut client: FlightServiceClient<tonic::transport::Channel>,
    request: tonic::Request<pb::WatchAvailabilityRequest>,
    watcher: usize,
    shared: Arc<Shared>,
    opening: Arc<Semaphore>,
) {
    let count = |map: &Mutex<BTreeMap<String, u64>>, code: String| {
        *map.lock().expect("no panics under this lock").entry(code).or_default() += 1;
    };
    let seats = |update: &pb::AvailabilityUpdate| update.cabins.iter().map(|c| i64::from(c.seats_available)).sum();
    let permit = opening.acquire().await.expect("the semaphore is never closed");
    let asked = Instant::now();
    let first = match client.watch_availability(request).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            stream.message().await.map(|first| first.map(|first| (stream, first)))
        }
        Err(status) => Err(status),
    };
    drop(permit);
    let mut stream = match first {
        Ok(Some((stream, first))) => {
            shared.opening.lock().expect("no panics under this lock").record(asked.elapsed());
            shared.last_seen[watcher].store(seats(&first), Ordering::Relaxed);
            shared.open.fetch_add(1, Ordering::Relaxed);
            shared.settled.fetch_add(1, Ordering::Relaxed);
            stream
        }
        Ok(None) => {
            count(&shared.refused, "ENDED_BEFORE_FIRST_MESSAGE".into());
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(status) => {
            count(&shared.refused, target::error_code(&status));
            shared.settled.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(update)) => {
                shared.updates.fetch_add(1, Ordering::Relaxed);
                shared.last_seen[watcher].store(seats(&update), Ordering::Relaxed);
            }
            Ok(None) => {
                shared.ended_by_server.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Err(status) => {
                count(&shared.errors, target::error_code(&status));
                break;
            }
        }
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
}
