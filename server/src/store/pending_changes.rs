//! Changes of paid bookings waiting for their payment (`pending_changes`), and the pointer from a booking to
//! the one it waits on (`bookings.pending_change_id`). A change leaves PENDING once, by a guarded write,
//! so its payment and the sweeper never both act on it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{booking, pending_change},
    segments::{parse_seat_list, seat_list},
};
use crate::domain::{
    flight::CabinClass,
    money::{CurrencyCode, Money},
    pending_change::{PendingChange, PendingChangeState},
};

/// Records `change` as the one `booking_id` waits on. `false` when its quote was made already.
#[tracing::instrument(name = "db pending_changes.insert", skip_all, fields(otel.kind = "client"))]
pub async fn insert(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    change: &PendingChange,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = pending_change::ActiveModel {
        quote_id: Set(change.quote_id),
        booking_id: Set(booking_id),
        flight_id: Set(change.flight_id),
        new_flight_id: Set(change.new_flight_id),
        new_cabin: Set(change.new_cabin.as_str().to_owned()),
        seat_numbers: Set(seat_list(&change.seats)),
        currency_code: Set(change.amount_due.currency.as_str().to_owned()),
        amount_due_minor: Set(change.amount_due.amount_minor),
        state: Set(PendingChangeState::Pending.as_str().to_owned()),
        created_at: Set(now),
        expires_at: Set(change.expires_at),
    };
    let inserted = pending_change::Entity::insert(row)
        .on_conflict(OnConflict::column(pending_change::Column::QuoteId).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    booking::Entity::update_many()
        .col_expr(booking::Column::PendingChangeId, Expr::value(Some(change.quote_id)))
        .filter(booking::Column::Id.eq(booking_id))
        .exec(db)
        .await?;
    Ok(true)
}

/// A change by its quote, whatever its state.
#[tracing::instrument(name = "db pending_changes.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, quote_id: Uuid) -> Result<Option<PendingChange>, StoreError> {
    pending_change::Entity::find_by_id(quote_id).one(db).await?.map(to_change).transpose()
}

/// Moves the change from `from` to `to`; `false` when it was not in `from` (someone else moved it first).
/// Leaving PENDING, the booking stops waiting on it.
#[tracing::instrument(name = "db pending_changes.settle", skip_all, fields(otel.kind = "client"))]
pub async fn settle(
    db: &impl ConnectionTrait,
    quote_id: Uuid,
    from: PendingChangeState,
    to: PendingChangeState,
) -> Result<bool, StoreError> {
    let updated = pending_change::Entity::update_many()
        .col_expr(pending_change::Column::State, Expr::value(to.as_str()))
        .filter(pending_change::Column::QuoteId.eq(quote_id))
        .filter(pending_change::Column::State.eq(from.as_str()))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    if from == PendingChangeState::Pending {
        booking::Entity::update_many()
            .col_expr(booking::Column::PendingChangeId, Expr::value(Option::<Uuid>::None))
            .filter(booking::Column::PendingChangeId.eq(quote_id))
            .exec(db)
            .await?;
    }
    Ok(true)
}

/// The live changes the given bookings wait on, by booking.
#[tracing::instrument(name = "db pending_changes.of_bookings", skip_all, fields(otel.kind = "client"))]
pub async fn of_bookings(
    db: &impl ConnectionTrait,
    quote_ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, PendingChange>, StoreError> {
    let rows = pending_change::Entity::find()
        .filter(pending_change::Column::QuoteId.is_in(quote_ids))
        .filter(pending_change::Column::State.eq(PendingChangeState::Pending.as_str()))
        .all(db)
        .await?;
    rows.into_iter().map(|row| Ok((row.booking_id, to_change(row)?))).collect()
}

/// Up to `limit` changes unpaid at `now`, with their bookings, earliest expiry first. Not locked: each lapses
/// under its booking's version, so instances sweeping at once lapse each change once.
// Polled by the sweeper: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db pending_changes.due", skip_all, fields(otel.kind = "client"))]
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(Uuid, PendingChange)>, StoreError> {
    let rows = pending_change::Entity::find()
        .filter(pending_change::Column::State.eq(PendingChangeState::Pending.as_str()))
        .filter(pending_change::Column::ExpiresAt.lte(now))
        .order_by_asc(pending_change::Column::ExpiresAt)
        .limit(limit)
        .all(db)
        .await?;
    rows.into_iter().map(|row| Ok((row.booking_id, to_change(row)?))).collect()
}

/// Lapses the changes the bookings wait on (their bookings are giving their seats back); returns, for
/// each, the booking and the cabin its seats are in.
#[tracing::instrument(name = "db pending_changes.lapse_of_bookings", skip_all, fields(otel.kind = "client"))]
pub async fn lapse_of_bookings(
    db: &impl ConnectionTrait,
    booking_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid, CabinClass)>, StoreError> {
    let waiting: Vec<(Uuid, Uuid, Uuid, String)> = pending_change::Entity::find()
        .select_only()
        .columns([
            pending_change::Column::QuoteId,
            pending_change::Column::BookingId,
            pending_change::Column::NewFlightId,
            pending_change::Column::NewCabin,
        ])
        .filter(pending_change::Column::BookingId.is_in(booking_ids.iter().copied()))
        .filter(pending_change::Column::State.eq(PendingChangeState::Pending.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    let mut lapsed = Vec::with_capacity(waiting.len());
    for (quote_id, booking_id, flight_id, cabin) in waiting {
        if settle(db, quote_id, PendingChangeState::Pending, PendingChangeState::Lapsed).await? {
            lapsed.push((booking_id, flight_id, cabin.parse().map_err(StoreError::Corrupt)?));
        }
    }
    Ok(lapsed)
}

fn to_change(row: pending_change::Model) -> Result<PendingChange, StoreError> {
    Ok(PendingChange {
        quote_id: row.quote_id,
        flight_id: row.flight_id,
        new_flight_id: row.new_flight_id,
        new_cabin: row.new_cabin.parse().map_err(StoreError::Corrupt)?,
        seats: parse_seat_list(&row.seat_numbers)?,
        amount_due: Money {
            currency: CurrencyCode::parse(&row.currency_code).map_err(StoreError::Corrupt)?,
            amount_minor: row.amount_due_minor,
        },
        expires_at: row.expires_at,
    })
}
