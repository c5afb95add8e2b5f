use std::time::Duration;

use crate::{domain::validation::ValidationError, store::StoreError};

/// Why a use case failed. Mapped to the wire contract once, in `api`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Credentials or a refresh token were not accepted; the message says no more than that.
    #[error("not authenticated: {0}")]
    Unauthorized(&'static str),
    #[error("rate limited; retry in {0:?}")]
    RateLimited(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(#[from] crate::infra::passwords::PasswordError),
}
