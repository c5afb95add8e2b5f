use sea_orm::entity::prelude::*;

/// A change QuoteChange priced: replacing the segment on `flight_id` of a booking by `new_cabin` of
/// `new_flight_id`; amounts in the booking's currency.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_quotes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub booking_id: Uuid,
    pub flight_id: Uuid,
    pub new_flight_id: Uuid,
    pub new_cabin: String,
    pub currency_code: String,
    pub fare_difference_minor: i64,
    pub change_fee_minor: i64,
    pub amount_due_minor: i64,
    /// The booking's status the quote was priced for.
    pub booking_status: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
