use sea_orm::entity::prelude::*;

/// One flight of a booking, in travel order (`position` from 0); the booking's own flight and cabin are its
/// first segment's.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking_segments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub booking_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i16,
    /// The booking's user: a user's live holds on a flight are counted through (user, flight).
    pub user_id: Uuid,
    pub flight_id: Uuid,
    pub cabin: String,
    /// The party's seats on this flight, in passenger order, joined by commas.
    pub seat_numbers: String,
    pub currency_code: String,
    /// For the whole party.
    pub price_amount_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
