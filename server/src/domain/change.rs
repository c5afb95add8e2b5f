//! Flight changes: pricing the replacement of one of a booking's flights by another flight and cabin (a
//! quote), under the rules a booking keeps (its flights in travel order, one currency). The seats are the
//! database's to decide when the change is made.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    booking::{Booking, BookingAction, BookingStatus, Refusal, check_ages, fare},
    flight::{CabinClass, Flight},
    money::Money,
    trip::first_tight_connection,
    validation::ValidationError,
};

/// How long a quote can be made: long enough to pay, short enough that fares have not moved.
pub const QUOTE_TTL: TimeDelta = TimeDelta::minutes(10);

/// A priced change of one segment, as quoted; it holds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeQuote {
    pub id: Uuid,
    pub booking_id: Uuid,
    /// The segment's flight being replaced.
    pub flight_id: Uuid,
    pub new_flight_id: Uuid,
    pub new_cabin: CabinClass,
    /// The new flight's fare for the party minus the segment's price.
    pub fare_difference: Money,
    pub change_fee: Money,
    /// `fare_difference + change_fee`.
    pub amount_due: Money,
    /// The booking's status the quote was priced for: the fee is a paid booking's only.
    pub booking_status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a change cannot be quoted or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Prices replacing the segment on `flight_id` of `booking` (in `status` at `now`) by `new_cabin` of
/// `new_flight`. The booked cabin's `change_fee` applies to a confirmed booking only: a hold has sold
/// nothing yet. Violations name the request's `flight_id`, `new_flight_id`, `new_cabin` and
/// `passengers[i].type` (a passenger's age on the new day of travel).
pub fn quote_change(
    booking: &Booking,
    status: BookingStatus,
    flight_id: Uuid,
    (new_flight, new_cabin): (&Flight, CabinClass),
    change_fee: Money,
    now: DateTime<Utc>,
) -> Result<ChangeQuote, ChangeError> {
    status.apply(BookingAction::ChangeFlight).map_err(Refusal::from)?;
    let position = booking.segment_on(Some(flight_id))?;
    if booking.has_boarded(Some(flight_id)) {
        return Err(Refusal::AlreadyBoarded.into());
    }
    if new_flight.id == flight_id {
        return Err(ValidationError::single("new_flight_id", "is the booked flight: name another one").into());
    }
    if !new_flight.status.is_bookable() || new_flight.departs_at <= now {
        return Err(ValidationError::single("new_flight_id", "this flight is no longer on sale").into());
    }
    let cabin = new_flight
        .cabins
        .iter()
        .find(|c| c.cabin == new_cabin)
        .ok_or_else(|| ValidationError::single("new_cabin", "the new flight has no such cabin"))?;
    let mut times: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        booking.segments.iter().map(|segment| (segment.departs_at, segment.arrives_at)).collect();
    times[position] = (new_flight.departs_at, new_flight.arrives_at);
    if first_tight_connection(&times).is_some() {
        return Err(ValidationError::single(
            "new_flight_id",
            "must keep the booking's flights in travel order, each departing at least 60 minutes after the \
             previous one arrives",
        )
        .into());
    }
    let currency = booking.total_price.currency;
    if cabin.price.currency != currency {
        let priced = format!("is priced in {}; the booking in {}", cabin.price.currency.as_str(), currency.as_str());
        return Err(ValidationError::single("new_flight_id", priced).into());
    }
    check_ages(&booking.passengers, new_flight.departure_date)?;
    let new_fare = fare(cabin.price, &booking.passengers);
    let fare_difference =
        Money { currency, amount_minor: new_fare.amount_minor - booking.segments[position].price.amount_minor };
    let fee = if status == BookingStatus::Confirmed { change_fee.amount_minor } else { 0 };
    Ok(ChangeQuote {
        id: Uuid::now_v7(),
        booking_id: booking.id,
        flight_id,
        new_flight_id: new_flight.id,
        new_cabin,
        fare_difference,
        change_fee: Money { currency, amount_minor: fee },
        amount_due: Money { currency, amount_minor: fare_difference.amount_minor + fee },
        booking_status: status,
        created_at: now,
        expires_at: now + QUOTE_TTL,
    })
}

impl ChangeQuote {
    /// Whether the quote can still be made at `now` on `booking`, in `status`: not expired, priced for the
    /// status the booking is in (a hold paid since owes the fee), and the segment it replaces still booked.
    pub fn check_usable(&self, booking: &Booking, status: BookingStatus, now: DateTime<Utc>) -> Result<usize, Refusal> {
        if self.expires_at <= now || status != self.booking_status {
            return Err(Refusal::QuoteExpired);
        }
        if booking.has_boarded(Some(self.flight_id)) {
            return Err(Refusal::AlreadyBoarded);
        }
        booking.segment_on(Some(self.flight_id)).map_err(|_| Refusal::QuoteExpired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        booking::{BookingReference, Segment},
        fixtures,
        flight::SeatNumber,
    };

    fn flight(departs_at: DateTime<Utc>, seat_price: i64) -> Flight {
        fixtures::flight(departs_at, "SAR", seat_price)
    }

    fn booking(flights: &[&Flight], now: DateTime<Utc>) -> Booking {
        let segments: Vec<Segment> = flights
            .iter()
            .map(|f| {
                let price = Money::seat_price("SAR", 40_000).unwrap();
                Segment::on(f, CabinClass::Economy, vec![SeatNumber::parse("10A").unwrap()], price)
            })
            .collect();
        Booking {
            id: Uuid::now_v7(),
            reference: BookingReference::random(&mut rand::rng()),
            user_id: Uuid::now_v7(),
            flight_id: flights[0].id,
            cabin: CabinClass::Economy,
            status: BookingStatus::Confirmed,
            total_price: Money::seat_price("SAR", 40_000 * flights.len() as i64).unwrap(),
            passengers: vec![fixtures::adult("1990-01-01")],
            segments,
            contact_email: "sara@example.com".into(),
            hold_expires_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            pending_change: None,
            tickets: Vec::new(),
            documents: Default::default(),
        }
    }

    fn fee(amount_minor: i64) -> Money {
        Money { currency: crate::domain::money::CurrencyCode::parse("SAR").unwrap(), amount_minor }
    }

    #[test]
    fn a_quote_is_the_fare_difference_plus_the_fee_on_a_paid_booking_only() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let (out, back) = (flight(now + TimeDelta::days(2), 40_000), flight(now + TimeDelta::days(5), 40_000));
        let dearer = flight(now + TimeDelta::days(6), 55_000);
        let paid = booking(&[&out, &back], now);
        let quote =
            quote_change(&paid, BookingStatus::Confirmed, back.id, (&dearer, CabinClass::Economy), fee(5_000), now)
                .unwrap();
        assert_eq!(
            (quote.fare_difference.amount_minor, quote.change_fee.amount_minor, quote.amount_due.amount_minor),
            (15_000, 5_000, 20_000)
        );
        assert_eq!(quote.expires_at, now + QUOTE_TTL);
        let cheaper = flight(now + TimeDelta::days(6), 30_000);
        let held = quote_change(&paid, BookingStatus::Held, back.id, (&cheaper, CabinClass::Economy), fee(5_000), now)
            .unwrap();
        assert_eq!((held.change_fee.amount_minor, held.amount_due.amount_minor), (0, -10_000), "no fee on a hold");
    }

    #[test]
    fn changes_that_break_the_trip_or_the_life_cycle_are_refused() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let (out, back) = (flight(now + TimeDelta::days(2), 40_000), flight(now + TimeDelta::days(5), 40_000));
        let paid = booking(&[&out, &back], now);
        let field = |result: Result<ChangeQuote, ChangeError>| match result {
            Err(ChangeError::Invalid(error)) => error.violations[0].field.clone(),
            other => panic!("{other:?}"),
        };
        let after_return = flight(now + TimeDelta::days(7), 40_000);
        let economy = CabinClass::Economy;
        let status = BookingStatus::Confirmed;
        assert_eq!(field(quote_change(&paid, status, out.id, (&after_return, economy), fee(0), now)), "new_flight_id");
        assert_eq!(field(quote_change(&paid, status, out.id, (&out, economy), fee(0), now)), "new_flight_id");
        assert_eq!(
            field(quote_change(&paid, status, Uuid::now_v7(), (&after_return, economy), fee(0), now)),
            "flight_id"
        );
        let business = CabinClass::Business;
        assert_eq!(field(quote_change(&paid, status, back.id, (&after_return, business), fee(0), now)), "new_cabin");
        assert!(matches!(
            quote_change(&paid, BookingStatus::Cancelled, back.id, (&after_return, economy), fee(0), now),
            Err(ChangeError::Refused(Refusal::Transition(_)))
        ));
    }

    #[test]
    fn a_quote_expires_and_fits_only_the_segment_it_replaces() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let (out, back) = (flight(now + TimeDelta::days(2), 40_000), flight(now + TimeDelta::days(5), 40_000));
        let mut paid = booking(&[&out, &back], now);
        let later = flight(now + TimeDelta::days(6), 40_000);
        let quote =
            quote_change(&paid, BookingStatus::Confirmed, back.id, (&later, CabinClass::Economy), fee(0), now).unwrap();
        let confirmed = BookingStatus::Confirmed;
        assert_eq!(quote.check_usable(&paid, confirmed, now + QUOTE_TTL - TimeDelta::seconds(1)), Ok(1));
        assert_eq!(quote.check_usable(&paid, confirmed, now + QUOTE_TTL), Err(Refusal::QuoteExpired));
        let held =
            quote_change(&paid, BookingStatus::Held, back.id, (&later, CabinClass::Economy), fee(0), now).unwrap();
        assert_eq!(held.check_usable(&paid, confirmed, now), Err(Refusal::QuoteExpired), "priced for a hold");
        paid.segments[1].flight_id = later.id;
        assert_eq!(quote.check_usable(&paid, confirmed, now), Err(Refusal::QuoteExpired), "made already");
    }
}
