//! Airports, flights and their cabins. Seats are not rows: a cabin's seat numbers follow from its layout
//! (first row, row count, letters), so a flight costs one row per cabin.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Airports::Table)
                    .col(string_len(Airports::IataCode, 3).primary_key())
                    .col(string_len(Airports::Name, 128))
                    .col(string_len(Airports::City, 128))
                    .col(string_len(Airports::CountryCode, 2))
                    .col(string_len(Airports::TimeZone, 64))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Flights::Table)
                    .col(uuid(Flights::Id).primary_key())
                    .col(string_len(Flights::FlightNumber, 8))
                    .col(string_len(Flights::Origin, 3))
                    .col(string_len(Flights::Destination, 3))
                    .col(timestamp_with_time_zone(Flights::DepartsAt))
                    .col(timestamp_with_time_zone(Flights::ArrivesAt))
                    .col(date(Flights::DepartureDate))
                    .col(string_len(Flights::Status, 16))
                    .col(timestamp_with_time_zone(Flights::CreatedAt))
                    .col(timestamp_with_time_zone(Flights::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_flights_origin")
                            .from(Flights::Table, Flights::Origin)
                            .to(Airports::Table, Airports::IataCode),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_flights_destination")
                            .from(Flights::Table, Flights::Destination)
                            .to(Airports::Table, Airports::IataCode),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_flights_number_departure")
                    .table(Flights::Table)
                    .col(Flights::FlightNumber)
                    .col(Flights::DepartsAt)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Serves SearchFlights: equality on route and local date, then keyset order.
        manager
            .create_index(
                Index::create()
                    .name("ix_flights_search")
                    .table(Flights::Table)
                    .col(Flights::Origin)
                    .col(Flights::Destination)
                    .col(Flights::DepartureDate)
                    .col(Flights::DepartsAt)
                    .col(Flights::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FlightCabins::Table)
                    .col(uuid(FlightCabins::FlightId))
                    .col(string_len(FlightCabins::Cabin, 16))
                    .col(integer(FlightCabins::FirstRow))
                    .col(integer(FlightCabins::RowCount))
                    .col(string_len(FlightCabins::SeatLetters, 10))
                    .col(integer(FlightCabins::SeatsTotal))
                    .col(integer(FlightCabins::SeatsAvailable))
                    .col(string_len(FlightCabins::CurrencyCode, 3))
                    .col(big_integer(FlightCabins::PriceAmountMinor))
                    .primary_key(Index::create().col(FlightCabins::FlightId).col(FlightCabins::Cabin))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_flight_cabins_flight")
                            .from(FlightCabins::Table, FlightCabins::FlightId)
                            .to(Flights::Table, Flights::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // The backstop against overselling: whatever the application does, the count of free
                    // seats can never leave 0..=total.
                    .check(
                        Expr::col(FlightCabins::SeatsAvailable)
                            .gte(0)
                            .and(Expr::col(FlightCabins::SeatsAvailable).lte(Expr::col(FlightCabins::SeatsTotal))),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [FlightCabins::Table.into_iden(), Flights::Table.into_iden(), Airports::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
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

#[derive(DeriveIden)]
enum Flights {
    Table,
    Id,
    FlightNumber,
    Origin,
    Destination,
    DepartsAt,
    ArrivesAt,
    DepartureDate,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FlightCabins {
    Table,
    FlightId,
    Cabin,
    FirstRow,
    RowCount,
    SeatLetters,
    SeatsTotal,
    SeatsAvailable,
    CurrencyCode,
    PriceAmountMinor,
}
