//! Pure business rules: value types that validate in their constructors, flight layouts, pagination.
//!
//! No I/O here, and no knowledge of tonic, sea-orm or Redis: everything is unit-tested in place.

pub mod auth;
pub mod flight;
pub mod money;
pub mod pagination;
pub mod search;
pub mod validation;
