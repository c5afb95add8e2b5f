//! Changes of paid bookings that cost more: the new seats are held for the booking when the change is
//! made, the change's own payment completes it (the segment replaced, the old seats given back), and an
//! unpaid change lapses at the hold TTL, its seats given back, the booking as it was. A payment that comes
//! after its change lapsed takes the same seats again if they are still free; otherwise it is refunded.

use std::collections::HashMap;

use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use super::{
    Bookings, SWEEP_BATCH, record_history,
    replacing::{Author, Replacement, claim, lapse, rewrite_segment},
};
use crate::{
    app::AppError,
    domain::{
        booking::{Booking, BookingStatus, Refusal},
        change::ChangeQuote,
        flight::CabinClass,
        pending_change::{PendingChange, PendingChangeState},
        ticket::TicketPrefix,
    },
    store::{
        StoreError, bookings, flights, pending_changes,
        seats::{self, LockedSeats},
    },
};

/// History cause of a change waiting for its payment.
const AWAITING_PAYMENT: &str = "CHANGE_AWAITING_PAYMENT";
/// Why a change lapsed, as its history note says.
const UNPAID: &str = "unpaid at its expiry";

/// What a change's payment did.
#[derive(Debug)]
pub(crate) enum PaidChange {
    /// The change is made; the flights whose seats moved.
    Completed(Vec<Uuid>),
    /// It cannot be made any more: the payment must be refunded, for this reason.
    Lost(&'static str),
}

impl Bookings {
    /// Holds the new seats of a change that costs a paid booking more, and records the change as waiting
    /// for its payment until the hold TTL. Returns the flights whose seats moved.
    pub(super) async fn await_payment(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        quote: &ChangeQuote,
        author: &Author<'_>,
    ) -> Result<Vec<Uuid>, AppError> {
        let new = (quote.new_flight_id, quote.new_cabin);
        let (mut locked, seats, mut moved) =
            self.choose_new_seats(txn, booking, BookingStatus::Confirmed, (None, new), author).await?;
        let cabin = locked
            .get_mut(&new)
            .ok_or_else(|| StoreError::Corrupt("the cabin locked for a change is missing".into()))?;
        claim(txn, cabin, booking.id, &seats).await?;
        let change = PendingChange {
            quote_id: quote.id,
            flight_id: quote.flight_id,
            new_flight_id: quote.new_flight_id,
            new_cabin: quote.new_cabin,
            seats,
            amount_due: quote.amount_due,
            expires_at: author.at + self.config.hold_ttl,
        };
        if !pending_changes::insert(txn, booking.id, &change, author.at).await? {
            // Made already, under another key: a quote is made once.
            return Err(Refusal::QuoteExpired.into());
        }
        let note = format!(
            "flight {} to be replaced by {} ({}) once {} ({} minor units) is paid",
            change.flight_id,
            change.new_flight_id,
            change.new_cabin.as_str(),
            change.amount_due.amount_minor,
            change.amount_due.currency.as_str()
        );
        record_history(txn, &[author.entry(booking.id, BookingStatus::Confirmed, AWAITING_PAYMENT, Some(&note))])
            .await?;
        moved.push(quote.new_flight_id);
        Ok(moved)
    }

    /// Lapses every change unpaid at its expiry, giving its seats back, in batches; returns how many lapsed.
    /// Safe on several instances at once: each change lapses once, under its booking's version.
    #[tracing::instrument(skip_all)]
    pub async fn lapse_due_changes(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let correlation_id = format!("sweep-{}", Uuid::now_v7());
        let author = Author::system(&correlation_id, now);
        let mut lapsed = 0;
        loop {
            let txn = self.store.begin_write().await?;
            let due = pending_changes::due(&txn, now, SWEEP_BATCH).await?;
            let mut moved = Vec::with_capacity(due.len());
            for (booking_id, change) in &due {
                let Some(booking) = bookings::get(&txn, *booking_id).await? else { continue };
                // Another instance (or the change's payment) got there first: nothing to do.
                if !bookings::set_status(&txn, booking.id, booking.version, booking.status, now).await? {
                    continue;
                }
                let mut cabin = seats::lock_cabin(&txn, change.new_flight_id, change.new_cabin).await?;
                moved.extend(lapse(&txn, &booking, change, &mut cabin, &author, UNPAID).await?);
            }
            txn.commit().await.map_err(StoreError::from)?;
            let moved_in_batch = moved.len();
            lapsed += moved_in_batch;
            for flight_id in moved {
                self.feed.changed(flight_id).await;
            }
            // A batch whose changes were all lapsed by others meanwhile would come back the same: stop.
            if (due.len() as u64) < SWEEP_BATCH || moved_in_batch == 0 {
                break;
            }
        }
        if lapsed > 0 {
            tracing::info!(lapsed, %correlation_id, "lapsed unpaid flight changes");
            self.signal.wake();
        }
        Ok(lapsed)
    }
}

/// Completes the change `change_id` its payment paid for, in the payment's transaction: a change still
/// waiting replaces the segment with the seats it holds; a lapsed one takes the same seats again if they
/// are all free. Otherwise (seats gone, the booking no longer confirmed, or the segment changed since) the
/// payment is to be refunded.
pub(crate) async fn complete_paid_change(
    txn: &DatabaseTransaction,
    booking: &Booking,
    change_id: Uuid,
    author: &Author<'_>,
    tickets: &TicketPrefix,
) -> Result<PaidChange, AppError> {
    let change = pending_changes::get(txn, change_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a change's payment without its change".into()))?;
    let position = match booking.segment_on(Some(change.flight_id)) {
        Ok(position) if booking.status == BookingStatus::Confirmed => position,
        _ => return Ok(PaidChange::Lost("paid for a change of a booking since refunded or changed otherwise")),
    };
    if !bookings::set_status(txn, booking.id, booking.version, booking.status, author.at).await? {
        return Err(AppError::Conflict);
    }
    let old = &booking.segments[position];
    let (old_key, new_key) = ((old.flight_id, old.cabin), (change.new_flight_id, change.new_cabin));
    let mut locked = lock_in_order(txn, [old_key, new_key]).await?;
    let completed = PendingChangeState::Completed;
    if !pending_changes::settle(txn, change.quote_id, PendingChangeState::Pending, completed).await? {
        // Lapsed: the seats were given back; take them again if no one else has.
        let cabin = locked.get_mut(&new_key).ok_or_else(|| StoreError::Corrupt("a locked cabin is missing".into()))?;
        let lapsed = PendingChangeState::Lapsed;
        if cabin.claim(txn, booking.id, &change.seats).await?.is_err()
            || !pending_changes::settle(txn, change.quote_id, lapsed, completed).await?
        {
            return Ok(PaidChange::Lost("paid after the change lapsed and its seats were taken by others"));
        }
    }
    let old_cabin = locked.get_mut(&old_key).ok_or_else(|| StoreError::Corrupt("a locked cabin is missing".into()))?;
    old_cabin.release(txn, booking.id).await?;
    let new_flight = flights::get(txn, change.new_flight_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a changed booking's new flight is missing".into()))?;
    let replacement = Replacement {
        position,
        flight: &new_flight,
        cabin: change.new_cabin,
        seats: change.seats.clone(),
        amount_due: change.amount_due,
    };
    rewrite_segment(txn, booking, booking.status, (replacement, tickets), author).await?;
    Ok(PaidChange::Completed(vec![old.flight_id, change.new_flight_id]))
}

/// Locks the cabins one by one in (flight, cabin) order, as every transaction taking several cabins does.
async fn lock_in_order(
    txn: &DatabaseTransaction,
    mut cabins: [(Uuid, CabinClass); 2],
) -> Result<HashMap<(Uuid, CabinClass), LockedSeats>, StoreError> {
    cabins.sort();
    let mut locked = HashMap::with_capacity(cabins.len());
    for (flight_id, cabin) in cabins {
        locked.insert((flight_id, cabin), seats::lock_cabin(txn, flight_id, cabin).await?);
    }
    Ok(locked)
}
