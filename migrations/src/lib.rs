//! Aerobook's schema, as sea-orm migrations that run unchanged on SQLite and PostgreSQL.
//!
//! Applied on server start-up and by `aerobook-server migrate`. A migration that has landed is never
//! edited: add a new one.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_flight_catalogue;
mod m20261121_000002_accounts;
mod m20261121_000003_bookings;
mod m20261121_000004_payments;
mod m20261130_000005_world_airports;
mod m20261130_000006_refund_attempts;
mod m20261130_000007_waiting_rooms;
mod m20261201_000008_job_trace_context;
mod m20261201_000009_booking_events_and_jobs;
mod m20261206_000010_refresh_session_deadline;
mod m20261206_000011_idempotency_key_scope;
mod m20261206_000012_cabin_taken_seats;
mod m20261207_000013_booking_segments;
mod m20261207_000014_flight_changes;
mod m20261207_000015_change_payments;
mod m20261208_000016_tickets;
mod m20261209_000017_check_in;

pub use m20261130_000005_world_airports::{AIRPORTS_TSV, parse as parse_airports};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_flight_catalogue::Migration),
            Box::new(m20261121_000002_accounts::Migration),
            Box::new(m20261121_000003_bookings::Migration),
            Box::new(m20261121_000004_payments::Migration),
            Box::new(m20261130_000005_world_airports::Migration),
            Box::new(m20261130_000006_refund_attempts::Migration),
            Box::new(m20261130_000007_waiting_rooms::Migration),
            Box::new(m20261201_000008_job_trace_context::Migration),
            Box::new(m20261201_000009_booking_events_and_jobs::Migration),
            Box::new(m20261206_000010_refresh_session_deadline::Migration),
            Box::new(m20261206_000011_idempotency_key_scope::Migration),
            Box::new(m20261206_000012_cabin_taken_seats::Migration),
            Box::new(m20261207_000013_booking_segments::Migration),
            Box::new(m20261207_000014_flight_changes::Migration),
            Box::new(m20261207_000015_change_payments::Migration),
            Box::new(m20261208_000016_tickets::Migration),
            Box::new(m20261209_000017_check_in::Migration),
        ]
    }
}
