//! Deleting what is kept only for a while (idempotency keys, provider event ids, spent refresh tokens,
//! finished jobs, change quotes, travel documents), in bounded batches: each statement deletes at most a batch of rows, so a sweep after
//! a long pause never holds a huge delete's locks or grows the write-ahead log in one go.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, EntityTrait, ExprTrait as _, QueryFilter as _,
    sea_query::{Expr, Query},
};

use super::{
    StoreError,
    entities::{change_quote, idempotency_key, outbox_job, provider_event, refresh_token, travel_document},
};
use crate::domain::job::JobState;

/// Deletes at most `batch` rows of `E` matching `due`; `key` is its primary key (all columns).
async fn delete_batch<E: EntityTrait>(
    db: &impl ConnectionTrait,
    key: &[E::Column],
    due: Condition,
    batch: u64,
) -> Result<u64, StoreError> {
    let chosen = Query::select().columns(key.to_vec()).from(E::default()).cond_where(due).limit(batch).to_owned();
    let key_expr = Expr::tuple(key.iter().map(|column| Expr::col(*column)));
    Ok(E::delete_many().filter(key_expr.in_subquery(chosen)).exec(db).await?.rows_affected)
}

/// Idempotency keys past their expiry (at least 24 hours after they were claimed).
#[tracing::instrument(level = "debug", name = "db retention.idempotency_keys", skip_all, fields(otel.kind = "client"))]
pub async fn delete_expired_idempotency_keys(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::all().add(idempotency_key::Column::ExpiresAt.lte(now));
    delete_batch::<idempotency_key::Entity>(
        db,
        &[idempotency_key::Column::CallerId, idempotency_key::Column::Key],
        due,
        batch,
    )
    .await
}

/// Ids of provider events received before `before` (a redelivery later than that is not expected).
#[tracing::instrument(level = "debug", name = "db retention.provider_events", skip_all, fields(otel.kind = "client"))]
pub async fn delete_provider_events_before(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::all().add(provider_event::Column::ReceivedAt.lt(before));
    delete_batch::<provider_event::Entity>(db, &[provider_event::Column::Id], due, batch).await
}

/// Refresh tokens that can no longer be used: expired, or revoked (a revoked family's tokens answer
/// UNAUTHORIZED whether they are kept or not). Rotated tokens that are still live are kept: presenting
/// one again is how a stolen token is detected.
#[tracing::instrument(level = "debug", name = "db retention.refresh_tokens", skip_all, fields(otel.kind = "client"))]
pub async fn delete_dead_refresh_tokens(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::any()
        .add(refresh_token::Column::ExpiresAt.lte(now))
        .add(refresh_token::Column::RevokedAt.is_not_null());
    delete_batch::<refresh_token::Entity>(db, &[refresh_token::Column::Id], due, batch).await
}

/// Jobs finished (done) before `before`. Dead jobs stay until an operator revives them.
#[tracing::instrument(level = "debug", name = "db retention.done_jobs", skip_all, fields(otel.kind = "client"))]
pub async fn delete_done_jobs_before(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::all()
        .add(outbox_job::Column::State.eq(JobState::Done.as_str()))
        .add(outbox_job::Column::DoneAt.lt(before));
    delete_batch::<outbox_job::Entity>(db, &[outbox_job::Column::Id], due, batch).await
}

/// Change quotes that expired before `before`.
#[tracing::instrument(level = "debug", name = "db retention.change_quotes", skip_all, fields(otel.kind = "client"))]
pub async fn delete_quotes_expired_before(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::all().add(change_quote::Column::ExpiresAt.lt(before));
    delete_batch::<change_quote::Entity>(db, &[change_quote::Column::Id], due, batch).await
}

/// Travel documents kept until `now` or earlier (a day after their booking's last flight arrived).
#[tracing::instrument(level = "debug", name = "db retention.travel_documents", skip_all, fields(otel.kind = "client"))]
pub async fn delete_travel_documents_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let due = Condition::all().add(travel_document::Column::KeepUntil.lte(now));
    delete_batch::<travel_document::Entity>(
        db,
        &[travel_document::Column::BookingId, travel_document::Column::PassengerIndex],
        due,
        batch,
    )
    .await
}
