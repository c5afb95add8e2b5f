//! Replacing one of a booking's segments, the part a change made at once and a change completed by its
//! payment share: choosing the new seats under the cabins' locks, taking them, writing the segment and its
//! history; and lapsing a change that waits for its payment (its seats given back).
//!
//! Transactions writing an existing booking take its row first (its version), then their cabins in
//! (flight, cabin) order, each after the caller's advisory lock for its flight as a batch of holds takes it,
//! so changes, payments, refunds, the sweeper and batches of holds never wait on each other in a cycle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use super::{Actor, Bookings, record_history};
use crate::{
    app::AppError,
    domain::{
        booking::{Booking, BookingAction, BookingStatus, Refusal, Segment},
        flight::{CabinClass, Flight, SeatNumber},
        hold::LockedCabin,
        money::Money,
        pending_change::{PendingChange, PendingChangeState},
        ticket::TicketPrefix,
        travel_document::kept_until,
    },
    store::{
        StoreError, bookings, history::Change, pending_changes, seats::LockedSeats, segments, tickets as store_tickets,
        travel_documents,
    },
};

/// History cause of a change that lapsed, and why: superseded by another change.
const LAPSED: &str = "CHANGE_LAPSED";
const SUPERSEDED: &str = "superseded by another change";

/// Who makes a change and when, as the booking's history records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Author<'a> {
    pub correlation_id: &'a str,
    /// `None` for the payment provider's outcome or the sweeper.
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl<'a> Author<'a> {
    pub(crate) fn of(actor: &'a Actor, at: DateTime<Utc>) -> Self {
        Self { correlation_id: &actor.correlation_id, actor_id: Some(actor.caller.user_id), at }
    }

    /// No acting user: the payment provider's outcome, a job, the sweeper.
    pub(crate) fn system(correlation_id: &'a str, at: DateTime<Utc>) -> Self {
        Self { correlation_id, actor_id: None, at }
    }

    /// A history entry that leaves the booking in `status`.
    pub(crate) fn entry<'e>(
        &'e self,
        booking_id: Uuid,
        status: BookingStatus,
        cause: &'e str,
        note: Option<&'e str>,
    ) -> Change<'e> {
        self.transition(booking_id, (status, status), cause, note)
    }

    /// A history entry moving the booking `from` one status `to` another.
    pub(crate) fn transition<'e>(
        &'e self,
        booking_id: Uuid,
        (from, to): (BookingStatus, BookingStatus),
        cause: &'e str,
        note: Option<&'e str>,
    ) -> Change<'e> {
        Change {
            booking_id,
            from: Some(from),
            to,
            cause,
            correlation_id: self.correlation_id,
            actor_id: self.actor_id,
            note,
            at: self.at,
        }
    }
}

/// What replaces a booking's segment: the party's seats (already theirs) in `cabin` of `flight`.
pub(crate) struct Replacement<'a> {
    pub position: usize,
    pub flight: &'a Flight,
    pub cabin: CabinClass,
    pub seats: Vec<SeatNumber>,
    pub amount_due: Money,
}

impl Bookings {
    /// Takes the booking's row, locks the replaced cabin (when given) and the new one, lapses the change
    /// the booking waited on (giving its seats back), and chooses the party's seats in the new cabin.
    /// Returns the locked cabins, the seats chosen and the flights whose seats moved so far.
    pub(super) async fn choose_new_seats(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        status: BookingStatus,
        (replaced, new): (Option<(Uuid, CabinClass)>, (Uuid, CabinClass)),
        author: &Author<'_>,
    ) -> Result<(HashMap<(Uuid, CabinClass), LockedSeats>, Vec<SeatNumber>, Vec<Uuid>), AppError> {
        if !bookings::set_status(txn, booking.id, booking.version, status, author.at).await? {
            return Err(AppError::Conflict);
        }
        let waiting = booking.pending_change.as_deref();
        let mut cabins: Vec<(Uuid, CabinClass)> = replaced.into_iter().chain([new]).collect();
        cabins.extend(waiting.map(|change| (change.new_flight_id, change.new_cabin)));
        cabins.sort();
        cabins.dedup();
        let locked = bookings::lock_cabins_for_holds(txn, booking.user_id, &cabins).await?;
        let mut locked: HashMap<_, _> = cabins.into_iter().zip(locked).collect();
        let mut moved = Vec::new();
        if let Some(change) = waiting
            && let Some(cabin) = locked.get_mut(&(change.new_flight_id, change.new_cabin))
        {
            moved.extend(lapse(txn, booking, change, cabin, author, SUPERSEDED).await?);
        }
        // A hold moving to another flight is one more live hold there; a paid booking is not a hold.
        let live_holds = if status == BookingStatus::Held {
            bookings::live_holds(txn, &[booking.user_id], new.0, author.at).await?
        } else {
            HashMap::new()
        };
        let new_cabin = &locked[&new];
        let seats = LockedCabin::new(
            new_cabin.seats_available,
            new_cabin.taken.clone(),
            live_holds,
            self.config.max_holds_per_user,
        )
        .decide(booking.user_id, booking.passengers.len(), &[])
        .map_err(|disagree| StoreError::Corrupt(disagree.to_string()))?
        .map_err(|refusal| refusal.on_flight(new.0))?;
        Ok((locked, seats, moved))
    }
}

/// Takes the chosen seats in the locked cabin, or names the flight short of them.
pub(super) async fn claim(
    txn: &DatabaseTransaction,
    cabin: &mut LockedSeats,
    booking_id: Uuid,
    seats: &[SeatNumber],
) -> Result<(), AppError> {
    if let Err(taken) = cabin.claim(txn, booking_id, seats).await? {
        let (seats_available, flight_id) = (cabin.seats_available, Some(cabin.flight_id));
        return Err(Refusal::SeatsUnavailable { seats_available, taken, flight_id }.into());
    }
    Ok(())
}

/// Writes the booking's segment replaced (its price grown by the amount due, so the total, the sum of the
/// segments, stays what the customer paid), the total, the first flight when it changed, the tickets of a
/// confirmed booking (the old flight's voided, the new one's issued after `tickets`), and the change in the
/// history (emailed). The caller took the new seats and gave back the old ones.
pub(crate) async fn rewrite_segment(
    txn: &impl ConnectionTrait,
    booking: &Booking,
    status: BookingStatus,
    (replacement, tickets): (Replacement<'_>, &TicketPrefix),
    author: &Author<'_>,
) -> Result<(), AppError> {
    let Replacement { position, flight, cabin, seats, amount_due } = replacement;
    let old = &booking.segments[position];
    if status == BookingStatus::Confirmed {
        // The replaced flight's tickets are void; the new flight's are issued.
        store_tickets::void(txn, booking.id, Some(old.flight_id), author.at).await?;
        let pairs: Vec<_> = (0..booking.passengers.len()).map(|index| (index, flight.id)).collect();
        store_tickets::issue(txn, booking.id, &pairs, tickets, author.at).await?;
    }
    if !booking.documents.is_empty() {
        // Documents are kept until a day after the trip: the trip's end may have moved.
        let arrivals = booking
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| if i == position { flight.arrives_at } else { s.arrives_at });
        let last = arrivals.max().unwrap_or(flight.arrives_at);
        travel_documents::keep_until(txn, booking.id, kept_until(last)).await?;
    }
    let segment = Segment::on(flight, cabin, seats, changed_price(old.price, amount_due));
    segments::replace(txn, booking.id, old.flight_id, &segment).await?;
    let total = changed_price(booking.total_price, amount_due);
    let first = (position == 0).then_some((segment.flight_id, segment.cabin));
    bookings::set_total_and_first_flight(txn, booking.id, total, first).await?;
    if position == 0 {
        // The passengers' own seat column is the first segment's.
        bookings::set_passenger_seats(txn, booking.id, &segment.seats).await?;
    }
    let note = format!("flight {} replaced by {} ({})", old.flight_id, segment.flight_id, segment.cabin.as_str());
    let cause = BookingAction::ChangeFlight.as_str();
    record_history(txn, &[author.entry(booking.id, status, cause, Some(&note))]).await
}

/// A changed segment's price, or booking's total: the amount due added (negative: taken off).
fn changed_price(price: Money, amount_due: Money) -> Money {
    Money { currency: price.currency, amount_minor: price.amount_minor + amount_due.amount_minor }
}

/// Lapses the change `booking` waits on and gives its seats back to `cabin` (its new cabin, locked by the
/// caller, who took the booking's row first). Returns the flight whose seats moved, if it still waited.
pub(super) async fn lapse(
    txn: &impl ConnectionTrait,
    booking: &Booking,
    change: &PendingChange,
    cabin: &mut LockedSeats,
    author: &Author<'_>,
    why: &str,
) -> Result<Option<Uuid>, AppError> {
    let (waiting, lapsed) = (PendingChangeState::Pending, PendingChangeState::Lapsed);
    if !pending_changes::settle(txn, change.quote_id, waiting, lapsed).await? {
        return Ok(None);
    }
    cabin.release(txn, booking.id).await?;
    let note = format!("the change to flight {} lapsed: {why}", change.new_flight_id);
    record_history(txn, &[author.entry(booking.id, booking.status, LAPSED, Some(&note))]).await?;
    Ok(Some(change.new_flight_id))
}
