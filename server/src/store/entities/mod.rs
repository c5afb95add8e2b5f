//! sea-orm entities: one module per table, mirroring `migrations/`.

pub mod airport;
pub mod flight;
pub mod flight_cabin;
pub mod refresh_token;
pub mod user;
