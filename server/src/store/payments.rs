//! Payment rows (one per booking, and one per change of a paid booking that costs more) and the provider
//! events already received.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    sea_query::{LockType, OnConflict},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{payment, payment_refund, provider_event},
};
use crate::domain::{
    money::{CurrencyCode, Money},
    payment::{Payment, PaymentRef},
};

/// Inserts a payment unless its booking already has one for the same thing (its own payment, or the
/// payment of `payment.change_id`); `false` when it had.
#[tracing::instrument(name = "db payments.insert", skip_all, fields(otel.kind = "client"))]
pub async fn insert(db: &impl ConnectionTrait, payment: &Payment, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let mut row = active(payment, now);
    row.created_at = Set(now);
    let conflict = match payment.change_id {
        None => OnConflict::column(payment::Column::BookingId)
            // The unique index on bookings' own payments is partial: the target names its predicate.
            .target_and_where(payment::Column::ChangeId.is_null())
            .do_nothing()
            .to_owned(),
        Some(_) => OnConflict::column(payment::Column::ChangeId).do_nothing().to_owned(),
    };
    let inserted = payment::Entity::insert(row).on_conflict(conflict).exec_without_returning(db).await?;
    Ok(inserted == 1)
}

/// Writes every field of `payment`; callers read it locked ([`find`] with `lock`) in the same transaction.
#[tracing::instrument(name = "db payments.update", skip_all, fields(otel.kind = "client"))]
pub async fn update(db: &impl ConnectionTrait, payment: &Payment, now: DateTime<Utc>) -> Result<(), StoreError> {
    payment::Entity::update(active(payment, now)).exec(db).await?;
    Ok(())
}

/// The booking's own payment (not a change's).
#[tracing::instrument(name = "db payments.for_booking", skip_all, fields(otel.kind = "client"))]
pub async fn for_booking(db: &impl ConnectionTrait, booking_id: Uuid) -> Result<Option<Payment>, StoreError> {
    payment::Entity::find()
        .filter(payment::Column::BookingId.eq(booking_id))
        .filter(payment::Column::ChangeId.is_null())
        .one(db)
        .await?
        .map(to_payment)
        .transpose()
}

/// What pays for `change_id` of the booking (a change named by its quote), or with `None` for the booking
/// itself.
#[tracing::instrument(name = "db payments.paying_for", skip_all, fields(otel.kind = "client"))]
pub async fn paying_for(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    change_id: Option<Uuid>,
) -> Result<Option<Payment>, StoreError> {
    match change_id {
        None => for_booking(db, booking_id).await,
        Some(change_id) => payment::Entity::find()
            .filter(payment::Column::BookingId.eq(booking_id))
            .filter(payment::Column::ChangeId.eq(change_id))
            .one(db)
            .await?
            .map(to_payment)
            .transpose(),
    }
}

/// Every payment of the booking, its own and its changes', oldest first.
#[tracing::instrument(name = "db payments.of_booking", skip_all, fields(otel.kind = "client"))]
pub async fn of_booking(db: &impl ConnectionTrait, booking_id: Uuid) -> Result<Vec<Payment>, StoreError> {
    payment::Entity::find()
        .filter(payment::Column::BookingId.eq(booking_id))
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_payment)
        .collect()
}

/// The payment an event names, by Aerobook's id when the event carries it, else by the PaymentIntent.
/// With `lock`, the row stays locked (PostgreSQL) until the transaction ends, so concurrent events for
/// one payment apply one after the other.
#[tracing::instrument(name = "db payments.find", skip_all, fields(otel.kind = "client"))]
pub async fn find(db: &impl ConnectionTrait, by: &PaymentRef, lock: bool) -> Result<Option<Payment>, StoreError> {
    let mut query = payment::Entity::find();
    query = match (&by.payment_id, &by.intent_id) {
        (Some(id), _) => query.filter(payment::Column::Id.eq(*id)),
        (None, Some(intent)) => query.filter(payment::Column::ProviderReference.eq(intent.as_str())),
        (None, None) => return Ok(None),
    };
    if lock {
        query = query.lock(LockType::Update);
    }
    query.one(db).await?.map(to_payment).transpose()
}

/// Payments waiting for the outcome of their refund.
#[tracing::instrument(name = "db payments.with_refund_pending", skip_all, fields(otel.kind = "client"))]
pub async fn with_refund_pending(db: &impl ConnectionTrait) -> Result<Vec<Payment>, StoreError> {
    payment::Entity::find()
        .filter(payment::Column::Status.eq(crate::domain::payment::PaymentStatus::RefundPending.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(to_payment)
        .collect()
}

/// Records a provider event id; `false` when it was already recorded (a redelivery).
#[tracing::instrument(name = "db payments.record_event", skip_all, fields(otel.kind = "client"))]
pub async fn record_event(
    db: &impl ConnectionTrait,
    id: &str,
    event_type: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = provider_event::ActiveModel {
        id: Set(id.to_owned()),
        event_type: Set(event_type.chars().take(128).collect()),
        received_at: Set(now),
    };
    let inserted = provider_event::Entity::insert(row)
        .on_conflict(OnConflict::column(provider_event::Column::Id).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Records a succeeded refund of the payment; `false` when this refund was recorded before.
#[tracing::instrument(name = "db payments.record_refund", skip_all, fields(otel.kind = "client"))]
pub async fn record_refund(
    db: &impl ConnectionTrait,
    refund_id: &str,
    payment_id: Uuid,
    amount_minor: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = payment_refund::ActiveModel {
        refund_id: Set(refund_id.to_owned()),
        payment_id: Set(payment_id),
        amount_minor: Set(amount_minor.max(0)),
        recorded_at: Set(now),
    };
    let inserted = payment_refund::Entity::insert(row)
        .on_conflict(OnConflict::column(payment_refund::Column::RefundId).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// The sum of the payment's recorded refunds.
#[tracing::instrument(name = "db payments.refunded_total", skip_all, fields(otel.kind = "client"))]
pub async fn refunded_total(db: &impl ConnectionTrait, payment_id: Uuid) -> Result<i64, StoreError> {
    let amounts: Vec<i64> = payment_refund::Entity::find()
        .select_only()
        .column(payment_refund::Column::AmountMinor)
        .filter(payment_refund::Column::PaymentId.eq(payment_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(amounts.iter().sum())
}

fn active(payment: &Payment, now: DateTime<Utc>) -> payment::ActiveModel {
    payment::ActiveModel {
        id: Set(payment.id),
        booking_id: Set(payment.booking_id),
        user_id: Set(payment.user_id),
        currency_code: Set(payment.amount.currency.as_str().to_owned()),
        amount_minor: Set(payment.amount.amount_minor),
        status: Set(payment.status.as_str().to_owned()),
        provider_reference: Set(payment.provider_reference.clone()),
        client_secret: Set(payment.client_secret.clone()),
        correlation_id: Set(payment.correlation_id.clone()),
        attempt: Set(payment.attempt),
        amount_received_minor: Set(payment.amount_received_minor),
        amount_refunded_minor: Set(payment.amount_refunded_minor),
        decline_code: Set(payment.decline_code.clone()),
        failure_message: Set(payment.failure_message.clone()),
        refund_reference: Set(payment.refund_reference.clone()),
        refund_attempt: Set(payment.refund_attempt),
        change_id: Set(payment.change_id),
        updated_at: Set(now),
        ..Default::default()
    }
}

fn to_payment(row: payment::Model) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: row.id,
        booking_id: row.booking_id,
        user_id: row.user_id,
        amount: Money {
            currency: CurrencyCode::parse(&row.currency_code).map_err(StoreError::Corrupt)?,
            amount_minor: row.amount_minor,
        },
        status: row.status.parse().map_err(StoreError::Corrupt)?,
        provider_reference: row.provider_reference,
        client_secret: row.client_secret,
        correlation_id: row.correlation_id,
        attempt: row.attempt,
        amount_received_minor: row.amount_received_minor,
        amount_refunded_minor: row.amount_refunded_minor,
        decline_code: row.decline_code,
        failure_message: row.failure_message,
        refund_reference: row.refund_reference,
        refund_attempt: row.refund_attempt,
        change_id: row.change_id,
    })
}
