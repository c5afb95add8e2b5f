//! E-tickets: one row per passenger and segment of a confirmed booking, numbered with the airline's prefix
//! and a random serial (`ticket_number`, unique: a repeat is drawn again). A booking holds at most one live
//! (not VOID) ticket per passenger and flight: the partial unique index keeps two confirmations, however
//! they race, from ticketing a seat twice. Voided tickets stay.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUSES: [&str; 4] = ["OPEN", "CHECKED_IN", "BOARDED", "VOID"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(string_len(Tickets::TicketNumber, 13).primary_key())
                    .col(uuid(Tickets::BookingId))
                    .col(small_integer(Tickets::PassengerIndex))
                    .col(uuid(Tickets::FlightId))
                    .col(string_len(Tickets::Status, 16))
                    .col(timestamp_with_time_zone(Tickets::IssuedAt))
                    .col(timestamp_with_time_zone_null(Tickets::VoidedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_booking")
                            .from(Tickets::Table, Tickets::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .check(Expr::col(Tickets::Status).is_in(STATUSES))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_tickets_booking").table(Tickets::Table).col(Tickets::BookingId).to_owned(),
            )
            .await?;
        // Partial indexes are written the same way on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_tickets_live ON tickets (booking_id, passenger_index, flight_id) \
                 WHERE status <> 'VOID'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Tickets::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    TicketNumber,
    BookingId,
    PassengerIndex,
    FlightId,
    Status,
    IssuedAt,
    VoidedAt,
}
