//! Expires due holds and lapses unpaid flight changes (releasing their seats), and deletes what is past its
//! retention (idempotency keys, provider event ids, spent refresh tokens, finished jobs), every sweep
//! interval. Runs on every instance; the database hands each due hold (and change) to exactly one of them.

use chrono::TimeDelta;

use crate::{
    app::{bookings::Bookings, retention::Retention},
    infra::clock::Clock,
};

/// Retention deadlines are days long: deleting what passed them once a minute is plenty.
const RETENTION_INTERVAL: TimeDelta = TimeDelta::minutes(1);

/// Sweeps every `interval` of `clock` until the task is aborted: the clock the holds expire by, so a
/// clock moved past a sweep runs it. A failed sweep is logged and retried next time.
pub async fn run(bookings: Bookings, retention: Retention, clock: Clock, interval: TimeDelta) {
    let mut next_retention = clock.now();
    loop {
        // The first sweep comes one interval after start; reads treat holds left due by a restart as
        // expired meanwhile. A slow sweep delays the next rather than running two back to back.
        clock.sleep_until(clock.now() + interval).await;
        if let Err(error) = bookings.expire_due_holds().await {
            tracing::warn!(%error, "hold sweep failed; retrying next interval");
        }
        if let Err(error) = bookings.lapse_due_changes().await {
            tracing::warn!(%error, "sweep of unpaid flight changes failed; retrying next interval");
        }
        if clock.now() >= next_retention {
            next_retention = clock.now() + RETENTION_INTERVAL;
            if let Err(error) = retention.sweep().await {
                tracing::warn!(%error, "retention sweep failed; retrying next interval");
            }
        }
    }
}
