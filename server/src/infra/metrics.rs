//! Metric instruments, named after OpenTelemetry's semantic conventions where one exists (`rpc.server.*`)
//! and `aerobook.*` otherwise. They are recorded on the global meter provider that `telemetry::init`
//! installs (OTLP and/or Prometheus); without one, recording is a no-op.
//!
//! Counters and the call histogram are recorded where things happen. Gauges read [`Samples`], which the
//! gauge sampler (`jobs::gauges`), the readiness probe and the waiting-room broadcasts keep up to date, so
//! collecting metrics never runs a query.
//!
//! The catalogue, with the Prometheus names, is in `docs/operations.md`; `deploy/metrics.txt` lists the
//! names dashboards and alerts may use.

use std::{
    collections::BTreeMap,
    sync::{OnceLock, PoisonError, RwLock},
};

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, ObservableGauge},
};
use uuid::Uuid;

/// Seconds; the bucket boundaries OpenTelemetry's semantic conventions recommend for RPC durations.
const RPC_DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

pub struct Metrics {
    /// `rpc.server.call.duration` (s): every call, by `rpc.system`, `rpc.service`, `rpc.method` and
    /// `rpc.grpc.status_code`; its count is the number of calls.
    pub rpc_duration: Histogram<f64>,
    /// Failed calls by `rpc.service`, `rpc.method` and the contract's `error_code`.
    pub rpc_errors: Counter<u64>,
    pub holds_expired: Counter<u64>,
    /// Retries answered from a stored response, by `rpc.method`.
    pub idempotency_replays: Counter<u64>,
    /// Keys reused with a different request, by `rpc.method`.
    pub idempotency_conflicts: Counter<u64>,
    /// Calls refused by a rate limit, by `class`.
    pub rate_limit_refusals: Counter<u64>,
    /// Cache lookups by `cache` and `result` (`hit`, `miss`).
    pub cache_lookups: Counter<u64>,
    /// Passes given out, by `flight_id`.
    pub waiting_room_admissions: Counter<u64>,
    /// Reads that may lag, by `target` (`replica`, or `primary` when no replica is fresh or configured).
    pub database_reads: Counter<u64>,
    /// Passengers checked in, by `flight_id`.
    pub check_ins: Counter<u64>,
    /// Passengers boarded at the gate, by `flight_id`.
    pub boardings: Counter<u64>,
    /// Payment outcomes the provider reported, by `outcome` (`succeeded`, `failed`, `refunded`, ...).
    pub payments: Counter<u64>,
    /// Provider outcomes applied by reconciliation because their webhook was lost.
    pub reconciliation_fixed: Counter<u64>,
    /// Differences between the provider and Aerobook that need an operator.
    pub reconciliation_mismatches: Counter<u64>,
    _gauges: Vec<ObservableGauge<u64>>,
    _age: ObservableGauge<f64>,
}

/// The instruments, created on first use from the global meter provider (so after `telemetry::init`).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("aerobook-server")))
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            meter.u64_counter(name).with_unit(unit).with_description(description).build()
        };
        let gauges = vec![
            meter
                .u64_observable_gauge("aerobook.bookings")
                .with_unit("{booking}")
                .with_description("Bookings by status")
                .with_callback(|gauge| {
                    for (status, count) in &read_samples().bookings_by_status {
                        gauge.observe(*count, &[KeyValue::new("status", status.clone())]);
                    }
                })
                .build(),
            meter
                .u64_observable_gauge("aerobook.seats.available")
                .with_unit("{seat}")
                .with_description("Seats available per flight cabin (flights departing soonest)")
                .with_callback(|gauge| {
                    for seats in &read_samples().seats_available {
                        gauge.observe(
                            seats.available,
                            &[
                                KeyValue::new("flight_id", seats.flight_id.to_string()),
                                KeyValue::new("flight_number", seats.flight_number.clone()),
                                KeyValue::new("cabin", seats.cabin.clone()),
                            ],
                        );
                    }
                })
                .build(),
            meter
                .u64_observable_gauge("aerobook.jobs.queued")
                .with_unit("{job}")
                .with_description("Outbox jobs not done, by state (queued, running, failed, dead)")
                .with_callback(|gauge| {
                    for (state, count) in &read_samples().jobs_by_state {
                        gauge.observe(*count, &[KeyValue::new("state", *state)]);
                    }
                })
                .build(),
            meter
                .u64_observable_gauge("aerobook.waiting_room.waiting")
                .with_unit("{waiter}")
                .with_description("Waiters in line per watched waiting room")
                .with_callback(|gauge| {
                    for (flight_id, waiting) in &read_samples().waiting {
                        gauge.observe(*waiting, &[KeyValue::new("flight_id", flight_id.to_string())]);
                    }
                })
                .build(),
            meter
                .u64_observable_gauge("aerobook.health.serving")
                .with_description("1 while this instance reports SERVING (database answering, not draining)")
                .with_callback(|gauge| gauge.observe(u64::from(read_samples().serving), &[]))
                .build(),
        ];
        let age = meter
            .f64_observable_gauge("aerobook.jobs.oldest_queued_age")
            .with_unit("s")
            .with_description("How long the oldest due outbox job that no worker holds has waited")
            .with_callback(|gauge| gauge.observe(read_samples().oldest_job_age_seconds, &[]))
            .build();
        Self {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of calls handled by the server")
                .with_boundaries(RPC_DURATION_BUCKETS.to_vec())
                .build(),
            rpc_errors: counter("aerobook.rpc.server.errors", "{call}", "Failed calls by error code"),
            holds_expired: counter("aerobook.holds.expired", "{hold}", "Holds expired by the sweeper"),
            idempotency_replays: counter(
                "aerobook.idempotency.replays",
                "{call}",
                "Retries answered from a stored response",
            ),
            idempotency_conflicts: counter(
                "aerobook.idempotency.conflicts",
                "{call}",
                "Keys reused with another request",
            ),
            rate_limit_refusals: counter("aerobook.rate_limit.refusals", "{call}", "Calls refused by a rate limit"),
            cache_lookups: counter("aerobook.cache.lookups", "{lookup}", "Cache lookups by result"),
            waiting_room_admissions: counter(
                "aerobook.waiting_room.admissions",
                "{pass}",
                "Waiting-room passes given out",
            ),
            database_reads: counter(
                "aerobook.database.reads",
                "{read}",
                "Reads that may lag (search, airport listings), by where they went",
            ),
            check_ins: counter("aerobook.check_ins", "{passenger}", "Passengers checked in, per flight"),
            boardings: counter("aerobook.boardings", "{passenger}", "Passengers boarded at the gate, per flight"),
            payments: counter("aerobook.payments", "{payment}", "Payment outcomes"),
            reconciliation_fixed: counter(
                "aerobook.payments.reconciliation.fixed",
                "{payment}",
                "Provider outcomes applied by reconciliation because their webhook was lost",
            ),
            reconciliation_mismatches: counter(
                "aerobook.payments.reconciliation.mismatches",
                "{payment}",
                "Differences between the provider and Aerobook that need an operator",
            ),
            _gauges: gauges,
            _age: age,
        }
    }
}

/// One flight cabin's available seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSample {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub cabin: String,
    pub available: u64,
}

/// The values gauges report, as last sampled.
#[derive(Debug, Default)]
pub struct Samples {
    pub bookings_by_status: Vec<(String, u64)>,
    pub seats_available: Vec<SeatSample>,
    /// Jobs not done, by state.
    pub jobs_by_state: Vec<(&'static str, u64)>,
    pub oldest_job_age_seconds: f64,
    /// Per waiting room that has watchers on this instance.
    pub waiting: BTreeMap<Uuid, u64>,
    pub serving: bool,
}

static SAMPLES: RwLock<Samples> = RwLock::new(Samples {
    bookings_by_status: Vec::new(),
    seats_available: Vec::new(),
    jobs_by_state: Vec::new(),
    oldest_job_age_seconds: 0.0,
    waiting: BTreeMap::new(),
    serving: false,
});

fn read_samples() -> std::sync::RwLockReadGuard<'static, Samples> {
    SAMPLES.read().unwrap_or_else(PoisonError::into_inner)
}

/// Updates the sampled values.
pub fn update_samples(update: impl FnOnce(&mut Samples)) {
    update(&mut SAMPLES.write().unwrap_or_else(PoisonError::into_inner));
}
