//! Refunds: a customer's or operator's request, and the outbox job that sends it to the provider.

use super::*;

impl Payments {
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
        job::enqueue(txn, &Job::SendRefund { payment_id: payment.id }, &actor.correlation_id, now).await?;
        booking.changed(to, now);
        Ok(booking)
    }

    /// The outbox job that sends a refund: the provider call, then, with the job's completion, the refund's
    /// outcome when the provider already knows it, or its id while it is pending.
    #[tracing::instrument(skip_all)]
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
                Vec::new()
            }
            None => Vec::new(),
        };
        if outbox_store::complete(&txn, job_id, attempts, now).await? {
            txn.commit().await.map_err(StoreError::from)?;
            self.after_commit(moved).await;
        }
        Ok(())
    }
}
