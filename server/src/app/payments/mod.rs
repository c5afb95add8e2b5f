//! Payments: starting a card payment for a hold, reading it, refunding a confirmed booking, and applying
//! what the provider reports (webhook events, reconciliation) to payments and bookings.
//!
//! The provider is never called inside a database transaction. A payment row is written first (one per
//! booking, and one per change of a paid booking that costs more), and every provider request takes its idempotency key and parameters from that row, so a retry
//! after a timeout or a crash gets the PaymentIntent (or refund) the first attempt created.
//!
//! One file per concern: [`intents`] (starting and reading a payment), [`refunds`], [`events`] (applying
//! the provider's outcomes, settling bookings) and [`reconcile`]; this module holds what they share.

mod events;
mod intents;
mod reconcile;
mod refunds;

pub use reconcile::ReconciliationReport;

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{DatabaseTransaction, TransactionTrait as _};
use uuid::Uuid;

use super::{
    AppError,
    bookings::{Actor, Author, PaidChange, apply_change, complete_paid_change, record_history},
    idempotency::{Idempotency, KeyedRequest, Outcome, Reserved},
    job::{self, Job, OutboxSignal},
};
use crate::{
    domain::{
        auth::Role,
        booking::{Booking, BookingAction, BookingStatus, Refusal, status_as_of},
        payment::{Payment, PaymentRef, PaymentStatus, ProviderEvent, RefundPart, RefundProgress},
        ticket::TicketPrefix,
    },
    infra::{
        availability::AvailabilityFeed,
        clock::Clock,
        payments::{IntentRecord, PaymentProvider, ProviderError, webhook::ReceivedEvent},
    },
    store::{Store, StoreError, bookings, history::Change, outbox as outbox_store, payments, seats},
};

/// How far back reconciliation looks at the provider's PaymentIntents and refunds.
pub const RECONCILE_WINDOW: TimeDelta = TimeDelta::hours(72);

/// Booking history causes recorded by payment outcomes that do not change the booking's status.
const AUTO_REFUND: &str = "AUTO_REFUND";
const DISPUTE_OPENED: &str = "DISPUTE_OPENED";
const PARTIAL_REFUND: &str = "PARTIAL_REFUND";
/// An operator sent a failed automatic refund again.
const RETRY_REFUND: &str = "RETRY_REFUND";
/// The provider refused a change's money back.
const CHANGE_REFUND_FAILED: &str = "CHANGE_REFUND_FAILED";

#[derive(Clone)]
pub struct Payments {
    store: Store,
    idempotency: Idempotency,
    clock: Clock,
    feed: AvailabilityFeed,
    provider: PaymentProvider,
    signal: OutboxSignal,
    /// How long a `CreatePaymentIntent` keeps its idempotency key reserved if it dies before finishing.
    key_lease: TimeDelta,
    /// What ticket numbers start with: paying confirms, and a confirmed booking is ticketed.
    tickets: TicketPrefix,
}

impl Payments {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        clock: Clock,
        feed: AvailabilityFeed,
        provider: PaymentProvider,
        signal: OutboxSignal,
        (key_lease, tickets): (TimeDelta, TicketPrefix),
    ) -> Self {
        Self { idempotency, store, clock, feed, provider, signal, key_lease, tickets }
    }

    async fn after_commit(&self, moved: Vec<Uuid>) {
        for flight_id in moved {
            self.feed.changed(flight_id).await;
        }
        self.signal.wake();
    }
}

fn by_id(payment_id: Uuid) -> PaymentRef {
    PaymentRef { payment_id: Some(payment_id), intent_id: None }
}

async fn booking_of(txn: &DatabaseTransaction, payment: &Payment) -> Result<Booking, AppError> {
    Ok(bookings::get(txn, payment.booking_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a payment's booking is missing".into()))?)
}

/// How payment outcomes write booking history: with the correlation id of the event (or job) and its time,
/// and no acting user; a confirmation is ticketed after `tickets`.
struct History<'a> {
    author: Author<'a>,
    tickets: &'a TicketPrefix,
}

impl History<'_> {
    /// A status change (seats released when `to` gives them back).
    async fn change(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        to: BookingStatus,
        action: BookingAction,
        note: Option<&str>,
    ) -> Result<(), AppError> {
        apply_change(txn, booking, self.entry(booking, to, action.as_str(), note), self.tickets).await
    }

    /// A note that leaves the status as it is.
    async fn note(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        cause: &str,
        note: &str,
    ) -> Result<(), AppError> {
        record_history(txn, &[self.entry(booking, booking.status, cause, Some(note))]).await
    }

    fn entry<'e>(&'e self, booking: &Booking, to: BookingStatus, cause: &'e str, note: Option<&'e str>) -> Change<'e> {
        self.author.transition(booking.id, (booking.status, to), cause, note)
    }
}
