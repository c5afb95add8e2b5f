//! Background jobs that run inside the server process.

pub mod outbox;
pub mod reconciler;
pub mod sweeper;
