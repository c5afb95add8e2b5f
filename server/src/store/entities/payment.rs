use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub currency_code: String,
    pub amount_minor: i64,
    pub status: String,
    pub provider_reference: Option<String>,
    pub client_secret: Option<String>,
    pub correlation_id: String,
    pub attempt: i32,
    pub amount_received_minor: i64,
    pub amount_refunded_minor: i64,
    pub decline_code: Option<String>,
    pub failure_message: Option<String>,
    pub refund_reference: Option<String>,
    pub refund_attempt: i32,
    /// The change this payment pays for (`pending_changes.quote_id`); `None` for the booking's own payment.
    pub change_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
