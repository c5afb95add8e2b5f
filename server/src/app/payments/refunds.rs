//! Refunds: a customer's or operator's request, and the outbox job that sends it to the provider.

use super::*;

impl Payments {
    /// Refunds a confirmed booking in full (its own payment and its changes'): the booking is REFUND_PENDING
    /// until the provider reports the outcome; the refunds themselves are sent by the outbox worker.
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
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| {
                self.request_refund(txn, actor, booking_id, reason.as_deref(), now).await
            })
            .await?;
        if let Outcome::Executed(_) = &outcome {
            self.signal.wake();
        }
        Ok(outcome)
    }

    async fn request_refund(
        &self,
        txn: &DatabaseTransaction,
        actor: &Actor,
        booking_id: Uuid,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Booking, AppError> {
        let booking =
            bookings::get(txn, booking_id).await?.filter(|b| actor.may_see(b)).ok_or(AppError::NotFound("booking"))?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        let refundable: Vec<Payment> = payments::of_booking(txn, booking_id)
            .await?
            .into_iter()
            .filter(|p| p.status == PaymentStatus::Succeeded && p.refundable_minor() > 0)
            .collect();
        let (to, cause) = match status.apply(BookingAction::RequestRefund) {
            Ok(to) => (to, BookingAction::RequestRefund.as_str()),
            // A payment that arrived after its booking ended is refunded automatically; when that refund
            // failed, an operator sends it again. The booking stays as it is.
            Err(_)
                if actor.caller.role == Role::Operator
                    && matches!(status, BookingStatus::Expired | BookingStatus::Cancelled)
                    && !refundable.is_empty() =>
            {
                (status, RETRY_REFUND)
            }
            Err(refused) => return Err(Refusal::from(refused).into()),
        };
        if booking.has_boarded(None) {
            return Err(Refusal::AlreadyBoarded.into());
        }
        if refundable.is_empty() {
            return Err(Refusal::NothingToRefund.into());
        }
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
        apply_change(txn, &booking, change, &self.tickets).await?;
        // The booking's own payment and its changes' are each refunded in full.
        for mut payment in refundable {
            payment.start_refund();
            payments::update(txn, &payment, now).await?;
            let job = Job::SendRefund { payment_id: payment.id, part: None };
            job::enqueue(txn, &job, &actor.correlation_id, now).await?;
        }
        // Read again: the refund voided the tickets.
        let refunded = bookings::get(txn, booking_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a refunded booking is missing".into()))?;
        Ok(refunded.seen_at(now))
    }

    /// The outbox job that sends a refund (all that is left of the payment, or a change's `part`): the
    /// provider call, then, with the job's completion, the refund's outcome when the provider already knows
    /// it, or its id while it is pending.
    #[tracing::instrument(skip_all)]
    pub async fn send_refund_job(
        &self,
        payment_id: Uuid,
        part: Option<&RefundPart>,
        job_id: Uuid,
        attempts: i32,
    ) -> Result<(), AppError> {
        let payment = payments::find(self.store.conn(), &by_id(payment_id), false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("refund job for missing payment {payment_id}")))?;
        // A full refund waits for its attempt (REFUND_PENDING); a change's part is sent while the payment
        // stands (a full refund under way gives back everything anyway).
        let due = match part {
            None => payment.status == PaymentStatus::RefundPending,
            Some(_) => payment.status == PaymentStatus::Succeeded,
        };
        let order = payment.refund_order(part);
        let sent = match &payment.provider_reference {
            Some(intent_id) if due && order.amount_minor > 0 => {
                match self.provider.refund(&payment, intent_id, &order).await {
                    Ok(refund) => Sent::Answered(refund.outcome().ok_or(refund.id)),
                    Err(ProviderError::Declined { message, .. } | ProviderError::Rejected(message)) => {
                        tracing::error!(%payment_id, reason = message, "the provider refused a refund; an operator must act");
                        Sent::Refused(message)
                    }
                    Err(transient) => return Err(transient.into()),
                }
            }
            // Already settled (a webhook got there first), or nothing was captured: nothing to send.
            _ => Sent::Nothing,
        };
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let correlation_id = format!("refund-{payment_id}");
        let moved = match sent {
            Sent::Answered(Ok(event)) => self.apply_event(&txn, &event, &correlation_id, now).await?.moved,
            Sent::Answered(Err(pending_refund_id)) => {
                if let Some(mut payment) = payments::find(&txn, &by_id(payment_id), true).await?
                    && payment.refund_reference.is_none()
                {
                    payment.refund_reference = Some(pending_refund_id);
                    payments::update(&txn, &payment, now).await?;
                }
                Vec::new()
            }
            Sent::Refused(message) if part.is_some() => {
                // The payment itself stands: only the booking's history can say the money is still owed.
                let booking = booking_of(&txn, &payment).await?;
                let note = format!("money back for a change was refused by the provider: {message}");
                History { author: Author::system(&correlation_id, now), tickets: &self.tickets }
                    .note(&txn, &booking, CHANGE_REFUND_FAILED, &note)
                    .await?;
                Vec::new()
            }
            Sent::Refused(message) => {
                let event =
                    ProviderEvent::RefundFailed { payment: by_id(payment_id), refund_id: None, reason: Some(message) };
                self.apply_event(&txn, &event, &correlation_id, now).await?.moved
            }
            Sent::Nothing => Vec::new(),
        };
        if outbox_store::complete(&txn, job_id, attempts, now).await? {
            txn.commit().await.map_err(StoreError::from)?;
            self.after_commit(moved).await;
        }
        Ok(())
    }
}

/// What the provider made of a refund request.
enum Sent {
    /// Its outcome, or the id of a refund still pending.
    Answered(Result<ProviderEvent, String>),
    /// Refused for good, with the provider's reason.
    Refused(String),
    /// Nothing was due.
    Nothing,
}
