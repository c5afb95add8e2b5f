use std::time::Duration;

use crate::{
    domain::{booking::Refusal, validation::ValidationError},
    infra::{passes::PassError, payments::ProviderError},
    store::StoreError,
};

/// Why a use case failed. Mapped to the wire contract once, in `api`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Travel documents are missing or invalid for a check-in: each field is named. Like a validation
    /// failure, not stored under the key (the call is made again with the documents).
    #[error("travel documents required: {0}")]
    DocumentsRequired(ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Credentials or a refresh token were not accepted; the message says no more than that.
    #[error("not authenticated: {0}")]
    Unauthorized(&'static str),
    #[error("rate limited; retry in {0:?}")]
    RateLimited(Duration),
    /// A business outcome: nothing changed, and a keyed call stores it for replay.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The booking changed between being read and being written; the call may be retried.
    #[error("the booking was changed by a concurrent call")]
    Conflict,
    /// The idempotency key names a call with another method or request.
    #[error("the idempotency key was used for a different request")]
    KeyReused,
    /// The call holding this idempotency key has not finished yet.
    #[error("a call with this idempotency key is still in progress")]
    KeyInProgress,
    /// A payment for this booking is being processed; its outcome decides what may happen next.
    #[error("a payment is in progress")]
    PaymentInProgress,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The work of a call was lost before it answered (a task died); its effects, if any, are whole.
    #[error("interrupted: {0}")]
    Interrupted(&'static str),
    /// The flight's waiting room is on and the call carried no pass that admits its caller.
    #[error("{why}")]
    WaitingRoomRequired { flight_id: uuid::Uuid, why: PassError },
    /// A shared dependency other than the database (the waiting-room queue in Redis) is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    #[error("password hashing failed: {0}")]
    Hashing(#[from] crate::infra::passwords::PasswordError),
    /// An email was not handed over (background jobs only).
    #[error(transparent)]
    Mail(#[from] crate::infra::mail::MailError),
}

impl From<crate::domain::change::ChangeError> for AppError {
    fn from(error: crate::domain::change::ChangeError) -> Self {
        match error {
            crate::domain::change::ChangeError::Invalid(invalid) => Self::Invalid(invalid),
            crate::domain::change::ChangeError::Refused(refusal) => Self::Refused(refusal),
        }
    }
}
