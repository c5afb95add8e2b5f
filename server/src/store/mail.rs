//! The record of emails sent, one per booking event.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait as _};
use uuid::Uuid;

use super::{StoreError, entities::sent_email};

/// Whether the email about `event_id` was sent.
#[tracing::instrument(name = "db mail.was_sent", skip_all, fields(otel.kind = "client"))]
pub async fn was_sent(db: &impl ConnectionTrait, event_id: Uuid) -> Result<bool, StoreError> {
    Ok(sent_email::Entity::find_by_id(event_id).one(db).await?.is_some())
}

/// Records the email about `event_id` as sent (kept when one is already recorded).
#[tracing::instrument(name = "db mail.record_sent", skip_all, fields(otel.kind = "client"))]
pub async fn record_sent(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    message_id: &str,
    recipient: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = sent_email::ActiveModel {
        event_id: Set(event_id),
        message_id: Set(message_id.to_owned()),
        recipient: Set(recipient.to_owned()),
        sent_at: Set(now),
    };
    sent_email::Entity::insert(row).on_conflict_do_nothing().exec_without_returning(db).await?;
    Ok(())
}
