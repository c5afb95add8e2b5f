//! The idempotency store's queries. The use case's transaction claims the key first, runs the call, then
//! records its outcome and commits: the key and the call's effects become visible together or not at all.
//!
//! A concurrent duplicate waits on the claim: PostgreSQL makes an insert of the same primary key wait for
//! the transaction holding it (up to `lock_timeout`), SQLite's single writer makes it wait for the lock.
//! Either way it then sees the committed outcome, so the call never runs twice.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, Condition, ConnectionTrait, DbBackend, EntityTrait as _, ExprTrait as _,
    QueryFilter as _, QuerySelect as _, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{StoreError, entities::idempotency_key};
use crate::domain::flight::CabinClass;

/// How long a duplicate waits for the call holding its key before it is told the call is in progress
/// (PostgreSQL; on SQLite the connection's busy timeout bounds the wait for the write lock).
pub const CLAIM_WAIT_MS: u32 = 2_000;

/// One (caller, key) and the call it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedCall<'a> {
    pub caller_id: Uuid,
    pub key: &'a str,
    pub method: &'a str,
    /// Hex SHA-256 of the method and the request.
    pub fingerprint: &'a str,
}

/// The recorded outcome of a completed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredOutcome {
    /// The encoded response message.
    Response(Vec<u8>),
    /// A business refusal, as JSON.
    Refusal(Vec<u8>),
}

impl StoredOutcome {
    /// The record's `outcome` column and its bytes.
    pub(super) fn parts(&self) -> (&'static str, &[u8]) {
        match self {
            Self::Response(bytes) => (RESPONSE, bytes),
            Self::Refusal(bytes) => (REFUSAL, bytes),
        }
    }
}

/// What the key already names, if anything.
#[derive(Debug, Clone)]
pub enum Claim {
    /// The key was free (or had expired): this transaction now holds it.
    Claimed,
    /// A completed call under this key.
    Taken { method: String, fingerprint: String, outcome: StoredOutcome },
    /// A call that reserved the key (committed its claim before acting) and has not finished; its lease
    /// runs until the record's `expires_at`.
    Reserved { method: String, fingerprint: String },
}

/// Claims the key for this transaction, replacing a record that has expired. On PostgreSQL the wait for a
/// concurrent holder of the key is bounded by [`CLAIM_WAIT_MS`] (then [`StoreError::LockTimeout`]); the
/// bound covers the claim only, so the call's own statements (a hold queueing on a busy cabin) wait as long
/// as the call's deadline allows.
#[tracing::instrument(name = "db idempotency.claim", skip_all, fields(otel.kind = "client"))]
pub async fn claim(
    db: &impl ConnectionTrait,
    call: &KeyedCall<'_>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    bounded_wait(db, claim_unbounded(db, call, now, expires_at)).await
}

/// Runs `statement` with waits for rows other transactions hold bounded by [`CLAIM_WAIT_MS`] (PostgreSQL).
async fn bounded_wait<T>(
    db: &impl ConnectionTrait,
    statement: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    if postgres {
        db.execute_unprepared(&format!("SET LOCAL lock_timeout = {CLAIM_WAIT_MS}")).await?;
    }
    let result = statement.await?;
    if postgres {
        db.execute_unprepared("SET LOCAL lock_timeout TO DEFAULT").await?;
    }
    Ok(result)
}

fn replace_expired(now: DateTime<Utc>) -> OnConflict {
    use idempotency_key::Column as C;
    OnConflict::columns([C::CallerId, C::Key])
        .update_columns([C::Method, C::Fingerprint, C::Outcome, C::Stored, C::CreatedAt, C::ExpiresAt, C::Scope])
        .action_and_where(C::ExpiresAt.into_expr().lte(now))
        .to_owned()
}

/// What each of `calls`' keys names at `now`, in their order, read without claiming anything: `None`
/// where the key is free (or its record expired). A batch uses it to leave out calls that completed
/// before; [`insert_completed`] then finds out whether a key was taken meanwhile.
#[tracing::instrument(name = "db idempotency.look_up_many", skip_all, fields(otel.kind = "client"))]
pub async fn look_up_many(
    db: &impl ConnectionTrait,
    calls: &[KeyedCall<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Option<Claim>>, StoreError> {
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let rows = if db.get_database_backend() == DbBackend::Postgres {
        // One statement of one shape for any number of keys (they travel as one JSON parameter): for 256
        // keys among 60,000, an OR of (caller, key) pairs took about 7 ms to plan and run, this about 2 ms.
        // Each key is read by the primary key whatever the table's statistics say: a plain join, planned
        // (and its generic plan cached) while the table was small, hashed the whole table at every call.
        let wanted: serde_json::Value =
            calls.iter().map(|call| serde_json::json!({ "caller_id": call.caller_id, "key": call.key })).collect();
        let sql = "SELECT k.* FROM jsonb_to_recordset($1::jsonb) AS wanted(caller_id uuid, key text) \
                   CROSS JOIN LATERAL (SELECT * FROM idempotency_keys i \
                   WHERE i.caller_id = wanted.caller_id AND i.key = wanted.key AND i.expires_at > $2 LIMIT 1) k";
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, [wanted.into(), now.into()]);
        idempotency_key::Entity::find().from_raw_sql(statement).all(db).await?
    } else {
        let any_key = calls.iter().fold(Condition::any(), |any, call| {
            any.add(
                Condition::all()
                    .add(idempotency_key::Column::CallerId.eq(call.caller_id))
                    .add(idempotency_key::Column::Key.eq(call.key)),
            )
        });
        idempotency_key::Entity::find()
            .filter(any_key)
            .filter(idempotency_key::Column::ExpiresAt.gt(now))
            .all(db)
            .await?
    };
    let mut by_key: HashMap<(Uuid, String), idempotency_key::Model> =
        rows.into_iter().map(|row| ((row.caller_id, row.key.clone()), row)).collect();
    calls.iter().map(|call| by_key.remove(&(call.caller_id, call.key.to_owned())).map(taken).transpose()).collect()
}

/// Records calls that completed in this transaction, each with its outcome and the `scope` they share
/// (see [`hold_scope`]), in one statement; expired records of their keys are replaced. `false` when a concurrent call took one of the keys after
/// [`look_up_many`] found it free (waiting for it as [`claim`] does): then the transaction must not
/// commit. Keys must be distinct.
#[tracing::instrument(name = "db idempotency.insert_completed", skip_all, fields(otel.kind = "client"))]
pub async fn insert_completed(
    db: &impl ConnectionTrait,
    calls: &[(KeyedCall<'_>, StoredOutcome)],
    scope: Option<&str>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if calls.is_empty() {
        return Ok(true);
    }
    let rows = calls.iter().map(|(call, outcome)| {
        let (kind, bytes) = outcome.parts();
        idempotency_key::ActiveModel {
            caller_id: Set(call.caller_id),
            key: Set(call.key.to_owned()),
            method: Set(call.method.to_owned()),
            fingerprint: Set(call.fingerprint.to_owned()),
            outcome: Set(Some(kind.to_owned())),
            stored: Set(Some(bytes.to_vec())),
            created_at: Set(now),
            expires_at: Set(expires_at),
            scope: Set(scope.map(str::to_owned)),
        }
    });
    let insert =
        idempotency_key::Entity::insert_many(rows).on_conflict(replace_expired(now)).exec_without_returning(db);
    let inserted = bounded_wait(db, async { Ok(insert.await?) }).await?;
    Ok(inserted == calls.len() as u64)
}

/// The scope of the keys of holds on one flight's cabin.
pub fn hold_scope(flight_id: Uuid, cabin: CabinClass) -> String {
    format!("hold:{flight_id}:{}", cabin.as_str())
}

/// The scope of keys recorded before scopes were (the migration that added them): in every cabin's keys.
const LEGACY_SCOPE: &str = "legacy";

/// The (caller, key) of every live key recorded in `scope` (and of every legacy key), at most `limit`.
#[tracing::instrument(name = "db idempotency.keys_in_scope", skip_all, fields(otel.kind = "client"))]
pub async fn keys_in_scope(
    db: &impl ConnectionTrait,
    scope: &str,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    use idempotency_key::Column as C;
    Ok(idempotency_key::Entity::find()
        .select_only()
        .columns([C::CallerId, C::Key])
        .filter(C::Scope.is_in([scope, LEGACY_SCOPE]))
        .filter(C::ExpiresAt.gt(now))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

async fn claim_unbounded(
    db: &impl ConnectionTrait,
    call: &KeyedCall<'_>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    let row = idempotency_key::ActiveModel {
        caller_id: Set(call.caller_id),
        key: Set(call.key.to_owned()),
        method: Set(call.method.to_owned()),
        fingerprint: Set(call.fingerprint.to_owned()),
        outcome: Set(None),
        stored: Set(None),
        created_at: Set(now),
        expires_at: Set(expires_at),
        scope: Set(None),
    };
    let replace_expired = replace_expired(now);
    // A key expiring this very moment may be deleted by a sweep (whose clock read a little later) between
    // the insert that found it and the read: then it is free, and the second insert takes it.
    for _ in 0..2 {
        let inserted = idempotency_key::Entity::insert(row.clone())
            .on_conflict(replace_expired.clone())
            .exec_without_returning(db)
            .await?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        if let Some(existing) =
            idempotency_key::Entity::find_by_id((call.caller_id, call.key.to_owned())).one(db).await?
        {
            return taken(existing);
        }
    }
    Err(StoreError::Corrupt("an idempotency key vanished twice while claimed".into()))
}

fn taken(existing: idempotency_key::Model) -> Result<Claim, StoreError> {
    let outcome = match (existing.outcome.as_deref(), existing.stored) {
        (Some(RESPONSE), Some(bytes)) => StoredOutcome::Response(bytes),
        (Some(REFUSAL), Some(bytes)) => StoredOutcome::Refusal(bytes),
        (None, None) => return Ok(Claim::Reserved { method: existing.method, fingerprint: existing.fingerprint }),
        _ => return Err(StoreError::Corrupt("an idempotency key was committed with half an outcome".into())),
    };
    Ok(Claim::Taken { method: existing.method, fingerprint: existing.fingerprint, outcome })
}

const RESPONSE: &str = "RESPONSE";
const REFUSAL: &str = "REFUSAL";

/// Records the outcome of the call that claimed the key, in its transaction.
#[tracing::instrument(name = "db idempotency.record", skip_all, fields(otel.kind = "client"))]
pub async fn record(db: &impl ConnectionTrait, call: &KeyedCall<'_>, outcome: StoredOutcome) -> Result<(), StoreError> {
    let (kind, bytes) = outcome.parts();
    let updated = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::Outcome, kind.into())
        .col_expr(idempotency_key::Column::Stored, bytes.to_vec().into())
        .filter(idempotency_key::Column::CallerId.eq(call.caller_id))
        .filter(idempotency_key::Column::Key.eq(call.key))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Corrupt("the claimed idempotency key is missing".into()));
    }
    Ok(())
}

/// Keeps a reservation made at `claimed_at` until `expires_at`, inside the transaction that will record
/// its outcome (the row stays locked there until it ends). `false` when the reservation is no longer this
/// call's: its lease passed and a retry took the key over.
#[tracing::instrument(name = "db idempotency.keep_reservation", skip_all, fields(otel.kind = "client"))]
pub async fn keep_reservation(
    db: &impl ConnectionTrait,
    call: &KeyedCall<'_>,
    claimed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::ExpiresAt, expires_at.into())
        .filter(reservation(call, claimed_at))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives up a reservation made at `claimed_at` that recorded no outcome, so a retry can run at once.
#[tracing::instrument(name = "db idempotency.release_reservation", skip_all, fields(otel.kind = "client"))]
pub async fn release_reservation(
    db: &impl ConnectionTrait,
    call: &KeyedCall<'_>,
    claimed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    idempotency_key::Entity::delete_many().filter(reservation(call, claimed_at)).exec(db).await?;
    Ok(())
}

/// The row of a reservation made at `claimed_at` that has recorded no outcome yet.
fn reservation(call: &KeyedCall<'_>, claimed_at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(idempotency_key::Column::CallerId.eq(call.caller_id))
        .add(idempotency_key::Column::Key.eq(call.key))
        .add(idempotency_key::Column::CreatedAt.eq(claimed_at))
        .add(idempotency_key::Column::Outcome.is_null())
}
