//! Expires due holds (releasing their seats), forgets expired idempotency keys and old completed outbox
//! jobs, every sweep interval.
//! Runs on every instance; the database hands each due hold to exactly one of them.

use std::time::Duration;

use crate::app::{bookings::Bookings, outbox::Outbox};

/// Sweeps every `interval` until the task is aborted. A failed sweep is logged and retried next time.
pub async fn run(bookings: Bookings, outbox: Outbox, interval: Duration) {
    // The first sweep comes one interval after start; reads treat holds left due by a restart as expired
    // meanwhile.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        sweep(&bookings).await;
        if let Err(error) = outbox.forget_done().await {
            tracing::warn!(%error, "outbox cleanup failed; retrying next interval");
        }
    }
}

/// One pass: due holds, then expired keys.
pub async fn sweep(bookings: &Bookings) {
    if let Err(error) = bookings.expire_due_holds().await {
        tracing::warn!(%error, "hold sweep failed; retrying next interval");
    }
    match bookings.forget_expired_keys().await {
        Ok(0) => {}
        Ok(forgotten) => tracing::debug!(forgotten, "expired idempotency keys deleted"),
        Err(error) => tracing::warn!(%error, "idempotency key cleanup failed; retrying next interval"),
    }
}
