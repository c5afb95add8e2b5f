//! Flight catalogue queries.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait as _, FromQueryResult, IdenStatic as _, Iterable as _,
    JoinType, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{airport, flight, flight_cabin},
};
use crate::domain::{
    flight::{
        AirportCode, CabinAvailability, CabinClass, CabinLayout, Flight, FlightNumber, FlightStatus, NewFlight,
        local_date,
    },
    money::{CurrencyCode, Money},
    pagination::Cursor,
    search::{FlightPage, FlightSearch},
};

/// One page of flights on the search's route and date with room for the party (in the searched cabin, or
/// in any cabin), by departure. Flights that departed before `now` are left out.
#[tracing::instrument(skip_all, fields(route = %search.route.tag(), date = %search.departure_date))]
pub async fn search(
    db: &impl ConnectionTrait,
    search: &FlightSearch,
    now: DateTime<Utc>,
) -> Result<FlightPage, StoreError> {
    // Any cabin of the flight with room for the party will do when the search names none.
    let mut with_room = Query::select()
        .column(flight_cabin::Column::FlightId)
        .from(flight_cabin::Entity)
        .and_where(flight_cabin::Column::SeatsAvailable.gte(i32::from(search.passengers)))
        .to_owned();
    if let Some(cabin) = search.cabin {
        with_room.and_where(flight_cabin::Column::Cabin.eq(cabin.as_str()));
    }
    let bookable = FlightStatus::ALL.iter().filter(|s| s.is_bookable()).map(|s| s.as_str());
    let mut query = with_zones()
        .filter(flight::Column::Origin.eq(search.route.origin.as_str()))
        .filter(flight::Column::Destination.eq(search.route.destination.as_str()))
        .filter(flight::Column::DepartureDate.eq(search.departure_date))
        .filter(flight::Column::Status.is_in(bookable))
        .filter(flight::Column::DepartsAt.gt(now))
        .filter(flight::Column::Id.in_subquery(with_room));
    if let Some(after) = search.after {
        query = query.filter(
            flight::Column::DepartsAt
                .gt(after.at)
                .or(flight::Column::DepartsAt.eq(after.at).and(flight::Column::Id.gt(after.id))),
        );
    }
    let mut rows = query
        .order_by_asc(flight::Column::DepartsAt)
        .order_by_asc(flight::Column::Id)
        .limit(u64::from(search.page_size) + 1)
        .into_model::<FlightRow>()
        .all(db)
        .await?;
    let next_page_token = if rows.len() > search.page_size as usize {
        rows.truncate(search.page_size as usize);
        rows.last().map(|last| Cursor { at: last.departs_at, id: last.id }.encode())
    } else {
        None
    };
    let flights = with_cabins(db, rows).await?;
    Ok(FlightPage { flights, next_page_token })
}

/// One statement: the flight with its airports' time zones, a row per cabin (every flight has one at least).
#[tracing::instrument(skip(db))]
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Flight>, StoreError> {
    let cabin_of_flight = flight_cabin::Entity::belongs_to(flight::Entity)
        .from(flight_cabin::Column::FlightId)
        .to(flight::Column::Id)
        .into();
    let query = flight_cabin::Column::iter().fold(
        with_zones().filter(flight::Column::Id.eq(id)).join_rev(JoinType::InnerJoin, cabin_of_flight),
        |query, column| {
            query.column_as(Expr::col((flight_cabin::Entity, column)), format!("{CABIN_PREFIX}{}", column.as_str()))
        },
    );
    let (mut flight, mut cabins) = (None, Vec::new());
    for row in query.into_model::<FlightCabinRow>().all(db).await? {
        cabins.push(cabin_availability(row.cabin)?);
        flight.get_or_insert(row.flight);
    }
    let Some(flight) = flight else { return Ok(None) };
    cabins.sort_by_key(|c| c.cabin);
    to_flight(flight, cabins).map(Some)
}

/// How [`get`] names the cabin's columns beside the flight's.
const CABIN_PREFIX: &str = "cabin_";

/// A flight row joined to one of its cabins.
struct FlightCabinRow {
    flight: FlightRow,
    cabin: flight_cabin::Model,
}

impl FromQueryResult for FlightCabinRow {
    fn from_query_result(row: &sea_orm::QueryResult, prefix: &str) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            flight: FlightRow::from_query_result(row, prefix)?,
            cabin: flight_cabin::Model::from_query_result(row, &format!("{prefix}{CABIN_PREFIX}"))?,
        })
    }
}

/// A flight row with the time zones of its two airports.
#[derive(Debug, FromQueryResult)]
struct FlightRow {
    id: Uuid,
    flight_number: String,
    origin: String,
    destination: String,
    departs_at: DateTime<Utc>,
    arrives_at: DateTime<Utc>,
    departure_date: NaiveDate,
    status: String,
    origin_time_zone: String,
    destination_time_zone: String,
}

/// Flights joined to their airports, whose time zones come in the same query.
fn with_zones() -> Select<flight::Entity> {
    let (origin, destination) = ("origin_airport", "destination_airport");
    let airport_of = |column: flight::Column| {
        flight::Entity::belongs_to(airport::Entity).from(column).to(airport::Column::IataCode).into()
    };
    flight::Entity::find()
        .select_only()
        .columns([
            flight::Column::Id,
            flight::Column::FlightNumber,
            flight::Column::Origin,
            flight::Column::Destination,
            flight::Column::DepartsAt,
            flight::Column::ArrivesAt,
            flight::Column::DepartureDate,
            flight::Column::Status,
        ])
        .join_as(JoinType::InnerJoin, airport_of(flight::Column::Origin), origin)
        .join_as(JoinType::InnerJoin, airport_of(flight::Column::Destination), destination)
        .column_as(Expr::col((origin, airport::Column::TimeZone)), "origin_time_zone")
        .column_as(Expr::col((destination, airport::Column::TimeZone)), "destination_time_zone")
}

/// Recomputes the local departure dates of the flights leaving `origin` in its (new) time zone; returns
/// the destinations of the flights whose date moved.
#[tracing::instrument(name = "db flights.redate_departures", skip_all, fields(otel.kind = "client"))]
pub async fn redate_departures(
    db: &impl ConnectionTrait,
    origin: AirportCode,
    time_zone: chrono_tz::Tz,
) -> Result<Vec<AirportCode>, StoreError> {
    let departures: Vec<(Uuid, String, DateTime<Utc>, NaiveDate)> = flight::Entity::find()
        .select_only()
        .columns([
            flight::Column::Id,
            flight::Column::Destination,
            flight::Column::DepartsAt,
            flight::Column::DepartureDate,
        ])
        .filter(flight::Column::Origin.eq(origin.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    let mut destinations = Vec::new();
    for (id, destination, departs_at, stored) in departures {
        let date = local_date(departs_at, time_zone);
        if date != stored {
            flight::Entity::update_many()
                .col_expr(flight::Column::DepartureDate, date.into())
                .filter(flight::Column::Id.eq(id))
                .exec(db)
                .await?;
            destinations.push(AirportCode::parse(&destination).map_err(StoreError::Corrupt)?);
        }
    }
    destinations.sort();
    destinations.dedup();
    Ok(destinations)
}

/// Inserts a flight with its cabins (all seats free). A flight with the same number and departure time
/// gives [`StoreError::Duplicate`].
#[tracing::instrument(skip_all, fields(flight_number = flight.flight_number.as_str()))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    flight: &NewFlight,
    departure_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    flight::Entity::insert(flight_row(id, flight, departure_date, now)).exec_without_returning(db).await?;
    flight_cabin::Entity::insert_many(cabin_rows(id, flight)).exec_without_returning(db).await?;
    Ok(())
}

/// Inserts flights, skipping any whose id exists already: seeding is idempotent and safe to run from
/// several instances at once because seeded ids are derived from the flight's number and departure.
#[tracing::instrument(name = "db flights.insert_missing", skip_all, fields(otel.kind = "client"))]
pub async fn insert_missing(
    db: &impl ConnectionTrait,
    flights: &[(Uuid, NewFlight, NaiveDate)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if flights.is_empty() {
        return Ok(());
    }
    // A flight an operator already created with the same number and departure wins over the seeded one.
    let same_departure =
        OnConflict::columns([flight::Column::FlightNumber, flight::Column::DepartsAt]).do_nothing().to_owned();
    flight::Entity::insert_many(flights.iter().map(|(id, f, date)| flight_row(*id, f, *date, now)))
        .on_conflict(same_departure)
        .try_insert()
        .exec_without_returning(db)
        .await?;
    let present: HashSet<Uuid> = flight::Entity::find()
        .select_only()
        .column(flight::Column::Id)
        .filter(flight::Column::Id.is_in(flights.iter().map(|(id, ..)| *id)))
        .into_tuple()
        .all(db)
        .await?
        .into_iter()
        .collect();
    flight_cabin::Entity::insert_many(
        flights.iter().filter(|(id, ..)| present.contains(id)).flat_map(|(id, f, _)| cabin_rows(*id, f)),
    )
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(())
}

fn flight_row(id: Uuid, flight: &NewFlight, departure_date: NaiveDate, now: DateTime<Utc>) -> flight::ActiveModel {
    flight::ActiveModel {
        id: Set(id),
        flight_number: Set(flight.flight_number.as_str().to_owned()),
        origin: Set(flight.origin.as_str().to_owned()),
        destination: Set(flight.destination.as_str().to_owned()),
        departs_at: Set(flight.departs_at),
        arrives_at: Set(flight.arrives_at),
        departure_date: Set(departure_date),
        status: Set(FlightStatus::Scheduled.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn cabin_rows(id: Uuid, flight: &NewFlight) -> impl Iterator<Item = flight_cabin::ActiveModel> + '_ {
    flight.cabins.iter().map(move |cabin| flight_cabin::ActiveModel {
        flight_id: Set(id),
        cabin: Set(cabin.cabin.as_str().to_owned()),
        first_row: Set(cabin.layout.first_row),
        row_count: Set(cabin.layout.rows),
        seat_letters: Set(cabin.layout.letters.clone()),
        seats_total: Set(cabin.layout.seat_count()),
        seats_available: Set(cabin.layout.seat_count()),
        currency_code: Set(cabin.price.currency.as_str().to_owned()),
        price_amount_minor: Set(cabin.price.amount_minor),
        change_fee_minor: Set(cabin.change_fee_minor),
    })
}

/// Loads the cabins of `rows` in one query and assembles domain flights in the same order.
async fn with_cabins(db: &impl ConnectionTrait, rows: Vec<FlightRow>) -> Result<Vec<Flight>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let cabins = flight_cabin::Entity::find()
        .filter(flight_cabin::Column::FlightId.is_in(rows.iter().map(|r| r.id)))
        .all(db)
        .await?;
    let mut by_flight: HashMap<Uuid, Vec<CabinAvailability>> = HashMap::new();
    for cabin in cabins {
        by_flight.entry(cabin.flight_id).or_default().push(cabin_availability(cabin)?);
    }
    rows.into_iter()
        .map(|row| {
            let mut cabins = by_flight.remove(&row.id).unwrap_or_default();
            cabins.sort_by_key(|c| c.cabin);
            to_flight(row, cabins)
        })
        .collect()
}

fn to_flight(row: FlightRow, cabins: Vec<CabinAvailability>) -> Result<Flight, StoreError> {
    let zone = |name: &str| name.parse().map_err(|e| StoreError::Corrupt(format!("airport time zone: {e}")));
    Ok(Flight {
        id: row.id,
        flight_number: FlightNumber::parse(&row.flight_number).map_err(StoreError::Corrupt)?,
        origin: AirportCode::parse(&row.origin).map_err(StoreError::Corrupt)?,
        destination: AirportCode::parse(&row.destination).map_err(StoreError::Corrupt)?,
        origin_time_zone: zone(&row.origin_time_zone)?,
        destination_time_zone: zone(&row.destination_time_zone)?,
        departs_at: row.departs_at,
        arrives_at: row.arrives_at,
        departure_date: row.departure_date,
        status: row.status.parse::<FlightStatus>().map_err(StoreError::Corrupt)?,
        cabins,
    })
}

fn cabin_availability(row: flight_cabin::Model) -> Result<CabinAvailability, StoreError> {
    let layout = CabinLayout::new(row.first_row, row.row_count, &row.seat_letters)
        .map_err(|(field, e)| StoreError::Corrupt(format!("cabin {field}: {e}")))?;
    Ok(CabinAvailability {
        cabin: row.cabin.parse::<CabinClass>().map_err(StoreError::Corrupt)?,
        layout,
        seats_total: row.seats_total,
        seats_available: row.seats_available,
        price: Money {
            currency: CurrencyCode::parse(&row.currency_code).map_err(StoreError::Corrupt)?,
            amount_minor: row.price_amount_minor,
        },
        change_fee_minor: row.change_fee_minor,
    })
}
