//! Airport queries: the reference data every flight's origin and destination must name.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, ExprTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
    sea_query::{Expr, Func, LikeExpr, OnConflict},
};

use super::{StoreError, entities::airport};
use crate::domain::{
    airport::{Airport, CountryCode},
    flight::AirportCode,
};

/// Airports by code after `after`, at most `limit`, optionally only those whose code, city or name
/// contains `query` (ignoring ASCII case).
#[tracing::instrument(name = "db airports.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(
    db: &impl ConnectionTrait,
    query: Option<&str>,
    after: Option<AirportCode>,
    limit: u64,
) -> Result<Vec<Airport>, StoreError> {
    let mut select = airport::Entity::find();
    if let Some(query) = query {
        let pattern = format!("%{}%", escape_like(&query.to_lowercase()));
        let contains = |column: airport::Column| {
            Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        select = select.filter(
            contains(airport::Column::IataCode).or(contains(airport::Column::City)).or(contains(airport::Column::Name)),
        );
    }
    if let Some(after) = after {
        select = select.filter(airport::Column::IataCode.gt(after.as_str()));
    }
    let rows = select.order_by_asc(airport::Column::IataCode).limit(limit).all(db).await?;
    rows.into_iter().map(to_airport).collect()
}

#[tracing::instrument(name = "db airports.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, code: AirportCode) -> Result<Option<Airport>, StoreError> {
    airport::Entity::find_by_id(code.as_str().to_owned()).one(db).await?.map(to_airport).transpose()
}

/// Inserts the airport, or replaces every field of the one with its code.
#[tracing::instrument(name = "db airports.upsert", skip_all, fields(otel.kind = "client"))]
pub async fn upsert(db: &impl ConnectionTrait, airport: &Airport) -> Result<(), StoreError> {
    use airport::Column as C;
    let row = airport::ActiveModel {
        iata_code: Set(airport.code.as_str().to_owned()),
        name: Set(airport.name.clone()),
        city: Set(airport.city.clone()),
        country_code: Set(airport.country.as_str().to_owned()),
        time_zone: Set(airport.time_zone.name().to_owned()),
    };
    airport::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::IataCode).update_columns([C::Name, C::City, C::CountryCode, C::TimeZone]).to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Time zones of the given airports; airports that do not exist are absent from the map.
#[tracing::instrument(name = "db airports.time_zones", skip_all, fields(otel.kind = "client"))]
pub async fn time_zones(
    db: &impl ConnectionTrait,
    codes: &[AirportCode],
) -> Result<HashMap<AirportCode, chrono_tz::Tz>, StoreError> {
    let rows = airport::Entity::find()
        .filter(airport::Column::IataCode.is_in(codes.iter().map(AirportCode::as_str)))
        .all(db)
        .await?;
    rows.into_iter().map(|row| to_airport(row).map(|a| (a.code, a.time_zone))).collect()
}

/// `%`, `_` and the escape character itself match literally.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn to_airport(row: airport::Model) -> Result<Airport, StoreError> {
    Ok(Airport {
        code: AirportCode::parse(&row.iata_code).map_err(StoreError::Corrupt)?,
        time_zone: row.time_zone.parse().map_err(|e| StoreError::Corrupt(format!("time zone: {e}")))?,
        country: CountryCode::parse(&row.country_code).map_err(StoreError::Corrupt)?,
        name: row.name,
        city: row.city,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::airport::{AirportFields, display_name};

    /// The migration loads every row of the shipped file; each must read back as a valid airport.
    #[test]
    fn every_shipped_airport_is_valid_here() {
        let rows = aerobook_migrations::parse_airports(aerobook_migrations::AIRPORTS_TSV).unwrap();
        for [code, name, city, country_code, time_zone] in rows {
            let fields = AirportFields { code, name, city, country_code, time_zone };
            if let Err(error) = Airport::parse(fields, "airport") {
                panic!("{code}: {error}");
            }
        }
        assert!(display_name("Tōkyō").is_ok());
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
