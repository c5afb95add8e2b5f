//! Starting a card payment for a hold or for a change of a paid booking (the key is reserved before any
//! effect), and reading it.

use super::*;

impl Payments {
    /// Starts (or resumes) the card payment of the caller's live hold, or of the change their paid booking
    /// waits on, and returns it with the client secret.
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
                let what = if payment.change_id.is_some() { ", flight change" } else { "" };
                let description = format!("Aerobook booking {}{what}", payment.booking_id);
                Some(self.provider.create_intent(&payment, &description).await?)
            }
        };
        Ok((payment, intent))
    }

    /// The payment of a booking the actor may see: its latest (a change's, once one was paid for). Only
    /// the paying customer gets the client secret: it lets its holder complete the payment.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, actor: &Actor, booking_id: Uuid) -> Result<Payment, AppError> {
        let booking = bookings::get(self.store.conn(), booking_id).await?;
        if !booking.is_some_and(|b| actor.may_see(&b)) {
            return Err(AppError::NotFound("booking"));
        }
        let mut payment =
            payments::of_booking(self.store.conn(), booking_id).await?.pop().ok_or(AppError::NotFound("payment"))?;
        if payment.user_id != actor.caller.user_id {
            payment.client_secret = None;
        }
        Ok(payment)
    }

    /// Writes the payment row of what the actor's booking is waiting to be paid for, unless it has one: a
    /// live hold (its total), or the change a paid booking waits on (its amount due). A canceled
    /// PaymentIntent is replaced by a new attempt.
    async fn prepare(&self, actor: &Actor, booking_id: Uuid, now: DateTime<Utc>) -> Result<Payment, AppError> {
        let txn = self.store.begin_write().await?;
        let booking = bookings::get(&txn, booking_id)
            .await?
            .filter(|b| b.user_id == actor.caller.user_id)
            .ok_or(AppError::NotFound("booking"))?;
        let status = status_as_of(booking.status, booking.hold_expires_at, now);
        let (change_id, amount) = match &booking.pending_change {
            Some(change) if status == BookingStatus::Confirmed => {
                if !change.is_live(now) {
                    return Err(Refusal::QuoteExpired.into());
                }
                (Some(change.quote_id), change.amount_due)
            }
            _ => {
                // Paying confirms: only a live hold can be paid for.
                status.apply(BookingAction::Confirm).map_err(Refusal::from)?;
                (None, booking.total_price)
            }
        };
        let payment = match payments::paying_for(&txn, booking_id, change_id).await? {
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
                // Paid, and its effect (the booking's confirmation, or the change) is on its way through the
                // outbox.
                PaymentStatus::Succeeded => return Err(AppError::PaymentInProgress),
                _ => payment,
            },
            None => {
                let payment = Payment {
                    id: Uuid::now_v7(),
                    booking_id,
                    user_id: booking.user_id,
                    amount,
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
                    change_id,
                };
                if payments::insert(&txn, &payment, now).await? {
                    payment
                } else {
                    payments::paying_for(&txn, booking_id, change_id)
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
