//! A cabin keeps the seats held or sold in its own row, `taken_seats`: one bit per seat of its layout, so
//! a hold reads them with the cabin's lock as one small value instead of every seat assignment of the
//! cabin. Bit `i` is the `i`-th seat front to back, left to right (row by row, letters in the cabin's
//! order), bit `i % 8` of byte `i / 8`, least significant first; missing bytes at the end are free seats,
//! so a cabin without assignments keeps the empty default. Cabins with seats assigned get theirs here.
//!
//! Instances of earlier versions take and free seats without marking them: stop them before this runs
//! (a batch of holds that finds a cabin's marks and assignments disagreeing rebuilds the marks).

use std::collections::BTreeMap;

use sea_orm::{DbBackend, Statement, prelude::Uuid};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let add_column = match manager.get_database_backend() {
            DbBackend::Postgres => "ALTER TABLE flight_cabins ADD COLUMN taken_seats bytea NOT NULL DEFAULT '\\x'",
            _ => "ALTER TABLE flight_cabins ADD COLUMN taken_seats BLOB NOT NULL DEFAULT x''",
        };
        db.execute_unprepared(add_column).await?;
        let assigned = "SELECT c.flight_id, c.cabin, c.first_row, c.row_count, c.seat_letters, s.seat_number \
                        FROM flight_cabins c JOIN seat_assignments s ON s.flight_id = c.flight_id AND s.cabin = c.cabin";
        let mut cabins: BTreeMap<(Uuid, String), Vec<u8>> = BTreeMap::new();
        for row in db.query_all_raw(Statement::from_string(manager.get_database_backend(), assigned)).await? {
            let (first_row, rows): (i32, i32) = (row.try_get("", "first_row")?, row.try_get("", "row_count")?);
            let letters: String = row.try_get("", "seat_letters")?;
            let seat: String = row.try_get("", "seat_number")?;
            let bits = cabins
                .entry((row.try_get("", "flight_id")?, row.try_get("", "cabin")?))
                .or_insert_with(|| vec![0; (usize::try_from(rows).unwrap_or(0) * letters.len()).div_ceil(8)]);
            let index = seat_index(first_row, &letters, &seat)
                .filter(|&i| i / 8 < bits.len())
                .ok_or_else(|| DbErr::Migration(format!("seat {seat} is not in its cabin's layout")))?;
            bits[index / 8] |= 1 << (index % 8);
        }
        for ((flight_id, cabin), bits) in cabins {
            let update = Query::update()
                .table(FlightCabins::Table)
                .value(FlightCabins::TakenSeats, bits)
                .and_where(Expr::col(FlightCabins::FlightId).eq(flight_id))
                .and_where(Expr::col(FlightCabins::Cabin).eq(cabin))
                .to_owned();
            manager.exec_stmt(update).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(FlightCabins::Table).drop_column(FlightCabins::TakenSeats).to_owned())
            .await
    }
}

/// A seat's place in its cabin, as this migration numbered it ("12C": row 12, letter C).
fn seat_index(first_row: i32, letters: &str, seat: &str) -> Option<usize> {
    let letter = seat.chars().last()?;
    let row: i32 = seat.strip_suffix(letter)?.parse().ok()?;
    let offset = usize::try_from(row.checked_sub(first_row)?).ok()?;
    Some(offset * letters.len() + letters.find(letter)?)
}

#[derive(DeriveIden)]
enum FlightCabins {
    Table,
    FlightId,
    Cabin,
    TakenSeats,
}
