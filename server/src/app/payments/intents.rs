//! Starting a card payment for a hold (the key is reserved before any effect), and reading it.

use super::*;

impl Payments {
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
        let recorded = reservation
            .run(self.clock.now(), encode, async |txn| {
                let (payment, intent) = started?;
                record_intent(txn, payment, intent, now).await
            })
            .await?;
        Ok(Outcome::Executed(recorded))
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
    #[tracing::instrument(skip_all)]
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
