use sea_orm::entity::prelude::*;

/// A change ChangeFlight made on a paid booking, waiting for its amount due: the new seats are already the
/// booking's. `state` is PENDING until the payment completes it (COMPLETED) or it lapses (LAPSED).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub quote_id: Uuid,
    pub booking_id: Uuid,
    pub flight_id: Uuid,
    pub new_flight_id: Uuid,
    pub new_cabin: String,
    pub seat_numbers: String,
    pub currency_code: String,
    pub amount_due_minor: i64,
    pub state: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
