//! The idempotency store, used by every call whose proto policy requires an `idempotency-key`.
//!
//! Every keyed use case goes through one entry point, [`Idempotency::run`]: it claims the key in a new
//! write transaction (or finds the completed call it names), runs the use case's work in a savepoint of
//! that transaction, stores the outcome under the key and commits. So the key and the effects commit
//! together or not at all, and:
//! - a completed call's response (or business refusal) is replayed to a retry with the same request, read
//!   without a write transaction (a committed outcome never changes while its key lives);
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
//! Claiming, recording and the savepoint are separate steps on one transaction (`claim`, `record`,
//! [`KeyedTransaction`]), so a batch of holds can claim N keys in one transaction: open the outer write
//! transaction once, `claim` each key in it (replays and conflicts answer their callers at once), run each
//! fresh hold in its own savepoint so one hold's refusal undoes only its own effects, `record` each outcome,
//! and commit once for the whole batch. Nothing here assumes one key per transaction except `run` itself.

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use sea_orm::{DatabaseTransaction, TransactionTrait as _};
use uuid::Uuid;

use super::AppError;
use crate::{
    domain::booking::Refusal,
    infra::digest::sha256_hex,
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

    fn call(&self) -> KeyedCall<'_> {
        KeyedCall { caller_id: self.caller_id, key: &self.key, method: self.method, fingerprint: &self.fingerprint }
    }
}

/// The result of a keyed call.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The call ran now.
    Executed(T),
    /// An earlier call with this key and request completed: its encoded response, or its refusal.
    Replayed(Result<Vec<u8>, Refusal>),
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
    Replay(Result<Vec<u8>, Refusal>),
}

/// How a keyed call that acts outside the database starts.
pub enum Reserved {
    /// The key is this call's until its lease ends.
    Fresh(Reservation),
    Replay(Result<Vec<u8>, Refusal>),
}

#[derive(Clone)]
pub struct Idempotency {
    store: Store,
}

impl Idempotency {
    pub fn new(store: Store) -> Self {
        Self { store }
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
        self.run_guarded(request, now, async || Ok(()), encode, work).await
    }

    /// As [`Self::run`], with a `guard` that may refuse the call after a completed call under the key was
    /// looked for and before the key is claimed: its refusal executed nothing, so it is not stored (the
    /// sold-out gate).
    pub async fn run_guarded<T>(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
        guard: impl AsyncFnOnce() -> Result<(), AppError>,
        encode: impl FnOnce(&T) -> Vec<u8>,
        work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, AppError>,
    ) -> Result<Outcome<T>, AppError> {
        if let Some(replay) = self.completed(request, now).await? {
            return Ok(Outcome::Replayed(replay));
        }
        guard().await?;
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
                Ok(Begun::Fresh(KeyedTransaction { work, outer, request: request.clone() }))
            }
            taken => Ok(Begun::Replay(replay(request, taken)?)),
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
        if let Some(replay) = self.completed(request, now).await? {
            return Ok(Reserved::Replay(replay));
        }
        let txn = self.store.begin_write().await?;
        match claim(&txn, request, now, now + lease).await? {
            Claim::Claimed => {
                txn.commit().await.map_err(StoreError::from)?;
                Ok(Reserved::Fresh(Reservation {
                    store: self.store.clone(),
                    request: request.clone(),
                    claimed_at: now,
                }))
            }
            taken => Ok(Reserved::Replay(replay(request, taken)?)),
        }
    }

    /// The outcome of a completed call under the key, read without a write transaction: retries of
    /// finished calls (the common case in a burst of double taps) never queue behind the writers.
    async fn completed(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<Vec<u8>, Refusal>>, AppError> {
        match idempotency::completed(self.store.conn(), request.caller_id, &request.key, now).await? {
            Some(done) => Ok(Some(replay(request, done)?)),
            None => Ok(None),
        }
    }

    /// Forgets keys past their retention.
    pub async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, AppError> {
        Ok(idempotency::delete_expired(self.store.conn(), now).await?)
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

/// The stored outcome a taken key replays, when it names the same method and request.
fn replay(request: &KeyedRequest, claim: Claim) -> Result<Result<Vec<u8>, Refusal>, AppError> {
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
        if !idempotency::keep_reservation(&outer, &self.request.call(), self.claimed_at, now + KEY_RETENTION).await? {
            return Err(AppError::KeyInProgress);
        }
        let work_txn = outer.begin().await.map_err(StoreError::from)?;
        KeyedTransaction { work: work_txn, outer, request: self.request }.run(encode, work).await
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
        let Self { work, outer, request } = self;
        let stored = match &result {
            Ok(value) => {
                work.commit().await.map_err(StoreError::from)?;
                StoredOutcome::Response(encode(value))
            }
            Err(AppError::Refused(refusal)) => {
                work.rollback().await.map_err(StoreError::from)?;
                StoredOutcome::Refusal(
                    serde_json::to_vec(refusal).map_err(|e| StoreError::Corrupt(format!("refusal: {e}")))?,
                )
            }
            Err(_) => return result,
        };
        idempotency::record(&outer, &request.call(), stored).await?;
        outer.commit().await.map_err(StoreError::from)?;
        result
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
}
