#![doc = include_str!("../README.md")]
// `ApiError` carries the contract's fields by value, as tonic's `Status` does; failures are the rare path, and a
// boxed error would show in every signature callers write.
#![allow(clippy::result_large_err)]

mod call;
mod client;
mod connection;
mod error;
mod retry;
mod session;
mod times;
mod waiting_room;

/// A boarding pass's barcode string (`BoardingPass.bcbp`) read back into its fields: `Bcbp::decode`.
pub use aerobook_proto::bcbp::{Bcbp, BcbpError};
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
