//! Use cases. Each public method is one thing a caller can do; it owns its transaction and talks to the
//! store and infrastructure. Knows nothing of tonic or proto types.

pub mod accounts;
pub mod admin;
pub mod airports;
pub mod bookings;
pub mod check_in;
pub mod error;
pub mod flights;
pub mod idempotency;
pub mod invariants;
pub mod job;
pub mod notifications;
pub mod outbox;
pub mod payments;
pub mod retention;
pub mod streams;
pub mod waiting_rooms;

pub use error::AppError;

/// The connection for a read that may lag the primary (a fresh replica, else the primary), counted by where
/// it went (`aerobook_database_reads_total{target}`).
fn lagging_read(store: &crate::store::Store) -> &sea_orm::DatabaseConnection {
    let (connection, replica) = store.lagging_reads();
    let target = opentelemetry::KeyValue::new("target", if replica { "replica" } else { "primary" });
    crate::infra::metrics::metrics().database_reads.add(1, &[target]);
    connection
}
