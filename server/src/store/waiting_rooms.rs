//! Waiting-room settings, one row per flight.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait as _, sea_query::OnConflict};
use uuid::Uuid;

use super::{StoreError, entities::waiting_room};
use crate::domain::waiting_room::RoomSettings;

/// The flight's room, if one was ever configured.
#[tracing::instrument(name = "db waiting_rooms.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, flight_id: Uuid) -> Result<Option<RoomSettings>, StoreError> {
    let Some(row) = waiting_room::Entity::find_by_id(flight_id).one(db).await? else {
        return Ok(None);
    };
    let admit_per_minute = u32::try_from(row.admit_per_minute)
        .map_err(|_| StoreError::Corrupt(format!("waiting room {flight_id}: admit_per_minute")))?;
    Ok(Some(RoomSettings {
        enabled: row.enabled,
        admit_per_minute,
        pass_ttl: TimeDelta::seconds(row.pass_ttl_seconds.into()),
        opens_at: row.opens_at,
    }))
}

/// Creates or replaces the flight's room.
#[tracing::instrument(name = "db waiting_rooms.put", skip_all, fields(otel.kind = "client"))]
pub async fn put(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    settings: &RoomSettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use waiting_room::Column as C;
    let row = waiting_room::ActiveModel {
        flight_id: Set(flight_id),
        enabled: Set(settings.enabled),
        admit_per_minute: Set(i32::try_from(settings.admit_per_minute).unwrap_or(i32::MAX)),
        pass_ttl_seconds: Set(i32::try_from(settings.pass_ttl.num_seconds()).unwrap_or(i32::MAX)),
        opens_at: Set(settings.opens_at),
        updated_at: Set(now),
    };
    waiting_room::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::FlightId)
                .update_columns([C::Enabled, C::AdmitPerMinute, C::PassTtlSeconds, C::OpensAt, C::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
