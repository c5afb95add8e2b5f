//! What the provider reports (webhook events, reconciliation findings) applied to payments and bookings,
//! so that late, repeated or out-of-order outcomes never move either backwards.

use opentelemetry::KeyValue;

use super::*;
use crate::infra::metrics::metrics;

impl Payments {
    /// Records a verified webhook delivery and queues its processing, in one transaction. Returns `false`
    /// for an event already received (a redelivery), which changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn receive_event(&self, received: ReceivedEvent) -> Result<bool, AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        if !payments::record_event(&txn, &received.id, &received.event_type, now).await? {
            return Ok(false);
        }
        if let Some(event) = received.event {
            let correlation_id = format!("stripe-{}", received.id);
            job::enqueue(&txn, &Job::ApplyProviderEvent { event_id: received.id, event }, &correlation_id, now).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        self.signal.wake();
        Ok(true)
    }

    /// The outbox job of a provider event: its effects and the job's completion commit together.
    #[tracing::instrument(skip_all)]
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

    /// Applies one provider outcome to its payment and booking, in the caller's transaction. Stale and
    /// repeated outcomes change nothing.
    #[tracing::instrument(skip_all)]
    pub(super) async fn apply_event(
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
        let history = History { author: Author::system(correlation_id, now), tickets: &self.tickets };
        if let ProviderEvent::DisputeOpened { reason, .. } = event {
            let booking = booking_of(txn, &payment).await?;
            tracing::warn!(payment_id = %payment.id, booking_id = %booking.id, reason, "card payment disputed");
            history.note(txn, &booking, DISPUTE_OPENED, &format!("dispute opened: {reason}")).await?;
            return Ok(Applied { changed: true, moved: Vec::new() });
        }
        let Some(next) = event.next_status(payment.status) else { return Ok(Applied::NOTHING) };
        count_outcome(event);
        // Whether a refund completes the payment depends on the amounts: `apply_refund` decides the status.
        if let ProviderEvent::RefundSucceeded { refund_id, amount_refunded_minor, .. } = event {
            return self.apply_refund(txn, payment, refund_id.as_deref(), *amount_refunded_minor, &history).await;
        }
        payment.status = next;
        let mut moved = Vec::new();
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
                moved = match payment.change_id {
                    None => self.settle_booking(txn, &booking, &mut payment, &history).await?,
                    Some(change_id) => self.settle_change(txn, &booking, change_id, &mut payment, &history).await?,
                };
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
                payments::record_refund(txn, refund_id, payment.id, amount_minor, history.author.at).await?;
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
        let mut moved = Vec::new();
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
                // An automatic refund leaves its (expired, cancelled or confirmed) booking as it is; a refund
                // of the booking completes with the last of its payments. Two payments' refunds applied at
                // once would each see the other's still open: the booking's row takes them in turn, and the
                // payments are read after it.
                bookings::lock_row(txn, booking.id).await?;
                let others = payments::of_booking(txn, booking.id).await?;
                let last = others.iter().all(|other| other.id == payment.id || other.refundable_minor() == 0);
                if last
                    && status_as_of(booking.status, booking.hold_expires_at, history.author.at)
                        .apply(BookingAction::CompleteRefund)
                        .is_ok()
                {
                    history.change(txn, &booking, BookingStatus::Refunded, BookingAction::CompleteRefund, None).await?;
                    moved = booking.flight_ids().collect();
                }
            }
        }
        payments::update(txn, &payment, history.author.at).await?;
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
    ) -> Result<Vec<Uuid>, AppError> {
        let paid = BookingAction::PaymentSucceeded;
        let refund_reason = match booking.status.apply(paid) {
            // The state machine decides; an expired hold must get its seats back first.
            Ok(confirmed) if booking.status == BookingStatus::Held => {
                history.change(txn, booking, confirmed, paid, None).await?;
                return Ok(Vec::new());
            }
            Ok(confirmed) => {
                if retake_seats(txn, booking).await? {
                    let note = "paid after the hold expired; the same seats were free and are taken again";
                    history.change(txn, booking, confirmed, paid, Some(note)).await?;
                    return Ok(booking.flight_ids().collect());
                }
                "paid after the hold expired and its seats were taken by others: refunded automatically"
            }
            Err(_) if booking.status == BookingStatus::Cancelled => {
                "paid after the booking was cancelled: refunded automatically"
            }
            Err(_) => "a second payment for a booking already settled: refunded automatically",
        };
        refund_automatically(txn, booking, payment, history, refund_reason).await?;
        Ok(Vec::new())
    }

    /// A change's payment succeeded: the change is made, unless it can no longer be (then the payment is
    /// refunded automatically).
    async fn settle_change(
        &self,
        txn: &DatabaseTransaction,
        booking: &Booking,
        change_id: Uuid,
        payment: &mut Payment,
        history: &History<'_>,
    ) -> Result<Vec<Uuid>, AppError> {
        match complete_paid_change(txn, booking, change_id, &history.author, history.tickets).await? {
            PaidChange::Completed(moved) => Ok(moved),
            PaidChange::Lost(reason) => {
                refund_automatically(txn, booking, payment, history, reason).await?;
                Ok(Vec::new())
            }
        }
    }
}

/// Refunds a payment that cannot pay for what it was made for, in full, by a job; the booking stays as it is.
async fn refund_automatically(
    txn: &DatabaseTransaction,
    booking: &Booking,
    payment: &mut Payment,
    history: &History<'_>,
    reason: &str,
) -> Result<(), AppError> {
    tracing::warn!(booking_id = %booking.id, payment_id = %payment.id, reason, "refunding a payment automatically");
    payment.start_refund();
    history.note(txn, booking, AUTO_REFUND, reason).await?;
    let job = Job::SendRefund { payment_id: payment.id, part: None };
    job::enqueue(txn, &job, history.author.correlation_id, history.author.at).await
}

/// What applying a provider outcome did.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    /// Something was written (false for a stale or repeated outcome).
    pub(super) changed: bool,
    /// The flights whose seat counts changed.
    pub(super) moved: Vec<Uuid>,
}

impl Applied {
    const NOTHING: Self = Self { changed: false, moved: Vec::new() };
}

/// Takes an expired booking's seats again on every segment, all or none (in a savepoint), under each
/// cabin's lock as a new hold takes seats; the cabins in (flight, cabin) order, as every transaction
/// taking several cabins locks them.
async fn retake_seats(txn: &DatabaseTransaction, booking: &Booking) -> Result<bool, AppError> {
    let mut segments: Vec<_> = booking.segments.iter().collect();
    segments.sort_by_key(|segment| (segment.flight_id, segment.cabin));
    let savepoint = txn.begin().await.map_err(StoreError::from)?;
    for segment in segments {
        let mut cabin_seats = seats::lock_cabin(&savepoint, segment.flight_id, segment.cabin).await?;
        if cabin_seats.claim(&savepoint, booking.id, &segment.seats).await?.is_err() {
            savepoint.rollback().await.map_err(StoreError::from)?;
            return Ok(false);
        }
    }
    savepoint.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// Counts an outcome the provider reported that moves a payment (the payments metric).
fn count_outcome(event: &ProviderEvent) {
    let outcome = match event {
        ProviderEvent::Processing { .. } => "processing",
        ProviderEvent::Succeeded { .. } => "succeeded",
        ProviderEvent::Failed { .. } => "failed",
        ProviderEvent::Canceled { .. } => "canceled",
        ProviderEvent::RefundSucceeded { .. } => "refunded",
        ProviderEvent::RefundFailed { .. } => "refund_failed",
        ProviderEvent::DisputeOpened { .. } => "disputed",
    };
    metrics().payments.add(1, &[KeyValue::new("outcome", outcome)]);
}
