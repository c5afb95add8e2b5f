//! Trips: one booking over several flights, held whole or not at all.
//!
//! A trip does not join the cabins' batches ([`super::hold_batch`]): its segments commit together, in a
//! keyed transaction of its own. It takes each segment's cabin as a batch takes its one cabin (the
//! caller's advisory lock for the flight, then the cabin's row), segment after segment in (flight, cabin)
//! order, the order every transaction that takes several cabins uses. A batch takes its users' locks
//! before its cabin and no lock after it, so no cycle of waits can form between trips and batches, nor
//! between two trips crossing the same flights in opposite travel order. On a hot cabin a trip queues on
//! the row with the batches, as one more transaction. A trip with a segment on a cabin the sold-out gate
//! knows is full is refused before any of that, as a single hold is.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::{Actor, Bookings, REFERENCE_ATTEMPTS, hold_batch::Encoder, record_history};
use crate::{
    app::{
        AppError,
        idempotency::{KeyedRequest, Outcome},
    },
    domain::{
        booking::{Booking, BookingReference, BookingStatus, Refusal, Segment},
        flight::SeatNumber,
        hold::LockedCabin,
        trip::{TripRequest, price_trip},
    },
    store::{
        StoreError,
        bookings::{self, HOLD_PLACED},
        flights,
        history::Change,
        seats::LockedSeats,
    },
};

impl Bookings {
    /// Places a trip's hold: every segment's seats or none, one price (the segments' sum) and one expiry.
    /// A segment on a flight whose waiting room is on needs one of `waiting_room_passes` for that flight.
    /// Refused for want of seats, the answer names the first flight in travel order short of them.
    #[tracing::instrument(skip_all, fields(segments = trip.segments.len()))]
    pub async fn place_trip(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        trip: TripRequest,
        waiting_room_passes: &[String],
        encode: Encoder,
    ) -> Result<Outcome<Booking>, AppError> {
        if let Some(replay) = self.idempotency.replay_completed(keyed, self.clock.now()) {
            return Ok(Outcome::Replayed(replay?));
        }
        let flight_ids: Vec<Uuid> = trip.segments.iter().map(|segment| segment.flight_id).collect();
        if let Some(answer) = self.admit(actor, keyed, &flight_ids, waiting_room_passes).await {
            return answer;
        }
        if let Some(refused) = self.sold_out_segment(&trip).await {
            // Refused before anything executed, so not stored; but a retry of a call that completed, or
            // one still running, is told so first. Trips' keys are not among the cabins' keys the gate
            // knows of, so every such refusal looks the key up (one indexed read, not the cabins' locks).
            return self.replay_or(keyed, refused.into()).await;
        }
        let now = self.clock.now();
        let outcome =
            self.idempotency.run(keyed, now, encode, async |txn| self.hold_trip(txn, actor, &trip, now).await).await?;
        if let Outcome::Executed(_) = &outcome {
            for flight_id in flight_ids {
                self.feed.changed(flight_id).await;
            }
        }
        Ok(outcome)
    }

    /// The first segment, in travel order, whose cabin the sold-out gate knows has too few seats left for
    /// the party: its refusal.
    async fn sold_out_segment(&self, trip: &TripRequest) -> Option<Refusal> {
        let gate = self.feed.sold_out_gate();
        let party = trip.passengers.len();
        for segment in &trip.segments {
            let Some(seats_left) = gate.read(segment.flight_id, segment.cabin).await.and_then(|r| r.seats_left) else {
                continue;
            };
            if party > usize::try_from(seats_left).unwrap_or(0) {
                let flight_id = Some(segment.flight_id);
                return Some(Refusal::SeatsUnavailable { seats_available: seats_left, taken: Vec::new(), flight_id });
            }
        }
        None
    }

    async fn hold_trip(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        trip: &TripRequest,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        let mut flights = Vec::with_capacity(trip.segments.len());
        for segment in &trip.segments {
            flights.push(flights::get(txn, segment.flight_id).await?.ok_or(AppError::NotFound("flight"))?);
        }
        let priced = price_trip(&flights.iter().collect::<Vec<_>>(), trip, now, self.config.hold_ttl)?;
        let user_id = actor.caller.user_id;
        let mut cabins = self.take_cabins(txn, user_id, trip, now).await?;
        let mut segments = Vec::with_capacity(cabins.len());
        for ((flight, cabin), price) in flights.iter().zip(&cabins).zip(priced.prices) {
            // The first refusal in travel order is the answer.
            let seats = cabin.decided.clone().map_err(|refusal| refusal.on_flight(flight.id))?;
            segments.push(Segment::on(flight, cabin.seats.cabin, seats, price));
        }
        let mut booking = Booking {
            id: Uuid::now_v7(),
            reference: BookingReference::random(&mut rand::rng()),
            user_id,
            flight_id: segments[0].flight_id,
            cabin: segments[0].cabin,
            status: BookingStatus::Held,
            total_price: priced.total_price,
            passengers: trip.passengers.clone(),
            segments,
            contact_email: trip.contact_email.as_str().to_owned(),
            hold_expires_at: Some(priced.expires_at),
            created_at: now,
            updated_at: now,
            version: 1,
            pending_change: None,
            tickets: Vec::new(),
            documents: Default::default(),
        };
        insert_with_free_reference(txn, &mut booking).await?;
        for (cabin, segment) in cabins.iter_mut().zip(&booking.segments) {
            // The assignments are the truth: a seat the cabin's marks missed refuses the trip here.
            if let Err(taken) = cabin.seats.claim(txn, booking.id, &segment.seats).await? {
                let seats_available = cabin.seats.seats_available;
                return Err(
                    Refusal::SeatsUnavailable { seats_available, taken, flight_id: Some(segment.flight_id) }.into()
                );
            }
        }
        let change = Change {
            booking_id: booking.id,
            from: None,
            to: BookingStatus::Held,
            cause: HOLD_PLACED,
            correlation_id: &actor.correlation_id,
            actor_id: Some(user_id),
            note: None,
            at: now,
        };
        record_history(txn, &[change]).await?;
        Ok(booking)
    }

    /// Locks the segments' cabins (see [`bookings::lock_cabins_for_holds`]) and decides each segment there
    /// as a batch would decide a hold of the caller's; the cabins come back in the trip's order.
    async fn take_cabins(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        trip: &TripRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<TripCabin>, AppError> {
        let keys: Vec<_> = trip.segments.iter().map(|segment| (segment.flight_id, segment.cabin)).collect();
        let locked = bookings::lock_cabins_for_holds(txn, user_id, &keys).await?;
        let mut cabins = Vec::with_capacity(locked.len());
        for (segment, seats) in trip.segments.iter().zip(locked) {
            let live_holds = bookings::live_holds(txn, &[user_id], segment.flight_id, now).await?;
            let mut cabin = LockedCabin::new(
                seats.seats_available,
                seats.taken.clone(),
                live_holds,
                self.config.max_holds_per_user,
            );
            let decided = cabin
                .decide(user_id, trip.passengers.len(), &segment.seats)
                .map_err(|disagree| StoreError::Corrupt(disagree.to_string()))?;
            cabins.push(TripCabin { seats, decided });
        }
        Ok(cabins)
    }
}

/// One segment's cabin, locked, and what it decided for the segment.
struct TripCabin {
    seats: LockedSeats,
    decided: Result<Vec<SeatNumber>, Refusal>,
}

/// Inserts the booking (its passengers and segments), drawing another reference while its own is in use.
async fn insert_with_free_reference(txn: &DatabaseTransaction, booking: &mut Booking) -> Result<(), AppError> {
    for _ in 0..REFERENCE_ATTEMPTS {
        if bookings::insert_many(txn, &[&*booking]).await?.is_empty() {
            return Ok(());
        }
        booking.reference = BookingReference::random(&mut rand::rng());
    }
    Err(StoreError::Corrupt("no free booking reference found".into()).into())
}
