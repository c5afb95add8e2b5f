//! The transactional outbox: jobs are inserted in the transaction of the change that needs them, leased
//! by a worker, and marked done in the transaction of their effects.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, ExprTrait as _, PaginatorTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
    sea_query::{Expr, LockBehavior, LockType},
};
use uuid::Uuid;

use super::{StoreError, entities::outbox_job};

/// A leased job.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: Uuid,
    pub kind: String,
    pub payload: String,
    /// Including this one.
    pub attempts: i32,
    /// The W3C `traceparent` of the call that queued the job.
    pub trace_parent: Option<String>,
}

#[tracing::instrument(name = "db outbox.enqueue", skip_all, fields(otel.kind = "client"))]
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: &str,
    payload: String,
    trace_parent: Option<String>,
    now: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let row = outbox_job::ActiveModel {
        id: Set(id),
        kind: Set(kind.to_owned()),
        payload: Set(payload),
        available_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        last_error: Set(None),
        done_at: Set(None),
        created_at: Set(now),
        trace_parent: Set(trace_parent),
    };
    outbox_job::Entity::insert(row).exec_without_returning(db).await?;
    Ok(id)
}

/// Leases up to `limit` due jobs until `lease_until`, oldest first. On PostgreSQL, jobs another worker is
/// leasing right now are skipped, not waited for.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db outbox.lease_due", skip_all, fields(otel.kind = "client"))]
pub async fn lease_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<LeasedJob>, StoreError> {
    let due = outbox_job::Entity::find()
        .filter(outbox_job::Column::DoneAt.is_null())
        .filter(outbox_job::Column::AvailableAt.lte(now))
        .filter(outbox_job::Column::LockedUntil.is_null().or(outbox_job::Column::LockedUntil.lte(now)))
        .order_by_asc(outbox_job::Column::AvailableAt)
        .order_by_asc(outbox_job::Column::Id)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(db)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Some(lease_until)))
        .col_expr(outbox_job::Column::Attempts, outbox_job::Column::Attempts.into_expr().add(1))
        .filter(outbox_job::Column::Id.is_in(due.iter().map(|job| job.id)))
        .exec(db)
        .await?;
    Ok(due
        .into_iter()
        .map(|job| LeasedJob {
            id: job.id,
            kind: job.kind,
            payload: job.payload,
            attempts: job.attempts + 1,
            trace_parent: job.trace_parent,
        })
        .collect())
}

/// Marks a job done; `false` when it was not ours any more (the lease passed and another worker did it).
#[tracing::instrument(name = "db outbox.complete", skip_all, fields(otel.kind = "client"))]
pub async fn complete(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::DoneAt, Expr::value(Some(now)))
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(outbox_job::Column::Id.eq(id))
        .filter(outbox_job::Column::Attempts.eq(attempts))
        .filter(outbox_job::Column::DoneAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives a failed job back for a later attempt.
#[tracing::instrument(name = "db outbox.retry_at", skip_all, fields(otel.kind = "client"))]
pub async fn retry_at(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::AvailableAt, Expr::value(at))
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(outbox_job::Column::LastError, Expr::value(Some(error.chars().take(1000).collect::<String>())))
        .filter(outbox_job::Column::Id.eq(id))
        .filter(outbox_job::Column::Attempts.eq(attempts))
        .exec(db)
        .await?;
    Ok(())
}

/// Jobs not done whose time has come (leased or not).
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db outbox.unfinished_due", skip_all, fields(otel.kind = "client"))]
pub async fn unfinished_due(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(outbox_job::Entity::find()
        .filter(outbox_job::Column::DoneAt.is_null())
        .filter(outbox_job::Column::AvailableAt.lte(now))
        .count(db)
        .await?)
}

/// Forgets jobs done before `before`.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db outbox.delete_done_before", skip_all, fields(otel.kind = "client"))]
pub async fn delete_done_before(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(outbox_job::Entity::delete_many().filter(outbox_job::Column::DoneAt.lt(before)).exec(db).await?.rows_affected)
}
