//! E-tickets as stored: issued for a confirmed booking's passengers and flights, voided with it (or with
//! the flight a change replaced). Issuing writes only what is missing, so it can be asked again safely; the
//! partial unique index on live tickets keeps any race from ticketing a passenger's flight twice.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{StoreError, entities::ticket};
use crate::domain::ticket::{Ticket, TicketPrefix, TicketStatus};

/// Draws of ticket numbers before giving up: with 10^10 serials, a second draw is already rare.
const DRAWS: usize = 8;

/// Issues a ticket for each (passenger index, flight) of `wanted` that has no live one; returns how many.
#[tracing::instrument(name = "db tickets.issue", skip_all, fields(otel.kind = "client"))]
pub async fn issue(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    wanted: &[(usize, Uuid)],
    prefix: &TicketPrefix,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut issued = 0;
    for _ in 0..DRAWS {
        let live = live(db, booking_id).await?;
        let missing: Vec<_> = wanted.iter().filter(|pair| !live.contains(pair)).collect();
        if missing.is_empty() {
            return Ok(issued);
        }
        let rows: Vec<ticket::ActiveModel> = missing
            .iter()
            .map(|&&(passenger_index, flight_id)| {
                Ok(ticket::ActiveModel {
                    ticket_number: Set(prefix.draw(&mut rand::rng())),
                    booking_id: Set(booking_id),
                    passenger_index: Set(i16::try_from(passenger_index)
                        .map_err(|_| StoreError::Corrupt("a passenger index past i16".into()))?),
                    flight_id: Set(flight_id),
                    status: Set(TicketStatus::Open.as_str().to_owned()),
                    issued_at: Set(now),
                    voided_at: Set(None),
                    sequence_number: Set(None),
                    checked_in_at: Set(None),
                    boarded_at: Set(None),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // A number drawn twice, or a ticket another transaction issued meanwhile, is skipped: the next round
        // sees what is still missing.
        let written = ticket::Entity::insert_many(rows)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(db)
            .await?;
        issued += written;
        if written == missing.len() as u64 {
            return Ok(issued);
        }
    }
    Err(StoreError::Corrupt("no free ticket numbers found".into()))
}

/// Voids the booking's live tickets (only those for `flight_id`, when given); returns how many.
#[tracing::instrument(name = "db tickets.void", skip_all, fields(otel.kind = "client"))]
pub async fn void(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    flight_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut update = ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(TicketStatus::Void.as_str()))
        .col_expr(ticket::Column::VoidedAt, Expr::value(Some(now)))
        .filter(ticket::Column::BookingId.eq(booking_id))
        .filter(ticket::Column::Status.ne(TicketStatus::Void.as_str()));
    if let Some(flight_id) = flight_id {
        update = update.filter(ticket::Column::FlightId.eq(flight_id));
    }
    Ok(update.exec(db).await?.rows_affected)
}

/// The tickets of the bookings, by booking, in the order they were issued (then passenger order).
#[tracing::instrument(name = "db tickets.of_bookings", skip_all, fields(otel.kind = "client"))]
pub async fn of_bookings(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Vec<Ticket>>, StoreError> {
    let rows = ticket::Entity::find()
        .filter(ticket::Column::BookingId.is_in(ids))
        .order_by_asc(ticket::Column::IssuedAt)
        .order_by_asc(ticket::Column::PassengerIndex)
        .order_by_asc(ticket::Column::TicketNumber)
        .all(db)
        .await?;
    let mut by_booking: HashMap<Uuid, Vec<Ticket>> = HashMap::new();
    for row in rows {
        by_booking.entry(row.booking_id).or_default().push(to_ticket(row)?);
    }
    Ok(by_booking)
}

pub(super) fn to_ticket(row: ticket::Model) -> Result<Ticket, StoreError> {
    let corrupt = |e: std::num::TryFromIntError| StoreError::Corrupt(e.to_string());
    Ok(Ticket {
        ticket_number: row.ticket_number,
        passenger_index: usize::try_from(row.passenger_index).map_err(corrupt)?,
        flight_id: row.flight_id,
        status: row.status.parse().map_err(StoreError::Corrupt)?,
        sequence_number: row.sequence_number.map(u16::try_from).transpose().map_err(corrupt)?,
    })
}

/// The (passenger index, flight) pairs the booking holds a live ticket for.
async fn live(db: &impl ConnectionTrait, booking_id: Uuid) -> Result<HashSet<(usize, Uuid)>, StoreError> {
    let rows: Vec<(i16, Uuid)> = ticket::Entity::find()
        .select_only()
        .columns([ticket::Column::PassengerIndex, ticket::Column::FlightId])
        .filter(ticket::Column::BookingId.eq(booking_id))
        .filter(ticket::Column::Status.ne(TicketStatus::Void.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(index, flight_id)| {
            Ok((usize::try_from(index).map_err(|e| StoreError::Corrupt(e.to_string()))?, flight_id))
        })
        .collect()
}
