//! A booking's history: every change a row, classified as an event and carrying its trace context.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait as _};
use uuid::Uuid;

use super::{StoreError, entities::booking_history};
use crate::domain::{booking::BookingStatus, notification::BookingEvent};

/// One row of a booking's history.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub booking_id: Uuid,
    pub from: Option<BookingStatus>,
    pub to: BookingStatus,
    pub cause: &'a str,
    pub correlation_id: &'a str,
    /// `None` for the sweeper.
    pub actor_id: Option<Uuid>,
    pub note: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// A history entry as written: its id and the event it records (`None` for a note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: Uuid,
    pub event: Option<BookingEvent>,
}

/// Writes the changes to the bookings' history, each classified as an event and carrying the current
/// trace context, in the caller's transaction.
#[tracing::instrument(name = "db bookings.record_changes", skip_all, fields(otel.kind = "client"))]
pub async fn record_changes(
    db: &impl ConnectionTrait,
    changes: &[Change<'_>],
    trace_parent: Option<&str>,
) -> Result<Vec<Recorded>, StoreError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let recorded: Vec<Recorded> = changes.iter().map(classify).collect();
    let rows = changes.iter().zip(&recorded).map(|(change, recorded)| booking_history::ActiveModel {
        id: Set(recorded.id),
        booking_id: Set(change.booking_id),
        from_status: Set(change.from.map(|s| s.as_str().to_owned())),
        to_status: Set(change.to.as_str().to_owned()),
        cause: Set(change.cause.to_owned()),
        correlation_id: Set(change.correlation_id.to_owned()),
        actor_id: Set(change.actor_id),
        note: Set(change.note.map(str::to_owned)),
        at: Set(change.at),
        event: Set(recorded.event.map(|event| event.as_str().to_owned())),
        trace_parent: Set(trace_parent.map(str::to_owned)),
    });
    booking_history::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(recorded)
}

/// The id a change's row gets, and the event it records.
pub fn classify(change: &Change) -> Recorded {
    Recorded { id: Uuid::now_v7(), event: BookingEvent::of_change(change.from, change.to, change.cause) }
}

/// One entry of a booking's history that records an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    pub booking_id: Uuid,
    pub event: BookingEvent,
    pub at: DateTime<Utc>,
}

/// The event recorded by history entry `id`; `None` when there is no such entry or it records no event.
#[tracing::instrument(name = "db bookings.event", skip_all, fields(otel.kind = "client"))]
pub async fn event(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<EventEntry>, StoreError> {
    let Some(row) = booking_history::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let Some(event) = row.event else {
        return Ok(None);
    };
    Ok(Some(EventEntry { booking_id: row.booking_id, event: event.parse().map_err(StoreError::Corrupt)?, at: row.at }))
}
