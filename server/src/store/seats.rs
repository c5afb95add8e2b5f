//! Seat inventory: a cabin's count and the seat assignments. Inventory only moves through conditional
//! updates decided by the database: a cabin's count is decremented only where enough seats remain, and a
//! seat is assigned only where no live booking holds it (the primary key of `seat_assignments`).

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, DbBackend, EntityTrait as _, ExprTrait as _, QueryFilter as _, QuerySelect as _,
    sea_query::{LockType, OnConflict},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{flight_cabin, seat_assignment},
};
use crate::domain::flight::{CabinClass, SeatNumber};

/// Takes `count` seats off the cabin's available count if that many remain; `false` changes nothing.
/// On PostgreSQL the updated row stays locked until the transaction ends, which serialises seat choice
/// within the cabin.
#[tracing::instrument(name = "db bookings.take_seats", skip_all, fields(otel.kind = "client"))]
pub async fn take_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
    count: i32,
) -> Result<bool, StoreError> {
    let updated = flight_cabin::Entity::update_many()
        .col_expr(flight_cabin::Column::SeatsAvailable, flight_cabin::Column::SeatsAvailable.into_expr().sub(count))
        .filter(flight_cabin::Column::FlightId.eq(flight_id))
        .filter(flight_cabin::Column::Cabin.eq(cabin.as_str()))
        .filter(flight_cabin::Column::SeatsAvailable.gte(count))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Locks the cabin's row until the transaction ends (PostgreSQL; SQLite's single writer already
/// serialises every write), as [`take_seats`] does for holds, and returns its free seats: until then no
/// other transaction takes or assigns seats of the cabin.
#[tracing::instrument(name = "db bookings.lock_cabin", skip_all, fields(otel.kind = "client"))]
pub async fn lock_cabin(db: &impl ConnectionTrait, flight_id: Uuid, cabin: CabinClass) -> Result<i32, StoreError> {
    let mut query = flight_cabin::Entity::find_by_id((flight_id, cabin.as_str().to_owned()))
        .select_only()
        .column(flight_cabin::Column::SeatsAvailable);
    if db.get_database_backend() == DbBackend::Postgres {
        query = query.lock(LockType::Update);
    }
    query
        .into_tuple()
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no cabin {} on flight {flight_id}", cabin.as_str())))
}

/// Gives `count` seats back to the cabin's available count (the CHECK refuses to exceed the total).
#[tracing::instrument(name = "db bookings.return_seats", skip_all, fields(otel.kind = "client"))]
pub async fn return_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
    count: i32,
) -> Result<(), StoreError> {
    let updated = flight_cabin::Entity::update_many()
        .col_expr(flight_cabin::Column::SeatsAvailable, flight_cabin::Column::SeatsAvailable.into_expr().add(count))
        .filter(flight_cabin::Column::FlightId.eq(flight_id))
        .filter(flight_cabin::Column::Cabin.eq(cabin.as_str()))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(StoreError::Corrupt(format!("no cabin {} on flight {flight_id}", cabin.as_str())));
    }
    Ok(())
}

#[tracing::instrument(name = "db bookings.seats_available", skip_all, fields(otel.kind = "client"))]
pub async fn seats_available(db: &impl ConnectionTrait, flight_id: Uuid, cabin: CabinClass) -> Result<i32, StoreError> {
    let available: Option<i32> = flight_cabin::Entity::find_by_id((flight_id, cabin.as_str().to_owned()))
        .select_only()
        .column(flight_cabin::Column::SeatsAvailable)
        .into_tuple()
        .one(db)
        .await?;
    Ok(available.unwrap_or(0))
}

/// Seats of the flight (or of one cabin) held or sold.
#[tracing::instrument(name = "db bookings.taken_seats", skip_all, fields(otel.kind = "client"))]
pub async fn taken_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: Option<CabinClass>,
) -> Result<BTreeSet<SeatNumber>, StoreError> {
    let mut query = seat_assignment::Entity::find()
        .select_only()
        .column(seat_assignment::Column::SeatNumber)
        .filter(seat_assignment::Column::FlightId.eq(flight_id));
    if let Some(cabin) = cabin {
        query = query.filter(seat_assignment::Column::Cabin.eq(cabin.as_str()));
    }
    let seats: Vec<String> = query.into_tuple().all(db).await?;
    seats.iter().map(|seat| SeatNumber::parse(seat).map_err(StoreError::Corrupt)).collect()
}

/// Assigns the seats to the booking where they are free; returns the seats that were taken already
/// (nothing is assigned then, as the caller rolls back).
#[tracing::instrument(name = "db bookings.assign_seats", skip_all, fields(otel.kind = "client"))]
pub async fn assign_seats(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    flight_id: Uuid,
    cabin: CabinClass,
    seats: &[SeatNumber],
) -> Result<Vec<SeatNumber>, StoreError> {
    if assign_free_seats(db, flight_id, cabin, &[(booking_id, seats)]).await? == seats.len() as u64 {
        return Ok(Vec::new());
    }
    let held_by_others: Vec<String> = seat_assignment::Entity::find()
        .select_only()
        .column(seat_assignment::Column::SeatNumber)
        .filter(seat_assignment::Column::FlightId.eq(flight_id))
        .filter(seat_assignment::Column::SeatNumber.is_in(seats.iter().map(ToString::to_string)))
        .filter(seat_assignment::Column::BookingId.ne(booking_id))
        .into_tuple()
        .all(db)
        .await?;
    let mut taken: Vec<SeatNumber> = held_by_others
        .iter()
        .map(|seat| SeatNumber::parse(seat).map_err(StoreError::Corrupt))
        .collect::<Result<_, _>>()?;
    taken.sort();
    Ok(taken)
}

/// Assigns each booking its seats where they are free, in one statement; returns how many were assigned.
#[tracing::instrument(name = "db bookings.assign_free_seats", skip_all, fields(otel.kind = "client"))]
pub async fn assign_free_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
    bookings: &[(Uuid, &[SeatNumber])],
) -> Result<u64, StoreError> {
    let rows = bookings.iter().flat_map(|&(booking_id, seats)| {
        seats.iter().map(move |seat| seat_assignment::ActiveModel {
            flight_id: Set(flight_id),
            seat_number: Set(seat.to_string()),
            cabin: Set(cabin.as_str().to_owned()),
            booking_id: Set(booking_id),
        })
    });
    Ok(seat_assignment::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([seat_assignment::Column::FlightId, seat_assignment::Column::SeatNumber])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?)
}

/// Frees the booking's seats; returns how many it held.
#[tracing::instrument(name = "db bookings.unassign_seats", skip_all, fields(otel.kind = "client"))]
pub async fn unassign_seats(db: &impl ConnectionTrait, booking_id: Uuid) -> Result<u64, StoreError> {
    let deleted = seat_assignment::Entity::delete_many()
        .filter(seat_assignment::Column::BookingId.eq(booking_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
