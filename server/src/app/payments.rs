//! Payments: starting a card payment for a hold, reading it, refunding a confirmed booking, and applying
//! what the provider reports (webhook events, reconciliation) to payments and bookings.
//!
//! The provider is never called inside a database transaction. A payment row is written first (one per
//! booking), and every provider request takes its idempotency key and parameters from that row, so a retry
//! after a timeout or a crash gets the PaymentIntent (or refund) the first attempt created.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use opentelemetry::metrics::Counter;
use sea_orm::{DatabaseTransaction, TransactionTrait as _};
use uuid::Uuid;

use super::{
    AppError,
    bookings::{Actor, apply_change, seat_count},
    idempotency::{Begun, Idempotency, KeyedRequest, Outcome, Reserved},
    outbox::{self, Job, OutboxSignal},
};
use crate::{
    domain::{
        auth::Role,
        booking::{Booking, BookingAction, BookingStatus, Refusal, status_as_of},
        payment::{Payment, PaymentRef, PaymentStatus, ProviderEvent, RefundProgress},
    },
    infra::{
        availability::AvailabilityFeed,
        clock::Clock,
        payments::{IntentRecord, PaymentProvider, ProviderError, webhook::ReceivedEvent},
    },
    store::{
        Store, StoreError,
        bookings::{self, Change},
        outbox as outbox_store, payments,
    },
};

/// How far back reconciliation looks at the provider's PaymentIntents and refunds.
pub const RECONCILE_WINDOW: TimeDelta = TimeDelta::hours(72);

/// Booking history causes recorded by payment outcomes that do not change the booking's status.
const AUTO_REFUND: &str = "AUTO_REFUND";
const DISPUTE_OPENED: &str = "DISPUTE_OPENED";
const PARTIAL_REFUND: &str = "PARTIAL_REFUND";
/// An operator sent a failed automatic refund again.
const RETRY_REFUND: &str = "RETRY_REFUND";

/// One discrepancy between the provider and Aerobook that reconciliation could not fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub payment_id: Option<Uuid>,
    pub provider_reference: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconciliationReport {
    pub intents_checked: usize,
    pub refunds_checked: usize,
    /// Outcomes a lost webhook had left unapplied, applied now.
    pub fixed: usize,
    pub mismatches: Vec<Mismatch>,
}

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
    fixed: Counter<u64>,
    mismatches: Counter<u64>,
}

impl Payments {
    pub fn new(
        store: Store,
        clock: Clock,
        feed: AvailabilityFeed,
        provider: PaymentProvider,
        signal: OutboxSignal,
        key_lease: TimeDelta,
    ) -> Self {
        let meter = opentelemetry::global::meter("aerobook");
        Self {
            idempotency: Idempotency::new(store.clone()),
            store,
            clock,
            feed,
            provider,
            signal,
            key_lease,
            fixed: meter
                .u64_counter("aerobook.payments.reconciliation.fixed")
                .with_description("Provider outcomes applied by reconciliation because their webhook was lost")
                .build(),
            mismatches: meter
                .u64_counter("aerobook.payments.reconciliation.mismatches")
                .with_description("Differences between the provider and Aerobook that need an operator")
                .build(),
        }
    }

    /// Starts (or resumes) the card payment of the caller's live hold and returns it with the client secret.
    /// The key is reserved first: a conflicting request is refused before the payment row is written or the
    /// provider called.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id))]
    pub async fn create_intent(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        booking_id: Uuid,
        encode: impl FnOnce(&Payment) -> Vec<u8>,
    ) -> Result<Outcome<Payment>, AppError> {
        let now = self.clock.now();
        let reservation = match self.idempotency.reserve(keyed, now, self.key_lease).await? {
            Reserved::Replay(replay) => return Ok(Outcome::Replayed(replay)),
            Reserved::Fresh(reservation) => reservation,
        };
        let started = match self.start_intent(actor, booking_id, now).await {
            Err(error) if !matches!(error, AppError::Refused(_)) => {
                reservation.release().await;
                return Err(error);
            }
            started => started,
        };
        let txn = reservation.begin(self.clock.now()).await?;
        let result = match started {
            Ok((payment, intent)) => record_intent(txn.txn(), payment, intent, now).await,
            Err(refusal) => Err(refusal),
        };
        Ok(Outcome::Executed(txn.finish(result, encode).await?))
    }

    /// The payment row of the hold, and a new PaymentIntent when the row has none yet.
    async fn start_intent(
        &self,
        actor: &Actor,
        booking_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(Payment, Option<IntentRecord>), AppError> {
        let payment = self.prepare(actor, booking_id, now).await?;
        let intent = match &payment.provider_reference {
            Some(_) => None,
            None => {
                let description = format!("Aerobook booking {}", payment.booking_id);
                Some(self.provider.create_intent(&payment, &description).await?)
            }
        };
        Ok((payment, intent))
    }

    /// The payment of a booking the actor may see. Only the paying customer gets the client secret: it
    /// lets its holder complete the payment.
    pub async fn get(&self, actor: &Actor, booking_id: Uuid) -> Result<Payment, AppError> {
        let booking = bookings::get(self.store.conn(), booking_id).await?;
        if !booking.is_some_and(|b| actor.may_see(&b)) {
            return Err(AppError::NotFound("booking"));
        }
        let mut payment =
            payments::for_booking(self.store.conn(), booking_id).await?.ok_or(AppError::NotFound("payment"))?;
        if payment.user_id != actor.caller.user_id {
            payment.client_secret = None;
        }
        Ok(payment)
    }

    /// Refunds a confirmed booking in full: the booking is REFUND_PENDING until the provider reports the
    /// outcome; the refund itself is sent by the outbox worker.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id))]
    pub async fn refund(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        booking_id: Uuid,
        reason: Option<String>,
        encode: impl FnOnce(&Booking) -> Vec<u8>,
    ) -> Result<Outcome<Booking>, AppError> {
        let now = self.clock.now();
        let txn = match self.idempotency.begin(keyed, now).await? {
            Begun::Replay(replay) => return Ok(Outcome::Replayed(replay)),
            Begun::Fresh(txn) => txn,
        };
        let result = self.request_refund(txn.txn(), actor, booking_id, reason.as_deref(), now).await;
        let booking = txn.finish(result, encode).await?;
        self.signal.wake();
        Ok(Outcome::Executed(booking))
    }

    /// Records a verified webhook delivery and queues its processing, in one transaction. Returns `false`
    /// for an event already received (a redelivery), which changes nothing.
    pub async fn receive_event(&self, received: ReceivedEvent) -> Result<bool, AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        if !payments::record_event(&txn, &received.id, &received.event_type, now).await? {
            return Ok(false);
        }
        if let Some(event) = received.event {
            outbox::enqueue(&txn, &Job::ApplyProviderEvent { event_id: received.id, event }, now).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.signal.wake();
        Ok(true)
    }

    /// The outbox job of a provider event: its effects and the job's completion commit together.
    pub async fn apply_event_job(
        &self,
        event_id: &str,
        event: &ProviderEvent,
        job_id: Uuid,
        attempts: i32,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let applied = self.apply_event(&txn, event, &format!("stripe-{event_id}"), now).await?;
        if !outbox_store::complete(&txn, job_id, attempts, now).await? {
            // Another worker took the job over after our lease passed; its run counts.
            return Ok(());
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.after_commit(applied.moved).await;
        Ok(())
    }

    /// The outbox job that sends a refund: the provider call, then, with the job's completion, the refund's
    /// outcome when the provider already knows it, or its id while it is pending.
    pub async fn send_refund_job(&self, payment_id: Uuid, job_id: Uuid, attempts: i32) -> Result<(), AppError> {
        let payment = payments::find(self.store.conn(), &by_id(payment_id), false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("refund job for missing payment {payment_id}")))?;
        let sent = match (&payment.provider_reference, payment.status) {
            (Some(intent_id), PaymentStatus::RefundPending) => match self.provider.refund(&payment, intent_id).await {
                Ok(refund) => Some(refund.outcome().ok_or(refund.id)),
                Err(ProviderError::Declined { message, .. } | ProviderError::Rejected(message)) => {
                    tracing::error!(%payment_id, reason = message, "the provider refused a refund; an operator must act");
                    let payment = by_id(payment_id);
                    Some(Ok(ProviderEvent::RefundFailed { payment, refund_id: None, reason: Some(message) }))
                }
                Err(transient) => return Err(transient.into()),
            },
            // Already settled (a webhook got there first), or nothing was captured: nothing to send.
            _ => None,
        };
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let moved = match sent {
            Some(Ok(event)) => self.apply_event(&txn, &event, &format!("refund-{payment_id}"), now).await?.moved,
            Some(Err(pending_refund_id)) => {
                if let Some(mut payment) = payments::find(&txn, &by_id(payment_id), true).await?
                    && payment.refund_reference.is_none()
                {
                    payment.refund_reference = Some(pending_refund_id);
                    payments::update(&txn, &payment, now).await?;
                }
                None
            }
            None => None,
        };
        if outbox_store::complete(&txn, job_id, attempts, now).await? {
            txn.commit().await.map_err(StoreError::from)?;
            self.after_commit(moved).await;
        }
        Ok(())
    }

    /// Compares the provider's recent PaymentIntents and refunds with Aerobook's payments, applies the
    /// outcomes a lost webhook left behind (through the same rules as webhooks), and reports the rest.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile(&self) -> Result<ReconciliationReport, AppError> {
        let since = self.clock.now() - RECONCILE_WINDOW;
        let intents = self.provider.recent_intents(since).await?;
        let refunds = self.provider.recent_refunds(since).await?;
        let correlation_id = format!("reconcile-{}", Uuid::now_v7());
        let mut report = ReconciliationReport {
            intents_checked: intents.len(),
            refunds_checked: refunds.len(),
            ..Default::default()
        };
        let mismatch = |payment_id, provider_reference: &str, problem: String| Mismatch {
            payment_id,
            provider_reference: provider_reference.to_owned(),
            problem,
        };
        for intent in &intents {
            let Some(payment) = payments::find(self.store.conn(), &intent.payment_ref(), false).await? else {
                let problem = "PaymentIntent unknown to Aerobook".to_owned();
                report.mismatches.push(mismatch(intent.payment_id, &intent.id, problem));
                continue;
            };
            if payment.provider_reference.as_deref() != Some(intent.id.as_str()) {
                // An earlier, canceled attempt of the payment.
                continue;
            }
            if intent.amount_minor != payment.amount.amount_minor {
                let (there, here) = (intent.amount_minor, payment.amount.amount_minor);
                let problem = format!("amount {there} at the provider, {here} in Aerobook");
                report.mismatches.push(mismatch(Some(payment.id), &intent.id, problem));
            } else if let Some(event) = intent.outcome() {
                report.fixed += usize::from(self.fix(&payment, &event, &correlation_id).await?);
            }
        }
        for refund in &refunds {
            let Some(event) = refund.outcome() else { continue };
            match payments::find(self.store.conn(), event.payment(), false).await? {
                Some(payment) => report.fixed += usize::from(self.fix(&payment, &event, &correlation_id).await?),
                None => {
                    let problem = "refund of a payment unknown to Aerobook".to_owned();
                    report.mismatches.push(mismatch(refund.payment_id, &refund.id, problem));
                }
            }
        }
        let listed: HashSet<&str> = refunds.iter().map(|r| r.id.as_str()).collect();
        for payment in payments::with_refund_pending(self.store.conn()).await? {
            if let Some(refund_id) = payment.refund_reference.as_deref().filter(|id| !listed.contains(id)) {
                let problem = "refund pending in Aerobook but not found at the provider".to_owned();
                report.mismatches.push(mismatch(Some(payment.id), refund_id, problem));
            }
        }
        for m in &report.mismatches {
            tracing::warn!(payment_id = ?m.payment_id, provider_reference = m.provider_reference, problem = m.problem, "payment reconciliation mismatch");
        }
        self.fixed.add(report.fixed as u64, &[]);
        self.mismatches.add(report.mismatches.len() as u64, &[]);
        tracing::info!(
            intents = report.intents_checked,
            refunds = report.refunds_checked,
            fixed = report.fixed,
            mismatches = report.mismatches.len(),
            "payments reconciled"
        );
        Ok(report)
    }

    /// Applies an outcome reconciliation found, when the payment does not show it yet.
    async fn fix(&self, payment: &Payment, event: &ProviderEvent, correlation_id: &str) -> Result<bool, AppError> {
        if event.next_status(payment.status).is_none() {
            return Ok(false);
        }
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let applied = self.apply_event(&txn, event, correlation_id, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.after_commit(applied.moved).await;
        if applied.changed {
            tracing::warn!(payment_id = %payment.id, ?event, "reconciliation applied an outcome whose webhook was lost");
        }
        Ok(applied.changed)
    }

    /// Writes the payment row of a live hold the actor owns, unless it has one; a canceled PaymentIntent
    /// is replaced by a new attempt.
    async fn prepare(&self, actor: &Actor, booking_id: Uuid, now: DateTime<Utc>) -> Result<Payment, AppError> {
        let txn = self.store.begin_write().await?;
        let booking = bookings::get(&txn, booking_id)
            .await?
            .filter(|b| b.user_id == actor.caller.user_id)
            .ok_or(AppError::NotFound("booking"))?;
        // Paying confirms: only a live hold can be paid for.
        status_as_of(booking.status, booking.hold_expires_at, now)
            .apply(BookingAction::Confirm)
            .map_err(Refusal::from)?;
        let payment = match payments::for_booking(&txn, booking_id).await? {
            Some(mut payment) => match payment.status {
                PaymentStatus::Canceled => {
                    payment.attempt += 1;
                    payment.status = PaymentStatus::RequiresPaymentMethod;
                    payment.provider_reference = None;
                    payment.client_secret = None;
                    payment.correlation_id = actor.correlation_id.clone();
                    payments::update(&txn, &payment, now).await?;
                    payment
                }
                // Paid, and the booking's confirmation is on its way through the outbox.
                PaymentStatus::Succeeded => return Err(AppError::PaymentInProgress),
                _ => payment,
            },
            None => {
                let payment = Payment {
                    id: Uuid::now_v7(),
                    booking_id,
                    user_id: booking.user_id,
                    amount: booking.total_price,
                    status: PaymentStatus::RequiresPaymentMethod,
                    provider_reference: None,
                    client_secret: None,
                    correlation_id: actor.correlation_id.clone(),
                    attempt: 1,
                    amount_received_minor: 0,
                    amount_refunded_minor: 0,
                    decline_code: None,
                    failure_message: None,
                    refund_reference: None,
                    refund_attempt: 0,
                };
                if payments::insert(&txn, &payment, now).await? {
                    payment
                } else {
                    payments::for_booking(&txn, booking_id)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("a payment row vanished".into()))?
                }
            }
        };
        txn.commit().await.map_err(StoreError::from)?;
        Ok(payment)
    }

    async fn request_refund(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        booking_id: Uuid,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        let mut booking =
            bookings::get(txn, booking_id).await?.filter(|b| actor.may_see(b)).ok_or(AppError::NotFound("booking"))?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        let refundable = payments::for_booking(txn, booking_id)
            .await?
            .filter(|p| p.status == PaymentStatus::Succeeded && p.refundable_minor() > 0);
        let (to, cause) = match status.apply(BookingAction::RequestRefund) {
            Ok(to) => (to, BookingAction::RequestRefund.as_str()),
            // A payment that arrived after its booking ended is refunded automatically; when that refund
            // failed, an operator sends it again. The booking stays as it is.
            Err(_)
                if actor.caller.role == Role::Operator
                    && matches!(status, BookingStatus::Expired | BookingStatus::Cancelled)
                    && refundable.is_some() =>
            {
                (status, RETRY_REFUND)
            }
            Err(refused) => return Err(Refusal::from(refused).into()),
        };
        let mut payment = refundable.ok_or(Refusal::NothingToRefund)?;
        let change = Change {
            booking_id,
            from: Some(booking.status),
            to,
            cause,
            correlation_id: &actor.correlation_id,
            actor_id: Some(actor.caller.user_id),
            note: reason,
            at: now,
        };
        apply_change(txn, &booking, change).await?;
        payment.start_refund();
        payments::update(txn, &payment, now).await?;
        outbox::enqueue(txn, &Job::SendRefund { payment_id: payment.id }, now).await?;
        booking.changed(to, now);
        Ok(booking)
    }

    /// Applies one provider outcome to its payment and booking, in the caller's transaction. Stale and
    /// repeated outcomes change nothing.
    async fn apply_event(
        &self,
        txn: &DatabaseTransaction,
        event: &ProviderEvent,
        correlation_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied, AppError> {
        let Some(mut payment) = payments::find(txn, event.payment(), true).await? else {
            tracing::warn!(
                ?event,
                "provider event for a payment Aerobook does not know; reconciliation will report it"
            );
            return Ok(Applied::NOTHING);
        };
        let history = History { correlation_id, now };
        if let ProviderEvent::DisputeOpened { reason, .. } = event {
            let booking = booking_of(txn, &payment).await?;
            tracing::warn!(payment_id = %payment.id, booking_id = %booking.id, reason, "card payment disputed");
            history.note(txn, &booking, DISPUTE_OPENED, &format!("dispute opened: {reason}")).await?;
            return Ok(Applied { changed: true, moved: None });
        }
        if event.next_status(payment.status).is_none() {
            return Ok(Applied::NOTHING);
        }
        if let ProviderEvent::RefundSucceeded { refund_id, amount_refunded_minor, .. } = event {
            return self.apply_refund(txn, payment, refund_id.as_deref(), *amount_refunded_minor, &history).await;
        }
        let Some(next) = event.next_status(payment.status) else { return Ok(Applied::NOTHING) };
        payment.status = next;
        let mut moved = None;
        match event {
            ProviderEvent::Processing { .. }
            | ProviderEvent::Canceled { .. }
            | ProviderEvent::DisputeOpened { .. }
            | ProviderEvent::RefundSucceeded { .. } => {}
            ProviderEvent::Failed { decline_code, message, .. } => {
                // The hold keeps its seats until its TTL: the customer may try another card.
                payment.decline_code = decline_code.clone();
                payment.failure_message = message.clone();
            }
            ProviderEvent::Succeeded { amount_received_minor, .. } => {
                payment.amount_received_minor = (*amount_received_minor).clamp(0, payment.amount.amount_minor);
                payment.decline_code = None;
                payment.failure_message = None;
                let booking = booking_of(txn, &payment).await?;
                moved = self.settle_booking(txn, &booking, &mut payment, &history).await?;
            }
            ProviderEvent::RefundFailed { refund_id, reason, .. } => {
                payment.refund_reference = refund_id.clone().or(payment.refund_reference.take());
                payment.failure_message = reason.clone();
                let booking = booking_of(txn, &payment).await?;
                match booking.status.apply(BookingAction::RefundFailed) {
                    Ok(to) => {
                        let note = reason.as_deref().unwrap_or("the provider did not say why");
                        tracing::error!(booking_id = %booking.id, reason = note, "refund failed; the booking stays confirmed");
                        history.change(txn, &booking, to, BookingAction::RefundFailed, Some(note)).await?;
                    }
                    Err(_) => tracing::error!(
                        booking_id = %booking.id,
                        payment_id = %payment.id,
                        "an automatic refund failed: the customer paid for seats they do not have; an operator must \
                         send it again with RefundBooking"
                    ),
                }
            }
        }
        payments::update(txn, &payment, now).await?;
        Ok(Applied { changed: true, moved })
    }

    /// A refund succeeded: the payment records the total refunded (each refund counted once, whatever
    /// repeats its report); only when that reaches what was received is the booking refunded and its seats
    /// given back. A smaller refund (made in the provider's dashboard) is noted in the booking's history.
    async fn apply_refund(
        &self,
        txn: &DatabaseTransaction,
        mut payment: Payment,
        refund_id: Option<&str>,
        amount_minor: i64,
        history: &History<'_>,
    ) -> Result<Applied, AppError> {
        let total = match refund_id {
            Some(refund_id) => {
                payments::record_refund(txn, refund_id, payment.id, amount_minor, history.now).await?;
                payments::refunded_total(txn, payment.id).await?
            }
            // A charge's report carries its total refunded so far.
            None => amount_minor,
        };
        if let Some(refund_id) = refund_id {
            payment.refund_reference = Some(refund_id.to_owned());
        }
        let progress = payment.record_refunded(total);
        let booking = booking_of(txn, &payment).await?;
        let mut moved = None;
        match progress {
            RefundProgress::Unchanged => return Ok(Applied::NOTHING),
            RefundProgress::Partial => {
                let (refunded, received) = (payment.amount_refunded_minor, payment.amount_received_minor);
                let currency = payment.amount.currency.as_str();
                let note = format!("{refunded} of {received} ({currency} minor units) refunded so far");
                tracing::info!(payment_id = %payment.id, refunded, received, "partial refund recorded");
                history.note(txn, &booking, PARTIAL_REFUND, &note).await?;
            }
            RefundProgress::Full => {
                // An automatic refund leaves its (expired or cancelled) booking as it is.
                if status_as_of(booking.status, booking.hold_expires_at, history.now)
                    .apply(BookingAction::CompleteRefund)
                    .is_ok()
                {
                    history.change(txn, &booking, BookingStatus::Refunded, BookingAction::CompleteRefund, None).await?;
                    moved = Some(booking.flight_id);
                }
            }
        }
        payments::update(txn, &payment, history.now).await?;
        Ok(Applied { changed: true, moved })
    }

    /// A payment succeeded: confirm its booking. A hold the sweeper has not expired yet still has its
    /// seats; an expired hold takes its seats again if they are all free; otherwise (seats gone, or the
    /// booking cancelled or already confirmed another way) the payment is refunded automatically.
    async fn settle_booking(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        payment: &mut Payment,
        history: &History<'_>,
    ) -> Result<Option<Uuid>, AppError> {
        let (confirmed, paid) = (BookingStatus::Confirmed, BookingAction::PaymentSucceeded);
        let refund_reason = match booking.status {
            BookingStatus::Held => {
                history.change(txn, booking, confirmed, paid, None).await?;
                return Ok(None);
            }
            BookingStatus::Expired => {
                if retake_seats(txn, booking).await? {
                    let note = "paid after the hold expired; the same seats were free and are taken again";
                    history.change(txn, booking, confirmed, paid, Some(note)).await?;
                    return Ok(Some(booking.flight_id));
                }
                "paid after the hold expired and its seats were taken by others: refunded automatically"
            }
            BookingStatus::Cancelled => "paid after the booking was cancelled: refunded automatically",
            BookingStatus::Confirmed | BookingStatus::RefundPending | BookingStatus::Refunded => {
                "a second payment for a booking already settled: refunded automatically"
            }
        };
        tracing::warn!(booking_id = %booking.id, payment_id = %payment.id, refund_reason, "refunding a payment automatically");
        payment.start_refund();
        history.note(txn, booking, AUTO_REFUND, refund_reason).await?;
        outbox::enqueue(txn, &Job::SendRefund { payment_id: payment.id }, history.now).await?;
        Ok(None)
    }

    async fn after_commit(&self, moved: Option<Uuid>) {
        if let Some(flight_id) = moved {
            self.feed.changed(flight_id).await;
        }
        self.signal.wake();
    }
}

/// Saves the PaymentIntent the provider created on the payment row, unless a newer attempt replaced it.
async fn record_intent(
    txn: &DatabaseTransaction,
    payment: Payment,
    intent: Option<IntentRecord>,
    now: DateTime<Utc>,
) -> Result<Payment, AppError> {
    let mut current = payments::find(txn, &by_id(payment.id), true)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a prepared payment vanished".into()))?;
    if let Some(intent) = intent
        && current.attempt == payment.attempt
        && current.provider_reference.is_none()
    {
        current.provider_reference = Some(intent.id);
        current.client_secret = intent.client_secret;
        payments::update(txn, &current, now).await?;
    }
    Ok(current)
}

/// What applying a provider outcome did.
#[derive(Debug, Clone, Copy)]
struct Applied {
    /// Something was written (false for a stale or repeated outcome).
    changed: bool,
    /// The flight whose seat counts changed.
    moved: Option<Uuid>,
}

impl Applied {
    const NOTHING: Self = Self { changed: false, moved: None };
}

fn by_id(payment_id: Uuid) -> PaymentRef {
    PaymentRef { payment_id: Some(payment_id), intent_id: None }
}

async fn booking_of(txn: &DatabaseTransaction, payment: &Payment) -> Result<Booking, AppError> {
    Ok(bookings::get(txn, payment.booking_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a payment's booking is missing".into()))?)
}

/// Takes an expired booking's seats again, all or none (in a savepoint), through the same conditional
/// count and seat keys as a new hold.
async fn retake_seats(txn: &DatabaseTransaction, booking: &Booking) -> Result<bool, AppError> {
    let savepoint = txn.begin().await.map_err(StoreError::from)?;
    let count = seat_count(booking.seats.len() as u64)?;
    let taken = bookings::take_seats(&savepoint, booking.flight_id, booking.cabin, count).await?
        && bookings::assign_seats(&savepoint, booking.id, booking.flight_id, booking.cabin, &booking.seats)
            .await?
            .is_empty();
    if taken { savepoint.commit().await } else { savepoint.rollback().await }.map_err(StoreError::from)?;
    Ok(taken)
}

/// How payment outcomes write booking history: with the correlation id of the event (or job) and its time,
/// and no acting user.
struct History<'a> {
    correlation_id: &'a str,
    now: DateTime<Utc>,
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
        apply_change(txn, booking, self.entry(booking, to, action.as_str(), note)).await
    }

    /// A note that leaves the status as it is.
    async fn note(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        cause: &str,
        note: &str,
    ) -> Result<(), AppError> {
        bookings::record_changes(txn, &[self.entry(booking, booking.status, cause, Some(note))]).await?;
        Ok(())
    }

    fn entry<'e>(&'e self, booking: &Booking, to: BookingStatus, cause: &'e str, note: Option<&'e str>) -> Change<'e> {
        Change {
            booking_id: booking.id,
            from: Some(booking.status),
            to,
            cause,
            correlation_id: self.correlation_id,
            actor_id: None,
            note,
            at: self.now,
        }
    }
}
