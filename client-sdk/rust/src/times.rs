//! Flight times as travellers read them: each in its own airport's time zone, which the server sends with
//! every flight (`origin_time_zone`, `destination_time_zone`), so the result does not depend on the zone
//! of the machine showing it.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::proto;

/// A flight's departure and arrival in local airport time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTimes {
    pub departs: DateTime<Tz>,
    pub arrives: DateTime<Tz>,
}

impl LocalTimes {
    /// Calendar days from the local departure date to the local arrival date: `1` for an overnight flight,
    /// negative when a flight east across the date line lands "before" it left.
    pub fn day_change(&self) -> i64 {
        (self.arrives.date_naive() - self.departs.date_naive()).num_days()
    }

    pub fn departure_date(&self) -> NaiveDate {
        self.departs.date_naive()
    }
}

/// `06:00 → 07:45`, or `23:10 → 01:05 +1` when the arrival falls on another local day.
impl fmt::Display for LocalTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.departs.format("%H:%M"), self.arrives.format("%H:%M"))?;
        match self.day_change() {
            0 => Ok(()),
            days => write!(f, " {days:+}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    #[error("flight {flight} has no {field}")]
    Missing { flight: String, field: &'static str },
    #[error("flight {flight}: {zone:?} is not an IANA time zone")]
    UnknownZone { flight: String, zone: String },
}

/// The flight's departure and arrival in its airports' own time zones.
pub fn local_times(flight: &proto::Flight) -> Result<LocalTimes, LocalTimeError> {
    let missing = |field| LocalTimeError::Missing { flight: flight.flight_number.clone(), field };
    let instant = |at: Option<&prost_types::Timestamp>, field| {
        at.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
            .ok_or_else(|| missing(field))
    };
    let zone = |name: &str, field| -> Result<Tz, LocalTimeError> {
        if name.is_empty() {
            return Err(missing(field));
        }
        name.parse()
            .map_err(|_| LocalTimeError::UnknownZone { flight: flight.flight_number.clone(), zone: name.to_owned() })
    };
    let departs = instant(flight.departs_at.as_ref(), "departs_at")?;
    let arrives = instant(flight.arrives_at.as_ref(), "arrives_at")?;
    Ok(LocalTimes {
        departs: departs.with_timezone(&zone(&flight.origin_time_zone, "origin_time_zone")?),
        arrives: arrives.with_timezone(&zone(&flight.destination_time_zone, "destination_time_zone")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(departs: &str, arrives: &str, from: &str, to: &str) -> proto::Flight {
        let at = |text: &str| {
            let t = DateTime::parse_from_rfc3339(text).unwrap();
            Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 })
        };
        proto::Flight {
            flight_number: "AB101".into(),
            departs_at: at(departs),
            arrives_at: at(arrives),
            origin_time_zone: from.into(),
            destination_time_zone: to.into(),
            ..Default::default()
        }
    }

    #[test]
    fn times_read_in_each_airports_own_zone() {
        let times =
            local_times(&flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Asia/Riyadh", "Asia/Riyadh")).unwrap();
        assert_eq!((times.to_string(), times.day_change()), ("06:00 → 07:45".to_owned(), 0));
        assert_eq!(times.departure_date(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    }

    #[test]
    fn another_local_day_is_marked() {
        let overnight = flight("2026-12-01T19:30:00Z", "2026-12-02T02:30:00Z", "Asia/Riyadh", "Europe/London");
        assert_eq!(local_times(&overnight).unwrap().to_string(), "22:30 → 02:30 +1");
        // Auckland (UTC+13 in December) to Honolulu (UTC-10): lands on the previous local day.
        let date_line = flight("2026-12-01T20:00:00Z", "2026-12-02T04:45:00Z", "Pacific/Auckland", "Pacific/Honolulu");
        let times = local_times(&date_line).unwrap();
        assert_eq!((times.to_string(), times.day_change()), ("09:00 → 18:45 -1".to_owned(), -1));
    }

    #[test]
    fn missing_or_unknown_zones_are_errors() {
        let no_zone = flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "", "Asia/Riyadh");
        assert!(matches!(local_times(&no_zone), Err(LocalTimeError::Missing { field: "origin_time_zone", .. })));
        let bad = flight("2026-12-01T03:00:00Z", "2026-12-01T04:45:00Z", "Asia/Riyadh", "Mars/Olympus");
        assert!(matches!(local_times(&bad), Err(LocalTimeError::UnknownZone { .. })));
    }
}
