//! A booking is one or more flights, its segments: `booking_segments` has one row per flight of a booking,
//! in travel order, with the cabin, the party's seats on it (in passenger order) and its price for the
//! whole party. The booking's own `flight_id` and `cabin` stay those of its first segment, as the contract's
//! single-flight fields do. The segment rows carry the booking's user, so a user's live holds on a flight
//! are counted through one index whichever segment of a booking the flight is.
//!
//! Every booking before this migration is a single flight: it gets one segment, priced at its total, with
//! its passengers' seats.

use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BookingSegments::Table)
                    .col(uuid(BookingSegments::BookingId))
                    .col(small_integer(BookingSegments::Position))
                    .col(uuid(BookingSegments::UserId))
                    .col(uuid(BookingSegments::FlightId))
                    .col(string_len(BookingSegments::Cabin, 16))
                    .col(text(BookingSegments::SeatNumbers))
                    .col(string_len(BookingSegments::CurrencyCode, 3))
                    .col(big_integer(BookingSegments::PriceAmountMinor))
                    .primary_key(Index::create().col(BookingSegments::BookingId).col(BookingSegments::Position))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_booking_segments_booking")
                            .from(BookingSegments::Table, BookingSegments::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_booking_segments_flight")
                            .from(BookingSegments::Table, BookingSegments::FlightId)
                            .to(Flights::Table, Flights::Id),
                    )
                    .check(Expr::col(BookingSegments::Position).between(0, 5))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("ix_booking_segments_user_flight", [BookingSegments::UserId, BookingSegments::FlightId]),
            ("ix_booking_segments_flight", [BookingSegments::FlightId, BookingSegments::BookingId]),
        ] {
            let mut index = Index::create().name(name).table(BookingSegments::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        // One statement whatever the number of bookings; the seats in passenger order.
        let seats_in_order = match manager.get_database_backend() {
            DbBackend::Postgres => "string_agg(p.seat_number, ',' ORDER BY p.position)",
            _ => "group_concat(p.seat_number, ',' ORDER BY p.position)",
        };
        let backfill = format!(
            "INSERT INTO booking_segments (booking_id, position, user_id, flight_id, cabin, seat_numbers, \
             currency_code, price_amount_minor) \
             SELECT b.id, 0, b.user_id, b.flight_id, b.cabin, \
             COALESCE((SELECT {seats_in_order} FROM booking_passengers p WHERE p.booking_id = b.id), ''), \
             b.currency_code, b.total_amount_minor FROM bookings b"
        );
        manager.get_connection().execute_unprepared(&backfill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BookingSegments::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone)]
enum BookingSegments {
    Table,
    BookingId,
    Position,
    UserId,
    FlightId,
    Cabin,
    SeatNumbers,
    CurrencyCode,
    PriceAmountMinor,
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
