use sea_orm::entity::prelude::*;

/// A seat held or sold; the primary key makes one seat belong to one live booking at most.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seat_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flight_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seat_number: String,
    pub cabin: String,
    pub booking_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
