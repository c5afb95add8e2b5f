//! The jobs the transactional outbox carries, and how a use case writes one: the vocabulary shared by the
//! use cases that enqueue jobs (payments) and the outbox that runs them, below both.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::AppError;
use crate::{
    domain::payment::ProviderEvent,
    infra::telemetry,
    store::{StoreError, outbox},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Job {
    /// Apply a verified provider event to its payment and booking.
    ApplyProviderEvent { event_id: String, event: ProviderEvent },
    /// Send the refund of a payment to the provider.
    SendRefund { payment_id: Uuid },
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::ApplyProviderEvent { .. } => "APPLY_PROVIDER_EVENT",
            Job::SendRefund { .. } => "SEND_REFUND",
        }
    }
}

/// Wakes this instance's worker when a job is written, and tells waiters when jobs finish.
#[derive(Clone, Default)]
pub struct OutboxSignal {
    wake: Arc<Notify>,
    finished: Arc<watch::Sender<u64>>,
}

impl OutboxSignal {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Tells waiters a job finished.
    pub fn finished(&self) {
        self.finished.send_modify(|n| *n += 1);
    }

    /// Changes each time a job finishes.
    pub fn finishes(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }
}

/// Writes `job` in the caller's transaction, with the current trace (so the job's span links to this call);
/// call [`OutboxSignal::wake`] after the commit.
pub async fn enqueue(db: &impl sea_orm::ConnectionTrait, job: &Job, now: DateTime<Utc>) -> Result<(), AppError> {
    let payload = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(format!("job: {e}")))?;
    outbox::enqueue(db, job.kind(), payload, telemetry::current_traceparent(), now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_as_json() {
        let job = Job::SendRefund { payment_id: Uuid::nil() };
        let json = serde_json::to_string(&job).expect("serialises");
        assert_eq!(serde_json::from_str::<Job>(&json).expect("parses"), job);
    }
}
