//! Paying for a change of a paid booking: `pending_changes`, the changes ChangeFlight made that wait for
//! their amount due (the new seats already assigned to the booking), until paid (COMPLETED) or lapsed at the
//! hold TTL (LAPSED, the seats given back); `bookings.pending_change_id`, the one a booking waits on; and
//! `payments.change_id`, the change a payment pays for. A booking keeps one payment of its own (the partial
//! index `ux_payments_own`) and one per change. `change_quotes.booking_status`: the status a quote was
//! priced for (the change fee is a paid booking's only), so a hold's quote is not made once the hold is paid.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATES: [&str; 3] = ["PENDING", "COMPLETED", "LAPSED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PendingChanges::Table)
                    // A quote is made once: its id names the change.
                    .col(uuid(PendingChanges::QuoteId).primary_key())
                    .col(uuid(PendingChanges::BookingId))
                    .col(uuid(PendingChanges::FlightId))
                    .col(uuid(PendingChanges::NewFlightId))
                    .col(string_len(PendingChanges::NewCabin, 16))
                    // The seats held on the new flight, in passenger order, comma-separated.
                    .col(text(PendingChanges::SeatNumbers))
                    .col(string_len(PendingChanges::CurrencyCode, 3))
                    .col(big_integer(PendingChanges::AmountDueMinor))
                    .col(string_len(PendingChanges::State, 16))
                    .col(timestamp_with_time_zone(PendingChanges::CreatedAt))
                    .col(timestamp_with_time_zone(PendingChanges::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pending_changes_booking")
                            .from(PendingChanges::Table, PendingChanges::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .check(Expr::col(PendingChanges::State).is_in(STATES))
                    .check(Expr::col(PendingChanges::AmountDueMinor).gt(0))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            // The sweeper's search for unpaid changes past their expiry.
            ("ix_pending_changes_state_expiry", [PendingChanges::State, PendingChanges::ExpiresAt]),
            ("ix_pending_changes_booking", [PendingChanges::BookingId, PendingChanges::State]),
        ] {
            let mut index = Index::create();
            index.name(name).table(PendingChanges::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter().table(Bookings::Table).add_column(uuid_null(Bookings::PendingChangeId)).to_owned(),
            )
            .await?;
        // Quotes already made were priced for the status their booking had; they last ten minutes, so the
        // status is not back-filled: such a quote reads as priced for a paid booking.
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeQuotes::Table)
                    .add_column(string_len(ChangeQuotes::BookingStatus, 16).default("CONFIRMED"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Payments::Table).add_column(uuid_null(Payments::ChangeId)).to_owned())
            .await?;
        // Partial indexes are written the same way on PostgreSQL and SQLite. The new one has a name of its
        // own, so no statement depends on seeing the old one gone.
        let db = manager.get_connection();
        db.execute_unprepared("CREATE UNIQUE INDEX ux_payments_own ON payments (booking_id) WHERE change_id IS NULL")
            .await?;
        manager.drop_index(Index::drop().name("ux_payments_booking").table(Payments::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_payments_change")
                    .table(Payments::Table)
                    .col(Payments::ChangeId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ux_payments_change").table(Payments::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("ux_payments_own").table(Payments::Table).to_owned()).await?;
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM payments WHERE change_id IS NOT NULL").await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_payments_booking")
                    .table(Payments::Table)
                    .col(Payments::BookingId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager.alter_table(Table::alter().table(Payments::Table).drop_column(Payments::ChangeId).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(ChangeQuotes::Table).drop_column(ChangeQuotes::BookingStatus).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Bookings::Table).drop_column(Bookings::PendingChangeId).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(PendingChanges::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    PendingChangeId,
}

#[derive(DeriveIden)]
enum ChangeQuotes {
    Table,
    BookingStatus,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    BookingId,
    ChangeId,
}

#[derive(DeriveIden)]
enum PendingChanges {
    Table,
    QuoteId,
    BookingId,
    FlightId,
    NewFlightId,
    NewCabin,
    SeatNumbers,
    CurrencyCode,
    AmountDueMinor,
    State,
    CreatedAt,
    ExpiresAt,
}
