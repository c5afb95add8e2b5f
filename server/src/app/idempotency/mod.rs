//! The idempotency store, used by every call whose proto policy requires an `idempotency-key`.
//!
//! Every keyed use case goes through one entry point, [`Idempotency::run`]: it claims the key in a new
//! write transaction (or finds the completed call it names), runs the use case's work in a savepoint of
//! that transaction, stores the outcome under the key and commits. So the key and the effects commit
//! together or not at all, and:
//! - a completed call's response (or business refusal) is replayed to a retry with the same request; a
//!   retry that reaches the instance that completed the call is answered from memory, without a write
//!   transaction (a committed outcome never changes while its key lives; see [`Completed`]);
//! - the same key with another method or request is refused (`KeyReused`), changing nothing;
//! - a concurrent duplicate waits for the first call's commit, then replays it (or, past a bound, gets
//!   `KeyInProgress`): the call never executes twice;
//! - validation, authentication and transient failures roll everything back, so the key can be retried.
//!
//! The response is stored as the bytes the client received, so the caller hands `run` the encoder of its
//! response type (the api layer's, once per type); a replay returns those bytes untouched.
//!
//! A call that must act outside the database first (the payment provider) cannot keep a transaction open
//! while it waits. It [`Idempotency::reserve`]s the key instead: the claim commits on its own, before any
//! effect, as a lease. A conflicting request is refused and a duplicate told to retry before anything
//! happens; the call then records its outcome through [`Reservation::run`]. A call that dies leaves the
//! lease to expire, after which a retry takes the key over (what the call did before is safe to redo: the
//! provider requests carry keys of their own).
//!
//! # Batches
//! Group-committed holds (`super::hold_batch`) run many keyed calls in one transaction without a claim or
//! a savepoint each: [`Idempotency::look_up_batch`] reads what the keys name (completed calls are answered
//! from their stored outcome and left out), the batch decides the rest in memory, and
//! `store::hold_writes` writes every key with its outcome, with the batch's rows, just before the commit.
//! A key a concurrent call took in between makes that insert wait for it, then come up short (or give up
//! after the claim's bound): the batch rolls back and each of its calls is decided again alone, where the
//! other's committed outcome replays and a key still held answers `KeyInProgress`. So a batch never
//! executes a call twice either.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use opentelemetry::KeyValue;
use sea_orm::{DatabaseTransaction, TransactionTrait as _};
use uuid::Uuid;

mod lookups;

use lookups::KeyLookups;

use super::AppError;
use crate::{
    domain::booking::Refusal,
    infra::{digest::sha256_hex, metrics::metrics},
    store::{
        Store, StoreError,
        idempotency::{self, Claim, KeyedCall, StoredOutcome},
    },
};

/// How long a key is remembered: the contract promises at least 24 hours.
pub const KEY_RETENTION: TimeDelta = TimeDelta::hours(24);

/// A call that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRequest {
    pub caller_id: Uuid,
    pub key: String,
    /// Full gRPC method path.
    pub method: &'static str,
    /// Hex SHA-256 over the method and the encoded request.
    pub fingerprint: String,
}

impl KeyedRequest {
    pub fn new(caller_id: Uuid, key: String, method: &'static str, encoded_request: &[u8]) -> Self {
        // The separator keeps the method's end from sliding into the request.
        let fingerprint = sha256_hex(&[method.as_bytes(), &[0], encoded_request]);
        Self { caller_id, key, method, fingerprint }
    }

    pub(crate) fn call(&self) -> KeyedCall<'_> {
        KeyedCall { caller_id: self.caller_id, key: &self.key, method: self.method, fingerprint: &self.fingerprint }
    }
}

/// The result of a keyed call.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The call ran now.
    Executed(T),
    /// An earlier call with this key and request completed: its encoded response, or its refusal.
    Replayed(Replay),
}

impl<T> Outcome<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Self::Executed(value) => Outcome::Executed(f(value)),
            Self::Replayed(replay) => Outcome::Replayed(replay),
        }
    }
}

/// How a keyed call starts.
enum Begun {
    /// The key was free: run the call in this transaction.
    Fresh(KeyedTransaction),
    Replay(Replay),
}

/// How a keyed call that acts outside the database starts.
pub enum Reserved {
    /// The key is this call's until its lease ends.
    Fresh(Reservation),
    Replay(Replay),
}

#[derive(Clone)]
pub struct Idempotency {
    store: Store,
    completed: Arc<Completed>,
    lookups: KeyLookups,
}

impl Idempotency {
    pub fn new(store: Store) -> Self {
        Self { store, completed: Arc::new(Completed::default()), lookups: KeyLookups::default() }
    }

    /// Runs one keyed call: claims the key (or replays the completed call it names), runs `work` in a
    /// savepoint of the key's transaction, and commits the outcome, encoded by `encode`, with its effects.
    pub async fn run<T>(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
        encode: impl FnOnce(&T) -> Vec<u8>,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, AppError>,
    ) -> Result<Outcome<T>, AppError> {
        if let Some(replay) = self.completed.replay(request, now) {
            return Ok(Outcome::Replayed(replay?));
        }
        match self.begin(request, now).await? {
            Begun::Replay(replay) => Ok(Outcome::Replayed(replay)),
            Begun::Fresh(txn) => Ok(Outcome::Executed(txn.run(encode, work).await?)),
        }
    }

    /// Claims the key in a new write transaction, or finds the call it names (completed while this call
    /// looked, or still running).
    async fn begin(&self, request: &KeyedRequest, now: DateTime<Utc>) -> Result<Begun, AppError> {
        let outer = self.store.begin_write().await?;
        match claim(&outer, request, now, now + KEY_RETENTION).await? {
            Claim::Claimed => {
                let work = outer.begin().await.map_err(StoreError::from)?;
                Ok(Begun::Fresh(KeyedTransaction {
                    work,
                    outer,
                    request: request.clone(),
                    expires_at: now + KEY_RETENTION,
                    completed: self.completed.clone(),
                }))
            }
            taken => Ok(Begun::Replay(replay(request, taken)?)),
        }
    }

    /// The replay of a call this instance completed under the request's key, answered from memory.
    pub fn replay_completed(&self, request: &KeyedRequest, now: DateTime<Utc>) -> Option<Result<Replay, AppError>> {
        self.completed.replay(request, now)
    }

    /// The replay of a call completed under the request's key, from memory or else the database (lookups
    /// arriving together read their keys in one query); `None` when the key names no completed call.
    pub async fn replay_stored(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<Replay, AppError>>, AppError> {
        if let Some(replay) = self.completed.replay(request, now) {
            return Ok(Some(replay));
        }
        let claim = self.lookups.look_up(self.store.conn(), request, now).await?;
        Ok(claim.map(|claim| replay(request, claim)))
    }

    /// What each request's key names, in `txn`, without claiming it: `None` where the key is free, else
    /// the replay of the completed call, or why the request cannot use the key.
    pub async fn look_up_batch(
        &self,
        txn: &DatabaseTransaction,
        requests: &[&KeyedRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Result<Replay, AppError>>>, AppError> {
        let calls: Vec<KeyedCall> = requests.iter().map(|request| request.call()).collect();
        let claims = idempotency::look_up_many(txn, &calls, now).await?;
        Ok(requests.iter().zip(claims).map(|(request, claim)| claim.map(|claim| replay(request, claim))).collect())
    }

    /// Keeps the outcomes a batch recorded at `now` (`store::hold_writes`), once its transaction committed.
    pub fn remember_batch(&self, outcomes: Vec<(&KeyedRequest, Replay)>, now: DateTime<Utc>) {
        for (request, outcome) in outcomes {
            self.completed.remember(request, outcome, now + KEY_RETENTION);
        }
    }

    /// Claims the key and commits the claim before the call acts, as a lease of `lease`; or finds the
    /// completed call it names. A conflicting request is refused here, before any effect.
    pub async fn reserve(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Reserved, AppError> {
        // The claim's time identifies the reservation; databases keep microseconds.
        let now = now.trunc_subsecs(6);
        if let Some(replay) = self.completed.replay(request, now) {
            return Ok(Reserved::Replay(replay?));
        }
        let txn = self.store.begin_write().await?;
        match claim(&txn, request, now, now + lease).await? {
            Claim::Claimed => {
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Reserved::Fresh(Reservation {
                    store: self.store.clone(),
                    request: request.clone(),
                    claimed_at: now,
                    completed: self.completed.clone(),
                }))
            }
            taken => Ok(Reserved::Replay(replay(request, taken)?)),
        }
    }
}

async fn claim(
    txn: &DatabaseTransaction,
    request: &KeyedRequest,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Claim, AppError> {
    match idempotency::claim(txn, &request.call(), now, expires_at).await {
        Err(StoreError::LockTimeout(_)) => Err(AppError::KeyInProgress),
        claim => Ok(claim?),
    }
}

/// What a completed call answers every retry: its encoded response, or its refusal.
pub type Replay = Result<Vec<u8>, Refusal>;

/// The stored form of a completed call's outcome.
pub(crate) fn stored(outcome: &Replay) -> Result<StoredOutcome, AppError> {
    Ok(match outcome {
        Ok(bytes) => StoredOutcome::Response(bytes.clone()),
        Err(refusal) => StoredOutcome::Refusal(
            serde_json::to_vec(refusal).map_err(|e| StoreError::Corrupt(format!("refusal: {e}")))?,
        ),
    })
}

/// Counts replays and keys reused with another request (the metrics), passing the result through.
fn counted(request: &KeyedRequest, replay: Result<Replay, AppError>) -> Result<Replay, AppError> {
    let method = [KeyValue::new("rpc.method", request.method)];
    match &replay {
        Ok(_) => metrics().idempotency_replays.add(1, &method),
        Err(AppError::KeyReused) => metrics().idempotency_conflicts.add(1, &method),
        Err(_) => {}
    }
    replay
}

/// The stored outcome a taken key replays, when it names the same method and request.
fn replay(request: &KeyedRequest, claim: Claim) -> Result<Replay, AppError> {
    counted(request, stored_replay(request, claim))
}

fn stored_replay(request: &KeyedRequest, claim: Claim) -> Result<Replay, AppError> {
    let (method, fingerprint, outcome) = match claim {
        Claim::Taken { method, fingerprint, outcome } => (method, fingerprint, Some(outcome)),
        Claim::Reserved { method, fingerprint } => (method, fingerprint, None),
        Claim::Claimed => return Err(StoreError::Corrupt("a free key was read as taken".into()).into()),
    };
    if method != request.method || fingerprint != request.fingerprint {
        return Err(AppError::KeyReused);
    }
    let Some(outcome) = outcome else { return Err(AppError::KeyInProgress) };
    Ok(match outcome {
        StoredOutcome::Response(bytes) => Ok(bytes),
        StoredOutcome::Refusal(json) => {
            Err(serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("stored refusal: {e}")))?)
        }
    })
}

/// A key this call reserved (committed) before acting.
pub struct Reservation {
    store: Store,
    request: KeyedRequest,
    claimed_at: DateTime<Utc>,
    completed: Arc<Completed>,
}

impl Reservation {
    /// Records the call's outcome under the key: runs `work` in a savepoint of the transaction that keeps
    /// the key, like [`Idempotency::run`]. `KeyInProgress` when the lease passed and a retry has taken the
    /// key over.
    pub async fn run<T>(
        self,
        now: DateTime<Utc>,
        encode: impl FnOnce(&T) -> Vec<u8>,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outer = self.store.begin_write().await?;
        let expires_at = now + KEY_RETENTION;
        if !idempotency::keep_reservation(&outer, &self.request.call(), self.claimed_at, expires_at).await? {
            return Err(AppError::KeyInProgress);
        }
        let work_txn = outer.begin().await.map_err(StoreError::from)?;
        let Self { request, completed, .. } = self;
        KeyedTransaction { work: work_txn, outer, request, expires_at, completed }.run(encode, work).await
    }

    /// Gives the key back after a failure that is not stored (a transient one), so a retry runs at once
    /// instead of waiting for the lease.
    pub async fn release(self) {
        if let Err(error) =
            idempotency::release_reservation(self.store.conn(), &self.request.call(), self.claimed_at).await
        {
            tracing::warn!(%error, "could not release an idempotency key; it frees itself when its lease ends");
        }
    }
}

/// A claimed key and the transaction that will carry the call's effects. Dropping it rolls both back.
struct KeyedTransaction {
    // Declared first so it is dropped (rolled back to its savepoint) before the outer transaction.
    work: DatabaseTransaction,
    outer: DatabaseTransaction,
    request: KeyedRequest,
    /// When the key's record expires (as the claim wrote it).
    expires_at: DateTime<Utc>,
    completed: Arc<Completed>,
}

impl KeyedTransaction {
    /// Runs `work` in the savepoint, then commits its effects with its response, or only the key with its
    /// refusal. Any other failure rolls everything back and leaves the key unused.
    async fn run<T>(
        self,
        encode: impl FnOnce(&T) -> Vec<u8>,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let result = work(&self.work).await;
        let Self { work, outer, request, expires_at, completed } = self;
        let replay = match &result {
            Ok(value) => {
                work.commit().await.map_err(StoreError::from)?;
                Ok(encode(value))
            }
            Err(AppError::Refused(refusal)) => {
                work.rollback().await.map_err(StoreError::from)?;
                Err(refusal.clone())
            }
            Err(_) => return result,
        };
        idempotency::record(&outer, &request.call(), stored(&replay)?).await?;
        outer.commit().await.map_err(StoreError::from)?;
        completed.remember(&request, replay, expires_at);
        result
    }
}

/// Outcomes of calls this instance completed (one store for every service, as keys are), so a retry that
/// comes back here is answered without a write transaction. Safe because a committed outcome never changes while its key lives; an entry is used only
/// until the key's record expires, and a miss (another instance completed the call, or the entry was
/// evicted) takes the database path. Holds at most [`Completed::CAPACITY`] calls, oldest out first.
#[derive(Default)]
struct Completed {
    calls: Mutex<CompletedCalls>,
}

#[derive(Default)]
struct CompletedCalls {
    by_key: HashMap<(Uuid, String), CompletedCall>,
    /// Keys in the order they were remembered, for eviction.
    order: VecDeque<(Uuid, String)>,
}

struct CompletedCall {
    method: &'static str,
    fingerprint: String,
    outcome: Replay,
    expires_at: DateTime<Utc>,
}

impl Completed {
    /// About the retries of one flash sale's worth of calls; responses are a few hundred bytes each, so
    /// this stays within a few megabytes.
    const CAPACITY: usize = 20_000;

    fn remember(&self, request: &KeyedRequest, outcome: Replay, expires_at: DateTime<Utc>) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (request.caller_id, request.key.clone());
        let call =
            CompletedCall { method: request.method, fingerprint: request.fingerprint.clone(), outcome, expires_at };
        if calls.by_key.insert(key.clone(), call).is_none() {
            calls.order.push_back(key);
        }
        while calls.order.len() > Self::CAPACITY {
            if let Some(oldest) = calls.order.pop_front() {
                calls.by_key.remove(&oldest);
            }
        }
    }

    /// The replay of a remembered call under the request's key, `KeyReused` when the key names another
    /// request; `None` when this instance does not know the key (or its record has expired).
    fn replay(&self, request: &KeyedRequest, now: DateTime<Utc>) -> Option<Result<Replay, AppError>> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let call = calls.by_key.get(&(request.caller_id, request.key.clone())).filter(|call| call.expires_at > now)?;
        let replay = match call.method != request.method || call.fingerprint != request.fingerprint {
            true => Err(AppError::KeyReused),
            false => Ok(call.outcome.clone()),
        };
        Some(counted(request, replay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_methods_and_requests_apart() {
        let caller = Uuid::now_v7();
        let key = || "k".repeat(16);
        let a = KeyedRequest::new(caller, key(), "/s/A", b"request");
        assert_eq!(a.fingerprint.len(), 64);
        assert_eq!(a, KeyedRequest::new(caller, key(), "/s/A", b"request"));
        assert_ne!(a.fingerprint, KeyedRequest::new(caller, key(), "/s/B", b"request").fingerprint);
        assert_ne!(a.fingerprint, KeyedRequest::new(caller, key(), "/s/A", b"requesT").fingerprint);
        // The separator keeps the method's end from sliding into the request.
        assert_ne!(
            KeyedRequest::new(caller, key(), "/s/Ax", b"y").fingerprint,
            KeyedRequest::new(caller, key(), "/s/A", b"xy").fingerprint
        );
    }

    #[test]
    fn remembered_calls_replay_until_their_key_expires_and_the_oldest_go_first() {
        let completed = Completed::default();
        let now = Utc::now();
        let request = KeyedRequest::new(Uuid::now_v7(), "k".repeat(16), "/s/A", b"request");
        assert!(completed.replay(&request, now).is_none());
        completed.remember(&request, Ok(b"response".to_vec()), now + KEY_RETENTION);
        assert_eq!(completed.replay(&request, now).unwrap().unwrap(), Ok(b"response".to_vec()));
        let other = KeyedRequest::new(request.caller_id, request.key.clone(), "/s/A", b"another request");
        assert!(matches!(completed.replay(&other, now), Some(Err(AppError::KeyReused))));
        assert!(completed.replay(&request, now + KEY_RETENTION).is_none(), "an expired key is a new key");

        for n in 0..Completed::CAPACITY {
            let filler = KeyedRequest::new(Uuid::now_v7(), format!("filler-key-{n:06}"), "/s/A", b"r");
            completed.remember(&filler, Ok(Vec::new()), now + KEY_RETENTION);
        }
        assert!(completed.replay(&request, now).is_none(), "evicted: the database answers instead");
        assert_eq!(completed.calls.lock().unwrap().by_key.len(), Completed::CAPACITY);
    }
}
