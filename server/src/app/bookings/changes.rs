//! Flight changes: quoting the replacement of one of a booking's flights by another flight and cabin, and
//! making a quoted change. The quote's prices are the server's: ChangeFlight names a quote, never amounts.
//!
//! Making a change takes the replaced cabin and the new one as a trip takes its cabins (the caller's
//! advisory lock for each flight, then the cabin's row, in (flight, cabin) order), so changes, trips and
//! batches of holds never wait on each other in a cycle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::{Actor, Bookings, record_history};
use crate::{
    app::{
        AppError,
        idempotency::{KeyedRequest, Outcome},
    },
    domain::{
        booking::{Booking, BookingAction, BookingStatus, Refusal, Segment, status_as_of},
        change::{ChangeQuote, quote_change},
        flight::CabinClass,
        hold::LockedCabin,
        money::Money,
    },
    store::{
        StoreError,
        bookings::{self},
        flights,
        history::Change,
        quotes, segments,
    },
};

impl Bookings {
    /// Prices replacing the booking's segment on `flight_id` by `new_cabin` of `new_flight_id`, and keeps
    /// the quote for ChangeFlight. Holds nothing.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id))]
    pub async fn quote_change(
        &self,
        actor: &Actor,
        booking_id: Uuid,
        flight_id: Uuid,
        (new_flight_id, new_cabin): (Uuid, CabinClass),
    ) -> Result<ChangeQuote, AppError> {
        let now = self.clock.now();
        let db = self.store.conn();
        let booking = self.load(db, actor, booking_id).await?;
        let new_flight = flights::get(db, new_flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        let change_fee = match booking.segments.iter().find(|segment| segment.flight_id == flight_id) {
            Some(segment) => booked_cabin_fee(db, segment).await?,
            // Not a segment of the booking: the quote names the field.
            None => Money { currency: booking.total_price.currency, amount_minor: 0 },
        };
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        let quote = quote_change(&booking, status, flight_id, (&new_flight, new_cabin), change_fee, now)?;
        let txn = self.store.begin_write().await?;
        quotes::insert(&txn, &quote).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(quote)
    }

    /// Makes a quoted change while the quote lasts: the new seats taken and the old released in one
    /// transaction; a hold keeps its expiry. A paid booking changes only when nothing is due either way.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id, quote_id = %quote_id))]
    pub async fn change_flight(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        booking_id: Uuid,
        quote_id: Uuid,
        encode: impl FnOnce(&Booking) -> Vec<u8>,
    ) -> Result<Outcome<Booking>, AppError> {
        let now = self.clock.now();
        let mut released = None;
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| {
                let (booking, old_flight) = self.move_segment(txn, actor, booking_id, quote_id, now).await?;
                released = Some(old_flight);
                Ok(booking)
            })
            .await?;
        if let (Outcome::Executed(booking), Some(old_flight)) = (&outcome, released) {
            self.signal.wake();
            for flight_id in booking.flight_ids().chain([old_flight]) {
                self.feed.changed(flight_id).await;
            }
        }
        Ok(outcome)
    }

    /// Replaces the quoted segment; returns the booking as changed and the flight it left.
    async fn move_segment(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        booking_id: Uuid,
        quote_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Booking, Uuid), AppError> {
        let booking = self.load(txn, actor, booking_id).await?;
        let quote = quotes::get(txn, quote_id)
            .await?
            .filter(|q| q.booking_id == booking.id)
            .ok_or(AppError::NotFound("quote"))?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        let to = status.apply(BookingAction::ChangeFlight).map_err(Refusal::from)?;
        let position = quote.check_usable(&booking, now)?;
        if status == BookingStatus::Confirmed && quote.amount_due.amount_minor != 0 {
            return Err(Refusal::ChangeNeedsPayment.into());
        }
        let new_flight = flights::get(txn, quote.new_flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        if !new_flight.status.is_bookable() || new_flight.departs_at <= now {
            return Err(Refusal::QuoteExpired.into());
        }
        let old = booking.segments[position].clone();
        let user_id = booking.user_id;
        let cabins = [(old.flight_id, old.cabin), (quote.new_flight_id, quote.new_cabin)];
        let [mut old_cabin, mut new_cabin]: [_; 2] = bookings::lock_cabins_for_holds(txn, user_id, &cabins)
            .await?
            .try_into()
            .map_err(|_| StoreError::Corrupt("two cabins locked, another number returned".into()))?;
        // A hold moving to another flight is one more live hold there; a paid booking is not a hold.
        let live_holds = if to == BookingStatus::Held {
            bookings::live_holds(txn, &[user_id], quote.new_flight_id, now).await?
        } else {
            HashMap::new()
        };
        let mut cabin = LockedCabin::new(
            new_cabin.seats_available,
            new_cabin.taken.clone(),
            live_holds,
            self.config.max_holds_per_user,
        );
        let seats = cabin
            .decide(user_id, booking.passengers.len(), &[])
            .map_err(|disagree| StoreError::Corrupt(disagree.to_string()))?
            .map_err(|refusal| refusal.on_flight(quote.new_flight_id))?;
        if !bookings::set_status(txn, booking.id, booking.version, to, now).await? {
            return Err(AppError::Conflict);
        }
        old_cabin.release(txn, booking.id).await?;
        if let Err(taken) = new_cabin.claim(txn, booking.id, &seats).await? {
            let seats_available = new_cabin.seats_available;
            return Err(
                Refusal::SeatsUnavailable { seats_available, taken, flight_id: Some(quote.new_flight_id) }.into()
            );
        }
        let segment = Segment::on(&new_flight, quote.new_cabin, seats, quote.new_price(old.price));
        segments::replace(txn, booking.id, old.flight_id, &segment).await?;
        let total = Money {
            currency: booking.total_price.currency,
            amount_minor: booking.total_price.amount_minor + quote.amount_due.amount_minor,
        };
        let first = (position == 0).then_some((segment.flight_id, segment.cabin));
        bookings::set_total_and_first_flight(txn, booking.id, total, first).await?;
        if position == 0 {
            // The passengers' own seat column is the first segment's.
            bookings::set_passenger_seats(txn, booking.id, &segment.seats).await?;
        }
        let note = format!("flight {} replaced by {} ({})", old.flight_id, segment.flight_id, segment.cabin.as_str());
        let change = Change {
            booking_id: booking.id,
            from: Some(status),
            to,
            cause: BookingAction::ChangeFlight.as_str(),
            correlation_id: &actor.correlation_id,
            actor_id: Some(actor.caller.user_id),
            note: Some(&note),
            at: now,
        };
        record_history(txn, &[change]).await?;
        let changed = bookings::get(txn, booking.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a changed booking is missing".into()))?;
        Ok((changed.seen_at(now), old.flight_id))
    }
}

/// The change fee of the cabin a segment is booked in.
async fn booked_cabin_fee(db: &impl sea_orm::ConnectionTrait, segment: &Segment) -> Result<Money, AppError> {
    let flight = flights::get(db, segment.flight_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a booking's flight is missing".into()))?;
    let cabin = flight
        .cabins
        .iter()
        .find(|cabin| cabin.cabin == segment.cabin)
        .ok_or_else(|| StoreError::Corrupt("a booking's cabin is missing from its flight".into()))?;
    Ok(cabin.change_fee())
}
