//! Rust client for Aerobook's gRPC API.
//!
//! One [`Client`] exposes every service of the contract as typed methods: `client.admin()`,
//! `client.airport()`, `client.auth()`, `client.flight()`, `client.booking()`, `client.payment()`,
//! `client.waiting_room()`. Each
//! method returns a [`Call`]; await it for a [`Response`] (the message, its correlation id, whether it was a
//! replay) or an [`ApiError`]. [`local_times`] reads a flight's departure and arrival in each airport's own
//! time zone. [`Client::wait_for_pass`] queues in a flight's waiting room and returns the pass that booking
//! on it needs while the room is enabled.
//!
//! What every call gets, decided by the RPC's options in the proto (`aerobook_proto::rpc_policy`), never by
//! lists in this crate:
//! - an `x-correlation-id` (a new UUIDv7 unless you set one), returned on the response and on the error;
//! - on RPCs that require one, an `idempotency-key`, generated per call unless you set one, and the same on
//!   every repeat of that call, so a repeat never books, charges or refunds twice;
//! - on RPCs that are not public, the session's access token; it is renewed before it expires, or once
//!   after the server answers `TOKEN_EXPIRED`. Concurrent calls share one renewal. `Register`, `Login` and
//!   `RefreshToken` answers become the session, `Logout` ends it; the tokens live in a [`TokenStore`]
//!   ([`MemoryTokenStore`] unless you plug in your own, e.g. the platform keychain);
//! - repeats ([`RetryPolicy`]): of errors the server marks retryable, and of calls that are safe to repeat
//!   (reads, idempotent RPCs, calls with an idempotency key) when the connection failed; with exponential
//!   backoff and jitter, never sooner than the server's `RetryInfo`, at most `max_attempts` in all and never
//!   past the deadline;
//! - a deadline: 30 s by default for unary calls ([`ClientBuilder::timeout`], [`Call::timeout`]), none for
//!   streams unless set. Dropping a call's future cancels it, on the server too.
//!
//! # A booking, start to finish
//!
//! Against a server on its embedded defaults (`cargo run -p aerobook-server`: demo flights, simulated
//! payments); `cargo run -p aerobook-sdk --example booking_flow` runs the same steps.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use aerobook_sdk::{Client, proto};
//!
//! # async fn flow(departure_date: String) -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://127.0.0.1:50051").build()?;
//!
//! // Register: the answer's tokens become the client's session.
//! client
//!     .auth()
//!     .register(proto::RegisterRequest {
//!         email: "layla@example.com".into(),
//!         password: "a long passphrase".into(),
//!         full_name: "Layla Haddad".into(),
//!     })
//!     .await?;
//!
//! // Search, and pick two free seats on the first flight.
//! let found = client
//!     .flight()
//!     .search_flights(proto::SearchFlightsRequest {
//!         origin: "RUH".into(),
//!         destination: "JED".into(),
//!         departure_date, // "YYYY-MM-DD"
//!         passengers: 2,
//!         cabin: proto::CabinClass::Economy.into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! let flight = found.flights.first().ok_or("no flight that day")?;
//! let seat_map = client
//!     .flight()
//!     .get_seat_map(proto::GetSeatMapRequest {
//!         flight_id: flight.id.clone(),
//!         cabin: proto::CabinClass::Economy.into(),
//!     })
//!     .await?;
//! let seats: Vec<String> =
//!     seat_map.seats.iter().filter(|seat| seat.available).take(2).map(|seat| seat.seat_number.clone()).collect();
//!
//! // Hold the seats. The SDK adds the idempotency key; a repeat after a lost answer books once.
//! let passenger = |given: &str| proto::Passenger {
//!     given_name: given.into(),
//!     family_name: "Haddad".into(),
//!     date_of_birth: "1990-04-12".into(),
//!     r#type: proto::PassengerType::Adult.into(),
//! };
//! let hold = client
//!     .booking()
//!     .create_booking(proto::CreateBookingRequest {
//!         flight_id: flight.id.clone(),
//!         cabin: proto::CabinClass::Economy.into(),
//!         passengers: vec![passenger("Layla"), passenger("Omar")],
//!         seat_numbers: seats,
//!         contact_email: "layla@example.com".into(),
//!         ..Default::default()
//!     })
//!     .await?
//!     .into_inner();
//!
//! // Pay. With the simulated provider the payment succeeds on its own; with Stripe the app confirms the
//! // card with `client_secret`. Either way a signed webhook confirms the booking.
//! let payment = client
//!     .payment()
//!     .create_payment_intent(proto::CreatePaymentIntentRequest { booking_id: hold.id.clone() })
//!     .await?;
//! println!("paying {} with {}", hold.reference, payment.provider_reference);
//! let confirmed = loop {
//!     let booking = client.booking().get_booking(proto::GetBookingRequest { booking_id: hold.id.clone() }).await?;
//!     if booking.status() == proto::BookingStatus::Confirmed {
//!         break booking.into_inner();
//!     }
//!     tokio::time::sleep(Duration::from_millis(500)).await;
//! };
//! println!("{} confirmed, seats {:?}", confirmed.reference, confirmed.seat_numbers);
//!
//! // Hold another seat, then cancel it: the seat is released.
//! let second = client
//!     .booking()
//!     .create_booking(proto::CreateBookingRequest {
//!         flight_id: flight.id.clone(),
//!         cabin: proto::CabinClass::Economy.into(),
//!         passengers: vec![passenger("Sami")],
//!         contact_email: "layla@example.com".into(),
//!         ..Default::default()
//!     })
//!     .await?;
//! let cancelled = client
//!     .booking()
//!     .cancel_booking(proto::CancelBookingRequest { booking_id: second.id.clone(), reason: "plans changed".into() })
//!     .await?;
//! assert_eq!(cancelled.status(), proto::BookingStatus::Cancelled);
//!
//! client.sign_out().await?;
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! Match on [`ApiError::code`]; show [`ApiError::message`] with [`ApiError::correlation_id`]:
//!
//! ```no_run
//! # async fn hold(client: aerobook_sdk::Client, request: aerobook_sdk::proto::CreateBookingRequest) {
//! use aerobook_sdk::ErrorCode;
//! match client.booking().create_booking(request).await {
//!     Ok(hold) => println!("held {}", hold.reference),
//!     Err(error) if error.code == ErrorCode::SeatsUnavailable => {
//!         println!("taken: {:?}", error.metadata.get("takenSeats"))
//!     }
//!     Err(error) if error.code == ErrorCode::ValidationError => {
//!         for violation in &error.field_violations {
//!             println!("{violation}");
//!         }
//!     }
//!     Err(error) => println!("{} (quote {} to support)", error.message, error.correlation_id),
//! }
//! # }
//! ```
//!
//! # Layout
//! - `client`: [`Client`], [`ClientBuilder`], and the typed services generated from the proto catalogue.
//! - `call`: one logical call: headers, deadline, renewal, repeats; [`Response`], [`ServerStream`].
//! - `error`: [`ApiError`] decoded from the rich status.
//! - `retry`: [`RetryPolicy`] and the backoff rule.
//! - `session`: [`Tokens`], [`TokenStore`], single-flight renewal.

// `ApiError` carries the contract's fields by value, as tonic's `Status` does; failures are the rare path, and a
// boxed error would show in every signature callers write.
#![allow(clippy::result_large_err)]

mod call;
mod client;
mod error;
mod retry;
mod session;
mod times;
mod waiting_room;

/// The contract's messages and enums (`aerobook.v1`), as the typed methods take and return them.
pub use aerobook_proto::v1 as proto;
pub use call::{Call, Response, ServerStream};
// With the typed service handles (`BookingService`, ...) generated from the catalogue, however many there are.
pub use client::*;
pub use error::{ApiError, ErrorCode, ErrorOrigin, FieldViolation};
pub use retry::RetryPolicy;
pub use session::{MemoryTokenStore, TokenStore, Tokens};
pub use times::{LocalTimeError, LocalTimes, local_times};
pub use waiting_room::{QueueProgress, WaitForPassError, WaitingRoomPass};
