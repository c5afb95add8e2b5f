//! The idempotency store, used by every call whose proto policy requires an `idempotency-key`.
//!
//! A keyed call opens one write transaction through [`Idempotency::begin`]: the key is claimed first,
//! the use case writes its effects in a savepoint of that transaction, and [`KeyedTransaction::finish`]
//! records the outcome and commits. So the key and the effects commit together or not at all, and:
//! - a completed call's response (or business refusal) is replayed to a retry with the same request;
//! - the same key with another method or request is refused (`KeyReused`), changing nothing;
//! - a concurrent duplicate waits for the first call's commit, then replays it (or, past a bound, gets
//!   `KeyInProgress`): the call never executes twice;
//! - validation, authentication and transient failures roll everything back, so the key can be retried.

use chrono::{DateTime, TimeDelta, Utc};
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

/// How a keyed call starts.
pub enum Begun {
    /// The key was free: run the call in this transaction.
    Fresh(KeyedTransaction),
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

    /// Claims the key in a new write transaction, or finds the completed call it names.
    pub async fn begin(&self, request: &KeyedRequest, now: DateTime<Utc>) -> Result<Begun, AppError> {
        let outer = self.store.begin_write().await?;
        idempotency::bound_claim_wait(&outer).await?;
        let claim = match idempotency::claim(&outer, &request.call(), now, now + KEY_RETENTION).await {
            Err(StoreError::LockTimeout(_)) => return Err(AppError::KeyInProgress),
            claim => claim?,
        };
        match claim {
            Claim::Claimed => {
                let work = outer.begin().await.map_err(StoreError::from)?;
                Ok(Begun::Fresh(KeyedTransaction { work, outer, request: request.clone() }))
            }
            taken => Ok(Begun::Replay(replay(request, taken)?)),
        }
    }

    /// The stored outcome of a completed call with this key, without claiming it. Calls that reach the
    /// payment provider look first, so a completed call is answered without calling the provider again.
    pub async fn completed(
        &self,
        request: &KeyedRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<Result<Vec<u8>, Refusal>>, AppError> {
        match idempotency::completed(self.store.conn(), request.caller_id, &request.key, now).await? {
            Some(taken) => Ok(Some(replay(request, taken)?)),
            None => Ok(None),
        }
    }

    /// Forgets keys past their retention.
    pub async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, AppError> {
        Ok(idempotency::delete_expired(self.store.conn(), now).await?)
    }
}

/// The stored outcome a taken key replays, when it names the same method and request.
fn replay(request: &KeyedRequest, claim: Claim) -> Result<Result<Vec<u8>, Refusal>, AppError> {
    let Claim::Taken { method, fingerprint, outcome } = claim else {
        return Err(StoreError::Corrupt("a free key was read as taken".into()).into());
    };
    if method != request.method || fingerprint != request.fingerprint {
        return Err(AppError::KeyReused);
    }
    Ok(match outcome {
        StoredOutcome::Response(bytes) => Ok(bytes),
        StoredOutcome::Refusal(json) => {
            Err(serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("stored refusal: {e}")))?)
        }
    })
}

/// A claimed key and the transaction that will carry the call's effects. Dropping it rolls both back.
pub struct KeyedTransaction {
    // Declared first so it is dropped (rolled back to its savepoint) before the outer transaction.
    work: DatabaseTransaction,
    outer: DatabaseTransaction,
    request: KeyedRequest,
}

impl KeyedTransaction {
    /// Where the use case writes its effects (a savepoint: a refusal undoes them but keeps the key).
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.work
    }

    /// Commits the call's effects with its response, or only the key with its refusal. Any other failure
    /// rolls everything back and leaves the key unused.
    pub async fn finish<T>(
        self,
        result: Result<T, AppError>,
        encode: impl FnOnce(&T) -> Vec<u8>,
    ) -> Result<T, AppError> {
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
