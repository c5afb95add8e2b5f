//! Bookings: the life cycle as a pure state machine, passengers and their fares, booking
//! references, and the business refusals a booking call can end in.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    flight::{AirportCode, CabinClass, Flight, SeatNumber},
    money::Money,
    pending_change::PendingChange,
    ticket::{Ticket, TicketStatus},
    travel_document::TravelDocument,
    validation::{ValidationError, Violations},
};

/// Passengers on one booking.
pub const MAX_PASSENGERS: usize = 9;
/// Characters of a given or family name.
pub const MAX_NAME_CHARS: usize = 64;
/// Characters of a cancellation reason or a confirmation note.
pub const MAX_NOTE_CHARS: usize = 500;
/// Earliest accepted year of birth: catches typos such as 0199 for 1990.
pub const EARLIEST_BIRTH_YEAR: i32 = 1900;
/// Below this age (on the day of travel) a passenger is an infant, below [`ADULT_AGE`] a child.
pub const CHILD_AGE: u32 = 2;
pub const ADULT_AGE: u32 = 12;
/// Share of the seat price children and infants pay, in percent. Every passenger has a seat of their own.
pub const CHILD_FARE_PERCENT: i64 = 75;

string_enum!(
    /// Where a booking is in its life cycle.
    BookingStatus {
        Held => "HELD",
        Confirmed => "CONFIRMED",
        Cancelled => "CANCELLED",
        Expired => "EXPIRED",
        RefundPending => "REFUND_PENDING",
        Refunded => "REFUNDED",
    }
);

string_enum!(
    /// Age category on the day of travel.
    PassengerType { Adult => "ADULT", Child => "CHILD", Infant => "INFANT" }
);

string_enum!(
    /// What can be done to an existing booking; recorded as the cause of each change in its history.
    BookingAction {
        Confirm => "CONFIRM",
        Cancel => "CANCEL",
        Expire => "EXPIRE",
        ChangeSeats => "CHANGE_SEATS",
        ChangeFlight => "CHANGE_FLIGHT",
        CheckIn => "CHECK_IN",
        RequestRefund => "REQUEST_REFUND",
        CompleteRefund => "COMPLETE_REFUND",
        // Recorded by the payment provider's events, never requested by a caller.
        PaymentSucceeded => "PAYMENT_SUCCEEDED",
        RefundFailed => "REFUND_FAILED",
    }
);

/// Why an action does not apply to a booking in its current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TransitionError {
    /// The action needs a live hold, and the hold has expired.
    #[error("the hold has expired")]
    Expired,
    #[error("a {} booking does not allow {}", current.as_str(), action.as_str())]
    Invalid { current: BookingStatus, action: BookingAction },
}

impl BookingStatus {
    /// The life cycle: HELD -> CONFIRMED -> REFUND_PENDING -> REFUNDED, or HELD -> CANCELLED / EXPIRED.
    /// Changing seats keeps a hold held. The payment provider's outcomes add three edges: a payment that
    /// succeeds after the hold expired confirms the booking (the caller re-takes its seats first); a failed
    /// refund returns the booking to CONFIRMED (it is still paid); a refund made at the provider directly
    /// refunds a CONFIRMED booking. Everything else is refused.
    pub fn apply(self, action: BookingAction) -> Result<BookingStatus, TransitionError> {
        use BookingAction as A;
        use BookingStatus as S;
        match (self, action) {
            (S::Held, A::Confirm | A::PaymentSucceeded) => Ok(S::Confirmed),
            (S::Expired, A::PaymentSucceeded) => Ok(S::Confirmed),
            (S::Held, A::Cancel) => Ok(S::Cancelled),
            (S::Held, A::Expire) => Ok(S::Expired),
            (S::Held, A::ChangeSeats | A::ChangeFlight) => Ok(S::Held),
            (S::Confirmed, A::ChangeFlight | A::CheckIn) => Ok(S::Confirmed),
            (S::Confirmed, A::RequestRefund) => Ok(S::RefundPending),
            (S::RefundPending | S::Confirmed, A::CompleteRefund) => Ok(S::Refunded),
            (S::RefundPending, A::RefundFailed) => Ok(S::Confirmed),
            (S::Expired, A::Confirm | A::ChangeSeats | A::ChangeFlight) => Err(TransitionError::Expired),
            (current, action) => Err(TransitionError::Invalid { current, action }),
        }
    }

    /// Entering this status gives the booking's seats back. Each booking enters at most one such status,
    /// so its seats are released exactly once.
    pub fn releases_seats(self) -> bool {
        matches!(self, BookingStatus::Cancelled | BookingStatus::Expired | BookingStatus::Refunded)
    }
}

/// A due hold is expired whether or not the sweeper has recorded it yet.
pub fn status_as_of(
    status: BookingStatus,
    hold_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> BookingStatus {
    match (status, hold_expires_at) {
        (BookingStatus::Held, Some(expires_at)) if expires_at <= now => BookingStatus::Expired,
        _ => status,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passenger {
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub passenger_type: PassengerType,
}

/// A given or family name: trimmed, 1..=64 characters, no control characters, at least one letter.
pub fn person_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    let chars = name.chars().count();
    if !(1..=MAX_NAME_CHARS).contains(&chars) {
        return Err(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) || !name.chars().any(char::is_alphabetic) {
        return Err("must be a name: letters, with no control characters".to_owned());
    }
    Ok(name.to_owned())
}

/// `YYYY-MM-DD`, before `today` and not before [`EARLIEST_BIRTH_YEAR`].
pub fn date_of_birth(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .ok_or_else(|| "must be a date written YYYY-MM-DD".to_owned())?;
    if date >= today || date.year() < EARLIEST_BIRTH_YEAR {
        return Err(format!("must be in the past, and not before {EARLIEST_BIRTH_YEAR}"));
    }
    Ok(date)
}

/// Whole years between `born` and `on`.
pub fn age_on(born: NaiveDate, on: NaiveDate) -> u32 {
    on.years_since(born).unwrap_or(0)
}

pub fn passenger_type_at_age(age: u32) -> PassengerType {
    match age {
        age if age < CHILD_AGE => PassengerType::Infant,
        age if age < ADULT_AGE => PassengerType::Child,
        _ => PassengerType::Adult,
    }
}

/// How many passengers a booking may list: 1..=[`MAX_PASSENGERS`]. Checked before the passengers are read,
/// so an overlong list costs nothing.
pub fn check_party_size(listed: usize) -> Result<(), String> {
    if (1..=MAX_PASSENGERS).contains(&listed) {
        Ok(())
    } else {
        Err(format!("must list 1 to {MAX_PASSENGERS} passengers"))
    }
}

/// Rules on the party as a whole: 1..=9 passengers, at least one adult, no more infants than adults.
pub fn check_party(passengers: &[Passenger], violations: &mut Violations) {
    if let Err(size) = check_party_size(passengers.len()) {
        violations.add("passengers", size);
        return;
    }
    let count = |kind| passengers.iter().filter(|p| p.passenger_type == kind).count();
    let adults = count(PassengerType::Adult);
    if adults == 0 {
        violations.add("passengers", "at least one adult must travel");
    } else if count(PassengerType::Infant) > adults {
        violations.add("passengers", "each infant must travel with an adult");
    }
}

/// Each passenger's type must match their age on the day of travel.
pub fn check_ages(passengers: &[Passenger], travel_date: NaiveDate) -> Result<(), ValidationError> {
    let mut violations = Violations::new();
    for (i, passenger) in passengers.iter().enumerate() {
        let age = age_on(passenger.date_of_birth, travel_date);
        let expected = passenger_type_at_age(age);
        if passenger.passenger_type != expected {
            violations.add(
                format!("passengers[{i}].type"),
                format!("a passenger aged {age} on the day of travel travels as {}", expected.as_str()),
            );
        }
    }
    violations.finish()
}

/// The price of a booking: the cabin's seat price for each adult, [`CHILD_FARE_PERCENT`] of it (rounded
/// half up to the minor unit) for each child or infant.
pub fn fare(seat_price: Money, passengers: &[Passenger]) -> Money {
    let amount_minor = passengers
        .iter()
        .map(|p| match p.passenger_type {
            PassengerType::Adult => seat_price.amount_minor,
            PassengerType::Child | PassengerType::Infant => (seat_price.amount_minor * CHILD_FARE_PERCENT + 50) / 100,
        })
        .sum();
    Money { currency: seat_price.currency, amount_minor }
}

/// Six characters from an alphabet without look-alikes (no 0/O, 1/I): about 10^9 references.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BookingReference(String);

impl BookingReference {
    const ALPHABET: &'static [u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    pub const LEN: usize = 6;

    pub fn random(rng: &mut impl Rng) -> Self {
        let reference =
            (0..Self::LEN).map(|_| char::from(Self::ALPHABET[rng.random_range(0..Self::ALPHABET.len())])).collect();
        Self(reference)
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A booking as stored, with its passengers (in order) and its flights (its segments, in travel order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub reference: BookingReference,
    pub user_id: Uuid,
    /// The first segment's flight and cabin: the contract's single-flight fields, and what listings by
    /// flight and the per-flight indexes go by.
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    pub status: BookingStatus,
    pub passengers: Vec<Passenger>,
    /// One at least.
    pub segments: Vec<Segment>,
    /// The segments' prices summed.
    pub total_price: Money,
    pub contact_email: String,
    /// Set while HELD.
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// A change of a paid booking waiting for its payment; the segments are unchanged until it is paid.
    /// Boxed: rare, and a booking is moved around whole on the hot path.
    pub pending_change: Option<Box<PendingChange>>,
    /// The e-tickets, voided ones included (none before the booking is confirmed).
    pub tickets: Vec<Ticket>,
    /// The travel documents on file, by passenger index (given at check-in, swept after the trip).
    pub documents: BTreeMap<usize, TravelDocument>,
}

/// One flight of a booking: the party's seats on it (one per passenger, in passenger order) and its price
/// for the whole party, with the flight's route and times as the booking was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    pub seats: Vec<SeatNumber>,
    pub price: Money,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departs_at: DateTime<Utc>,
    pub arrives_at: DateTime<Utc>,
}

impl Segment {
    /// The party's `seats` in `cabin` of `flight`, at `price`.
    pub fn on(flight: &Flight, cabin: CabinClass, seats: Vec<SeatNumber>, price: Money) -> Self {
        Self {
            flight_id: flight.id,
            cabin,
            seats,
            price,
            origin: flight.origin,
            destination: flight.destination,
            departs_at: flight.departs_at,
            arrives_at: flight.arrives_at,
        }
    }
}

impl Booking {
    /// The first segment's seats: the contract's single-flight `seat_numbers`.
    pub fn first_seats(&self) -> &[SeatNumber] {
        self.segments.first().map_or(&[], |segment| segment.seats.as_slice())
    }

    /// The booking's flights, in travel order.
    pub fn flight_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.segments.iter().map(|segment| segment.flight_id)
    }

    /// The position of the segment on `flight_id`; `None` names the only segment of a single-flight
    /// booking. Errors name the request's `flight_id`.
    pub fn segment_on(&self, flight_id: Option<Uuid>) -> Result<usize, ValidationError> {
        match flight_id {
            None if self.segments.len() == 1 => Ok(0),
            None => Err(ValidationError::single(
                "flight_id",
                format!("required: the booking has {} flights", self.segments.len()),
            )),
            Some(flight_id) => self
                .segments
                .iter()
                .position(|segment| segment.flight_id == flight_id)
                .ok_or_else(|| ValidationError::single("flight_id", "not a flight of this booking")),
        }
    }

    /// Records a change to `to` at `now`, as the store writes it: one version up, and no hold expiry
    /// outside HELD.
    pub fn changed(&mut self, to: BookingStatus, now: DateTime<Utc>) {
        self.status = to;
        self.version += 1;
        self.updated_at = now;
        if to != BookingStatus::Held {
            self.hold_expires_at = None;
        }
    }

    /// Every (passenger index, flight) a confirmed booking holds a ticket for: each passenger on each
    /// segment.
    pub fn ticketed_pairs(&self) -> Vec<(usize, Uuid)> {
        self.segments
            .iter()
            .flat_map(|segment| (0..self.passengers.len()).map(move |index| (index, segment.flight_id)))
            .collect()
    }

    /// Whether a passenger has boarded `flight_id` (any of the booking's flights when `None`): that flight
    /// is flown, so it is no longer changed or refunded.
    pub fn has_boarded(&self, flight_id: Option<Uuid>) -> bool {
        self.tickets.iter().any(|ticket| {
            ticket.status == TicketStatus::Boarded && flight_id.is_none_or(|flight_id| ticket.flight_id == flight_id)
        })
    }

    /// The booking as callers see it at `now`: a due hold reads as expired, a change past its expiry as
    /// lapsed.
    pub fn seen_at(mut self, now: DateTime<Utc>) -> Self {
        self.status = status_as_of(self.status, self.hold_expires_at, now);
        if self.status != BookingStatus::Held {
            self.hold_expires_at = None;
        }
        self.pending_change = self.pending_change.filter(|change| change.is_live(now));
        self
    }
}

/// A business outcome that ends a booking call without changing anything. Refusals are part of the
/// call's result: the idempotency store keeps and replays them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Too few free seats in the cabin of `flight_id`, or some of the requested seats are taken (listed in
    /// `taken`). The flight is unnamed only in refusals stored before they named it.
    #[error("seats unavailable: {seats_available} free")]
    SeatsUnavailable {
        seats_available: i32,
        taken: Vec<SeatNumber>,
        #[serde(default)]
        flight_id: Option<Uuid>,
    },
    #[error("at most {limit} live holds per flight")]
    MaxPerUserExceeded { limit: u32 },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A refund was asked for a booking that was not paid by card (e.g. confirmed for an offline payment).
    #[error("no card payment to refund")]
    NothingToRefund,
    /// An operator asked to retry a background job that is running or done.
    #[error("a {0:?} job cannot be retried")]
    JobNotRetryable(crate::domain::job::JobState),
    /// The change quote has expired, or no longer fits the booking (its flight was changed since).
    #[error("the change quote has expired")]
    QuoteExpired,
    /// Online check-in for the flight opens at `opens_at`.
    #[error("check-in opens at {opens_at}")]
    CheckInNotOpen { opens_at: DateTime<Utc> },
    /// Online check-in for the flight has closed.
    #[error("check-in has closed")]
    CheckInClosed,
    /// The scanned pass's passenger is on board already; or, for a change or a refund, a passenger has
    /// boarded the flight (it is flown).
    #[error("the passenger has boarded already")]
    AlreadyBoarded,
    /// An operator asked to discard a background job that is running, done or discarded already.
    #[error("a {0:?} job cannot be discarded")]
    JobNotDiscardable(crate::domain::job::JobState),
}

impl Refusal {
    /// The refusal as said of `flight_id`'s cabin (a seat refusal names its flight).
    pub fn on_flight(self, flight_id: Uuid) -> Self {
        match self {
            Self::SeatsUnavailable { seats_available, taken, .. } => {
                Self::SeatsUnavailable { seats_available, taken, flight_id: Some(flight_id) }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn passenger(passenger_type: PassengerType, born: &str) -> Passenger {
        Passenger { given_name: "Sara".into(), family_name: "Haddad".into(), date_of_birth: date(born), passenger_type }
    }

    #[test]
    fn the_life_cycle_allows_exactly_the_contract_transitions() {
        use BookingAction as A;
        use BookingStatus as S;
        let allowed = [
            (S::Held, A::Confirm, S::Confirmed),
            (S::Held, A::Cancel, S::Cancelled),
            (S::Held, A::Expire, S::Expired),
            (S::Held, A::ChangeSeats, S::Held),
            (S::Held, A::ChangeFlight, S::Held),
            (S::Confirmed, A::ChangeFlight, S::Confirmed),
            (S::Confirmed, A::CheckIn, S::Confirmed),
            (S::Confirmed, A::RequestRefund, S::RefundPending),
            (S::RefundPending, A::CompleteRefund, S::Refunded),
            (S::Held, A::PaymentSucceeded, S::Confirmed),
            (S::Expired, A::PaymentSucceeded, S::Confirmed),
            (S::RefundPending, A::RefundFailed, S::Confirmed),
            (S::Confirmed, A::CompleteRefund, S::Refunded),
        ];
        for &from in S::ALL {
            for &action in A::ALL {
                let expected = allowed.iter().find(|(f, a, _)| (*f, *a) == (from, action)).map(|(.., to)| *to);
                match (from.apply(action), expected) {
                    (Ok(to), Some(expected)) => assert_eq!(to, expected, "{from:?} {action:?}"),
                    (Err(TransitionError::Expired), None) => {
                        assert_eq!(from, S::Expired);
                        assert!(matches!(action, A::Confirm | A::ChangeSeats | A::ChangeFlight), "{action:?}");
                    }
                    (Err(TransitionError::Invalid { current, action: refused }), None) => {
                        assert_eq!((current, refused), (from, action));
                    }
                    (result, expected) => panic!("{from:?} {action:?}: {result:?}, expected {expected:?}"),
                }
            }
        }
    }

    #[test]
    fn seats_come_back_on_cancel_expiry_and_refund_only() {
        let releasing: Vec<_> = BookingStatus::ALL.iter().filter(|s| s.releases_seats()).collect();
        assert_eq!(releasing, [&BookingStatus::Cancelled, &BookingStatus::Expired, &BookingStatus::Refunded]);
    }

    #[test]
    fn a_due_hold_reads_as_expired() {
        let now = Utc::now();
        let held = BookingStatus::Held;
        assert_eq!(status_as_of(held, Some(now + chrono::Duration::seconds(1)), now), BookingStatus::Held);
        assert_eq!(status_as_of(held, Some(now), now), BookingStatus::Expired);
        assert_eq!(status_as_of(BookingStatus::Confirmed, Some(now), now), BookingStatus::Confirmed);
    }

    #[test]
    fn names_and_dates_of_birth_are_checked() {
        assert_eq!(person_name("  Ana María ").unwrap(), "Ana María");
        for bad in ["", "   ", "x".repeat(65).as_str(), "Ana\nMaria", "1234"] {
            assert!(person_name(bad).is_err(), "{bad:?}");
        }
        assert!(person_name(&"é".repeat(64)).is_ok(), "characters, not bytes");
        let today = date("2026-11-21");
        assert_eq!(date_of_birth("1990-02-28", today).unwrap(), date("1990-02-28"));
        for bad in ["1990-2-28", "1990-02-30", "2026-11-21", "2027-01-01", "1899-12-31", "28/02/1990", ""] {
            assert!(date_of_birth(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn passenger_types_follow_age_on_the_day_of_travel() {
        let travel = date("2026-12-01");
        assert_eq!(age_on(date("2024-12-01"), travel), 2);
        assert_eq!(age_on(date("2024-12-02"), travel), 1);
        assert_eq!(passenger_type_at_age(1), PassengerType::Infant);
        assert_eq!(passenger_type_at_age(2), PassengerType::Child);
        assert_eq!(passenger_type_at_age(11), PassengerType::Child);
        assert_eq!(passenger_type_at_age(12), PassengerType::Adult);
        let party = [passenger(PassengerType::Adult, "1990-01-01"), passenger(PassengerType::Adult, "2020-01-01")];
        let fields: Vec<_> = check_ages(&party, travel).unwrap_err().violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["passengers[1].type"]);
    }

    #[test]
    fn a_party_needs_an_adult_for_every_infant() {
        let adult = passenger(PassengerType::Adult, "1990-01-01");
        let infant = passenger(PassengerType::Infant, "2026-01-01");
        let child = passenger(PassengerType::Child, "2020-01-01");
        let check = |party: &[Passenger]| {
            let mut v = Violations::new();
            check_party(party, &mut v);
            v.finish().err().map(|e| e.violations[0].description.clone())
        };
        assert_eq!(check(&[adult.clone(), infant.clone()]), None);
        assert!(check(std::slice::from_ref(&child)).unwrap().contains("adult"));
        assert!(check(&[adult.clone(), infant.clone(), infant.clone()]).unwrap().contains("infant"));
        assert!(check(&[]).unwrap().contains("1 to 9"));
        assert!(check(&vec![adult; 10]).unwrap().contains("1 to 9"));
    }

    #[test]
    fn fares_charge_children_and_infants_three_quarters() {
        let price = Money::seat_price("SAR", 45_001).unwrap();
        let party = [
            passenger(PassengerType::Adult, "1990-01-01"),
            passenger(PassengerType::Child, "2020-01-01"),
            passenger(PassengerType::Infant, "2026-01-01"),
        ];
        // 45001 + 2 x round(33750.75)
        assert_eq!(fare(price, &party).amount_minor, 45_001 + 2 * 33_751);
        assert_eq!(fare(price, &party).currency, price.currency);
    }

    #[test]
    fn a_segment_is_named_by_its_flight_unless_it_is_the_only_one() {
        let now = Utc::now();
        let price = Money::seat_price("SAR", 40_000).unwrap();
        let segment = |flight_id| Segment {
            flight_id,
            cabin: CabinClass::Economy,
            seats: Vec::new(),
            price,
            origin: AirportCode::parse("RUH").unwrap(),
            destination: AirportCode::parse("JED").unwrap(),
            departs_at: now,
            arrives_at: now,
        };
        let (out, back) = (Uuid::now_v7(), Uuid::now_v7());
        let mut booking = Booking {
            id: Uuid::now_v7(),
            reference: BookingReference::from_stored("AAAAAA".into()),
            user_id: Uuid::now_v7(),
            flight_id: out,
            cabin: CabinClass::Economy,
            status: BookingStatus::Held,
            passengers: Vec::new(),
            segments: vec![segment(out)],
            total_price: price,
            contact_email: "sara@example.com".into(),
            hold_expires_at: Some(now),
            created_at: now,
            updated_at: now,
            version: 1,
            pending_change: None,
            tickets: Vec::new(),
            documents: BTreeMap::new(),
        };
        let field = |result: Result<usize, ValidationError>| result.unwrap_err().violations[0].field.clone();
        assert_eq!((booking.segment_on(None).unwrap(), booking.segment_on(Some(out)).unwrap()), (0, 0));
        assert_eq!(field(booking.segment_on(Some(back))), "flight_id");
        booking.segments.push(segment(back));
        assert_eq!(booking.segment_on(Some(back)).unwrap(), 1);
        let required = booking.segment_on(None).unwrap_err();
        assert!(required.violations[0].description.contains("2 flights"), "{required:?}");
    }

    #[test]
    fn references_use_the_unambiguous_alphabet() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let reference = BookingReference::random(&mut rng);
            assert_eq!(reference.as_str().len(), BookingReference::LEN);
            assert!(reference.as_str().bytes().all(|b| BookingReference::ALPHABET.contains(&b)));
        }
    }
}
