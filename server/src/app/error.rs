use crate::{domain::validation::ValidationError, store::StoreError};

/// Why a use case failed. Mapped to the wire contract once, in `api`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}
