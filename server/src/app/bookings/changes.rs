//! Flight changes: quoting the replacement of one of a booking's flights by another flight and cabin, and
//! making a quoted change. The quote's prices are the server's: ChangeFlight names a quote, never amounts.
//!
//! A hold moves at once (its payment, when it comes, pays the new total). A paid booking changes at once
//! when nothing is due, and gets the difference back as partial refunds when it costs less; when it costs
//! more, the new seats are held for it until the change's own payment completes it ([`super::pending_changes`]).
//!
//! The new seats are chosen and the segment written as [`super::replacing`] does it for every change.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use super::{
    Actor, Bookings, record_history,
    replacing::{Author, Replacement, claim, rewrite_segment},
};
use crate::{
    app::{
        AppError,
        idempotency::{KeyedRequest, Outcome},
        job::{self, Job},
    },
    domain::{
        booking::{Booking, BookingAction, BookingStatus, Refusal, Segment, status_as_of},
        change::{ChangeQuote, quote_change},
        flight::CabinClass,
        money::Money,
        payment::{PaymentStatus, split_refund},
    },
    store::{
        StoreError,
        bookings::{self},
        flights, payments, quotes,
        seats::LockedSeats,
    },
};

/// History cause of a change's money back that no card payment covers (the booking was paid at the desk).
const REFUND_AT_DESK: &str = "CHANGE_REFUND_AT_DESK";

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

    /// Makes a quoted change while the quote lasts (see the module's documentation for what that takes).
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
        let mut moved = Vec::new();
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| {
                let (booking, flights) = self.make_change(txn, actor, booking_id, quote_id, now).await?;
                moved = flights;
                Ok(booking)
            })
            .await?;
        if let Outcome::Executed(_) = &outcome {
            self.signal.wake();
            for flight_id in moved {
                self.feed.changed(flight_id).await;
            }
        }
        Ok(outcome)
    }

    /// Makes the quoted change; returns the booking as it now is and the flights whose seats moved.
    async fn make_change(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        booking_id: Uuid,
        quote_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Booking, Vec<Uuid>), AppError> {
        let booking = self.load(txn, actor, booking_id).await?;
        let quote = quotes::get(txn, quote_id)
            .await?
            .filter(|q| q.booking_id == booking.id)
            .ok_or(AppError::NotFound("quote"))?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        status.apply(BookingAction::ChangeFlight).map_err(Refusal::from)?;
        let position = quote.check_usable(&booking, status, now)?;
        let new_flight = flights::get(txn, quote.new_flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        if !new_flight.status.is_bookable() || new_flight.departs_at <= now {
            return Err(Refusal::QuoteExpired.into());
        }
        let author = Author::of(actor, now);
        let due = quote.amount_due.amount_minor;
        let moved = if status == BookingStatus::Confirmed && due > 0 {
            self.await_payment(txn, &booking, &quote, &author).await?
        } else {
            if status == BookingStatus::Held && due != 0 {
                refuse_if_payment_started(txn, booking.id).await?;
            }
            let replacement = Replacement {
                position,
                flight: &new_flight,
                cabin: quote.new_cabin,
                seats: Vec::new(),
                amount_due: quote.amount_due,
            };
            let moved = self.move_segment(txn, &booking, status, replacement, &author).await?;
            if status == BookingStatus::Confirmed && due < 0 {
                refund_difference(txn, &booking, &quote, &author).await?;
            }
            moved
        };
        let changed = bookings::get(txn, booking.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a changed booking is missing".into()))?;
        Ok((changed.seen_at(now), moved))
    }

    /// Replaces the segment at once: the new seats taken and the old released.
    async fn move_segment(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        status: BookingStatus,
        mut replacement: Replacement<'_>,
        author: &Author<'_>,
    ) -> Result<Vec<Uuid>, AppError> {
        let old = &booking.segments[replacement.position];
        let (old_key, new_key) = ((old.flight_id, old.cabin), (replacement.flight.id, replacement.cabin));
        let (mut locked, seats, mut moved) =
            self.choose_new_seats(txn, booking, status, (Some(old_key), new_key), author).await?;
        let cabin_of = |locked: &mut HashMap<_, LockedSeats>, key| {
            locked.remove(&key).ok_or_else(|| StoreError::Corrupt("a cabin locked for a change is missing".into()))
        };
        cabin_of(&mut locked, old_key)?.release(txn, booking.id).await?;
        claim(txn, &mut cabin_of(&mut locked, new_key)?, booking.id, &seats).await?;
        replacement.seats = seats;
        moved.extend([old.flight_id, replacement.flight.id]);
        rewrite_segment(txn, booking, status, (replacement, &self.config.ticket_prefix), author).await?;
        Ok(moved)
    }
}

/// A hold whose payment was started at its price cannot change price: that payment would confirm it for
/// the old amount. It can change once paid (a change of a paid booking has its own payment).
async fn refuse_if_payment_started(txn: &DatabaseTransaction, booking_id: Uuid) -> Result<(), AppError> {
    let started = payments::for_booking(txn, booking_id)
        .await?
        .is_some_and(|payment| payment.provider_reference.is_some() && payment.status != PaymentStatus::Canceled);
    if started {
        return Err(AppError::PaymentInProgress);
    }
    Ok(())
}

/// Gives back what a change took off a paid booking's price: partial refunds of its card payments, newest
/// first, each sent by a job under a key of its own; what no card payment covers (paid at the desk) is
/// noted in the history for the desk to give back.
async fn refund_difference(
    txn: &DatabaseTransaction,
    booking: &Booking,
    quote: &ChangeQuote,
    author: &Author<'_>,
) -> Result<(), AppError> {
    let payments = payments::of_booking(txn, booking.id).await?;
    let (parts, uncovered) = split_refund(-quote.amount_due.amount_minor, quote.id, &payments);
    for (payment_id, part) in parts {
        job::enqueue(txn, &Job::SendRefund { payment_id, part: Some(part) }, author.correlation_id, author.at).await?;
    }
    if uncovered > 0 {
        let currency = quote.amount_due.currency.as_str();
        tracing::warn!(booking_id = %booking.id, uncovered, currency, "money back for a change that no card payment covers");
        let note = format!("{uncovered} ({currency} minor units) to give back at the desk: no card payment covers it");
        let entry = author.entry(booking.id, BookingStatus::Confirmed, REFUND_AT_DESK, Some(&note));
        record_history(txn, &[entry]).await?;
    }
    Ok(())
}

/// The change fee of the cabin a segment is booked in.
async fn booked_cabin_fee(db: &impl ConnectionTrait, segment: &Segment) -> Result<Money, AppError> {
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
