//! A trip: one booking over several flights, held whole or not at all. The rules on the trip as a whole
//! (how many segments, their order and connections, one currency) are decided here, each segment by the
//! single-flight rules of [`Hold::place`]; whether the seats are free is the database's to decide.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    auth::Email,
    booking::Passenger,
    flight::{CabinClass, Flight, SeatNumber},
    hold::{Hold, HoldRequest},
    money::Money,
    validation::{ValidationError, Violations},
};

/// Fewest flights of a trip: one flight is a single-flight booking.
pub const MIN_TRIP_SEGMENTS: usize = 2;
/// Most flights of a trip: a round trip with two connections each way.
pub const MAX_TRIP_SEGMENTS: usize = 6;
/// Least time between a flight's arrival and the next segment's departure.
pub const MIN_CONNECTION: TimeDelta = TimeDelta::minutes(60);

/// One flight of a trip as the caller asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRequest {
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    /// Empty: the server places the party. Otherwise one distinct seat per passenger, in passenger order.
    pub seats: Vec<SeatNumber>,
}

/// A trip a caller asks for: the same party on every segment, in travel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripRequest {
    pub segments: Vec<SegmentRequest>,
    pub passengers: Vec<Passenger>,
    pub contact_email: Email,
}

/// How many segments a trip lists.
pub fn check_segment_count(listed: usize) -> Result<(), String> {
    if (MIN_TRIP_SEGMENTS..=MAX_TRIP_SEGMENTS).contains(&listed) {
        Ok(())
    } else {
        Err(format!("must list {MIN_TRIP_SEGMENTS} to {MAX_TRIP_SEGMENTS} flights, in travel order"))
    }
}

/// The first of a trip's flights (their departure and arrival, in travel order) that departs less than
/// [`MIN_CONNECTION`] after the previous one arrives.
pub fn first_tight_connection(times: &[(DateTime<Utc>, DateTime<Utc>)]) -> Option<usize> {
    times.windows(2).position(|pair| pair[1].0 < pair[0].1 + MIN_CONNECTION).map(|index| index + 1)
}

impl TripRequest {
    /// Segment `index` as a single-flight hold of the trip's party.
    fn leg(&self, index: usize) -> HoldRequest {
        let segment = &self.segments[index];
        HoldRequest {
            flight_id: segment.flight_id,
            cabin: segment.cabin,
            passengers: self.passengers.clone(),
            seats: segment.seats.clone(),
            contact_email: self.contact_email.clone(),
        }
    }
}

/// A trip the rules allow, before seats are counted: each segment's price for the party (in the
/// request's order), their sum, and when the hold of every segment expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedTrip {
    pub prices: Vec<Money>,
    pub total_price: Money,
    pub expires_at: DateTime<Utc>,
}

/// Checks `request` against its `flights` (one per segment, in the request's order) at `now`: each
/// segment as [`Hold::place`] checks a single flight, each departing at least [`MIN_CONNECTION`] after
/// the previous one arrives, all in one currency. Violations name `segments[i].field` (a passenger's,
/// `passengers[i].field`, once).
pub fn price_trip(
    flights: &[&Flight],
    request: &TripRequest,
    now: DateTime<Utc>,
    ttl: TimeDelta,
) -> Result<PricedTrip, ValidationError> {
    let mut violations = Violations::new();
    let mut prices = Vec::with_capacity(flights.len());
    for (index, flight) in flights.iter().enumerate() {
        match Hold::place(flight, &request.leg(index), now, ttl) {
            Ok(hold) => prices.push(hold.total_price),
            Err(invalid) => {
                for violation in invalid.violations {
                    let field = if violation.field.starts_with("passengers") {
                        violation.field
                    } else {
                        format!("segments[{index}].{}", violation.field)
                    };
                    if !violations.names(&field) {
                        violations.add(field, violation.description);
                    }
                }
            }
        }
    }
    let times: Vec<_> = flights.iter().map(|flight| (flight.departs_at, flight.arrives_at)).collect();
    if let Some(index) = first_tight_connection(&times) {
        violations.add(
            format!("segments[{index}].flight_id"),
            format!(
                "must depart at least {} minutes after the previous flight arrives, in travel order",
                MIN_CONNECTION.num_minutes()
            ),
        );
    }
    violations.finish()?;
    let mut violations = Violations::new();
    let currency = prices[0].currency;
    let mut total = 0_i64;
    for (index, price) in prices.iter().enumerate() {
        if price.currency != currency {
            violations.add(
                format!("segments[{index}].flight_id"),
                format!("is priced in {}; the trip's first flight in {}", price.currency.as_str(), currency.as_str()),
            );
        }
        total = total.saturating_add(price.amount_minor);
    }
    violations.finish()?;
    Ok(PricedTrip { prices, total_price: Money { currency, amount_minor: total }, expires_at: now + ttl })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;

    fn flight(departs_at: DateTime<Utc>, currency: &str) -> Flight {
        fixtures::flight(departs_at, currency, 40_000)
    }

    fn trip(flights: &[&Flight], born: &str) -> TripRequest {
        TripRequest {
            segments: flights
                .iter()
                .map(|f| SegmentRequest { flight_id: f.id, cabin: CabinClass::Economy, seats: Vec::new() })
                .collect(),
            passengers: vec![fixtures::adult(born)],
            contact_email: Email::parse("sara@example.com").unwrap(),
        }
    }

    fn fields(error: ValidationError) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_trip_costs_the_sum_of_its_segments_and_expires_once() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let (out, back) = (flight(now + TimeDelta::days(3), "SAR"), flight(now + TimeDelta::days(7), "SAR"));
        let priced =
            price_trip(&[&out, &back], &trip(&[&out, &back], "1990-01-01"), now, TimeDelta::minutes(10)).unwrap();
        assert_eq!(priced.prices.iter().map(|p| p.amount_minor).collect::<Vec<_>>(), [40_000, 40_000]);
        assert_eq!(priced.total_price.amount_minor, 80_000);
        assert_eq!(priced.expires_at, now + TimeDelta::minutes(10));
    }

    #[test]
    fn tight_or_backward_connections_and_mixed_currencies_are_named_by_segment() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let ttl = TimeDelta::minutes(10);
        let first = flight(now + TimeDelta::days(3), "SAR");
        // Arrives at +2 h: a departure 59 minutes later is too tight, 60 minutes is enough.
        let tight = flight(first.arrives_at + MIN_CONNECTION - TimeDelta::minutes(1), "SAR");
        let enough = flight(first.arrives_at + MIN_CONNECTION, "SAR");
        assert_eq!(
            fields(price_trip(&[&first, &tight], &trip(&[&first, &tight], "1990-01-01"), now, ttl).unwrap_err()),
            ["segments[1].flight_id"]
        );
        assert!(price_trip(&[&first, &enough], &trip(&[&first, &enough], "1990-01-01"), now, ttl).is_ok());
        assert_eq!(
            fields(price_trip(&[&enough, &first], &trip(&[&enough, &first], "1990-01-01"), now, ttl).unwrap_err()),
            ["segments[1].flight_id"],
            "segments in travel order"
        );
        let in_euros = flight(now + TimeDelta::days(7), "EUR");
        assert_eq!(
            fields(price_trip(&[&first, &in_euros], &trip(&[&first, &in_euros], "1990-01-01"), now, ttl).unwrap_err()),
            ["segments[1].flight_id"]
        );
    }

    #[test]
    fn a_segment_s_own_faults_name_it_and_a_passenger_s_are_named_once() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let ttl = TimeDelta::minutes(10);
        let (out, back) = (flight(now + TimeDelta::days(3), "SAR"), flight(now + TimeDelta::days(7), "SAR"));
        let mut request = trip(&[&out, &back], "1990-01-01");
        request.segments[1].cabin = CabinClass::Business;
        assert_eq!(fields(price_trip(&[&out, &back], &request, now, ttl).unwrap_err()), ["segments[1].cabin"]);
        // A child listed as an adult on both flights.
        let child = trip(&[&out, &back], "2020-01-01");
        assert_eq!(fields(price_trip(&[&out, &back], &child, now, ttl).unwrap_err()), ["passengers[0].type"]);
    }
}
