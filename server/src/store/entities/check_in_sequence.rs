use sea_orm::entity::prelude::*;

/// The last check-in sequence number given on a flight.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_in_sequences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flight_id: Uuid,
    pub last_sequence: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
