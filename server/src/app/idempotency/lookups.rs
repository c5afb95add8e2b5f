//! Key lookups for refusals that are not stored (the sold-out gate's, the waiting room's), coalesced: while
//! one query runs, the lookups that arrive meanwhile gather for the next one, so a crowd refused at a
//! sell-out costs the database one query per batch instead of one per call. No time is spent waiting to
//! fill a batch. Should a batch's query fail, each of its callers looks its key up alone.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::KeyedRequest;
use crate::store::{
    StoreError,
    idempotency::{self, Claim, KeyedCall},
};

/// Most keys one query looks up.
const MAX_BATCH: usize = 256;

#[derive(Clone, Default)]
pub(super) struct KeyLookups {
    queue: Arc<Mutex<Queue>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// A task is draining the queue: new lookups join its next batch.
    draining: bool,
}

struct Pending {
    request: KeyedRequest,
    now: DateTime<Utc>,
    /// What the key names (`None`: free); the sender is dropped when the batch's query failed.
    answer: oneshot::Sender<Option<Claim>>,
}

impl KeyLookups {
    /// What `request`'s key names at `now` in `db`: a completed call, one still running, or nothing.
    pub(super) async fn look_up(
        &self,
        db: &DatabaseConnection,
        request: &KeyedRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let start_draining = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Pending { request: request.clone(), now, answer });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_draining {
            // A task of its own, so a caller that goes away (its deadline) never strands the queue.
            tokio::spawn(self.clone().drain(db.clone()));
        }
        match answered.await {
            Ok(claim) => Ok(claim),
            Err(_) => Ok(idempotency::look_up_many(db, &[request.call()], now).await?.into_iter().next().flatten()),
        }
    }

    async fn drain(self, db: DatabaseConnection) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.draining = false;
                    return;
                }
                let take = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..take).collect()
            };
            // A buyer's two taps may share a batch: each key is read once.
            let mut unique: Vec<KeyedCall<'_>> = Vec::with_capacity(batch.len());
            let mut positions: HashMap<(Uuid, &str), usize> = HashMap::with_capacity(batch.len());
            let slots: Vec<usize> = batch
                .iter()
                .map(|pending| {
                    let call = pending.request.call();
                    *positions.entry((call.caller_id, call.key)).or_insert_with(|| {
                        unique.push(call);
                        unique.len() - 1
                    })
                })
                .collect();
            let Some(now) = batch.iter().map(|pending| pending.now).max() else { continue };
            let Ok(claims) = idempotency::look_up_many(&db, &unique, now).await else { continue };
            for (pending, slot) in batch.into_iter().zip(slots) {
                let _ = pending.answer.send(claims[slot].clone());
            }
        }
    }
}
