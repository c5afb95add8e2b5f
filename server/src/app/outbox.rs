//! The transactional outbox: work that must follow a committed change (apply a provider event, send a
//! refund) is written as a job in that change's transaction, then run by any instance's worker.
//!
//! A worker leases a batch of due jobs for [`LEASE`]; a job whose worker died is leased again once the
//! lease has passed. A job's effects and its completion commit in one transaction, and jobs that call the
//! provider use an idempotency key fixed by the payment, so a job that runs twice has its effect once.

use std::time::Duration;

use chrono::TimeDelta;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    AppError,
    job::{Job, OutboxSignal},
    payments::Payments,
};
use crate::{
    infra::{clock::Clock, telemetry},
    store::{
        Store, StoreError,
        outbox::{self, LeasedJob},
    },
};

/// How long a worker owns the jobs it leased.
pub const LEASE: TimeDelta = TimeDelta::seconds(60);
/// Jobs leased at once.
const BATCH: u64 = 50;
/// How long completed jobs are kept, for inspection.
pub const DONE_RETENTION: TimeDelta = TimeDelta::days(7);
/// Retry delays double from 1 s up to this.
const MAX_BACKOFF_SECONDS: i64 = 300;

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    payments: Payments,
    clock: Clock,
    signal: OutboxSignal,
}

impl Outbox {
    pub fn new(store: Store, payments: Payments, clock: Clock, signal: OutboxSignal) -> Self {
        Self { store, payments, clock, signal }
    }

    pub fn signal(&self) -> &OutboxSignal {
        &self.signal
    }

    /// Leases and runs one batch of due jobs; returns how many were leased.
    pub async fn run_due(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let jobs = outbox::lease_due(&txn, now, now + LEASE, BATCH).await?;
        txn.commit().await.map_err(StoreError::from)?;
        let leased = jobs.len();
        for job in jobs {
            self.run(job).await;
        }
        if leased > 0 {
            self.signal.finished();
        }
        Ok(leased)
    }

    /// Runs due jobs until none is left, waiting (at most a lease) for jobs another worker is running.
    /// For callers that need the queue drained now, such as tests; the background worker uses
    /// [`Self::run_due`].
    pub async fn run_until_idle(&self) -> Result<(), AppError> {
        let mut finished = self.signal.finishes();
        loop {
            if self.run_due().await? > 0 {
                continue;
            }
            finished.borrow_and_update();
            if outbox::unfinished_due(self.store.conn(), self.clock.now()).await? == 0 {
                return Ok(());
            }
            // Another worker holds the rest: wait for it to finish a batch (bounded by its lease).
            let lease = Duration::from_secs(LEASE.num_seconds().unsigned_abs());
            let _ = tokio::time::timeout(lease, finished.changed()).await;
        }
    }

    /// Forgets jobs completed more than [`DONE_RETENTION`] ago.
    pub async fn forget_done(&self) -> Result<u64, AppError> {
        Ok(outbox::delete_done_before(self.store.conn(), self.clock.now() - DONE_RETENTION).await?)
    }

    /// Runs one job in a span of its own, linked to the call that queued it.
    async fn run(&self, leased: LeasedJob) {
        let span = tracing::info_span!(
            "job",
            otel.name = %format_args!("job {}", leased.kind),
            job.id = %leased.id,
            job.kind = leased.kind,
            job.attempt = leased.attempts,
        );
        if let Some(queued_by) = leased.trace_parent.as_deref().and_then(telemetry::linked_span) {
            span.add_link(queued_by);
        }
        self.run_in_span(leased).instrument(span).await;
    }

    async fn run_in_span(&self, leased: LeasedJob) {
        let job = match serde_json::from_str::<Job>(&leased.payload) {
            Ok(job) => job,
            Err(error) => {
                tracing::error!(job_id = %leased.id, kind = leased.kind, %error, "unreadable job; parked for an operator");
                self.retry_later(&leased, &format!("unreadable: {error}"), MAX_BACKOFF_SECONDS).await;
                return;
            }
        };
        let outcome = match &job {
            Job::ApplyProviderEvent { event_id, event } => {
                self.payments.apply_event_job(event_id, event, leased.id, leased.attempts).await
            }
            Job::SendRefund { payment_id } => {
                self.payments.send_refund_job(*payment_id, leased.id, leased.attempts).await
            }
        };
        if let Err(error) = outcome {
            let delay = backoff_seconds(leased.attempts);
            tracing::warn!(job_id = %leased.id, kind = leased.kind, attempts = leased.attempts, retry_in_s = delay, %error, "job failed; will retry");
            self.retry_later(&leased, &error.to_string(), delay).await;
        }
    }

    async fn retry_later(&self, job: &LeasedJob, error: &str, delay_seconds: i64) {
        let at = self.clock.now() + TimeDelta::seconds(delay_seconds);
        if let Err(error) = outbox::retry_at(self.store.conn(), job.id, job.attempts, at, error).await {
            // The lease runs out on its own and the job is picked up again.
            tracing::warn!(job_id = %job.id, %error, "could not reschedule a failed job");
        }
    }
}

fn backoff_seconds(attempts: i32) -> i64 {
    let exponent = attempts.clamp(1, 10) - 1;
    (1_i64 << exponent).min(MAX_BACKOFF_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_five_minutes() {
        let delays: Vec<i64> = (1..=12).map(backoff_seconds).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}
