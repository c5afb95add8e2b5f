use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub booking_id: Uuid,
    pub from_status: Option<String>,
    pub to_status: String,
    pub cause: String,
    pub correlation_id: String,
    pub actor_id: Option<Uuid>,
    pub note: Option<String>,
    pub at: DateTimeUtc,
    /// What happened (`HELD`, `CONFIRMED`, ...); `None` for a note that changes nothing.
    pub event: Option<String>,
    /// The W3C `traceparent` of the call that caused it, when it was traced.
    pub trace_parent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
