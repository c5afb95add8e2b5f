use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "flight_cabins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flight_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub cabin: String,
    pub first_row: i32,
    pub row_count: i32,
    pub seat_letters: String,
    pub seats_total: i32,
    /// Decremented and incremented only by conditional updates; a CHECK keeps it within 0..=seats_total.
    pub seats_available: i32,
    pub currency_code: String,
    pub price_amount_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
