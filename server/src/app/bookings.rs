//! Bookings: placing holds, reading and listing them, cancelling, changing seats, confirming, and expiring
//! due holds. Every mutation is a keyed call (see [`super::idempotency`]) and decides seat inventory in the
//! database, in the transaction that writes the booking.

mod changes;
mod hold_batch;
mod pending_changes;
mod replacing;
mod trips;

pub(crate) use pending_changes::{PaidChange, complete_paid_change};
pub(crate) use replacing::Author;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use self::hold_batch::{Encoder, HoldQueues};
use super::{
    AppError,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    job::{self, Job, OutboxSignal},
    waiting_rooms::WaitingRooms,
};
use crate::{
    config::BookingConfig,
    domain::{
        auth::{Caller, Role},
        booking::{Booking, BookingAction, BookingStatus, Refusal, status_as_of},
        flight::{CabinClass, SeatNumber},
        hold::{HoldRequest, check_seat_change, check_seats_in_cabin},
        notification::BookingEvent,
        pagination::Cursor,
        payment::PaymentStatus,
        ticket::TicketPrefix,
        validation::Violations,
    },
    infra::{
        availability::AvailabilityFeed,
        clock::Clock,
        metrics::metrics,
        sold_out::{
            Closure, Reading,
            known_keys::{KeyDigest, MAX_FILTERED_KEYS, key_digest},
        },
        telemetry,
    },
    store::{
        Store, StoreError,
        bookings::{self, ListFilter},
        flights,
        history::{self, Change, Recorded},
        idempotency, payments, seats, segments, tickets as store_tickets,
    },
};

/// Holds the sweeper expires per transaction.
pub const SWEEP_BATCH: u64 = 200;
/// Draws of a booking reference before giving up: with 10^9 references, a second draw is already rare.
const REFERENCE_ATTEMPTS: usize = 8;

/// Who acts, for ownership checks and the booking history.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub correlation_id: String,
}

impl Actor {
    /// Customers see their own bookings only; staff and services see all.
    pub fn may_see(&self, booking: &Booking) -> bool {
        self.caller.role != Role::Customer || booking.user_id == self.caller.user_id
    }
}

/// A page of bookings, newest first.
#[derive(Debug, Clone)]
pub struct BookingPage {
    pub bookings: Vec<Booking>,
    pub next_page_token: Option<String>,
}

#[derive(Clone)]
pub struct Bookings {
    store: Store,
    queues: Arc<HoldQueues>,
    idempotency: Idempotency,
    clock: Clock,
    feed: AvailabilityFeed,
    rooms: WaitingRooms,
    config: BookingConfig,
    /// Woken after a commit that queued a job (a booking event's email), so it goes out at once.
    signal: OutboxSignal,
}

impl Bookings {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        clock: Clock,
        feed: AvailabilityFeed,
        rooms: WaitingRooms,
        config: BookingConfig,
        signal: OutboxSignal,
    ) -> Self {
        Self { idempotency, store, queues: Arc::default(), clock, feed, rooms, config, signal }
    }

    /// Places a hold: takes the seats, prices the booking, and starts the hold's clock. Holds for one cabin
    /// are decided in batches ([`hold_batch`]). On a flight whose waiting room is on, one of
    /// `waiting_room_passes` must admit the caller; a refusal for want of a pass is not stored under the
    /// key, so the call can be made again with a pass.
    #[tracing::instrument(skip_all, fields(flight_id = %hold.flight_id))]
    pub async fn place_hold(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        hold: HoldRequest,
        waiting_room_passes: &[String],
        encode: Encoder,
    ) -> Result<Outcome<Booking>, AppError> {
        if let Some(replay) = self.idempotency.replay_completed(keyed, self.clock.now()) {
            return Ok(Outcome::Replayed(replay?));
        }
        if let Some(answer) = self.admit(actor, keyed, &[hold.flight_id], waiting_room_passes).await {
            return answer;
        }
        let (flight_id, cabin, party) = (hold.flight_id, hold.cabin, hold.passengers.len());
        let gate = self.feed.sold_out_gate();
        // Read before the batch's transaction: a refusal is remembered only if no change committed since.
        let reading = gate.read(flight_id, cabin).await;
        if let Some(reading) = &reading
            && let Some(seats_left) = reading.seats_left.filter(|&left| party > usize::try_from(left).unwrap_or(0))
        {
            // Certainly too few seats: refused without the database's seats, so not stored (it executed
            // nothing; a retry after seats come back may succeed). But a retry of a call that completed, on
            // any instance, gets that call's answer (a stored hold, not "sold out"), and one whose key a call
            // still holds is told so. Only a key the closed gate may know of is looked up, so its answers
            // stay cheap.
            let refused = Refusal::SeatsUnavailable {
                seats_available: seats_left,
                taken: Vec::new(),
                flight_id: Some(flight_id),
            };
            if !reading.may_hold_key(&key_digest(keyed.caller_id, &keyed.key)) {
                return Err(refused.into());
            }
            return self.replay_or(keyed, refused.into()).await;
        }
        let outcome = self.place_in_batch(actor.clone(), keyed.clone(), hold, encode).await;
        if let (Err(AppError::Refused(Refusal::SeatsUnavailable { seats_available, .. })), Some(reading)) =
            (&outcome, &reading)
            && let Some(closure) = gate.learn(flight_id, cabin, reading, *seats_available).await
            && *seats_available == 0
        {
            self.read_keys_for(flight_id, cabin, reading, closure).await;
        }
        outcome
    }

    /// Checks the passes for each of `flights` whose waiting room is on: `None` when they admit the caller.
    /// Otherwise the answer: a retry of a call that completed (on another instance, or before a restart)
    /// still gets its stored outcome, though its pass has expired since; any other call, the refusal.
    async fn admit(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        flights: &[Uuid],
        passes: &[String],
    ) -> Option<Result<Outcome<Booking>, AppError>> {
        for &flight_id in flights {
            let Err(refused) = self.rooms.check_passes(&actor.caller, flight_id, passes).await else { continue };
            let AppError::WaitingRoomRequired { .. } = refused else { return Some(Err(refused)) };
            return Some(self.replay_or(keyed, refused).await);
        }
        None
    }

    /// A refusal that executed nothing and is not stored (a pass or a sold-out cabin), after the key is
    /// looked up: a call that completed under it, on any instance, is replayed, and one still running is
    /// told so; only a key nothing is recorded under gets `refused`.
    async fn replay_or(&self, keyed: &KeyedRequest, refused: AppError) -> Result<Outcome<Booking>, AppError> {
        match self.idempotency.replay_stored(keyed, self.clock.now()).await? {
            Some(replay) => Ok(Outcome::Replayed(replay?)),
            None => Err(refused),
        }
    }

    /// Gives the gate's closing the keys recorded for the cabin's holds. This refusal committed before
    /// the read, so every key recorded before it is read; only the first refusal of a batch reads them
    /// (while the others' callers are answered), and its caller is answered once the gate knows them.
    async fn read_keys_for(&self, flight_id: Uuid, cabin: CabinClass, reading: &Reading, closure: Closure) {
        let gate = self.feed.sold_out_gate();
        let Some(_reading_keys) = gate.start_reading_keys(flight_id, cabin, closure) else { return };
        let scope = idempotency::hold_scope(flight_id, cabin);
        let limit = MAX_FILTERED_KEYS as u64 + 1;
        match idempotency::keys_in_scope(self.store.conn(), &scope, self.clock.now(), limit).await {
            Ok(recorded) => {
                let digests: Vec<KeyDigest> =
                    recorded.iter().map(|(caller_id, key)| key_digest(*caller_id, key)).collect();
                gate.know_keys(flight_id, cabin, reading, closure, &digests).await;
            }
            Err(error) => {
                tracing::warn!(%error, %flight_id, "a sold-out cabin's keys unread; its refusals look keys up")
            }
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Booking, AppError> {
        let snapshot = self.store.begin_snapshot().await?;
        let booking = bookings::get(&snapshot, id).await?.filter(|b| actor.may_see(b));
        snapshot.rollback().await.map_err(StoreError::from)?;
        Ok(booking.ok_or(AppError::NotFound("booking"))?.seen_at(self.clock.now()))
    }

    /// The caller's bookings (every booking for staff and services), optionally of one flight.
    #[tracing::instrument(skip_all)]
    pub async fn list(
        &self,
        actor: &Actor,
        flight_id: Option<Uuid>,
        after: Option<Cursor>,
        page_size: u32,
    ) -> Result<BookingPage, AppError> {
        let user_id = (actor.caller.role == Role::Customer).then_some(actor.caller.user_id);
        let snapshot = self.store.begin_snapshot().await?;
        let (page, next) = bookings::list(&snapshot, ListFilter { user_id, flight_id }, after, page_size).await?;
        snapshot.rollback().await.map_err(StoreError::from)?;
        let now = self.clock.now();
        Ok(BookingPage {
            bookings: page.into_iter().map(|b| b.seen_at(now)).collect(),
            next_page_token: next.map(|cursor| cursor.encode()),
        })
    }

    /// Moves a booking along its life cycle (cancel, or an operator's confirmation of an offline payment),
    /// releasing its seats when the new status gives them back. `note` is the reason or the note.
    #[tracing::instrument(skip_all, fields(booking_id = %id, action = action.as_str()))]
    pub async fn change_status(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        id: Uuid,
        action: BookingAction,
        note: Option<String>,
        encode: impl FnOnce(&Booking) -> Vec<u8>,
    ) -> Result<Outcome<Booking>, AppError> {
        let now = self.clock.now();
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| self.transition(txn, actor, id, action, note.as_deref(), now).await)
            .await?;
        if let Outcome::Executed(booking) = &outcome {
            // Cancelled and confirmed bookings are both emailed.
            self.signal.wake();
            if booking.status.releases_seats() {
                for flight_id in booking.flight_ids() {
                    self.feed.changed(flight_id).await;
                }
            }
        }
        Ok(outcome)
    }

    /// Moves a hold's passengers to other seats of the same cabin on one of its flights (`flight_id`; `None`
    /// for a booking of one), one seat each in passenger order.
    #[tracing::instrument(skip_all, fields(booking_id = %id))]
    pub async fn change_seats(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        id: Uuid,
        flight_id: Option<Uuid>,
        seats: Vec<SeatNumber>,
        encode: impl FnOnce(&Booking) -> Vec<u8>,
    ) -> Result<Outcome<Booking>, AppError> {
        let now = self.clock.now();
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| self.move_passengers(txn, actor, id, flight_id, seats, now).await)
            .await?;
        // The cabin's counts stay, but its seat map changed (watchers see no update: their counts are equal).
        if let Outcome::Executed(booking) = &outcome {
            self.feed.changed(flight_id.unwrap_or(booking.flight_id)).await;
        }
        Ok(outcome)
    }

    /// Expires every hold due now and releases its seats, in batches; returns how many expired. Safe to
    /// run on several instances at once: each due hold is claimed by one of them and expires once.
    #[tracing::instrument(skip_all)]
    pub async fn expire_due_holds(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let correlation_id = format!("sweep-{}", Uuid::now_v7());
        // Due holds are HELD (the claim selects them so); the state machine says where they go.
        let to = BookingStatus::Held.apply(BookingAction::Expire).map_err(Refusal::from)?;
        let mut expired = 0;
        loop {
            let txn = self.store.begin_write().await?;
            let due = bookings::claim_due_holds(&txn, now, SWEEP_BATCH).await?;
            let mut changes = Vec::with_capacity(due.len());
            for hold in &due {
                if !bookings::set_status(&txn, hold.id, hold.version, to, now).await? {
                    continue;
                }
                changes.push(Change {
                    booking_id: hold.id,
                    from: Some(BookingStatus::Held),
                    to,
                    cause: BookingAction::Expire.as_str(),
                    correlation_id: &correlation_id,
                    actor_id: None,
                    note: None,
                    at: now,
                });
            }
            let expiring: Vec<Uuid> = changes.iter().map(|change| change.booking_id).collect();
            let flights = seats::release_bookings(&txn, &expiring).await?;
            if !changes.is_empty() {
                record_history(&txn, &changes).await?;
            }
            txn.commit().await.map_err(StoreError::from)?;
            expired += changes.len();
            metrics().holds_expired.add(changes.len() as u64, &[]);
            for flight_id in flights {
                self.feed.changed(flight_id).await;
            }
            if (due.len() as u64) < SWEEP_BATCH {
                break;
            }
        }
        if expired > 0 {
            tracing::info!(expired, %correlation_id, "expired due holds");
            self.signal.wake();
        }
        Ok(expired)
    }

    /// Reads a booking the actor may act on, inside the transaction.
    async fn load(&self, txn: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<Booking, AppError> {
        bookings::get(txn, id).await?.filter(|b| actor.may_see(b)).ok_or(AppError::NotFound("booking"))
    }

    /// Applies a status change (cancel, confirm) under the booking's version, releasing seats when the
    /// new status gives them back.
    async fn transition(
        &self,
        txn: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
        action: BookingAction,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        let booking = self.load(txn, actor, id).await?;
        let from = status_as_of(booking.status, booking.hold_expires_at, now);
        let to = from.apply(action).map_err(Refusal::from)?;
        if action == BookingAction::Cancel
            && payments::for_booking(txn, id)
                .await?
                .is_some_and(|p| matches!(p.status, PaymentStatus::Processing | PaymentStatus::Succeeded))
        {
            // Cancelling now could leave a charge without a booking: the payment's outcome decides first.
            return Err(AppError::PaymentInProgress);
        }
        let change = Change {
            booking_id: id,
            from: Some(from),
            to,
            cause: action.as_str(),
            correlation_id: &actor.correlation_id,
            actor_id: Some(actor.caller.user_id),
            note,
            at: now,
        };
        apply_change(txn, &booking, change, &self.config.ticket_prefix).await?;
        // Read again: the change may have issued or voided tickets.
        let changed =
            bookings::get(txn, id).await?.ok_or_else(|| StoreError::Corrupt("a changed booking is missing".into()))?;
        Ok(changed.seen_at(now))
    }

    async fn move_passengers(
        &self,
        txn: &impl ConnectionTrait,
        actor: &Actor,
        id: Uuid,
        flight_id: Option<Uuid>,
        seats: Vec<SeatNumber>,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        let mut booking = self.load(txn, actor, id).await?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        status.apply(BookingAction::ChangeSeats).map_err(Refusal::from)?;
        let position = booking.segment_on(flight_id)?;
        let (flight_id, cabin_class) = (booking.segments[position].flight_id, booking.segments[position].cabin);
        let flight = flights::get(txn, flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        let cabin = flight
            .cabins
            .iter()
            .find(|c| c.cabin == cabin_class)
            .ok_or_else(|| StoreError::Corrupt("a booking's cabin is missing from its flight".into()))?;
        let mut violations = Violations::new();
        violations.check("seat_numbers", check_seat_change(booking.passengers.len(), seats.len()));
        check_seats_in_cabin(cabin, &seats, &mut violations);
        violations.finish()?;
        // Seat choice in a cabin is serialised by the cabin's row, as holds take it: a hold choosing seats
        // never sees them taken by a change that was not there when it looked.
        let mut cabin_seats = seats::lock_cabin(txn, flight_id, cabin_class).await?;
        let seats_available = cabin_seats.seats_available;
        if !bookings::set_status(txn, id, booking.version, status, now).await? {
            return Err(AppError::Conflict);
        }
        cabin_seats.release(txn, id).await?;
        if let Err(taken) = cabin_seats.claim(txn, id, &seats).await? {
            return Err(Refusal::SeatsUnavailable { seats_available, taken, flight_id: Some(flight_id) }.into());
        }
        if position == 0 {
            // The passengers' own seat column is the first segment's.
            bookings::set_passenger_seats(txn, id, &seats).await?;
        }
        segments::set_seats(txn, id, flight_id, &seats).await?;
        record_history(
            txn,
            &[Change {
                booking_id: id,
                from: Some(status),
                to: status,
                cause: BookingAction::ChangeSeats.as_str(),
                correlation_id: &actor.correlation_id,
                actor_id: Some(actor.caller.user_id),
                note: None,
                at: now,
            }],
        )
        .await?;
        booking.segments[position].seats = seats;
        booking.changed(status, now);
        Ok(booking)
    }
}

/// Moves `booking` to `change.to` under the version it was read at, gives its seats back when the new
/// status releases them, issues its tickets when it is confirmed (numbered after `tickets`) and voids them
/// when it is cancelled or refunded, and records the change in its history, all in the caller's
/// transaction.
pub(crate) async fn apply_change(
    txn: &impl ConnectionTrait,
    booking: &Booking,
    change: Change<'_>,
    tickets: &TicketPrefix,
) -> Result<(), AppError> {
    if !bookings::set_status(txn, booking.id, booking.version, change.to, change.at).await? {
        return Err(AppError::Conflict);
    }
    if change.to.releases_seats() {
        seats::release_bookings(txn, &[booking.id]).await?;
    }
    // Only a confirmed booking holds tickets: confirming issues them, leaving CONFIRMED voids them.
    if change.to == BookingStatus::Confirmed {
        store_tickets::issue(txn, booking.id, &booking.ticketed_pairs(), tickets, change.at).await?;
    } else if booking.status == BookingStatus::Confirmed {
        store_tickets::void(txn, booking.id, None, change.at).await?;
    }
    record_history(txn, &[change]).await
}

/// Writes changes to the bookings' history, each an event, and the jobs derived from those events (the
/// customer's email), all in the caller's transaction: the events, their jobs and the changes commit or
/// roll back together. The caller wakes the outbox worker ([`OutboxSignal::wake`]) after its commit.
pub(crate) async fn record_history(txn: &impl ConnectionTrait, changes: &[Change<'_>]) -> Result<(), AppError> {
    let recorded = history::record_changes(txn, changes, telemetry::current_traceparent().as_deref()).await?;
    enqueue_emails(txn, changes, &recorded).await
}

/// Queues the email of each recorded change whose event the customer is told of.
pub(crate) async fn enqueue_emails(
    txn: &impl ConnectionTrait,
    changes: &[Change<'_>],
    recorded: &[Recorded],
) -> Result<(), AppError> {
    for (change, recorded) in changes.iter().zip(recorded) {
        if recorded.event.is_some_and(BookingEvent::is_emailed) {
            job::enqueue(txn, &Job::SendEmail { event_id: recorded.id }, change.correlation_id, change.at).await?;
        }
    }
    Ok(())
}
