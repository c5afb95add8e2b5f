//! What the domain's own tests share: a flight on sale and a passenger.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    booking::{Passenger, PassengerType},
    flight::{AirportCode, CabinAvailability, CabinClass, CabinLayout, Flight, FlightNumber, FlightStatus},
    money::Money,
};

/// A two-hour flight RUH-JED departing at `departs_at`, with one economy cabin of four seats (rows 10 and
/// 11, seats A and B) at `seat_price` minor units of `currency`, no change fee.
pub fn flight(departs_at: DateTime<Utc>, currency: &str, seat_price: i64) -> Flight {
    Flight {
        id: Uuid::now_v7(),
        flight_number: FlightNumber::parse("AB101").unwrap(),
        origin: AirportCode::parse("RUH").unwrap(),
        destination: AirportCode::parse("JED").unwrap(),
        departs_at,
        arrives_at: departs_at + TimeDelta::hours(2),
        departure_date: departs_at.date_naive(),
        status: FlightStatus::Scheduled,
        cabins: vec![CabinAvailability {
            cabin: CabinClass::Economy,
            layout: CabinLayout::new(10, 2, "AB").unwrap(),
            seats_total: 4,
            seats_available: 4,
            price: Money::seat_price(currency, seat_price).unwrap(),
            change_fee_minor: 0,
        }],
        origin_time_zone: chrono_tz::Asia::Riyadh,
        destination_time_zone: chrono_tz::Asia::Riyadh,
    }
}

/// Sara, an adult born on `born` (YYYY-MM-DD).
pub fn adult(born: &str) -> Passenger {
    Passenger {
        given_name: "Sara".into(),
        family_name: "Haddad".into(),
        date_of_birth: NaiveDate::parse_from_str(born, "%Y-%m-%d").unwrap(),
        passenger_type: PassengerType::Adult,
    }
}
