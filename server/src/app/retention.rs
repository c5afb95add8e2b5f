//! What is kept only for a while, and for how long: idempotency keys (at least 24 hours, until their
//! expiry), provider event ids (30 days: Stripe redelivers for 3 days), refresh tokens that can no longer
//! be used, finished jobs (7 days, for inspection), and change quotes (a day past their expiry, so a late
//! `ChangeFlight` still hears `QUOTE_EXPIRED`), and travel documents (personal data: until a day after their
//! booking's last flight arrives, set when they are given). Swept in bounded batches.

use chrono::TimeDelta;

use super::AppError;
use crate::{
    infra::clock::Clock,
    store::{Store, StoreError, retention},
};

/// How long a provider event id is remembered, so a redelivery is recognised.
pub const PROVIDER_EVENT_RETENTION: TimeDelta = TimeDelta::days(30);
/// How long finished jobs are kept for inspection.
pub const DONE_JOB_RETENTION: TimeDelta = TimeDelta::days(7);
/// How long a change quote is kept once it expired.
pub const EXPIRED_QUOTE_RETENTION: TimeDelta = TimeDelta::days(1);
/// Rows one statement deletes at most.
pub const BATCH: u64 = 500;
/// Batches one sweep runs at most per kind of row; the rest waits for the next sweep.
const MAX_BATCHES: u32 = 20;

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: u64,
    pub provider_events: u64,
    pub refresh_tokens: u64,
    pub done_jobs: u64,
    pub change_quotes: u64,
    pub travel_documents: u64,
}

#[derive(Clone)]
pub struct Retention {
    store: Store,
    clock: Clock,
}

impl Retention {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Deletes whatever is past its retention, each kind in batches of at most [`BATCH`] rows.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn sweep(&self) -> Result<Swept, AppError> {
        let now = self.clock.now();
        let db = self.store.conn();
        let swept = Swept {
            idempotency_keys: in_batches(|| retention::delete_expired_idempotency_keys(db, now, BATCH)).await?,
            provider_events: in_batches(|| {
                retention::delete_provider_events_before(db, now - PROVIDER_EVENT_RETENTION, BATCH)
            })
            .await?,
            refresh_tokens: in_batches(|| retention::delete_dead_refresh_tokens(db, now, BATCH)).await?,
            done_jobs: in_batches(|| retention::delete_done_jobs_before(db, now - DONE_JOB_RETENTION, BATCH)).await?,
            change_quotes: in_batches(|| {
                retention::delete_quotes_expired_before(db, now - EXPIRED_QUOTE_RETENTION, BATCH)
            })
            .await?,
            travel_documents: in_batches(|| retention::delete_travel_documents_due(db, now, BATCH)).await?,
        };
        if swept != Swept::default() {
            tracing::info!(?swept, "retention sweep deleted rows past their retention");
        }
        Ok(swept)
    }
}

/// Runs `batch` until it deletes less than a full batch, or [`MAX_BATCHES`] times.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let deleted = batch().await?;
        total += deleted;
        if deleted < BATCH {
            break;
        }
    }
    Ok(total)
}
