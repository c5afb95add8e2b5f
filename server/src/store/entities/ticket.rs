use sea_orm::entity::prelude::*;

/// One passenger's e-ticket for one flight of a booking.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_number: String,
    pub booking_id: Uuid,
    pub passenger_index: i16,
    pub flight_id: Uuid,
    pub status: String,
    pub issued_at: DateTimeUtc,
    pub voided_at: Option<DateTimeUtc>,
    /// The flight's check-in sequence number, from check-in on.
    pub sequence_number: Option<i32>,
    pub checked_in_at: Option<DateTimeUtc>,
    pub boarded_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
