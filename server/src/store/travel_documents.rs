//! Travel documents as stored: one per passenger of a booking, replaced when given again, kept until
//! `keep_until` and then swept ([`super::retention`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{StoreError, entities::travel_document};
use crate::domain::{
    airport::CountryCode,
    travel_document::{DocumentType, TravelDocument},
};

/// Stores each passenger's document (by passenger index), replacing one given before.
#[tracing::instrument(name = "db travel_documents.save", skip_all, fields(otel.kind = "client"))]
pub async fn save(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    documents: &[(usize, &TravelDocument)],
    keep_until: DateTime<Utc>,
) -> Result<(), StoreError> {
    if documents.is_empty() {
        return Ok(());
    }
    let rows = documents
        .iter()
        .map(|&(index, document)| {
            Ok(travel_document::ActiveModel {
                booking_id: Set(booking_id),
                passenger_index: Set(i16::try_from(index).map_err(|e| StoreError::Corrupt(e.to_string()))?),
                document_type: Set(document.kind.as_str().to_owned()),
                number: Set(document.number.clone()),
                issuing_country: Set(document.issuing_country.as_str().to_owned()),
                nationality: Set(document.nationality.as_str().to_owned()),
                expires_on: Set(document.expires_on),
                keep_until: Set(keep_until),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    use travel_document::Column as C;
    travel_document::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([C::BookingId, C::PassengerIndex])
                .update_columns([
                    C::DocumentType,
                    C::Number,
                    C::IssuingCountry,
                    C::Nationality,
                    C::ExpiresOn,
                    C::KeepUntil,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The documents on file for the bookings, by booking and passenger index.
#[tracing::instrument(name = "db travel_documents.of_bookings", skip_all, fields(otel.kind = "client"))]
pub async fn of_bookings(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, BTreeMap<usize, TravelDocument>>, StoreError> {
    let corrupt = StoreError::Corrupt;
    let rows = travel_document::Entity::find().filter(travel_document::Column::BookingId.is_in(ids)).all(db).await?;
    let mut by_booking: HashMap<Uuid, BTreeMap<usize, TravelDocument>> = HashMap::new();
    for row in rows {
        let document = TravelDocument {
            kind: row.document_type.parse::<DocumentType>().map_err(corrupt)?,
            number: row.number,
            issuing_country: CountryCode::parse(&row.issuing_country).map_err(corrupt)?,
            nationality: CountryCode::parse(&row.nationality).map_err(corrupt)?,
            expires_on: row.expires_on,
        };
        let index = usize::try_from(row.passenger_index).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        by_booking.entry(row.booking_id).or_default().insert(index, document);
    }
    Ok(by_booking)
}

/// Moves when the booking's documents are swept (its last flight changed).
#[tracing::instrument(name = "db travel_documents.keep_until", skip_all, fields(otel.kind = "client"))]
pub async fn keep_until(db: &impl ConnectionTrait, booking_id: Uuid, until: DateTime<Utc>) -> Result<(), StoreError> {
    travel_document::Entity::update_many()
        .col_expr(travel_document::Column::KeepUntil, sea_orm::sea_query::Expr::value(until))
        .filter(travel_document::Column::BookingId.eq(booking_id))
        .exec(db)
        .await?;
    Ok(())
}
