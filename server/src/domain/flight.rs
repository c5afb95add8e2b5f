//! Flights, cabins and seats: identifiers that validate themselves, cabin layouts, and the rules for a new
//! flight.

use std::{collections::BTreeSet, fmt};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    money::Money,
    validation::{ValidationError, Violations, quoted},
};

/// Longest scheduled flight accepted by `CreateFlight`.
pub const MAX_FLIGHT_DURATION: Duration = Duration::hours(24);
/// Highest row number of any cabin.
pub const MAX_ROW: i32 = 99;
/// Most seat letters in one row.
pub const MAX_SEATS_PER_ROW: usize = 10;
/// Most cabins on one flight: one per class.
pub const MAX_CABINS: usize = 4;

/// A three-letter IATA airport code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AirportCode([u8; 3]);

impl AirportCode {
    pub fn parse(code: &str) -> Result<Self, String> {
        match code.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|ch| ch.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err("must be a three-letter IATA airport code in upper case, e.g. RUH".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for AirportCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A marketing flight number: two-character airline designator, 1..=4 digits, optional suffix letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightNumber(String);

impl FlightNumber {
    pub fn parse(number: &str) -> Result<Self, String> {
        let bytes = number.as_bytes();
        let designator_ok = bytes.len() >= 3
            && bytes[..2].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && !bytes[..2].iter().all(u8::is_ascii_digit);
        let rest = bytes.get(2..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let suffix = &rest[digits..];
        let suffix_ok = suffix.is_empty() || (suffix.len() == 1 && suffix[0].is_ascii_uppercase());
        if designator_ok && (1..=4).contains(&digits) && suffix_ok {
            Ok(Self(number.to_owned()))
        } else {
            Err("must be an airline designator and 1 to 4 digits, e.g. AB123".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_enum!(
    /// Cabin classes, ordered from the front of the aircraft (first) to the back (economy) by row order.
    CabinClass { First => "FIRST", Business => "BUSINESS", PremiumEconomy => "PREMIUM_ECONOMY", Economy => "ECONOMY" }
);

string_enum!(
    /// Operational status of a flight.
    FlightStatus { Scheduled => "SCHEDULED", Delayed => "DELAYED", Cancelled => "CANCELLED", Departed => "DEPARTED", Arrived => "ARRIVED" }
);

impl FlightStatus {
    /// Whether seats on the flight can still be sold.
    pub fn is_bookable(self) -> bool {
        matches!(self, FlightStatus::Scheduled | FlightStatus::Delayed)
    }
}

/// A seat: row number and letter, written "12A".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeatNumber {
    pub row: i32,
    pub letter: char,
}

impl SeatNumber {
    /// "12A": a row of 1..=99 without leading zeros, then one upper-case letter.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{} is not a seat number such as 12A", quoted(text));
        let mut chars = text.chars();
        let letter = chars.next_back().filter(char::is_ascii_uppercase).ok_or_else(invalid)?;
        let row = chars.as_str();
        let row_ok = (1..=2).contains(&row.len()) && row.bytes().all(|b| b.is_ascii_digit()) && !row.starts_with('0');
        if !row_ok {
            return Err(invalid());
        }
        Ok(Self { row: row.parse().map_err(|_| invalid())?, letter })
    }
}

impl fmt::Display for SeatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.row, self.letter)
    }
}

/// Rows and seat letters of one cabin; its seats are every row x every letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinLayout {
    pub first_row: i32,
    pub rows: i32,
    pub letters: String,
}

impl CabinLayout {
    /// Validates a layout; errors name the offending field of `CabinConfig`.
    pub fn new(first_row: i32, rows: i32, letters: &str) -> Result<Self, (&'static str, String)> {
        if !(1..=MAX_ROW).contains(&first_row) {
            return Err(("first_row", format!("must be between 1 and {MAX_ROW}")));
        }
        if !(1..=MAX_ROW).contains(&rows) || first_row + rows - 1 > MAX_ROW {
            return Err(("rows", format!("must be at least 1, and the last row at most {MAX_ROW}")));
        }
        let distinct: BTreeSet<char> = letters.chars().collect();
        let letters_ok = (1..=MAX_SEATS_PER_ROW).contains(&letters.len())
            && letters.bytes().all(|b| b.is_ascii_uppercase())
            && distinct.len() == letters.len();
        if !letters_ok {
            return Err((
                "seat_letters",
                format!("must be 1 to {MAX_SEATS_PER_ROW} distinct letters A-Z, e.g. ABCDEF"),
            ));
        }
        Ok(Self { first_row, rows, letters: letters.to_owned() })
    }

    pub fn last_row(&self) -> i32 {
        self.first_row + self.rows - 1
    }

    pub fn seat_count(&self) -> i32 {
        self.rows * self.letters.len() as i32
    }

    pub fn contains(&self, seat: SeatNumber) -> bool {
        (self.first_row..=self.last_row()).contains(&seat.row) && self.letters.contains(seat.letter)
    }

    /// Seats front to back, left to right.
    pub fn seats(&self) -> impl Iterator<Item = SeatNumber> + '_ {
        (self.first_row..=self.last_row())
            .flat_map(move |row| self.letters.chars().map(move |letter| SeatNumber { row, letter }))
    }

    fn overlaps(&self, other: &CabinLayout) -> bool {
        self.first_row <= other.last_row() && other.first_row <= self.last_row()
    }
}

/// A cabin as configured for a new flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinConfig {
    pub cabin: CabinClass,
    pub layout: CabinLayout,
    pub price: Money,
    /// What changing a booked flight in this cabin costs the party, in the price's currency.
    pub change_fee_minor: i64,
}

/// A flight an operator wants to add, checked against every rule that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlight {
    pub flight_number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub cabins: Vec<CabinConfig>,
}

/// The parts of a `CreateFlight` request, each already parsed on its own by the API layer.
pub struct NewFlightParts {
    pub flight_number: Option<FlightNumber>,
    pub origin: Option<AirportCode>,
    pub destination: Option<AirportCode>,
    pub departs_at: Option<DateTime<Utc>>,
    pub arrives_at: Option<DateTime<Utc>>,
    pub cabins: Vec<Option<CabinConfig>>,
}

impl NewFlight {
    /// Applies the rules across fields (route, times, cabins) on top of the violations found while parsing
    /// the parts, so one response names everything that is wrong.
    pub fn assemble(
        parts: NewFlightParts,
        mut violations: Violations,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        if let (Some(origin), Some(destination)) = (parts.origin, parts.destination)
            && origin == destination
        {
            violations.add("destination", "must differ from origin");
        }
        if let Some(departs_at) = parts.departs_at
            && departs_at <= now
        {
            violations.add("departs_at", "must be in the future");
        }
        if let (Some(departs_at), Some(arrives_at)) = (parts.departs_at, parts.arrives_at)
            && (arrives_at <= departs_at || arrives_at - departs_at > MAX_FLIGHT_DURATION)
        {
            violations.add("arrives_at", "must be after departs_at and at most 24 hours later");
        }
        if parts.cabins.is_empty() || parts.cabins.len() > MAX_CABINS {
            violations.add("cabins", format!("must list 1 to {MAX_CABINS} cabins"));
        } else {
            let cabins: Vec<(usize, &CabinConfig)> =
                parts.cabins.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (i, c))).collect();
            let currency = cabins.first().map(|(_, c)| c.price.currency);
            for (position, &(i, cabin)) in cabins.iter().enumerate() {
                let earlier = &cabins[..position];
                if earlier.iter().any(|(_, e)| e.cabin == cabin.cabin) {
                    violations.add(format!("cabins[{i}].cabin"), "each cabin class may appear once");
                } else if earlier.iter().any(|(_, e)| e.layout.overlaps(&cabin.layout)) {
                    violations.add(format!("cabins[{i}].first_row"), "rows overlap another cabin's rows");
                }
                if Some(cabin.price.currency) != currency {
                    violations
                        .add(format!("cabins[{i}].price.currency_code"), "all cabins must be priced in one currency");
                }
            }
        }
        violations.finish_with(|| {
            Some(NewFlight {
                flight_number: parts.flight_number?,
                origin: parts.origin?,
                destination: parts.destination?,
                departs_at: parts.departs_at?,
                arrives_at: parts.arrives_at?,
                cabins: parts.cabins.into_iter().collect::<Option<Vec<_>>>()?,
            })
        })
    }
}

/// Seats and price of one cabin of a flight, as shown to travellers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinAvailability {
    pub cabin: CabinClass,
    pub layout: CabinLayout,
    pub seats_total: i32,
    pub seats_available: i32,
    pub price: Money,
    /// What changing a booked flight in this cabin costs the party, in the price's currency (absent
    /// from snapshots cached before cabins had it: no fee).
    #[serde(default)]
    pub change_fee_minor: i64,
}

impl CabinAvailability {
    /// The cabin's change fee for a party.
    pub fn change_fee(&self) -> Money {
        Money { currency: self.price.currency, amount_minor: self.change_fee_minor }
    }
}

/// A flight with the availability of each cabin, front cabin first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flight {
    pub id: Uuid,
    pub flight_number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
    pub departure_date: NaiveDate,
    pub status: FlightStatus,
    pub cabins: Vec<CabinAvailability>,
    /// Where `departs_at` reads as local time.
    pub origin_time_zone: chrono_tz::Tz,
    /// Where `arrives_at` reads as local time.
    pub destination_time_zone: chrono_tz::Tz,
}

/// One seat of a seat map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatState {
    pub seat: SeatNumber,
    pub cabin: CabinClass,
    pub available: bool,
}

/// Every seat of the given cabins (all when `only` is `None`), front to back; `taken` lists held or sold
/// seats.
pub fn seat_map(
    cabins: &[CabinAvailability],
    only: Option<CabinClass>,
    taken: &BTreeSet<SeatNumber>,
) -> Vec<SeatState> {
    let mut seats: Vec<SeatState> = cabins
        .iter()
        .filter(|c| only.is_none_or(|wanted| wanted == c.cabin))
        .flat_map(|c| {
            c.layout.seats().map(|seat| SeatState { seat, cabin: c.cabin, available: !taken.contains(&seat) })
        })
        .collect();
    seats.sort_by_key(|s| s.seat);
    seats
}

/// The local calendar date of an instant in an airport's time zone.
pub fn local_date(instant: DateTime<Utc>, time_zone: chrono_tz::Tz) -> NaiveDate {
    instant.with_timezone(&time_zone).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airport_codes_are_three_upper_case_letters() {
        assert_eq!(AirportCode::parse("RUH").unwrap().as_str(), "RUH");
        for bad in ["", "ru", "ruh", "RUHX", "R1H", "ÄBC"] {
            assert!(AirportCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flight_numbers_follow_the_designator_digits_suffix_shape() {
        for good in ["AB1", "AB123", "SV1234", "F9123", "AB12C"] {
            assert!(FlightNumber::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "AB", "ab123", "12345", "AB12345", "AB12CD", "A-123", "AB 12"] {
            assert!(FlightNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seat_numbers_parse_and_print_alike() {
        for good in ["1A", "12C", "99K"] {
            assert_eq!(SeatNumber::parse(good).unwrap().to_string(), good);
        }
        for bad in ["", "A", "12", "012A", "0A", "100A", "12a", "12AB", "1 A", "١A", "A١"] {
            assert!(SeatNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layouts_enumerate_rows_times_letters_and_validate_their_fields() {
        let layout = CabinLayout::new(3, 2, "AC").unwrap();
        let seats: Vec<String> = layout.seats().map(|s| s.to_string()).collect();
        assert_eq!(seats, ["3A", "3C", "4A", "4C"]);
        assert_eq!(layout.seat_count(), 4);
        assert!(layout.contains(SeatNumber { row: 4, letter: 'C' }));
        assert!(!layout.contains(SeatNumber { row: 4, letter: 'B' }));
        assert!(!layout.contains(SeatNumber { row: 5, letter: 'A' }));
        assert_eq!(CabinLayout::new(0, 1, "A").unwrap_err().0, "first_row");
        assert_eq!(CabinLayout::new(90, 11, "A").unwrap_err().0, "rows");
        assert_eq!(CabinLayout::new(1, 0, "A").unwrap_err().0, "rows");
        assert_eq!(CabinLayout::new(2, i32::MAX, "A").unwrap_err().0, "rows", "no overflow");
        for letters in ["", "AA", "ab", "ABCDEFGHIJK", "A1"] {
            assert_eq!(CabinLayout::new(1, 1, letters).unwrap_err().0, "seat_letters", "{letters}");
        }
    }

    fn cabin(cabin: CabinClass, first_row: i32, rows: i32, currency: &str) -> Option<CabinConfig> {
        Some(CabinConfig {
            cabin,
            layout: CabinLayout::new(first_row, rows, "ABC").unwrap(),
            price: Money::seat_price(currency, 10_000).unwrap(),
            change_fee_minor: 0,
        })
    }

    fn parts(now: DateTime<Utc>) -> NewFlightParts {
        NewFlightParts {
            flight_number: FlightNumber::parse("AB1").ok(),
            origin: AirportCode::parse("RUH").ok(),
            destination: AirportCode::parse("JED").ok(),
            departs_at: Some(now + Duration::days(1)),
            arrives_at: Some(now + Duration::days(1) + Duration::hours(2)),
            cabins: vec![cabin(CabinClass::Business, 1, 5, "SAR"), cabin(CabinClass::Economy, 10, 20, "SAR")],
        }
    }

    fn fields(result: Result<NewFlight, ValidationError>) -> Vec<String> {
        result.unwrap_err().violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_consistent_flight_assembles() {
        let now = Utc::now();
        let flight = NewFlight::assemble(parts(now), Violations::new(), now).unwrap();
        assert_eq!(flight.cabins.len(), 2);
    }

    #[test]
    fn cross_field_rules_name_their_fields() {
        let now = Utc::now();
        let mut p = parts(now);
        p.destination = p.origin;
        p.departs_at = Some(now - Duration::minutes(1));
        p.arrives_at = Some(now - Duration::minutes(2));
        assert_eq!(fields(NewFlight::assemble(p, Violations::new(), now)), ["destination", "departs_at", "arrives_at"]);

        let mut p = parts(now);
        p.arrives_at = Some(p.departs_at.unwrap() + MAX_FLIGHT_DURATION + Duration::minutes(1));
        assert_eq!(fields(NewFlight::assemble(p, Violations::new(), now)), ["arrives_at"]);

        let mut p = parts(now);
        p.cabins = vec![
            cabin(CabinClass::Economy, 1, 5, "SAR"),
            cabin(CabinClass::Economy, 10, 5, "SAR"),
            cabin(CabinClass::Business, 4, 2, "USD"),
        ];
        assert_eq!(
            fields(NewFlight::assemble(p, Violations::new(), now)),
            ["cabins[1].cabin", "cabins[2].first_row", "cabins[2].price.currency_code"]
        );

        let mut p = parts(now);
        p.cabins.clear();
        assert_eq!(fields(NewFlight::assemble(p, Violations::new(), now)), ["cabins"]);

        let mut p = parts(now);
        p.cabins = vec![cabin(CabinClass::Economy, 1, 1, "SAR"); MAX_CABINS + 1];
        assert_eq!(
            fields(NewFlight::assemble(p, Violations::new(), now)),
            ["cabins"],
            "no pairwise checks beyond the limit"
        );
    }

    #[test]
    fn parse_failures_of_parts_are_kept_and_block_assembly() {
        let now = Utc::now();
        let mut p = parts(now);
        p.flight_number = None;
        let mut v = Violations::new();
        v.add("flight_number", "bad");
        assert_eq!(fields(NewFlight::assemble(p, v, now)), ["flight_number"]);
    }

    #[test]
    fn seat_maps_cover_the_requested_cabins_front_to_back() {
        let sar = Money::seat_price("SAR", 1).unwrap();
        let cabins = vec![
            CabinAvailability {
                cabin: CabinClass::Economy,
                layout: CabinLayout::new(10, 1, "AB").unwrap(),
                seats_total: 2,
                seats_available: 1,
                price: sar,
                change_fee_minor: 0,
            },
            CabinAvailability {
                cabin: CabinClass::Business,
                layout: CabinLayout::new(1, 1, "A").unwrap(),
                seats_total: 1,
                seats_available: 1,
                price: sar,
                change_fee_minor: 0,
            },
        ];
        let taken = BTreeSet::from([SeatNumber { row: 10, letter: 'B' }]);
        let all = seat_map(&cabins, None, &taken);
        let shown: Vec<(String, bool)> = all.iter().map(|s| (s.seat.to_string(), s.available)).collect();
        assert_eq!(shown, [("1A".into(), true), ("10A".into(), true), ("10B".into(), false)]);
        assert_eq!(seat_map(&cabins, Some(CabinClass::Business), &taken).len(), 1);
    }

    #[test]
    fn local_dates_follow_the_airport_time_zone() {
        let instant = DateTime::parse_from_rfc3339("2026-11-21T22:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(local_date(instant, chrono_tz::Asia::Riyadh), NaiveDate::from_ymd_opt(2026, 11, 22).unwrap());
        assert_eq!(local_date(instant, chrono_tz::Europe::London), NaiveDate::from_ymd_opt(2026, 11, 21).unwrap());
    }

    #[test]
    fn enum_names_round_trip() {
        for cabin in CabinClass::ALL {
            assert_eq!(cabin.as_str().parse::<CabinClass>().unwrap(), *cabin);
        }
        for status in FlightStatus::ALL {
            assert_eq!(status.as_str().parse::<FlightStatus>().unwrap(), *status);
        }
        assert!(FlightStatus::Delayed.is_bookable() && !FlightStatus::Departed.is_bookable());
    }
}
