//! Demo data for development: a realistic schedule for the coming days between airports every database
//! has (they are reference data, loaded by migration).
//!
//! Idempotent and safe to run from several instances at once: each seeded flight's id is derived from its
//! number and departure, so a second run inserts nothing twice.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{StoreError, airports, flights};
use crate::domain::{
    flight::{AirportCode, CabinClass, CabinConfig, CabinLayout, FlightNumber, NewFlight, local_date},
    money::Money,
};

/// Aircraft layouts: (business rows, business letters, economy first row, economy rows, economy letters).
const NARROW_BODY: (i32, &str, i32, i32, &str) = (5, "ACDF", 10, 26, "ABCDEF");
const WIDE_BODY: (i32, &str, i32, i32, &str) = (8, "ACDGHK", 20, 31, "ABCDEFGHK");

struct Service {
    number: &'static str,
    origin: &'static str,
    destination: &'static str,
    /// Local departure time at the origin.
    departs: (u32, u32),
    minutes: i64,
    wide_body: bool,
    /// Economy and business fares in SAR minor units.
    fares: (i64, i64),
}

const fn service(
    number: &'static str,
    origin: &'static str,
    destination: &'static str,
    departs: (u32, u32),
    minutes: i64,
    wide_body: bool,
    fares: (i64, i64),
) -> Service {
    Service { number, origin, destination, departs, minutes, wide_body, fares }
}

/// The daily schedule: several departures a day on the busy domestic routes, fewer abroad.
const SCHEDULE: &[Service] = &[
    service("AB101", "RUH", "JED", (6, 0), 105, false, (39_500, 129_000)),
    service("AB103", "RUH", "JED", (9, 30), 105, false, (42_000, 129_000)),
    service("AB105", "RUH", "JED", (14, 0), 105, true, (37_500, 119_000)),
    service("AB107", "RUH", "JED", (19, 45), 105, false, (45_000, 139_000)),
    service("AB102", "JED", "RUH", (7, 15), 100, false, (39_500, 129_000)),
    service("AB104", "JED", "RUH", (11, 0), 100, true, (37_500, 119_000)),
    service("AB106", "JED", "RUH", (16, 30), 100, false, (42_000, 129_000)),
    service("AB108", "JED", "RUH", (21, 20), 100, false, (45_000, 139_000)),
    service("AB201", "RUH", "DXB", (8, 15), 125, false, (69_000, 219_000)),
    service("AB203", "RUH", "DXB", (17, 40), 125, false, (74_000, 229_000)),
    service("AB202", "DXB", "RUH", (11, 30), 120, false, (69_000, 219_000)),
    service("AB204", "DXB", "RUH", (21, 10), 120, false, (74_000, 229_000)),
    service("AB301", "JED", "DXB", (10, 5), 170, false, (82_000, 259_000)),
    service("AB302", "DXB", "JED", (15, 20), 175, false, (82_000, 259_000)),
    service("AB401", "RUH", "DMM", (7, 10), 65, false, (29_500, 99_000)),
    service("AB403", "RUH", "DMM", (18, 25), 65, false, (31_500, 99_000)),
    service("AB402", "DMM", "RUH", (9, 0), 65, false, (29_500, 99_000)),
    service("AB404", "DMM", "RUH", (20, 15), 65, false, (31_500, 99_000)),
    service("AB501", "JED", "CAI", (13, 30), 140, false, (95_000, 289_000)),
    service("AB502", "CAI", "JED", (17, 50), 135, false, (95_000, 289_000)),
    service("AB601", "RUH", "LHR", (1, 40), 420, true, (249_000, 899_000)),
    service("AB602", "LHR", "RUH", (13, 15), 380, true, (249_000, 899_000)),
    service("AB701", "JED", "MED", (8, 0), 60, false, (25_000, 85_000)),
    service("AB703", "JED", "MED", (16, 0), 60, false, (27_000, 85_000)),
    service("AB702", "MED", "JED", (10, 0), 60, false, (25_000, 85_000)),
    service("AB704", "MED", "JED", (18, 30), 60, false, (27_000, 85_000)),
];

/// Namespace of the name-based UUIDs of seeded flights.
const SEED_NAMESPACE: Uuid = Uuid::from_u128(0x6ae1_b00c_5eed_4f11_9a7e_0000_0000_0001);

/// Inserts every scheduled departure of the next `days` days that is still in the future and not yet
/// present. Returns how many flights the schedule holds for the window.
pub async fn seed_demo_data(store: &super::Store, now: DateTime<Utc>, days: u64) -> Result<usize, StoreError> {
    let mut codes = Vec::new();
    for service in SCHEDULE {
        codes.push(code(service.origin)?);
    }
    let zones = airports::time_zones(store.conn(), &codes).await?;
    let flights = demo_flights(now, days, &zones)?;
    let txn = store.begin_write().await?;
    // Bounded batches keep each statement under SQLite's and PostgreSQL's bind-parameter limits.
    for batch in flights.chunks(200) {
        flights::insert_missing(&txn, batch, now).await?;
    }
    txn.commit().await?;
    Ok(flights.len())
}

fn demo_flights(
    now: DateTime<Utc>,
    days: u64,
    zones: &HashMap<AirportCode, chrono_tz::Tz>,
) -> Result<Vec<(Uuid, NewFlight, chrono::NaiveDate)>, StoreError> {
    let bad = |what: &str, e: String| StoreError::Corrupt(format!("demo schedule {what}: {e}"));
    let mut flights = Vec::new();
    for service in SCHEDULE {
        let origin = code(service.origin)?;
        let zone = *zones
            .get(&origin)
            .ok_or_else(|| StoreError::Corrupt(format!("demo schedule names unknown airport {origin}")))?;
        let today = local_date(now, zone);
        let (business_rows, business_letters, economy_first, economy_rows, economy_letters) =
            if service.wide_body { WIDE_BODY } else { NARROW_BODY };
        let cabin = |class, first, rows, letters, fare| -> Result<CabinConfig, StoreError> {
            Ok(CabinConfig {
                cabin: class,
                layout: CabinLayout::new(first, rows, letters).map_err(|(f, e)| bad(f, e))?,
                price: Money::seat_price("SAR", fare).map_err(|(f, e)| bad(f, e))?,
                // A tenth of the fare: the demo shows what a change costs.
                change_fee_minor: fare / 10,
            })
        };
        let cabins = vec![
            cabin(CabinClass::Business, 1, business_rows, business_letters, service.fares.1)?,
            cabin(CabinClass::Economy, economy_first, economy_rows, economy_letters, service.fares.0)?,
        ];
        let time = NaiveTime::from_hms_opt(service.departs.0, service.departs.1, 0)
            .ok_or_else(|| bad("time", String::new()))?;
        for day in 0..days {
            let date = today + Days::new(day);
            let Some(departs_at) = date.and_time(time).and_local_timezone(zone).earliest().map(|t| t.to_utc()) else {
                continue; // the local time does not exist that day (a DST gap)
            };
            if departs_at <= now {
                continue;
            }
            let id =
                Uuid::new_v5(&SEED_NAMESPACE, format!("{}@{}", service.number, departs_at.to_rfc3339()).as_bytes());
            let flight = NewFlight {
                flight_number: FlightNumber::parse(service.number).map_err(|e| bad("number", e))?,
                origin,
                destination: code(service.destination)?,
                departs_at,
                arrives_at: departs_at + TimeDelta::minutes(service.minutes),
                cabins: cabins.clone(),
            };
            flights.push((id, flight, date));
        }
    }
    Ok(flights)
}

fn code(text: &str) -> Result<AirportCode, StoreError> {
    AirportCode::parse(text).map_err(|e| StoreError::Corrupt(format!("demo schedule airport {text}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_valid_and_ids_are_stable() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z").unwrap().to_utc();
        // The airports every database has, from the file the migration loads.
        let zones: HashMap<AirportCode, chrono_tz::Tz> =
            aerobook_migrations::parse_airports(aerobook_migrations::AIRPORTS_TSV)
                .unwrap()
                .into_iter()
                .map(|[code, .., zone]| (AirportCode::parse(code).unwrap(), zone.parse().unwrap()))
                .collect();
        let first = demo_flights(now, 2, &zones).unwrap();
        assert!(first.len() > SCHEDULE.len(), "two days of departures");
        assert!(first.iter().all(|(_, f, _)| f.departs_at > now && f.arrives_at > f.departs_at));
        let ids: Vec<Uuid> = first.iter().map(|(id, ..)| *id).collect();
        let again: Vec<Uuid> = demo_flights(now, 2, &zones).unwrap().iter().map(|(id, ..)| *id).collect();
        let unknown = HashMap::new();
        assert!(demo_flights(now, 2, &unknown).is_err(), "every origin must be a known airport");
        assert_eq!(ids, again);
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
