use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub reference: String,
    pub user_id: Uuid,
    pub flight_id: Uuid,
    pub cabin: String,
    pub status: String,
    pub contact_email: String,
    pub currency_code: String,
    pub total_amount_minor: i64,
    pub hold_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Bumped by every change; writes are conditional on the version read (optimistic concurrency).
    pub version: i64,
    /// The paid-for change the booking waits on (`pending_changes.quote_id`), if any.
    pub pending_change_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
