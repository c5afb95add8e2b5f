//! The jobs the transactional outbox carries, and how a use case writes one: the vocabulary shared by the
//! use cases that enqueue jobs (bookings, payments) and the outbox that runs them, below both.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::AppError;
use crate::{
    domain::payment::{ProviderEvent, RefundPart},
    infra::telemetry,
    store::{StoreError, outbox},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Job {
    /// Apply a verified provider event to its payment and booking.
    ApplyProviderEvent { event_id: String, event: ProviderEvent },
    /// Send the refund of a payment to the provider: all that is left of it, or `part` (a change's money
    /// back). Jobs written before parts existed read as full refunds.
    SendRefund {
        payment_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<RefundPart>,
    },
    /// Email the customer about a booking event (an entry of the booking's history).
    SendEmail { event_id: Uuid },
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::ApplyProviderEvent { .. } => "APPLY_PROVIDER_EVENT",
            Job::SendRefund { .. } => "SEND_REFUND",
            Job::SendEmail { .. } => "SEND_EMAIL",
        }
    }

    /// Attempts before the job is dead (left for an operator). With backoff doubling from about 2 s up
    /// to 30 minutes, payment work is tried for about 9 hours and an email for about 4.
    pub fn max_attempts(kind: &str) -> i32 {
        match kind {
            "APPLY_PROVIDER_EVENT" | "SEND_REFUND" => 25,
            "SEND_EMAIL" => 18,
            // An unreadable job: a second try cannot read it better.
            _ => 1,
        }
    }
}

/// Every job kind, as `ListJobs` filters by them.
pub const KINDS: &[&str] = &["APPLY_PROVIDER_EVENT", "SEND_REFUND", "SEND_EMAIL"];

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

/// Writes `job` in the caller's transaction, with the correlation id of what caused it and the current
/// trace (so the job's span links to this call); call [`OutboxSignal::wake`] after the commit.
pub async fn enqueue(
    db: &impl sea_orm::ConnectionTrait,
    job: &Job,
    correlation_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let payload = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(format!("job: {e}")))?;
    let new =
        outbox::NewJob { kind: job.kind(), payload, trace_parent: telemetry::current_traceparent(), correlation_id };
    outbox::enqueue(db, new, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_and_retried_more_than_once() {
        let jobs = [
            Job::SendRefund { payment_id: Uuid::nil(), part: None },
            Job::SendEmail { event_id: Uuid::nil() },
            Job::ApplyProviderEvent {
                event_id: "evt".into(),
                event: ProviderEvent::Processing {
                    payment: crate::domain::payment::PaymentRef { payment_id: None, intent_id: Some("pi".into()) },
                },
            },
        ];
        let kinds: Vec<&str> = jobs.iter().map(Job::kind).collect();
        assert_eq!(kinds, ["SEND_REFUND", "SEND_EMAIL", "APPLY_PROVIDER_EVENT"]);
        for kind in kinds {
            assert!(KINDS.contains(&kind), "{kind}");
            assert!(Job::max_attempts(kind) > 1, "{kind}");
        }
        assert_eq!(KINDS.len(), jobs.len());
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let part = Some(RefundPart { change_id: Uuid::nil(), amount_minor: 2_500 });
        for job in
            [Job::SendRefund { payment_id: Uuid::nil(), part: None }, Job::SendRefund { payment_id: Uuid::nil(), part }]
        {
            let json = serde_json::to_string(&job).expect("serialises");
            assert_eq!(serde_json::from_str::<Job>(&json).expect("parses"), job);
        }
        let written_before_parts = format!(r#"{{"kind":"SendRefund","payment_id":"{}"}}"#, Uuid::nil());
        let read = serde_json::from_str::<Job>(&written_before_parts).expect("parses");
        assert_eq!(read, Job::SendRefund { payment_id: Uuid::nil(), part: None });
    }
}
