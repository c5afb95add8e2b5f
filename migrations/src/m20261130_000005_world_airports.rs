//! The world's IATA airports, loaded into every database: flights can only be created between known
//! airports, so a fresh production database must have them without demo data.
//!
//! The rows come from `migrations/data/airports.tsv` (derived from the `airportsdata` package by
//! `scripts/airports-data`; licence in `airports.LICENSE`). Airports already present (from the demo seed,
//! or added by an operator) are kept as they are, so the migration is safe on any database.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{DbBackend, Statement},
};

/// Tab-separated, with a header line: code, name, city, country_code, time_zone.
pub const AIRPORTS_TSV: &str = include_str!("../data/airports.tsv");

/// Rows per INSERT on SQLite: 5 parameters each stays far below its parameter limit.
const BATCH: usize = 500;
/// Joins a column's values into one PostgreSQL parameter (`chr(31)`).
const UNIT_SEPARATOR: &str = "\u{1f}";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let rows = parse(AIRPORTS_TSV).map_err(DbErr::Migration)?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            // One statement with five array parameters instead of thousands of bound values: about 20 times
            // faster, which every fresh database (and every test schema) pays. The unit separator cannot
            // occur in the data (`parse` rejects control characters).
            let column = |i: usize| rows.iter().map(|row| row[i]).collect::<Vec<_>>().join(UNIT_SEPARATOR);
            let insert = "INSERT INTO airports (iata_code, name, city, country_code, time_zone) \
                SELECT * FROM unnest(string_to_array($1, chr(31)), string_to_array($2, chr(31)), \
                string_to_array($3, chr(31)), string_to_array($4, chr(31)), string_to_array($5, chr(31))) \
                ON CONFLICT (iata_code) DO NOTHING";
            let values: Vec<Value> = (0..5).map(|i| column(i).into()).collect();
            db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, insert, values)).await?;
            return Ok(());
        }
        for batch in rows.chunks(BATCH) {
            let mut insert = Query::insert();
            insert
                .into_table(Airports::Table)
                .columns([
                    Airports::IataCode,
                    Airports::Name,
                    Airports::City,
                    Airports::CountryCode,
                    Airports::TimeZone,
                ])
                .on_conflict(OnConflict::column(Airports::IataCode).do_nothing().to_owned());
            for row in batch {
                insert.values_panic(row.map(Into::into));
            }
            db.execute(&insert).await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Flights refer to airports, and operators may have edited them: rolling back keeps the rows.
        Ok(())
    }
}

/// The data rows of the file, each five non-empty fields.
pub fn parse(tsv: &str) -> Result<Vec<[&str; 5]>, String> {
    let mut lines = tsv.lines();
    if lines.next() != Some("code\tname\tcity\tcountry_code\ttime_zone") {
        return Err("airports.tsv: unexpected header".into());
    }
    lines
        .enumerate()
        .map(|(index, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            <[&str; 5]>::try_from(fields)
                .ok()
                .filter(|row| row.iter().all(|field| !field.is_empty() && !field.chars().any(char::is_control)))
                .ok_or_else(|| {
                    format!("airports.tsv line {}: expected five non-empty fields of printable text", index + 2)
                })
        })
        .collect()
}

#[derive(DeriveIden)]
enum Airports {
    Table,
    IataCode,
    Name,
    City,
    CountryCode,
    TimeZone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_with_unique_codes() {
        let rows = parse(AIRPORTS_TSV).unwrap();
        assert!(rows.len() > 5_000, "{} airports", rows.len());
        let mut codes: Vec<&str> = rows.iter().map(|row| row[0]).collect();
        codes.dedup();
        assert_eq!(codes.len(), rows.len(), "sorted by code, each once");
        assert!(rows.iter().any(|row| row == &["NRT", row[1], row[2], "JP", "Asia/Tokyo"]));
        assert!(parse("code\tname\tcity\tcountry_code\ttime_zone\n").unwrap().is_empty());
        assert!(parse("code\tname\n").is_err(), "another header");
        assert!(parse("code\tname\tcity\tcountry_code\ttime_zone\nAAA\tx\t\tPF\tPacific/Tahiti\n").is_err());
        assert!(parse("code\tname\tcity\tcountry_code\ttime_zone\nAAA\tx\u{1f}y\tz\tPF\tPacific/Tahiti\n").is_err());
    }
}
