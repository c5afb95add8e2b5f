//! Payment reconciliation every configured interval, on every instance: it is idempotent (outcomes are
//! applied through the same never-backwards rules as webhooks), so instances overlapping do no harm.

use std::time::Duration;

use crate::app::payments::Payments;

/// Reconciles every `interval` (the first run one interval after start) until the task is aborted.
pub async fn run(payments: Payments, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = payments.reconcile().await {
            tracing::warn!(%error, "payment reconciliation failed; retrying next interval");
        }
    }
}
