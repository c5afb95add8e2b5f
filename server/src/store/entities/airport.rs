use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "airports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub iata_code: String,
    pub name: String,
    pub city: String,
    pub country_code: String,
    /// IANA time zone, e.g. `Asia/Riyadh`: local departure dates are computed in it.
    pub time_zone: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
