use sea_orm::entity::prelude::*;

/// A passenger's travel document, kept until `keep_until`. Personal data: no `Debug` that prints it.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "travel_documents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub booking_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub passenger_index: i16,
    pub document_type: String,
    pub number: String,
    pub issuing_country: String,
    pub nationality: String,
    pub expires_on: Date,
    pub keep_until: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("travel_document::Model")
            .field("booking_id", &self.booking_id)
            .field("passenger_index", &self.passenger_index)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
