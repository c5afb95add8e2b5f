//! A booking's segments: one row per flight of the booking, in travel order, read back with the flights'
//! routes and times. Written with the booking (the hold writes); a segment's seats change with
//! `ChangeSeats`, and the whole segment with `ChangeFlight`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, FromQueryResult, JoinType, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, UpdateMany, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{booking_segment, flight},
};
use crate::domain::{
    booking::{Booking, Segment},
    flight::{AirportCode, SeatNumber},
    money::{CurrencyCode, Money},
};

/// A booking's segments as rows, in travel order.
pub(super) fn rows(booking: &Booking) -> impl Iterator<Item = booking_segment::Model> + '_ {
    booking.segments.iter().enumerate().map(|(position, segment)| booking_segment::Model {
        booking_id: booking.id,
        position: position as i16,
        user_id: booking.user_id,
        flight_id: segment.flight_id,
        cabin: segment.cabin.as_str().to_owned(),
        seat_numbers: seat_list(&segment.seats),
        currency_code: segment.price.currency.as_str().to_owned(),
        price_amount_minor: segment.price.amount_minor,
    })
}

/// Inserts the bookings' segments, one statement for all.
#[tracing::instrument(name = "db bookings.insert_segments", skip_all, fields(otel.kind = "client"))]
pub(super) async fn insert_many(db: &impl ConnectionTrait, bookings: &[&Booking]) -> Result<(), StoreError> {
    let rows: Vec<booking_segment::ActiveModel> =
        bookings.iter().flat_map(|booking| rows(booking)).map(booking_segment::ActiveModel::from).collect();
    if !rows.is_empty() {
        booking_segment::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Records the party's new seats on the booking's segment on `flight_id` (in passenger order).
#[tracing::instrument(name = "db bookings.set_segment_seats", skip_all, fields(otel.kind = "client"))]
pub async fn set_seats(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    flight_id: Uuid,
    seats: &[SeatNumber],
) -> Result<(), StoreError> {
    let update = booking_segment::Entity::update_many()
        .col_expr(booking_segment::Column::SeatNumbers, Expr::value(seat_list(seats)));
    update_one(db, update, booking_id, flight_id).await
}

/// Replaces the booking's segment on `flight_id` by `segment` (another flight, cabin, seats and price),
/// in its place in travel order.
#[tracing::instrument(name = "db bookings.replace_segment", skip_all, fields(otel.kind = "client"))]
pub async fn replace(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    flight_id: Uuid,
    segment: &Segment,
) -> Result<(), StoreError> {
    let update = booking_segment::Entity::update_many()
        .col_expr(booking_segment::Column::FlightId, Expr::value(segment.flight_id))
        .col_expr(booking_segment::Column::Cabin, Expr::value(segment.cabin.as_str()))
        .col_expr(booking_segment::Column::SeatNumbers, Expr::value(seat_list(&segment.seats)))
        .col_expr(booking_segment::Column::PriceAmountMinor, Expr::value(segment.price.amount_minor));
    update_one(db, update, booking_id, flight_id).await
}

/// Applies `update` to the booking's one segment on `flight_id`.
async fn update_one(
    db: &impl ConnectionTrait,
    update: UpdateMany<booking_segment::Entity>,
    booking_id: Uuid,
    flight_id: Uuid,
) -> Result<(), StoreError> {
    let updated = update
        .filter(booking_segment::Column::BookingId.eq(booking_id))
        .filter(booking_segment::Column::FlightId.eq(flight_id))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Corrupt(format!("booking {booking_id} has no one segment on flight {flight_id}")));
    }
    Ok(())
}

/// A segment row with its flight's route and times.
#[derive(Debug, FromQueryResult)]
struct SegmentRow {
    booking_id: Uuid,
    flight_id: Uuid,
    cabin: String,
    seat_numbers: String,
    currency_code: String,
    price_amount_minor: i64,
    origin: String,
    destination: String,
    departs_at: DateTime<Utc>,
    arrives_at: DateTime<Utc>,
}

/// The segments of the bookings `ids`, in travel order, in one query.
#[tracing::instrument(name = "db bookings.segments", skip_all, fields(otel.kind = "client"))]
pub(super) async fn of_bookings(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Vec<Segment>>, StoreError> {
    let flight_of_segment = booking_segment::Entity::belongs_to(flight::Entity)
        .from(booking_segment::Column::FlightId)
        .to(flight::Column::Id);
    let rows = booking_segment::Entity::find()
        .select_only()
        .columns([
            booking_segment::Column::BookingId,
            booking_segment::Column::FlightId,
            booking_segment::Column::Cabin,
            booking_segment::Column::SeatNumbers,
            booking_segment::Column::CurrencyCode,
            booking_segment::Column::PriceAmountMinor,
        ])
        .column(flight::Column::Origin)
        .column(flight::Column::Destination)
        .column(flight::Column::DepartsAt)
        .column(flight::Column::ArrivesAt)
        .join(JoinType::InnerJoin, flight_of_segment.into())
        .filter(booking_segment::Column::BookingId.is_in(ids))
        .order_by_asc(booking_segment::Column::Position)
        .into_model::<SegmentRow>()
        .all(db)
        .await?;
    let mut by_booking: HashMap<Uuid, Vec<Segment>> = HashMap::new();
    for row in rows {
        let corrupt = StoreError::Corrupt;
        let segment = Segment {
            flight_id: row.flight_id,
            cabin: row.cabin.parse().map_err(corrupt)?,
            seats: parse_seat_list(&row.seat_numbers)?,
            price: Money {
                currency: CurrencyCode::parse(&row.currency_code).map_err(corrupt)?,
                amount_minor: row.price_amount_minor,
            },
            origin: AirportCode::parse(&row.origin).map_err(corrupt)?,
            destination: AirportCode::parse(&row.destination).map_err(corrupt)?,
            departs_at: row.departs_at,
            arrives_at: row.arrives_at,
        };
        by_booking.entry(row.booking_id).or_default().push(segment);
    }
    Ok(by_booking)
}

/// Seat numbers as one text: a row and a letter never hold a comma.
pub(super) fn seat_list(seats: &[SeatNumber]) -> String {
    seats.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn parse_seat_list(text: &str) -> Result<Vec<SeatNumber>, StoreError> {
    text.split(',')
        .filter(|seat| !seat.is_empty())
        .map(|seat| SeatNumber::parse(seat).map_err(StoreError::Corrupt))
        .collect()
}
