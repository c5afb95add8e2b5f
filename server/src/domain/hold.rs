//! Placing a hold: the request as the caller sends it, the rules on it as a whole, and the rules that need
//! the flight, decided once here so the api only converts and the use case only stores.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    auth::Email,
    booking::{Passenger, Refusal, check_ages, fare},
    flight::{CabinAvailability, CabinClass, Flight, SeatNumber},
    money::Money,
    taken_seats::{TakenSeats, choose_seats},
    validation::{ValidationError, Violations},
};

/// A hold a caller asks for, validated field by field and as a whole ([`check_hold_seats`] and
/// [`super::booking::check_party`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    pub passengers: Vec<Passenger>,
    /// Empty: the server places the party. Otherwise one distinct seat per passenger, in passenger order.
    pub seats: Vec<SeatNumber>,
    pub contact_email: Email,
}

/// The seats a hold lists: none (the server places the party) or one per passenger.
pub fn check_hold_seats(passengers: usize, seats: usize) -> Result<(), String> {
    if seats == 0 || seats == passengers {
        Ok(())
    } else {
        Err("must be empty, or list one seat per passenger in passenger order".to_owned())
    }
}

/// The seats a seat change lists: exactly one per passenger.
pub fn check_seat_change(passengers: usize, seats: usize) -> Result<(), String> {
    if seats == passengers {
        Ok(())
    } else {
        Err(format!("must list one seat for each of the {passengers} passengers"))
    }
}

/// Every listed seat must be a seat of the cabin; violations name `seat_numbers[i]`.
pub fn check_seats_in_cabin(cabin: &CabinAvailability, seats: &[SeatNumber], violations: &mut Violations) {
    for (i, seat) in seats.iter().enumerate() {
        if !cabin.layout.contains(*seat) {
            violations.add(format!("seat_numbers[{i}]"), format!("{seat} is not a seat of this cabin"));
        }
    }
}

/// A hold the rules allow on a flight, before seats are counted (that is the database's to decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold<'f> {
    pub cabin: &'f CabinAvailability,
    pub total_price: Money,
    pub expires_at: DateTime<Utc>,
}

impl<'f> Hold<'f> {
    /// Checks `request` against `flight` at `now`: the flight is still on sale, has the cabin, every listed
    /// seat is in it, and each passenger's type fits their age on the day of travel. The hold is priced,
    /// and keeps its seats for `ttl`.
    pub fn place(
        flight: &'f Flight,
        request: &HoldRequest,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Self, ValidationError> {
        if !flight.status.is_bookable() || flight.departs_at <= now {
            return Err(ValidationError::single("flight_id", "this flight is no longer on sale"));
        }
        let cabin = flight
            .cabins
            .iter()
            .find(|c| c.cabin == request.cabin)
            .ok_or_else(|| ValidationError::single("cabin", "this flight has no such cabin"))?;
        let mut violations = Violations::new();
        check_seats_in_cabin(cabin, &request.seats, &mut violations);
        violations.finish()?;
        check_ages(&request.passengers, flight.departure_date)?;
        Ok(Self { cabin, total_price: fare(cabin.price, &request.passengers), expires_at: now + ttl })
    }
}

/// A cabin as a write transaction reads it under the cabin's lock: its free count, the seats held or sold,
/// and each caller's live holds on the flight. Holds are decided against it one by one in arrival order,
/// each placed hold changing it as its commit would, so a batch decided here gets the answers the same holds
/// would get in transactions of their own, one after another.
#[derive(Debug, Clone)]
pub struct LockedCabin {
    seats_available: i32,
    left: i32,
    taken: TakenSeats,
    live_holds: HashMap<Uuid, u64>,
    max_holds_per_user: u32,
}

/// The cabin's count says seats are free that its seat assignments do not have: stored data is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cabin's count and its seat assignments disagree")]
pub struct CountDisagrees;

impl LockedCabin {
    pub fn new(
        seats_available: i32,
        taken: TakenSeats,
        live_holds: HashMap<Uuid, u64>,
        max_holds_per_user: u32,
    ) -> Self {
        Self { seats_available, left: seats_available, taken, live_holds, max_holds_per_user }
    }

    /// The seats `user`'s hold of `passengers` gets (the listed `seats`, or the server's choice when none
    /// are listed), or its refusal: the user's live holds at the limit, too few seats free, or a listed
    /// seat taken. A placed hold takes its seats and counts as one more live hold of its user.
    pub fn decide(
        &mut self,
        user: Uuid,
        passengers: usize,
        seats: &[SeatNumber],
    ) -> Result<Result<Vec<SeatNumber>, Refusal>, CountDisagrees> {
        let user_holds = self.live_holds.entry(user).or_default();
        if *user_holds >= u64::from(self.max_holds_per_user) {
            return Ok(Err(Refusal::MaxPerUserExceeded { limit: self.max_holds_per_user }));
        }
        if passengers > usize::try_from(self.left).unwrap_or(0) {
            return Ok(Err(Refusal::SeatsUnavailable {
                seats_available: self.left,
                taken: Vec::new(),
                flight_id: None,
            }));
        }
        let chosen = if seats.is_empty() {
            choose_seats(&self.taken, passengers).ok_or(CountDisagrees)?
        } else {
            let conflicting: BTreeSet<SeatNumber> =
                seats.iter().filter(|&&s| self.taken.contains(s)).copied().collect();
            if !conflicting.is_empty() {
                let taken = conflicting.into_iter().collect();
                return Ok(Err(Refusal::SeatsUnavailable { seats_available: self.left, taken, flight_id: None }));
            }
            seats.to_vec()
        };
        if !chosen.iter().all(|&seat| self.taken.take(seat)) {
            // A listed seat outside the cabin: `Hold::place` refuses those before any hold is decided.
            return Err(CountDisagrees);
        }
        *user_holds += 1;
        self.left -= chosen.len() as i32;
        Ok(Ok(chosen))
    }

    /// The seats the holds placed so far take off the cabin's count.
    pub fn seats_placed(&self) -> i32 {
        self.seats_available - self.left
    }

    /// The cabin's taken seats with those of the holds placed so far.
    pub fn taken(&self) -> &TakenSeats {
        &self.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        booking::PassengerType,
        fixtures::{self, adult},
        flight::FlightStatus,
    };

    fn flight(departs_at: DateTime<Utc>) -> Flight {
        fixtures::flight(departs_at, "SAR", 40_000)
    }

    fn request(passengers: Vec<Passenger>, seats: &[&str]) -> HoldRequest {
        HoldRequest {
            flight_id: Uuid::now_v7(),
            cabin: CabinClass::Economy,
            passengers,
            seats: seats.iter().map(|s| SeatNumber::parse(s).unwrap()).collect(),
            contact_email: Email::parse("sara@example.com").unwrap(),
        }
    }

    fn fields(error: ValidationError) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_hold_is_priced_and_expires_after_its_ttl() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let flight = flight(now + TimeDelta::days(3));
        let hold =
            Hold::place(&flight, &request(vec![adult("1990-01-01")], &["10B"]), now, TimeDelta::minutes(7)).unwrap();
        assert_eq!(hold.cabin.cabin, CabinClass::Economy);
        assert_eq!(hold.total_price.amount_minor, 40_000);
        assert_eq!(hold.expires_at, now + TimeDelta::minutes(7));
    }

    #[test]
    fn flights_off_sale_other_cabins_foreign_seats_and_wrong_ages_are_refused() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap().to_utc();
        let ttl = TimeDelta::minutes(10);
        let on_sale = flight(now + TimeDelta::days(3));
        let sara = || vec![adult("1990-01-01")];
        assert_eq!(fields(Hold::place(&flight(now), &request(sara(), &[]), now, ttl).unwrap_err()), ["flight_id"]);
        let mut cancelled = on_sale.clone();
        cancelled.status = FlightStatus::Cancelled;
        assert_eq!(fields(Hold::place(&cancelled, &request(sara(), &[]), now, ttl).unwrap_err()), ["flight_id"]);
        let mut business = request(sara(), &[]);
        business.cabin = CabinClass::Business;
        assert_eq!(fields(Hold::place(&on_sale, &business, now, ttl).unwrap_err()), ["cabin"]);
        let far = request(vec![adult("1990-01-01"), adult("1991-01-01")], &["10A", "30C"]);
        assert_eq!(fields(Hold::place(&on_sale, &far, now, ttl).unwrap_err()), ["seat_numbers[1]"]);
        let mut child = adult("1990-01-01");
        child.passenger_type = PassengerType::Child;
        let grown = request(vec![adult("1990-01-01"), child], &[]);
        assert_eq!(fields(Hold::place(&on_sale, &grown, now, ttl).unwrap_err()), ["passengers[1].type"]);
    }

    #[test]
    fn seat_lists_match_the_party() {
        assert!(check_hold_seats(3, 0).is_ok() && check_hold_seats(3, 3).is_ok() && check_hold_seats(3, 2).is_err());
        assert!(
            check_seat_change(2, 2).is_ok() && check_seat_change(2, 0).is_err() && check_seat_change(2, 3).is_err()
        );
    }
}
