//! Operators' view of the background job queue: listing jobs, reviving or discarding one, reviving many,
//! counting them.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    AppError,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    job::OutboxSignal,
};
use crate::{
    domain::{booking::Refusal, job::JobState, pagination::KeyCursor},
    infra::clock::Clock,
    store::{
        Store,
        outbox::{self, JobRecord, QueueCounts},
    },
};

/// One page of jobs, newest first.
#[derive(Debug, Clone)]
pub struct JobPage {
    pub jobs: Vec<JobRecord>,
    pub next_page_token: Option<String>,
}

/// The queue's counts, and how long its oldest due job has waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub counts: QueueCounts,
    pub oldest_queued_age: TimeDelta,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

#[derive(Clone)]
pub struct JobQueue {
    store: Store,
    idempotency: Idempotency,
    clock: Clock,
    signal: OutboxSignal,
}

impl JobQueue {
    pub fn new(store: Store, idempotency: Idempotency, clock: Clock, signal: OutboxSignal) -> Self {
        Self { store, idempotency, clock, signal }
    }

    #[tracing::instrument(skip(self))]
    pub async fn list(&self, filter: JobFilter, after: Option<Uuid>, page_size: u32) -> Result<JobPage, AppError> {
        let now = self.clock.now();
        let limit = u64::from(page_size) + 1;
        let mut jobs = outbox::list(self.store.conn(), filter.state, filter.kind.as_deref(), after, limit, now).await?;
        let next_page_token = if jobs.len() > page_size as usize {
            jobs.truncate(page_size as usize);
            jobs.last().map(|last| KeyCursor(last.id.to_string()).encode())
        } else {
            None
        };
        Ok(JobPage { jobs, next_page_token })
    }

    /// Makes a queued, failed, dead or discarded job due now with a fresh budget of attempts (a keyed
    /// call).
    #[tracing::instrument(skip(self, keyed, encode))]
    pub async fn retry(
        &self,
        keyed: &KeyedRequest,
        job_id: Uuid,
        encode: impl FnOnce(&JobRecord) -> Vec<u8>,
    ) -> Result<Outcome<JobRecord>, AppError> {
        let outcome = self.act_on(keyed, job_id, encode, JobAction::Retry).await?;
        if matches!(outcome, Outcome::Executed(_)) {
            self.signal.wake();
        }
        Ok(outcome)
    }

    /// Sets a queued, failed or dead job aside for good, kept for the audit (a keyed call).
    #[tracing::instrument(skip(self, keyed, encode))]
    pub async fn discard(
        &self,
        keyed: &KeyedRequest,
        job_id: Uuid,
        encode: impl FnOnce(&JobRecord) -> Vec<u8>,
    ) -> Result<Outcome<JobRecord>, AppError> {
        self.act_on(keyed, job_id, encode, JobAction::Discard).await
    }

    /// Retries every job in `state` (one of [`JobState::BULK_RETRYABLE`]) and of `kind` when given, in one
    /// transaction (a keyed call); how many.
    #[tracing::instrument(skip(self, keyed, encode))]
    pub async fn retry_all(
        &self,
        keyed: &KeyedRequest,
        state: JobState,
        kind: Option<String>,
        encode: impl FnOnce(&u64) -> Vec<u8>,
    ) -> Result<Outcome<u64>, AppError> {
        let now = self.clock.now();
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| {
                let retried = outbox::revive_all(txn, state, kind.as_deref(), now).await?;
                tracing::info!(retried, state = state.as_str(), kind, "jobs retried by an operator");
                Ok(retried)
            })
            .await?;
        if matches!(outcome, Outcome::Executed(retried) if retried > 0) {
            self.signal.wake();
        }
        Ok(outcome)
    }

    /// One job's retry or discard, refused when its state does not allow it.
    async fn act_on(
        &self,
        keyed: &KeyedRequest,
        job_id: Uuid,
        encode: impl FnOnce(&JobRecord) -> Vec<u8>,
        action: JobAction,
    ) -> Result<Outcome<JobRecord>, AppError> {
        let now = self.clock.now();
        self.idempotency
            .run(keyed, now, encode, async |txn| {
                let job = outbox::get(txn, job_id, now).await?.ok_or(AppError::NotFound("job"))?;
                let (done, refusal) = match action {
                    JobAction::Retry => (outbox::revive(txn, job_id, now).await?, Refusal::JobNotRetryable(job.state)),
                    JobAction::Discard => {
                        (outbox::discard(txn, job_id, now).await?, Refusal::JobNotDiscardable(job.state))
                    }
                };
                if !done {
                    return Err(refusal.into());
                }
                tracing::info!(%job_id, kind = job.kind, previous_state = job.state.as_str(), ?action, "job changed by an operator");
                outbox::get(txn, job_id, now).await?.ok_or(AppError::NotFound("job"))
            })
            .await
    }

    #[tracing::instrument(skip(self))]
    pub async fn stats(&self) -> Result<QueueStats, AppError> {
        let now = self.clock.now();
        let counts = outbox::counts(self.store.conn(), now).await?;
        Ok(QueueStats { oldest_queued_age: age(counts.oldest_due, now), counts })
    }
}

#[derive(Debug, Clone, Copy)]
enum JobAction {
    Retry,
    Discard,
}

/// How long ago `since` was; zero for none (or a time ahead of `now`).
pub fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> TimeDelta {
    since.map_or(TimeDelta::zero(), |since| (now - since).max(TimeDelta::zero()))
}
