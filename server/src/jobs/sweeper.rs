//! Expires due holds (releasing their seats), forgets expired idempotency keys and old completed outbox
//! jobs, every sweep interval.
//! Runs on every instance; the database hands each due hold to exactly one of them.

use chrono::TimeDelta;

use crate::{
    app::{bookings::Bookings, outbox::Outbox},
    infra::clock::Clock,
};

/// Sweeps every `interval` of `clock` until the task is aborted: the clock the holds expire by, so a
/// clock moved past a sweep runs it. A failed sweep is logged and retried next time.
pub async fn run(bookings: Bookings, outbox: Outbox, clock: Clock, interval: TimeDelta) {
    loop {
        // The first sweep comes one interval after start; reads treat holds left due by a restart as
        // expired meanwhile. A slow sweep delays the next rather than running two back to back.
        clock.sleep_until(clock.now() + interval).await;
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
