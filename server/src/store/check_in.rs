//! Check-in and boarding as stored: each flight's check-in sequence numbers, tickets checked in and
//! boarded, and the flight's tickets for its manifest. Every state change is a guarded update (from the
//! state it must leave), so two instances never both make it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, ExprTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{check_in_sequence, ticket},
    tickets::to_ticket,
};
use crate::domain::ticket::{Ticket, TicketStatus};

/// Takes the flight's next `count` check-in sequence numbers in one atomic statement (the row's update
/// serialises instances); returns the first. They run from 1 in check-in order.
#[tracing::instrument(name = "db check_in.take_sequence_numbers", skip_all, fields(otel.kind = "client"))]
pub async fn take_sequence_numbers(db: &impl ConnectionTrait, flight_id: Uuid, count: u16) -> Result<i32, StoreError> {
    let count = i32::from(count);
    let taken = check_in_sequence::Entity::insert(check_in_sequence::ActiveModel {
        flight_id: Set(flight_id),
        last_sequence: Set(count),
    })
    .on_conflict(
        OnConflict::column(check_in_sequence::Column::FlightId)
            .value(
                check_in_sequence::Column::LastSequence,
                Expr::col((check_in_sequence::Entity, check_in_sequence::Column::LastSequence)).add(count),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await?;
    Ok(taken.last_sequence - count + 1)
}

/// Checks in each ticket with its sequence number, if it is still OPEN; returns how many were.
#[tracing::instrument(name = "db check_in.check_in", skip_all, fields(otel.kind = "client"))]
pub async fn check_in(
    db: &impl ConnectionTrait,
    numbered: &[(&str, u16)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut checked_in = 0;
    for &(ticket_number, sequence_number) in numbered {
        checked_in += ticket::Entity::update_many()
            .col_expr(ticket::Column::Status, Expr::value(TicketStatus::CheckedIn.as_str()))
            .col_expr(ticket::Column::SequenceNumber, Expr::value(i32::from(sequence_number)))
            .col_expr(ticket::Column::CheckedInAt, Expr::value(Some(now)))
            .filter(ticket::Column::TicketNumber.eq(ticket_number))
            .filter(ticket::Column::Status.eq(TicketStatus::Open.as_str()))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(checked_in)
}

/// Boards a CHECKED_IN ticket; false when it was in any other state.
#[tracing::instrument(name = "db check_in.board", skip_all, fields(otel.kind = "client"))]
pub async fn board(db: &impl ConnectionTrait, ticket_number: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let boarded = ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(TicketStatus::Boarded.as_str()))
        .col_expr(ticket::Column::BoardedAt, Expr::value(Some(now)))
        .filter(ticket::Column::TicketNumber.eq(ticket_number))
        .filter(ticket::Column::Status.eq(TicketStatus::CheckedIn.as_str()))
        .exec(db)
        .await?
        .rows_affected;
    Ok(boarded == 1)
}

/// A ticket by its number, with its booking's id.
#[tracing::instrument(name = "db check_in.ticket", skip_all, fields(otel.kind = "client"))]
pub async fn ticket(db: &impl ConnectionTrait, ticket_number: &str) -> Result<Option<(Uuid, Ticket)>, StoreError> {
    ticket::Entity::find_by_id(ticket_number)
        .one(db)
        .await?
        .map(|row| Ok((row.booking_id, to_ticket(row)?)))
        .transpose()
}

/// The flight's live (not VOID) tickets by number, after `after`, at most `limit`, with their bookings' ids.
#[tracing::instrument(name = "db check_in.flight_tickets", skip_all, fields(otel.kind = "client"))]
pub async fn flight_tickets(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
    let mut query = ticket::Entity::find()
        .filter(ticket::Column::FlightId.eq(flight_id))
        .filter(ticket::Column::Status.ne(TicketStatus::Void.as_str()));
    if let Some(after) = after {
        query = query.filter(ticket::Column::TicketNumber.gt(after));
    }
    let rows = query.order_by_asc(ticket::Column::TicketNumber).limit(limit).all(db).await?;
    rows.into_iter().map(|row| Ok((row.booking_id, to_ticket(row)?))).collect()
}
