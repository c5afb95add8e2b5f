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
