//! Bookings, their passengers, the seats they hold, their history, and the idempotency store.
//!
//! Seats: `seat_assignments` has one row per seat held or sold, keyed by (flight, seat), so one seat belongs
//! to one live booking at most; the row is deleted when the booking releases its seats. The cabin's
//! `seats_available` count moves in the same transaction, and its CHECK keeps it within the cabin.
//!
//! Idempotency: one row per (caller, key), written in the transaction of the call's effects together with
//! the call's stored outcome, so a crash leaves neither.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUSES: [&str; 6] = ["HELD", "CONFIRMED", "CANCELLED", "EXPIRED", "REFUND_PENDING", "REFUNDED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Bookings::Table)
                    .col(uuid(Bookings::Id).primary_key())
                    .col(string_len(Bookings::Reference, 6))
                    .col(uuid(Bookings::UserId))
                    .col(uuid(Bookings::FlightId))
                    .col(string_len(Bookings::Cabin, 16))
                    .col(string_len(Bookings::Status, 16))
                    .col(string_len(Bookings::ContactEmail, 254))
                    .col(string_len(Bookings::CurrencyCode, 3))
                    .col(big_integer(Bookings::TotalAmountMinor))
                    .col(timestamp_with_time_zone_null(Bookings::HoldExpiresAt))
                    .col(timestamp_with_time_zone(Bookings::CreatedAt))
                    .col(timestamp_with_time_zone(Bookings::UpdatedAt))
                    .col(big_integer(Bookings::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bookings_flight")
                            .from(Bookings::Table, Bookings::FlightId)
                            .to(Flights::Table, Flights::Id),
                    )
                    .check(Expr::col(Bookings::Status).is_in(STATUSES))
                    .check(Expr::col(Bookings::Version).gte(1))
                    // A hold always has an expiry; nothing else has one.
                    .check(Expr::cust("(status = 'HELD') = (hold_expires_at IS NOT NULL)"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("ux_bookings_reference", &[Bookings::Reference][..]),
            ("ix_bookings_user_created", &[Bookings::UserId, Bookings::CreatedAt, Bookings::Id]),
            ("ix_bookings_flight_created", &[Bookings::FlightId, Bookings::CreatedAt, Bookings::Id]),
            ("ix_bookings_user_flight_status", &[Bookings::UserId, Bookings::FlightId, Bookings::Status]),
            ("ix_bookings_status_expiry", &[Bookings::Status, Bookings::HoldExpiresAt]),
        ] {
            let mut index = Index::create().name(name).table(Bookings::Table).to_owned();
            for column in columns {
                index.col(column.clone());
            }
            if name.starts_with("ux_") {
                index.unique();
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(BookingPassengers::Table)
                    .col(uuid(BookingPassengers::BookingId))
                    .col(small_integer(BookingPassengers::Position))
                    .col(string_len(BookingPassengers::GivenName, 64))
                    .col(string_len(BookingPassengers::FamilyName, 64))
                    .col(date(BookingPassengers::DateOfBirth))
                    .col(string_len(BookingPassengers::PassengerType, 16))
                    // The seat held or sold; kept after the booking releases it, as a record.
                    .col(string_len(BookingPassengers::SeatNumber, 4))
                    .primary_key(Index::create().col(BookingPassengers::BookingId).col(BookingPassengers::Position))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_booking_passengers_booking")
                            .from(BookingPassengers::Table, BookingPassengers::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SeatAssignments::Table)
                    .col(uuid(SeatAssignments::FlightId))
                    .col(string_len(SeatAssignments::SeatNumber, 4))
                    .col(string_len(SeatAssignments::Cabin, 16))
                    .col(uuid(SeatAssignments::BookingId))
                    .primary_key(Index::create().col(SeatAssignments::FlightId).col(SeatAssignments::SeatNumber))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_seat_assignments_booking")
                            .from(SeatAssignments::Table, SeatAssignments::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_seat_assignments_booking")
                    .table(SeatAssignments::Table)
                    .col(SeatAssignments::BookingId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BookingHistory::Table)
                    .col(uuid(BookingHistory::Id).primary_key())
                    .col(uuid(BookingHistory::BookingId))
                    // NULL for the row that records the hold being placed.
                    .col(string_len_null(BookingHistory::FromStatus, 16))
                    .col(string_len(BookingHistory::ToStatus, 16))
                    .col(string_len(BookingHistory::Cause, 32))
                    .col(string_len(BookingHistory::CorrelationId, 128))
                    // Who made the change; NULL for the sweeper.
                    .col(uuid_null(BookingHistory::ActorId))
                    // The cancellation reason or confirmation note, at most 500 characters.
                    .col(text_null(BookingHistory::Note))
                    .col(timestamp_with_time_zone(BookingHistory::At))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_booking_history_booking")
                            .from(BookingHistory::Table, BookingHistory::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_booking_history_booking")
                    .table(BookingHistory::Table)
                    .col(BookingHistory::BookingId)
                    .col(BookingHistory::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(uuid(IdempotencyKeys::CallerId))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    // Full gRPC method path, e.g. /aerobook.v1.BookingService/CreateBooking.
                    .col(string_len(IdempotencyKeys::Method, 128))
                    // Hex SHA-256 of the method and the encoded request.
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    // RESPONSE or REFUSAL; NULL only inside the transaction that executes the call.
                    .col(string_len_null(IdempotencyKeys::Outcome, 16))
                    // The encoded response message, or the refusal as JSON.
                    .col(blob_null(IdempotencyKeys::Stored))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(Index::create().col(IdempotencyKeys::CallerId).col(IdempotencyKeys::Key))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expiry")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            BookingHistory::Table.into_iden(),
            SeatAssignments::Table.into_iden(),
            BookingPassengers::Table.into_iden(),
            Bookings::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Flights {
    Table,
    Id,
}

#[derive(DeriveIden, Clone)]
enum Bookings {
    Table,
    Id,
    Reference,
    UserId,
    FlightId,
    Cabin,
    Status,
    ContactEmail,
    CurrencyCode,
    TotalAmountMinor,
    HoldExpiresAt,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden)]
enum BookingPassengers {
    Table,
    BookingId,
    Position,
    GivenName,
    FamilyName,
    DateOfBirth,
    PassengerType,
    SeatNumber,
}

#[derive(DeriveIden)]
enum SeatAssignments {
    Table,
    FlightId,
    SeatNumber,
    Cabin,
    BookingId,
}

#[derive(DeriveIden)]
enum BookingHistory {
    Table,
    Id,
    BookingId,
    FromStatus,
    ToStatus,
    Cause,
    CorrelationId,
    ActorId,
    Note,
    At,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    CallerId,
    Key,
    Method,
    Fingerprint,
    Outcome,
    Stored,
    CreatedAt,
    ExpiresAt,
}
