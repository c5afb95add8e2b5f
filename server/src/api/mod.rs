//! The gRPC surface: one module per proto service, each handler the same shape: convert (and so validate)
//! the request, take the call's context, call one use case, convert the result. Proto types stop here;
//! [`ApiError`] is built from use-case errors here and only here.

pub mod auth;
pub mod convert;
pub mod flights;

use tonic::{Request, Status};

use crate::{
    app::AppError,
    domain::auth::Caller,
    layers::{correlation::CorrelationId, errors::ApiError},
    store::StoreError,
};

/// What a handler knows about the call besides its message.
pub struct CallContext {
    pub correlation_id: CorrelationId,
    /// Set by the policy layer when the call carried a valid access token.
    pub caller: Option<Caller>,
}

impl CallContext {
    pub fn of<T>(request: &Request<T>) -> Self {
        Self {
            correlation_id: CorrelationId::of(request.extensions()),
            caller: request.extensions().get::<Caller>().copied(),
        }
    }

    /// The signed-in caller; the policy layer admits no anonymous call to an RPC that needs one.
    pub fn signed_in(&self) -> Result<Caller, Status> {
        self.caller.ok_or_else(|| self.fail(ApiError::unauthorized("sign in first")))
    }

    /// The wire form of a failure; internal causes are logged (inside the call's span, so with its
    /// correlation id) and never returned.
    pub fn fail(&self, error: impl Into<ApiError>) -> Status {
        error.into().into_status(&self.correlation_id)
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(invalid) => invalid.into(),
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Unauthorized(message) => ApiError::unauthorized(message),
            AppError::RateLimited(wait) => ApiError::rate_limited(wait),
            AppError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::unavailable()
            }
            cause @ (AppError::Store(_) | AppError::Hashing(_)) => {
                tracing::error!(error = %cause, "internal error");
                ApiError::internal()
            }
        }
    }
}
