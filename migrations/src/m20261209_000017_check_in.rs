//! Check-in and boarding. A ticket records its check-in (the flight's sequence number, unique per flight:
//! the index refuses a number given twice, whatever instance gave it) and its boarding. Each flight's last
//! sequence number lives in its own row, taken by an atomic upsert, so check-ins never touch the hot flight
//! row. Travel documents are personal data kept only until `keep_until` (a day after the booking's last
//! flight arrives), then swept.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            ColumnDef::new(Tickets::SequenceNumber).integer().null().to_owned(),
            timestamp_with_time_zone_null(Tickets::CheckedInAt),
            timestamp_with_time_zone_null(Tickets::BoardedAt),
        ] {
            manager.alter_table(Table::alter().table(Tickets::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_tickets_sequence")
                    .table(Tickets::Table)
                    .col(Tickets::FlightId)
                    .col(Tickets::SequenceNumber)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CheckInSequences::Table)
                    .col(uuid(CheckInSequences::FlightId).primary_key())
                    .col(integer(CheckInSequences::LastSequence))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_check_in_sequences_flight")
                            .from(CheckInSequences::Table, CheckInSequences::FlightId)
                            .to(Flights::Table, Flights::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TravelDocuments::Table)
                    .col(uuid(TravelDocuments::BookingId))
                    .col(small_integer(TravelDocuments::PassengerIndex))
                    .col(string_len(TravelDocuments::DocumentType, 16))
                    .col(string_len(TravelDocuments::Number, 20))
                    .col(string_len(TravelDocuments::IssuingCountry, 2))
                    .col(string_len(TravelDocuments::Nationality, 2))
                    .col(date(TravelDocuments::ExpiresOn))
                    .col(timestamp_with_time_zone(TravelDocuments::KeepUntil))
                    .primary_key(Index::create().col(TravelDocuments::BookingId).col(TravelDocuments::PassengerIndex))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_travel_documents_booking")
                            .from(TravelDocuments::Table, TravelDocuments::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_travel_documents_keep_until")
                    .table(TravelDocuments::Table)
                    .col(TravelDocuments::KeepUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TravelDocuments::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(CheckInSequences::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("ux_tickets_sequence").table(Tickets::Table).to_owned()).await?;
        for column in [Tickets::SequenceNumber, Tickets::CheckedInAt, Tickets::BoardedAt] {
            manager.alter_table(Table::alter().table(Tickets::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Flights {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    FlightId,
    SequenceNumber,
    CheckedInAt,
    BoardedAt,
}

#[derive(DeriveIden)]
enum CheckInSequences {
    Table,
    FlightId,
    LastSequence,
}

#[derive(DeriveIden)]
enum TravelDocuments {
    Table,
    BookingId,
    PassengerIndex,
    DocumentType,
    Number,
    IssuingCountry,
    Nationality,
    ExpiresOn,
    KeepUntil,
}
