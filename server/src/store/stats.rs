//! Counts for the operational gauges (bookings by status, seats per cabin, outbox backlog). Read on the
//! gauge sampler's schedule, never per call.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, ExprTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{booking, flight, flight_cabin},
};

/// One cabin's seats left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinSeats {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub cabin: String,
    pub seats_available: i32,
}

// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db stats.bookings_by_status", skip_all, fields(otel.kind = "client"))]
pub async fn bookings_by_status(db: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(booking::Entity::find()
        .select_only()
        .column(booking::Column::Status)
        .column_as(Expr::col(booking::Column::Id).count(), "count")
        .group_by(booking::Column::Status)
        .into_tuple()
        .all(db)
        .await?)
}

/// The cabins of the `max_flights` flights departing soonest after `now`.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db stats.seats_of_next_flights", skip_all, fields(otel.kind = "client"))]
pub async fn seats_of_next_flights(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    max_flights: u64,
) -> Result<Vec<CabinSeats>, StoreError> {
    let flights: Vec<(Uuid, String)> = flight::Entity::find()
        .select_only()
        .column(flight::Column::Id)
        .column(flight::Column::FlightNumber)
        .filter(flight::Column::DepartsAt.gt(now))
        .order_by_asc(flight::Column::DepartsAt)
        .limit(max_flights)
        .into_tuple()
        .all(db)
        .await?;
    let cabins = flight_cabin::Entity::find()
        .filter(flight_cabin::Column::FlightId.is_in(flights.iter().map(|(id, _)| *id)))
        .all(db)
        .await?;
    Ok(cabins
        .into_iter()
        .filter_map(|cabin| {
            let (_, number) = flights.iter().find(|(id, _)| *id == cabin.flight_id)?;
            Some(CabinSeats {
                flight_id: cabin.flight_id,
                flight_number: number.clone(),
                cabin: cabin.cabin,
                seats_available: cabin.seats_available,
            })
        })
        .collect())
}
