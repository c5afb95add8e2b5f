//! The transactional outbox: work that must follow a committed change (apply a provider event, send a
//! refund, email a customer) is written as a job in that change's transaction, then run by any
//! instance's workers.
//!
//! - A worker claims due jobs (`FOR UPDATE SKIP LOCKED` on PostgreSQL) under a [`LEASE`] and runs them
//!   concurrently, renewing each job's lease while it runs; a job whose worker died is claimed again once
//!   its lease has passed, and a worker that finds its lease lost stops the job.
//! - A failed attempt is retried after an exponential backoff with jitter; after the job kind's maximum
//!   attempts (or an error that cannot go away) the job is `dead`, with its last error, until an operator
//!   revives it.
//! - A job's effects and its completion commit in one transaction, provider calls carry idempotency keys
//!   fixed by the payment, and emails are recorded by event: a job that runs twice has its effect once.

use std::time::Duration;

use chrono::TimeDelta;
use futures::future::join_all;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    AppError,
    job::{Job, OutboxSignal},
    notifications::Notifications,
    payments::Payments,
};
use crate::{
    domain::job::retry_delay,
    infra::{clock::Clock, telemetry},
    store::{
        Store, StoreError,
        outbox::{self, LeasedJob},
    },
};

/// How long a claim lasts without renewal: a job whose worker died runs again this long after.
pub const LEASE: TimeDelta = TimeDelta::seconds(30);
/// How often a running job's lease is renewed: a few renewals may fail before the lease runs out.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often [`Outbox::run_until_idle`] looks at jobs another instance is running.
const LOOK_AGAIN: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    payments: Payments,
    notifications: Notifications,
    clock: Clock,
    signal: OutboxSignal,
    concurrency: usize,
}

impl Outbox {
    pub fn new(
        store: Store,
        payments: Payments,
        notifications: Notifications,
        clock: Clock,
        signal: OutboxSignal,
        concurrency: usize,
    ) -> Self {
        Self { store, payments, notifications, clock, signal, concurrency: concurrency.max(1) }
    }

    pub fn signal(&self) -> &OutboxSignal {
        &self.signal
    }

    /// Jobs one worker runs at the same time.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Claims up to `limit` due jobs for this worker.
    pub async fn claim(&self, limit: usize) -> Result<Vec<LeasedJob>, AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let jobs = outbox::claim_due(&txn, now, now + LEASE, limit as u64).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(jobs)
    }

    /// Claims up to [`Self::concurrency`] due jobs and runs them together; returns how many ran.
    pub async fn run_due(&self) -> Result<usize, AppError> {
        let jobs = self.claim(self.concurrency).await?;
        let claimed = jobs.len();
        join_all(jobs.into_iter().map(|job| self.run(job))).await;
        Ok(claimed)
    }

    /// Runs due jobs until none is left, waiting for jobs another worker is running. For callers that need
    /// the queue drained now, such as tests; the background worker claims jobs as it has room for them.
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
            // Another worker holds the rest: wait for this instance's worker to finish a job, or look again
            // shortly, since a worker of another instance signals nothing here.
            let _ = tokio::time::timeout(LOOK_AGAIN, finished.changed()).await;
        }
    }

    /// Runs one claimed job in a span of its own, linked to the call that queued it, and tells waiters
    /// when it is over.
    pub async fn run(&self, leased: LeasedJob) {
        let span = tracing::info_span!(
            "job",
            otel.name = %format_args!("job {}", leased.kind),
            job.id = %leased.id,
            job.kind = leased.kind,
            job.attempt = leased.attempts,
            correlation_id = leased.correlation_id.as_deref().unwrap_or_default(),
        );
        if let Some(queued_by) = leased.trace_parent.as_deref().and_then(telemetry::linked_span) {
            span.add_link(queued_by);
        }
        self.run_leased(&leased).instrument(span).await;
        self.signal.finished();
    }

    async fn run_leased(&self, leased: &LeasedJob) {
        let job = match serde_json::from_str::<Job>(&leased.payload) {
            Ok(job) => job,
            Err(error) => {
                self.failed(leased, &format!("unreadable job: {error}"), true).await;
                return;
            }
        };
        let work = self.execute(&job, leased);
        tokio::pin!(work);
        let outcome = tokio::select! {
            outcome = &mut work => outcome,
            () = self.keep_lease(leased) => {
                tracing::warn!(job_id = %leased.id, "lease lost to another worker; this run stops");
                return;
            }
        };
        if let Err(error) = outcome {
            let permanent = matches!(&error, AppError::Mail(mail) if mail.is_permanent());
            self.failed(leased, &error.to_string(), permanent).await;
        }
    }

    async fn execute(&self, job: &Job, leased: &LeasedJob) -> Result<(), AppError> {
        match job {
            Job::ApplyProviderEvent { event_id, event } => {
                self.payments.apply_event_job(event_id, event, leased.id, leased.attempts).await
            }
            Job::SendRefund { payment_id, part } => {
                self.payments.send_refund_job(*payment_id, part.as_ref(), leased.id, leased.attempts).await
            }
            Job::SendEmail { event_id } => {
                self.notifications.send_email_job(*event_id, leased.id, leased.attempts).await
            }
        }
    }

    /// Renews the job's lease every [`RENEW_EVERY`]; returns once the job is no longer ours. A renewal
    /// that fails (database briefly away) is retried at the next tick.
    async fn keep_lease(&self, leased: &LeasedJob) {
        let mut ticks = tokio::time::interval(RENEW_EVERY);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let until = self.clock.now() + LEASE;
            match outbox::renew_lease(self.store.conn(), leased.id, leased.attempts, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => tracing::warn!(job_id = %leased.id, %error, "could not renew a job's lease"),
            }
        }
    }

    /// Records a failed attempt: a retry after the backoff, or dead when the kind's attempts are spent
    /// or the error will not go away.
    async fn failed(&self, leased: &LeasedJob, error: &str, permanent: bool) {
        let max_attempts = Job::max_attempts(&leased.kind);
        let retry_at = (!permanent && leased.attempts < max_attempts)
            .then(|| self.clock.now() + retry_delay(leased.attempts, rand::random::<f64>()));
        match retry_at {
            Some(at) => tracing::warn!(
                job_id = %leased.id, kind = leased.kind, attempts = leased.attempts, max_attempts, retry_at = %at, error,
                "job failed; will retry"
            ),
            None => tracing::error!(
                job_id = %leased.id, kind = leased.kind, attempts = leased.attempts, error,
                "job dead: no more attempts; an operator can retry it (AdminService.RetryJob)"
            ),
        }
        match outbox::fail(self.store.conn(), leased.id, leased.attempts, error, retry_at).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job_id = %leased.id, "failed job was taken over by another worker"),
            // The lease runs out on its own and the job is claimed again.
            Err(error) => tracing::warn!(job_id = %leased.id, %error, "could not record a failed job"),
        }
    }
}
