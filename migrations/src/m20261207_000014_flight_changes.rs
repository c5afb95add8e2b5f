//! Flight changes: each cabin's `change_fee_minor` (what changing a booked flight in it costs the party, in
//! the cabin's currency; existing cabins charge none), and `change_quotes`, the changes QuoteChange priced.
//! A quote holds nothing and lasts ten minutes; ChangeFlight makes it while it lasts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(FlightCabins::Table)
                    .add_column(big_integer(FlightCabins::ChangeFeeMinor).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChangeQuotes::Table)
                    .col(uuid(ChangeQuotes::Id).primary_key())
                    .col(uuid(ChangeQuotes::BookingId))
                    .col(uuid(ChangeQuotes::FlightId))
                    .col(uuid(ChangeQuotes::NewFlightId))
                    .col(string_len(ChangeQuotes::NewCabin, 16))
                    .col(string_len(ChangeQuotes::CurrencyCode, 3))
                    .col(big_integer(ChangeQuotes::FareDifferenceMinor))
                    .col(big_integer(ChangeQuotes::ChangeFeeMinor))
                    .col(big_integer(ChangeQuotes::AmountDueMinor))
                    .col(timestamp_with_time_zone(ChangeQuotes::CreatedAt))
                    .col(timestamp_with_time_zone(ChangeQuotes::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_change_quotes_booking")
                            .from(ChangeQuotes::Table, ChangeQuotes::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_change_quotes_booking")
                    .table(ChangeQuotes::Table)
                    .col(ChangeQuotes::BookingId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ChangeQuotes::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(FlightCabins::Table).drop_column(FlightCabins::ChangeFeeMinor).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum FlightCabins {
    Table,
    ChangeFeeMinor,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ChangeQuotes {
    Table,
    Id,
    BookingId,
    FlightId,
    NewFlightId,
    NewCabin,
    CurrencyCode,
    FareDifferenceMinor,
    ChangeFeeMinor,
    AmountDueMinor,
    CreatedAt,
    ExpiresAt,
}
