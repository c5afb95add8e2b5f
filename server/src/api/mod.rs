//! The gRPC surface: one module per proto service, each handler the same shape: convert (and so validate)
//! the request, take the call's context, call one use case, convert the result. Proto types stop here;
//! [`ApiError`] is built from use-case errors here and only here.

pub mod admin;
pub mod airports;
pub mod auth;
pub mod bookings;
pub mod check_in;
pub mod convert;
pub mod flights;
pub mod fuzzing;
pub mod metrics;
pub mod payments;
pub mod waiting_rooms;
pub mod webhooks;

use std::collections::HashMap;

use aerobook_proto::v1::ErrorCode;
use tonic::{Request, Response, Status, metadata::MetadataValue};

use crate::{
    app::{
        AppError,
        bookings::Actor,
        idempotency::{KeyedRequest, Outcome},
    },
    domain::{
        auth::Caller,
        booking::{Refusal, TransitionError},
    },
    infra::{passes::PassError, passwords::PasswordError, payments::ProviderError},
    layers::{
        client_address::ClientAddress,
        correlation::CorrelationId,
        errors::ApiError,
        idempotency::{MethodKey, REPLAYED_HEADER},
    },
    store::StoreError,
};

/// What a handler knows about the call besides its message.
pub struct CallContext {
    pub correlation_id: CorrelationId,
    /// Where the call came from (behind trusted proxies, the client they name).
    pub client: ClientAddress,
    /// Set by the policy layer when the call carried a valid access token.
    pub caller: Option<Caller>,
    /// Set by the policy layer on RPCs that require an idempotency key.
    key: Option<MethodKey>,
}

impl CallContext {
    pub fn of<T>(request: &Request<T>) -> Self {
        Self {
            correlation_id: CorrelationId::of(request.extensions()),
            client: ClientAddress::of(request.extensions()),
            caller: request.extensions().get::<Caller>().copied(),
            key: request.extensions().get::<MethodKey>().cloned(),
        }
    }

    /// The signed-in caller; the policy layer admits no anonymous call to an RPC that needs one.
    pub fn signed_in(&self) -> Result<Caller, Status> {
        self.caller.ok_or_else(|| self.fail(ApiError::unauthorized("sign in first")))
    }

    /// The signed-in caller as the actor of a booking change.
    pub fn actor(&self) -> Result<Actor, Status> {
        Ok(Actor { caller: self.signed_in()?, correlation_id: self.correlation_id.to_string() })
    }

    /// The call's idempotency scope: the caller, the key, the method, and the request's fingerprint.
    pub fn keyed(&self, message: &impl prost::Message) -> Result<KeyedRequest, Status> {
        let caller = self.signed_in()?;
        let Some(MethodKey { key, method }) = &self.key else {
            tracing::error!("a keyed use case was called on an RPC whose policy requires no idempotency key");
            return Err(self.fail(ApiError::internal()));
        };
        Ok(KeyedRequest::new(caller.user_id, key.as_str().to_owned(), method, &message.encode_to_vec()))
    }

    /// The response of a keyed call. A replay returns the stored response (or refusal) as it was first
    /// sent, flagged with `idempotent-replayed: true`.
    pub fn keyed_response<T, M: prost::Message + Default>(
        &self,
        outcome: Result<Outcome<T>, AppError>,
        to_proto: impl FnOnce(&T) -> M,
    ) -> Result<Response<M>, Status> {
        let replayed = MetadataValue::from_static("true");
        match outcome {
            Ok(Outcome::Executed(value)) => Ok(Response::new(to_proto(&value))),
            Ok(Outcome::Replayed(Ok(bytes))) => {
                let message = M::decode(bytes.as_slice()).map_err(|error| {
                    tracing::error!(%error, "a stored response does not decode");
                    self.fail(ApiError::internal())
                })?;
                let mut response = Response::new(message);
                response.metadata_mut().insert(REPLAYED_HEADER, replayed);
                Ok(response)
            }
            Ok(Outcome::Replayed(Err(refusal))) => {
                let mut status = self.fail(AppError::Refused(refusal));
                status.metadata_mut().insert(REPLAYED_HEADER, replayed);
                Err(status)
            }
            Err(error) => Err(self.fail(error)),
        }
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
            AppError::DocumentsRequired(missing) => ApiError::naming_fields(
                ErrorCode::DocumentsRequired,
                "travel documents are required for this flight",
                missing.violations,
            ),
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Unauthorized(message) => ApiError::unauthorized(message),
            AppError::RateLimited(wait) => ApiError::rate_limited(wait),
            AppError::Refused(refusal) => refusal.into(),
            AppError::Conflict => ApiError::new(
                ErrorCode::BookingConflict,
                "the booking was changed by another call at the same time; read it and retry",
            ),
            AppError::KeyReused => ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this idempotency key was already used for a different request; use a new key",
            ),
            AppError::KeyInProgress => ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a call with this idempotency key is still running; retry shortly for its result",
            ),
            AppError::PaymentInProgress => ApiError::new(
                ErrorCode::PaymentProcessing,
                "a payment for this booking is being processed; retry once it has settled",
            ),
            AppError::Provider(ProviderError::Timeout) => ApiError::new(
                ErrorCode::ProviderTimeout,
                "the payment provider did not answer in time; retry with the same idempotency key",
            ),
            AppError::Provider(ProviderError::Unavailable(cause)) => {
                tracing::warn!(%cause, "payment provider unavailable");
                ApiError::new(ErrorCode::ProviderError, "the payment provider is unavailable; retry shortly")
            }
            AppError::Provider(ProviderError::Declined { decline_code, message }) => ApiError {
                metadata: HashMap::from([("declineCode".to_owned(), decline_code)]),
                ..ApiError::new(ErrorCode::PaymentFailed, format!("the payment was declined: {message}"))
            },
            AppError::WaitingRoomRequired { flight_id, why } => ApiError {
                metadata: HashMap::from([("flightId".to_owned(), flight_id.to_string())]),
                ..ApiError::new(
                    ErrorCode::WaitingRoomRequired,
                    match why {
                        PassError::Missing => {
                            "this flight's waiting room is on: join it, and book with the pass it gives"
                        }
                        PassError::Expired => "the waiting-room pass expired: join the waiting room again",
                        PassError::Invalid => "the waiting-room pass is not valid for this caller and flight",
                    },
                )
            },
            AppError::Unavailable(what) => {
                tracing::warn!(what, "dependency unavailable");
                ApiError::unavailable()
            }
            AppError::Hashing(PasswordError::Busy) => {
                tracing::info!("password checks at their bound: call shed");
                ApiError::unavailable()
            }
            AppError::Store(cause @ (StoreError::Unavailable(_) | StoreError::LockTimeout(_))) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::unavailable()
            }
            cause @ (AppError::Store(_)
            | AppError::Mail(_)
            | AppError::Hashing(PasswordError::Failed(_))
            | AppError::Interrupted(_)
            | AppError::Provider(ProviderError::Rejected(_))) => {
                tracing::error!(error = %cause, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let with = |error: ApiError, key: &str, value: String| ApiError {
            metadata: HashMap::from([(key.to_owned(), value)]),
            ..error
        };
        match refusal {
            Refusal::SeatsUnavailable { seats_available, taken, flight_id } => {
                let taken: Vec<String> = taken.iter().map(ToString::to_string).collect();
                let message = if taken.is_empty() {
                    format!("not enough seats left: {seats_available} available")
                } else {
                    format!("seats already taken: {}", taken.join(", "))
                };
                let mut error = with(
                    ApiError::new(ErrorCode::SeatsUnavailable, message),
                    "seatsAvailable",
                    seats_available.to_string(),
                );
                if !taken.is_empty() {
                    error.metadata.insert("takenSeats".to_owned(), taken.join(","));
                }
                if let Some(flight_id) = flight_id {
                    error.metadata.insert("flightId".to_owned(), flight_id.to_string());
                }
                error
            }
            Refusal::MaxPerUserExceeded { limit } => with(
                ApiError::new(
                    ErrorCode::MaxPerUserExceeded,
                    format!("you already hold {limit} bookings on this flight; pay for or cancel one first"),
                ),
                "limit",
                limit.to_string(),
            ),
            Refusal::NothingToRefund => ApiError::new(
                ErrorCode::PaymentRequired,
                "this booking was not paid by card, so there is nothing to refund here",
            ),
            Refusal::Transition(TransitionError::Expired) => {
                ApiError::new(ErrorCode::BookingExpired, "the hold has expired and its seats were released")
            }
            Refusal::QuoteExpired => ApiError::new(
                ErrorCode::QuoteExpired,
                "the change quote has expired or no longer fits the booking: ask for a new one",
            ),
            Refusal::CheckInNotOpen { opens_at } => with(
                ApiError::new(
                    ErrorCode::CheckInNotOpen,
                    format!("online check-in for this flight opens at {}", opens_at.to_rfc3339()),
                ),
                "opensAt",
                opens_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            Refusal::CheckInClosed => ApiError::new(
                ErrorCode::CheckInClosed,
                "online check-in for this flight has closed (60 minutes before departure)",
            ),
            Refusal::AlreadyBoarded => ApiError::new(
                ErrorCode::AlreadyBoarded,
                "the passenger has boarded (the boarding pass was scanned): the flight can no longer be boarded \
                     again, changed or refunded",
            ),
            Refusal::JobNotRetryable(state) => job_refused(state, "retried"),
            Refusal::JobNotDiscardable(state) => job_refused(state, "discarded"),
            Refusal::Transition(TransitionError::Invalid { current, action }) => with(
                ApiError::new(
                    ErrorCode::InvalidStateTransition,
                    format!("a {} booking does not allow {}", current.as_str(), action.as_str()),
                ),
                "currentStatus",
                current.as_str().to_owned(),
            ),
        }
    }
}

/// An operator's action on a job that its state does not allow.
fn job_refused(state: crate::domain::job::JobState, verb: &str) -> ApiError {
    let state = admin::job_state_name(state);
    ApiError {
        metadata: HashMap::from([("currentStatus".to_owned(), state.to_owned())]),
        ..ApiError::new(ErrorCode::InvalidStateTransition, format!("a job in {state} cannot be {verb}"))
    }
}
