//! The transactional outbox: jobs are inserted in the transaction of the change that needs them, claimed
//! by a worker under a lease, and marked done in the transaction of their effects.
//!
//! A job's stored state is `queued`, `running` (with `locked_until`, the lease), `failed` (a retry due at
//! `available_at`), `dead` or `done`. A `running` job whose lease has passed belongs to nobody: it reads as
//! queued and is claimed again.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, Condition, ConnectionTrait, EntityTrait as _, ExprTrait as _, PaginatorTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _,
    sea_query::{Expr, LockBehavior, LockType, SimpleExpr},
};
use uuid::Uuid;

use super::{StoreError, entities::outbox_job};
use crate::domain::job::JobState;

/// A claimed job.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: Uuid,
    pub kind: String,
    pub payload: String,
    /// Including this one.
    pub attempts: i32,
    /// The W3C `traceparent` of the call that queued the job.
    pub trace_parent: Option<String>,
    pub correlation_id: Option<String>,
}

/// A job as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: Uuid,
    pub kind: String,
    pub state: JobState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
}

/// Jobs by state, without the finished ones (discarded ones apart: they are out of the alert).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: i64,
    pub running: i64,
    pub failed: i64,
    pub dead: i64,
    pub discarded: i64,
    /// When the longest-waiting due job that no worker holds became due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The job to write.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: String,
    pub trace_parent: Option<String>,
    pub correlation_id: &'a str,
}

#[tracing::instrument(name = "db outbox.enqueue", skip_all, fields(otel.kind = "client"))]
pub async fn enqueue(db: &impl ConnectionTrait, job: NewJob<'_>, now: DateTime<Utc>) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    let row = outbox_job::ActiveModel {
        id: Set(id),
        kind: Set(job.kind.to_owned()),
        payload: Set(job.payload),
        available_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        last_error: Set(None),
        done_at: Set(None),
        created_at: Set(now),
        trace_parent: Set(job.trace_parent),
        state: Set(JobState::Queued.as_str().to_owned()),
        correlation_id: Set(Some(job.correlation_id.to_owned())),
    };
    outbox_job::Entity::insert(row).exec_without_returning(db).await?;
    Ok(id)
}

/// Stored states of jobs that will still run (once due, or once their lease passes).
const UNFINISHED: [JobState; 3] = [JobState::Queued, JobState::Failed, JobState::Running];

/// Jobs a worker may claim at `now`: due, and not held under a live lease.
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(outbox_job::Column::State.is_in(UNFINISHED.map(JobState::as_str)))
        .add(outbox_job::Column::AvailableAt.lte(now))
        .add(outbox_job::Column::LockedUntil.is_null().or(outbox_job::Column::LockedUntil.lte(now)))
}

/// Jobs stored as `state`, whatever their times say.
fn stored(state: JobState) -> SimpleExpr {
    outbox_job::Column::State.eq(state.as_str())
}

/// Jobs reading as `state` at `now` (a running job whose lease passed reads as queued).
fn in_state(state: JobState, now: DateTime<Utc>) -> Condition {
    let lapsed = Condition::all().add(stored(JobState::Running)).add(outbox_job::Column::LockedUntil.lte(now));
    match state {
        JobState::Queued => Condition::any().add(stored(JobState::Queued)).add(lapsed),
        JobState::Running => {
            Condition::all().add(stored(JobState::Running)).add(outbox_job::Column::LockedUntil.gt(now))
        }
        other => Condition::all().add(stored(other)),
    }
}

/// Claims up to `limit` due jobs until `lease_until`, oldest first: each becomes `running` with one more
/// attempt. On PostgreSQL, jobs another worker is claiming right now are skipped, not waited for; SQLite
/// has one writer at a time.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db outbox.claim_due", skip_all, fields(otel.kind = "client"))]
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<LeasedJob>, StoreError> {
    let due = outbox_job::Entity::find()
        .filter(claimable(now))
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
        .col_expr(outbox_job::Column::State, Expr::value(JobState::Running.as_str()))
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
            correlation_id: job.correlation_id,
        })
        .collect())
}

/// The claim of attempt `attempts` on job `id`: still running, and no other worker claimed it since.
fn our_claim(id: Uuid, attempts: i32) -> Condition {
    Condition::all()
        .add(outbox_job::Column::Id.eq(id))
        .add(outbox_job::Column::Attempts.eq(attempts))
        .add(outbox_job::Column::State.eq(JobState::Running.as_str()))
}

/// Extends a running job's lease; `false` when the job is not ours any more.
// Runs every few seconds per running job: traced only at debug level.
#[tracing::instrument(level = "debug", name = "db outbox.renew_lease", skip_all, fields(otel.kind = "client"))]
pub async fn renew_lease(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    lease_until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Some(lease_until)))
        .filter(our_claim(id, attempts))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Marks a job done; `false` when it was not ours any more (the lease passed and another worker took it).
#[tracing::instrument(name = "db outbox.complete", skip_all, fields(otel.kind = "client"))]
pub async fn complete(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::State, Expr::value(JobState::Done.as_str()))
        .col_expr(outbox_job::Column::DoneAt, Expr::value(Some(now)))
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(our_claim(id, attempts))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Records a failed attempt: `failed` with a retry at `retry_at`, or `dead` when there is none.
#[tracing::instrument(name = "db outbox.fail", skip_all, fields(otel.kind = "client"))]
pub async fn fail(
    db: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let mut update = outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(outbox_job::Column::LastError, Expr::value(Some(error.chars().take(1000).collect::<String>())));
    update = match retry_at {
        Some(at) => update
            .col_expr(outbox_job::Column::State, Expr::value(JobState::Failed.as_str()))
            .col_expr(outbox_job::Column::AvailableAt, Expr::value(at)),
        None => update.col_expr(outbox_job::Column::State, Expr::value(JobState::Dead.as_str())),
    };
    Ok(update.filter(our_claim(id, attempts)).exec(db).await?.rows_affected == 1)
}

/// Makes a queued, failed, dead or discarded job due now with a fresh budget of attempts; `false` when it
/// reads as running or done (nothing changes).
#[tracing::instrument(name = "db outbox.revive", skip_all, fields(otel.kind = "client"))]
pub async fn revive(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let revivable = JobState::RETRYABLE.into_iter().fold(Condition::any(), |any, state| any.add(in_state(state, now)));
    let updated = revive_update(now).filter(outbox_job::Column::Id.eq(id)).filter(revivable).exec(db).await?;
    Ok(updated.rows_affected == 1)
}

/// [`revive`] for every job reading as `state` (and of `kind`, when given), in one statement; how many.
#[tracing::instrument(name = "db outbox.revive_all", skip_all, fields(otel.kind = "client"))]
pub async fn revive_all(
    db: &impl ConnectionTrait,
    state: JobState,
    kind: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut update = revive_update(now).filter(in_state(state, now));
    if let Some(kind) = kind {
        update = update.filter(outbox_job::Column::Kind.eq(kind));
    }
    Ok(update.exec(db).await?.rows_affected)
}

fn revive_update(now: DateTime<Utc>) -> sea_orm::UpdateMany<outbox_job::Entity> {
    outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::State, Expr::value(JobState::Queued.as_str()))
        .col_expr(outbox_job::Column::AvailableAt, Expr::value(now))
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(outbox_job::Column::DoneAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(outbox_job::Column::Attempts, Expr::value(0))
}

/// Sets a queued, failed or dead job aside (`discarded`, at `now`) with its attempts and last error;
/// `false` when it reads as running, done or discarded (nothing changes).
#[tracing::instrument(name = "db outbox.discard", skip_all, fields(otel.kind = "client"))]
pub async fn discard(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let discardable =
        JobState::DISCARDABLE.into_iter().fold(Condition::any(), |any, state| any.add(in_state(state, now)));
    let updated = outbox_job::Entity::update_many()
        .col_expr(outbox_job::Column::State, Expr::value(JobState::Discarded.as_str()))
        .col_expr(outbox_job::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(outbox_job::Column::DoneAt, Expr::value(Some(now)))
        .filter(outbox_job::Column::Id.eq(id))
        .filter(discardable)
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

fn record(row: outbox_job::Model, now: DateTime<Utc>) -> Result<JobRecord, StoreError> {
    let stored: JobState = row.state.parse().map_err(StoreError::Corrupt)?;
    let state = match (stored, row.locked_until) {
        (JobState::Running, Some(until)) if until <= now => JobState::Queued,
        (state, _) => state,
    };
    Ok(JobRecord {
        id: row.id,
        kind: row.kind,
        state,
        attempts: row.attempts,
        last_error: row.last_error,
        run_at: row.available_at,
        created_at: row.created_at,
        correlation_id: row.correlation_id,
    })
}

#[tracing::instrument(name = "db outbox.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, id: Uuid, now: DateTime<Utc>) -> Result<Option<JobRecord>, StoreError> {
    outbox_job::Entity::find_by_id(id).one(db).await?.map(|row| record(row, now)).transpose()
}

/// Up to `limit` jobs, newest first, after the job `after` (the last of the previous page).
#[tracing::instrument(name = "db outbox.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(
    db: &impl ConnectionTrait,
    state: Option<JobState>,
    kind: Option<&str>,
    after: Option<Uuid>,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<Vec<JobRecord>, StoreError> {
    let mut query = outbox_job::Entity::find();
    if let Some(state) = state {
        query = query.filter(in_state(state, now));
    }
    if let Some(kind) = kind {
        query = query.filter(outbox_job::Column::Kind.eq(kind));
    }
    if let Some(after) = after {
        query = query.filter(outbox_job::Column::Id.lt(after));
    }
    let rows = query.order_by_desc(outbox_job::Column::Id).limit(limit).all(db).await?;
    rows.into_iter().map(|row| record(row, now)).collect()
}

/// How many jobs read as each unfinished state at `now`, and the oldest due one no worker holds.
// Polled by the gauge sampler: traced only at debug level.
#[tracing::instrument(level = "debug", name = "db outbox.counts", skip_all, fields(otel.kind = "client"))]
pub async fn counts(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<QueueCounts, StoreError> {
    let count = |state: JobState| async move {
        let n = outbox_job::Entity::find().filter(in_state(state, now)).count(db).await?;
        Ok::<_, StoreError>(i64::try_from(n).unwrap_or(i64::MAX))
    };
    let oldest_due: Option<Option<DateTime<Utc>>> = outbox_job::Entity::find()
        .select_only()
        .column_as(Expr::col(outbox_job::Column::AvailableAt).min(), "oldest")
        .filter(claimable(now))
        .into_tuple()
        .one(db)
        .await?;
    Ok(QueueCounts {
        queued: count(JobState::Queued).await?,
        running: count(JobState::Running).await?,
        failed: count(JobState::Failed).await?,
        dead: count(JobState::Dead).await?,
        discarded: count(JobState::Discarded).await?,
        oldest_due: oldest_due.flatten(),
    })
}

/// Jobs queued or running, and failed ones due for their retry at `now`; for callers waiting for the
/// queue to drain. A queued job counts whatever its time: one written by a job that started after `now`
/// was taken (while this call waited for a connection) is due all the same, and must be waited for.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db outbox.unfinished_due", skip_all, fields(otel.kind = "client"))]
pub async fn unfinished_due(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let retry_due = Condition::all().add(stored(JobState::Failed)).add(outbox_job::Column::AvailableAt.lte(now));
    let unfinished = Condition::any().add(stored(JobState::Queued)).add(stored(JobState::Running)).add(retry_due);
    Ok(outbox_job::Entity::find().filter(unfinished).count(db).await?)
}
