//! sea-orm entities: one module per table, mirroring `migrations/`.

pub mod airport;
pub mod booking;
pub mod booking_history;
pub mod booking_passenger;
pub mod booking_segment;
pub mod change_quote;
pub mod check_in_sequence;
pub mod flight;
pub mod flight_cabin;
pub mod idempotency_key;
pub mod outbox_job;
pub mod payment;
pub mod payment_refund;
pub mod pending_change;
pub mod provider_event;
pub mod refresh_token;
pub mod seat_assignment;
pub mod sent_email;
pub mod ticket;
pub mod travel_document;
pub mod user;
pub mod waiting_room;
