//! The flash sale's invariants: checked through the API always, and in the tables when the database is
//! given. A broken one is a violation, and the run fails.
//!
//! Held + sold = seats taken, counted three ways (the cabin's count, its seat map or seat rows, and the
//! passengers of live bookings); no seat twice; one booking per buyer (each buyer is a new customer with one
//! key, so one booking per key); nothing sold beyond the cabin.

use std::collections::{BTreeSet, HashMap};

use aerobook_proto::v1::{self as pb, flight_service_client::FlightServiceClient};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;

use crate::{Error, target::Target};

/// What the API answered the buyers of one sale flight.
#[derive(Debug, Default)]
pub struct SaleFlight {
    pub id: String,
    pub buyers: u64,
    /// Booking ids the buyers got, each once.
    pub bookings: BTreeSet<String>,
    /// Buyers told the flight was sold out.
    pub sold_out: u64,
}

/// Sums over the sale's flights, as the API shows them.
#[derive(Debug, Default, Serialize)]
pub struct ApiChecks {
    pub seats_total: i64,
    /// `seats_total - seats_available` from `GetFlight`.
    pub seats_taken: i64,
    /// Seats shown unavailable by `GetSeatMap`.
    pub seat_map_taken: i64,
    /// Bookings the buyers got.
    pub holds: i64,
    /// Bookings beyond the cabins' seats.
    pub oversold: i64,
}

/// The checks in the tables, or why they were skipped.
#[derive(Debug, Serialize)]
pub struct DatabaseChecks {
    pub checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(flatten)]
    pub counts: Option<DatabaseCounts>,
}

impl DatabaseChecks {
    pub fn skipped(reason: &str) -> Self {
        Self { checked: false, skipped: Some(reason.to_owned()), counts: None }
    }
}

/// Sums over the sale's flights, as the tables hold them.
#[derive(Debug, Default, Serialize)]
pub struct DatabaseCounts {
    /// `flight_cabins.seats_total - seats_available`.
    pub seats_taken: i64,
    pub seat_assignments: i64,
    pub distinct_seats: i64,
    /// Passengers of HELD or CONFIRMED bookings.
    pub live_passengers: i64,
    pub live_bookings: i64,
    /// Customers with more than one booking on one sale flight.
    pub users_with_several_bookings: i64,
    /// Seat rows beyond the cabins' seats.
    pub oversold: i64,
}

/// Checks every sale flight through `GetFlight` and `GetSeatMap`; returns the sums and each flight's final
/// count of available seats (what the watchers must have seen last).
pub async fn through_api(
    target: &Target,
    flights: &[SaleFlight],
    violations: &mut Vec<String>,
) -> Result<(ApiChecks, HashMap<String, i64>), Error> {
    let mut client = FlightServiceClient::new(target.channels[0].clone());
    let mut sums = ApiChecks::default();
    let mut final_seats = HashMap::new();
    for flight in flights {
        let shown = client.get_flight(pb::GetFlightRequest { flight_id: flight.id.clone() }).await?.into_inner();
        let (total, available) = shown
            .cabins
            .iter()
            .fold((0, 0), |(t, a), c| (t + i64::from(c.seats_total), a + i64::from(c.seats_available)));
        let seat_map = client
            .get_seat_map(pb::GetSeatMapRequest {
                flight_id: flight.id.clone(),
                cabin: pb::CabinClass::Unspecified.into(),
            })
            .await?
            .into_inner();
        let map_taken = seat_map.seats.iter().filter(|seat| !seat.available).count() as i64;
        let distinct_seats = seat_map.seats.iter().map(|seat| &seat.seat_number).collect::<BTreeSet<_>>().len();
        let (taken, holds) = (total - available, flight.bookings.len() as i64);
        let id = &flight.id;
        if taken != holds || map_taken != holds {
            violations.push(format!(
                "flight {id}: {holds} holds answered, but GetFlight shows {taken} seats taken and the seat map {map_taken}"
            ));
        }
        if distinct_seats != seat_map.seats.len() {
            violations.push(format!("flight {id}: the seat map lists a seat twice"));
        }
        if flight.sold_out > 0 && available > 0 {
            violations.push(format!(
                "flight {id}: {} buyers were told it was sold out, {available} seats are left",
                flight.sold_out
            ));
        }
        sums.seats_total += total;
        sums.seats_taken += taken;
        sums.seat_map_taken += map_taken;
        sums.holds += holds;
        sums.oversold += (holds - total).max(0);
        final_seats.insert(flight.id.clone(), available);
    }
    if sums.oversold > 0 {
        violations.push(format!("{} seats oversold (by the API's answers)", sums.oversold));
    }
    Ok((sums, final_seats))
}

/// A connection to the target's PostgreSQL database, in its schema.
pub async fn connect(url: &str, schema: Option<&str>) -> Result<DatabaseConnection, Error> {
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err("--database-url must be a PostgreSQL URL (postgres://...)".into());
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(2).sqlx_logging(false);
    if let Some(schema) = schema {
        options.set_schema_search_path(schema.to_owned());
    }
    Ok(Database::connect(options).await?)
}

/// Per cabin of a flight: the count, the seat rows, and the live bookings and their passengers.
const CABIN_COUNTS: &str = "
SELECT c.seats_total::bigint AS seats_total,
       (c.seats_total - c.seats_available)::bigint AS seats_taken,
       (SELECT count(*) FROM seat_assignments s WHERE s.flight_id = c.flight_id AND s.cabin = c.cabin) AS seat_assignments,
       (SELECT count(DISTINCT s.seat_number) FROM seat_assignments s
         WHERE s.flight_id = c.flight_id AND s.cabin = c.cabin) AS distinct_seats,
       (SELECT count(*) FROM booking_passengers p JOIN booking_segments g ON g.booking_id = p.booking_id
         JOIN bookings b ON b.id = p.booking_id
         WHERE g.flight_id = c.flight_id AND g.cabin = c.cabin AND b.status IN ('HELD', 'CONFIRMED')) AS live_passengers
FROM flight_cabins c WHERE c.flight_id = $1";
/// A booking is on a flight when one of its segments is (a trip is on each of its flights).
const LIVE_BOOKINGS: &str = "SELECT b.id::text AS id FROM booking_segments g JOIN bookings b ON b.id = g.booking_id
 WHERE g.flight_id = $1 AND b.status IN ('HELD', 'CONFIRMED')";
const LIVE_BOOKING_USERS: &str = "SELECT b.user_id::text AS user_id FROM booking_segments g
 JOIN bookings b ON b.id = g.booking_id WHERE g.flight_id = $1 AND b.status IN ('HELD', 'CONFIRMED')";
const USERS_WITH_SEVERAL_BOOKINGS: &str = "
SELECT count(*) AS users FROM (SELECT user_id FROM booking_segments WHERE flight_id = $1 GROUP BY user_id
 HAVING count(*) > 1) AS u";

/// Checks every sale flight in the tables.
pub async fn in_database(
    db: &DatabaseConnection,
    flights: &[SaleFlight],
    violations: &mut Vec<String>,
) -> Result<DatabaseChecks, Error> {
    let statement = |sql: &str, id: uuid::Uuid| Statement::from_sql_and_values(DbBackend::Postgres, sql, [id.into()]);
    let mut sums = DatabaseCounts::default();
    for flight in flights {
        let id = uuid::Uuid::parse_str(&flight.id)?;
        let mut counts = [0_i64; 5];
        for cabin in db.query_all_raw(statement(CABIN_COUNTS, id)).await? {
            let columns = ["seats_total", "seats_taken", "seat_assignments", "distinct_seats", "live_passengers"];
            for (sum, column) in counts.iter_mut().zip(columns) {
                *sum += cabin.try_get::<i64>("", column)?;
            }
        }
        let [total, taken, assigned, distinct, passengers] = counts;
        let live: BTreeSet<String> = db
            .query_all_raw(statement(LIVE_BOOKINGS, id))
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "id"))
            .collect::<Result<_, _>>()?;
        let several = match db.query_one_raw(statement(USERS_WITH_SEVERAL_BOOKINGS, id)).await? {
            Some(row) => row.try_get::<i64>("", "users")?,
            None => 0,
        };
        let id = &flight.id;
        if !(taken == assigned && assigned == passengers) {
            violations.push(format!(
                "flight {id} in the database: {taken} seats taken by the cabin's count, {assigned} seat rows, {passengers} live passengers"
            ));
        }
        if distinct != assigned {
            violations.push(format!("flight {id} in the database: {assigned} seat rows for {distinct} seats"));
        }
        if live != flight.bookings {
            let missing = flight.bookings.difference(&live).count();
            let unknown = live.difference(&flight.bookings).count();
            violations.push(format!(
                "flight {id} in the database: {missing} bookings answered are not live there, {unknown} live ones were never answered"
            ));
        }
        if several > 0 {
            violations.push(format!("flight {id} in the database: {several} customers hold more than one booking"));
        }
        sums.seats_taken += taken;
        sums.seat_assignments += assigned;
        sums.distinct_seats += distinct;
        sums.live_passengers += passengers;
        sums.live_bookings += live.len() as i64;
        sums.users_with_several_bookings += several;
        sums.oversold += (assigned - total).max(0);
    }
    if sums.oversold > 0 {
        violations.push(format!("{} seats oversold (in the database)", sums.oversold));
    }
    Ok(DatabaseChecks { checked: true, skipped: None, counts: Some(sums) })
}

/// The customer of each live booking on the flight, one entry per booking.
pub async fn live_booking_users(db: &DatabaseConnection, flight_id: &str) -> Result<Vec<uuid::Uuid>, Error> {
    let id = uuid::Uuid::parse_str(flight_id)?;
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, LIVE_BOOKING_USERS, [id.into()])).await?;
    rows.iter().map(|row| Ok(uuid::Uuid::parse_str(&row.try_get::<String>("", "user_id")?)?)).collect()
}
