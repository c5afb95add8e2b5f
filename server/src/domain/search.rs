//! A validated flight search and its cache identity.

use chrono::{Days, NaiveDate};

use super::{
    flight::{AirportCode, CabinClass, Flight},
    pagination::Cursor,
};

/// Largest party on one booking (and so in one search).
pub const MAX_PASSENGERS: u8 = 9;
/// Legs of one trip search (`SearchTrips`), as a booking has segments at most.
pub const MAX_TRIP_LEGS: usize = 6;
/// How far ahead flights can be searched.
pub const MAX_DAYS_AHEAD: u64 = 366;

/// One direction between two airports; searches are cached and invalidated per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub origin: AirportCode,
    pub destination: AirportCode,
}

impl Route {
    /// Stable tag naming the route in cache keys, e.g. `RUH-JED`.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.origin, self.destination)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlightSearch {
    pub route: Route,
    pub departure_date: NaiveDate,
    pub passengers: u8,
    /// `None`: any cabin with room for the party.
    pub cabin: Option<CabinClass>,
    pub page_size: u32,
    pub after: Option<Cursor>,
}

impl FlightSearch {
    /// Identity of this search within its route, for the search cache.
    pub fn cache_key(&self) -> String {
        let after = self.after.map(|c| c.encode()).unwrap_or_default();
        let cabin = self.cabin.map_or("ANY", CabinClass::as_str);
        format!("{}|{}|{}|{}|{}", self.departure_date, self.passengers, cabin, self.page_size, after)
    }
}

pub fn passengers(count: i32) -> Result<u8, String> {
    u8::try_from(count)
        .ok()
        .filter(|n| (1..=MAX_PASSENGERS).contains(n))
        .ok_or_else(|| format!("must be between 1 and {MAX_PASSENGERS}"))
}

/// A `YYYY-MM-DD` departure date no earlier than yesterday (local dates run up to a day behind UTC) and
/// at most [`MAX_DAYS_AHEAD`] days after `today`.
pub fn departure_date(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| "must be a date in the form YYYY-MM-DD".to_owned())?;
    let earliest = today - Days::new(1);
    let latest = today + Days::new(MAX_DAYS_AHEAD);
    if date < earliest || date > latest {
        return Err(format!("must be between {earliest} and {latest}"));
    }
    Ok(date)
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlightPage {
    pub flights: Vec<Flight>,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passenger_counts_are_one_to_nine() {
        assert_eq!(passengers(1), Ok(1));
        assert_eq!(passengers(9), Ok(9));
        for bad in [0, 10, -1, 300] {
            assert!(passengers(bad).is_err());
        }
    }

    #[test]
    fn departure_dates_are_strict_and_bounded() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(departure_date("2026-11-20", today), Ok(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()));
        assert!(departure_date("2027-11-22", today).is_ok());
        for bad in ["2026-11-19", "2027-11-23", "2026-11-5", "21-11-2026", "2026-02-30", "", "2026-11-21T00:00"] {
            assert!(departure_date(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_keys_distinguish_every_search_parameter() {
        let base = FlightSearch {
            route: Route {
                origin: AirportCode::parse("RUH").unwrap(),
                destination: AirportCode::parse("JED").unwrap(),
            },
            departure_date: NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            passengers: 1,
            cabin: Some(CabinClass::Economy),
            page_size: 20,
            after: None,
        };
        assert_eq!(base.route.tag(), "RUH-JED");
        let variants = [
            FlightSearch { passengers: 2, ..base.clone() },
            FlightSearch { cabin: Some(CabinClass::Business), ..base.clone() },
            FlightSearch { cabin: None, ..base.clone() },
            FlightSearch { page_size: 5, ..base.clone() },
            FlightSearch { departure_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(), ..base.clone() },
            FlightSearch { after: Some(Cursor { at: chrono::Utc::now(), id: uuid::Uuid::nil() }), ..base.clone() },
        ];
        for variant in variants {
            assert_ne!(variant.cache_key(), base.cache_key());
        }
    }
}
