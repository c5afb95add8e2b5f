//! Samples the database for the operational gauges (bookings by status, seats per flight cabin, outbox
//! backlog) on a schedule, so collecting metrics never queries. Runs only when metrics are exported.

use std::time::Duration;

use crate::{
    app::admin::age,
    infra::{
        clock::Clock,
        metrics::{self, SeatSample},
    },
    store::{Store, StoreError, outbox, stats},
};

/// How often the gauges are refreshed.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(15);
/// Flights whose cabins are reported: the ones departing soonest (bounds the series per scrape).
pub const MAX_FLIGHTS_SAMPLED: u64 = 200;

pub async fn run(store: Store, clock: Clock) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = sample(&store, &clock).await {
            tracing::warn!(%error, "sampling the gauges failed; they keep their last values");
        }
    }
}

/// One sampling pass.
async fn sample(store: &Store, clock: &Clock) -> Result<(), StoreError> {
    let now = clock.now();
    let db = store.conn();
    let bookings = stats::bookings_by_status(db).await?;
    let seats = stats::seats_of_next_flights(db, now, MAX_FLIGHTS_SAMPLED).await?;
    let jobs = outbox::counts(db, now).await?;
    metrics::update_samples(|samples| {
        samples.bookings_by_status =
            bookings.into_iter().map(|(status, count)| (status, u64::try_from(count).unwrap_or(0))).collect();
        samples.seats_available = seats
            .into_iter()
            .map(|cabin| SeatSample {
                flight_id: cabin.flight_id,
                flight_number: cabin.flight_number,
                cabin: cabin.cabin,
                available: u64::try_from(cabin.seats_available).unwrap_or(0),
            })
            .collect();
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        samples.jobs_by_state = vec![
            ("queued", count(jobs.queued)),
            ("running", count(jobs.running)),
            ("failed", count(jobs.failed)),
            ("dead", count(jobs.dead)),
        ];
        samples.oldest_job_age_seconds = age(jobs.oldest_due, now).num_milliseconds() as f64 / 1_000.0;
    });
    Ok(())
}
