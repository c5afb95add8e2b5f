use sea_orm::entity::prelude::*;

/// A flight's cabin. Its row also keeps its seats held or sold (`taken_seats`, one bit per seat), which
/// only `store::seats` reads and writes, under the cabin's lock: the flight and search reads that load this
/// model never carry it.
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
    /// What changing a booked flight in this cabin costs the party.
    pub change_fee_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
