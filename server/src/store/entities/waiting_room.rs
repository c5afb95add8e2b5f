use sea_orm::entity::prelude::*;

/// A flight's waiting-room settings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waiting_rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flight_id: Uuid,
    pub enabled: bool,
    pub admit_per_minute: i32,
    pub pass_ttl_seconds: i32,
    pub opens_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
