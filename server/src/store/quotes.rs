//! Change quotes: what QuoteChange priced, read back by ChangeFlight.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait as _};
use uuid::Uuid;

use super::{StoreError, entities::change_quote};
use crate::domain::{
    change::ChangeQuote,
    money::{CurrencyCode, Money},
};

#[tracing::instrument(name = "db quotes.insert", skip_all, fields(otel.kind = "client"))]
pub async fn insert(db: &impl ConnectionTrait, quote: &ChangeQuote) -> Result<(), StoreError> {
    let row = change_quote::ActiveModel {
        id: Set(quote.id),
        booking_id: Set(quote.booking_id),
        flight_id: Set(quote.flight_id),
        new_flight_id: Set(quote.new_flight_id),
        new_cabin: Set(quote.new_cabin.as_str().to_owned()),
        currency_code: Set(quote.amount_due.currency.as_str().to_owned()),
        fare_difference_minor: Set(quote.fare_difference.amount_minor),
        change_fee_minor: Set(quote.change_fee.amount_minor),
        amount_due_minor: Set(quote.amount_due.amount_minor),
        booking_status: Set(quote.booking_status.as_str().to_owned()),
        created_at: Set(quote.created_at),
        expires_at: Set(quote.expires_at),
    };
    change_quote::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

#[tracing::instrument(name = "db quotes.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<ChangeQuote>, StoreError> {
    let Some(row) = change_quote::Entity::find_by_id(id).one(db).await? else { return Ok(None) };
    let currency = CurrencyCode::parse(&row.currency_code).map_err(StoreError::Corrupt)?;
    let money = |amount_minor| Money { currency, amount_minor };
    Ok(Some(ChangeQuote {
        id: row.id,
        booking_id: row.booking_id,
        flight_id: row.flight_id,
        new_flight_id: row.new_flight_id,
        new_cabin: row.new_cabin.parse().map_err(StoreError::Corrupt)?,
        fare_difference: money(row.fare_difference_minor),
        change_fee: money(row.change_fee_minor),
        amount_due: money(row.amount_due_minor),
        booking_status: row.booking_status.parse().map_err(StoreError::Corrupt)?,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }))
}
