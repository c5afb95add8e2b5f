//! The unified error contract: one [`ApiError`] shape for every failure, turned into a `google.rpc.Status`
//! with `ErrorInfo`, `RequestInfo`, `RetryInfo` (when retryable) and `BadRequest` (for validation errors).
//!
//! The code table lives in [`grpc_code`] and [`is_retryable`]; it is exhaustive, so a new `ErrorCode` in the
//! proto does not compile until it is mapped.

use std::{collections::HashMap, time::Duration};

use aerobook_proto::v1::ErrorCode;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::correlation::CorrelationId;
use crate::domain::validation::{FieldViolation, ValidationError};

pub const ERROR_DOMAIN: &str = "aerobook";

/// Bytes of a status message, a violation's field name and its description; and of all violations of
/// one error together. Messages may quote what a caller sent, so each part is cut at a character
/// boundary: an error's trailers (the message percent-encoded, the details base64-encoded) stay under
/// 12 KiB, well inside the 16 KiB of metadata a gRPC client accepts, whatever the request held.
const MAX_MESSAGE_BYTES: usize = 512;
const MAX_FIELD_BYTES: usize = 128;
const MAX_DESCRIPTION_BYTES: usize = 256;
const MAX_VIOLATION_BYTES: usize = 6 * 1024;

/// A failure as the caller sees it: a machine-readable code, a short English message for humans (never
/// SQL, stack text or internal names), field violations and extra `ErrorInfo` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub violations: Vec<FieldViolation>,
    /// Extra `ErrorInfo.metadata`, e.g. `seatsAvailable`; `correlationId` and `retryable` are always added.
    pub metadata: HashMap<String, String>,
    /// Overrides the code's default retry delay.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), violations: Vec::new(), metadata: HashMap::new(), retry_after: None }
    }

    pub fn validation(violations: Vec<FieldViolation>) -> Self {
        Self::naming_fields(ErrorCode::ValidationError, "invalid request", violations)
    }

    /// A failure that names the fields to fix: in its `BadRequest` and, after `what`, in its message.
    pub fn naming_fields(code: ErrorCode, what: &str, violations: Vec<FieldViolation>) -> Self {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        let message = format!("{what}: check {}", fields.join(", "));
        Self { violations, ..Self::new(code, message) }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// The generic failure; the cause is logged by the caller, never returned.
    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError, "internal error; quote the correlation id to support")
    }

    pub fn unavailable() -> Self {
        Self::new(ErrorCode::ServiceUnavailable, "service temporarily unavailable; retry shortly")
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn token_expired() -> Self {
        Self::new(ErrorCode::TokenExpired, "the access token expired; refresh it and retry")
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "your role may not make this call")
    }

    pub fn rate_limited(wait: Duration) -> Self {
        let seconds = wait.as_secs_f64().ceil().max(1.0);
        Self {
            retry_after: Some(wait),
            ..Self::new(ErrorCode::RateLimited, format!("too many calls; retry in {seconds} s"))
        }
    }

    pub fn deadline_exceeded(deadline: Duration) -> Self {
        Self::new(ErrorCode::DeadlineExceeded, format!("the call did not finish within {} ms", deadline.as_millis()))
    }

    /// The wire form. `x-correlation-id` itself is added to the response headers by the correlation layer.
    pub fn into_status(self, correlation_id: &CorrelationId) -> Status {
        let (grpc_code, default_retry_delay) = wire(self.code);
        let retryable = default_retry_delay.is_some();
        let mut metadata = self.metadata;
        metadata.insert("correlationId".to_owned(), correlation_id.to_string());
        metadata.insert("retryable".to_owned(), retryable.to_string());
        let mut details = ErrorDetails::new();
        details.set_error_info(reason(self.code), ERROR_DOMAIN, metadata).set_request_info(correlation_id.as_str(), "");
        if retryable {
            details.set_retry_info(self.retry_after.or(default_retry_delay));
        }
        let mut budget = MAX_VIOLATION_BYTES;
        for violation in self.violations {
            let field = cut(violation.field, MAX_FIELD_BYTES);
            let description = cut(violation.description, MAX_DESCRIPTION_BYTES);
            let Some(left) = budget.checked_sub(field.len() + description.len()) else { break };
            budget = left;
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(grpc_code, cut(self.message, MAX_MESSAGE_BYTES), details)
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::validation(error.violations)
    }
}

/// `text` cut to at most `max_bytes` (at a character boundary, ending in "..." when cut).
fn cut(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// `ErrorInfo.reason`: the enum value's name without its `ERROR_CODE_` prefix.
pub fn reason(code: ErrorCode) -> &'static str {
    let code = if code == ErrorCode::Unspecified { ErrorCode::InternalError } else { code };
    code.as_str_name().trim_start_matches("ERROR_CODE_")
}

/// How each error code goes on the wire, one row per code as in the contract's table: its gRPC status code
/// and, when a repeat of the same call may succeed, the default `RetryInfo` delay (none: not retryable).
fn wire(code: ErrorCode) -> (Code, Option<Duration>) {
    use ErrorCode as E;
    const SOON: Duration = Duration::from_secs(1);
    const PROVIDER: Duration = Duration::from_secs(2);
    match code {
        E::ValidationError => (Code::InvalidArgument, None),
        E::Unauthorized => (Code::Unauthenticated, None),
        E::TokenExpired => (Code::Unauthenticated, None),
        E::Forbidden => (Code::PermissionDenied, None),
        E::NotFound => (Code::NotFound, None),
        E::RateLimited => (Code::ResourceExhausted, Some(SOON)),
        E::IdempotencyInProgress => (Code::Aborted, Some(Duration::from_millis(500))),
        E::IdempotencyConflict => (Code::FailedPrecondition, None),
        E::BookingConflict => (Code::Aborted, Some(Duration::from_millis(100))),
        E::SeatsUnavailable => (Code::FailedPrecondition, None),
        E::BookingExpired => (Code::FailedPrecondition, None),
        E::InvalidStateTransition => (Code::FailedPrecondition, None),
        E::MaxPerUserExceeded => (Code::FailedPrecondition, None),
        E::WaitingRoomRequired => (Code::FailedPrecondition, None),
        E::QuoteExpired | E::CheckInNotOpen | E::CheckInClosed | E::DocumentsRequired | E::AlreadyBoarded => {
            (Code::FailedPrecondition, None)
        }
        E::PaymentFailed => (Code::FailedPrecondition, None),
        E::PaymentRequired => (Code::FailedPrecondition, None),
        E::PaymentProcessing => (Code::Aborted, Some(PROVIDER)),
        E::ProviderError => (Code::Unavailable, Some(PROVIDER)),
        E::ProviderTimeout => (Code::Unavailable, Some(PROVIDER)),
        E::InternalError | E::Unspecified => (Code::Internal, None),
        E::ServiceUnavailable => (Code::Unavailable, Some(SOON)),
        E::DeadlineExceeded => (Code::DeadlineExceeded, Some(SOON)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's table, restated independently of the match above: (reason, gRPC code, retryable).
    const CONTRACT: &[(&str, Code, bool)] = &[
        ("VALIDATION_ERROR", Code::InvalidArgument, false),
        ("UNAUTHORIZED", Code::Unauthenticated, false),
        ("TOKEN_EXPIRED", Code::Unauthenticated, false),
        ("FORBIDDEN", Code::PermissionDenied, false),
        ("NOT_FOUND", Code::NotFound, false),
        ("RATE_LIMITED", Code::ResourceExhausted, true),
        ("IDEMPOTENCY_IN_PROGRESS", Code::Aborted, true),
        ("IDEMPOTENCY_CONFLICT", Code::FailedPrecondition, false),
        ("BOOKING_CONFLICT", Code::Aborted, true),
        ("SEATS_UNAVAILABLE", Code::FailedPrecondition, false),
        ("BOOKING_EXPIRED", Code::FailedPrecondition, false),
        ("INVALID_STATE_TRANSITION", Code::FailedPrecondition, false),
        ("MAX_PER_USER_EXCEEDED", Code::FailedPrecondition, false),
        ("WAITING_ROOM_REQUIRED", Code::FailedPrecondition, false),
        ("QUOTE_EXPIRED", Code::FailedPrecondition, false),
        ("CHECK_IN_NOT_OPEN", Code::FailedPrecondition, false),
        ("CHECK_IN_CLOSED", Code::FailedPrecondition, false),
        ("DOCUMENTS_REQUIRED", Code::FailedPrecondition, false),
        ("ALREADY_BOARDED", Code::FailedPrecondition, false),
        ("PAYMENT_FAILED", Code::FailedPrecondition, false),
        ("PAYMENT_REQUIRED", Code::FailedPrecondition, false),
        ("PAYMENT_PROCESSING", Code::Aborted, true),
        ("PROVIDER_ERROR", Code::Unavailable, true),
        ("PROVIDER_TIMEOUT", Code::Unavailable, true),
        ("INTERNAL_ERROR", Code::Internal, false),
        ("SERVICE_UNAVAILABLE", Code::Unavailable, true),
        ("DEADLINE_EXCEEDED", Code::DeadlineExceeded, true),
    ];

    #[test]
    fn every_error_code_maps_exactly_as_the_contract_says() {
        let correlation = CorrelationId::generate();
        let mut seen = 0;
        for number in 1.. {
            let Ok(code) = ErrorCode::try_from(number) else {
                break;
            };
            let (expected_reason, expected_code, expected_retryable) = CONTRACT
                .iter()
                .find(|row| row.0 == reason(code))
                .copied()
                .unwrap_or_else(|| panic!("{code:?} not in the contract table"));
            let status = ApiError::new(code, "message").into_status(&correlation);
            assert_eq!(status.code(), expected_code, "{expected_reason}");
            let details = status.get_error_details();
            let info = details.error_info().expect("ErrorInfo");
            assert_eq!((info.reason.as_str(), info.domain.as_str()), (expected_reason, ERROR_DOMAIN));
            assert_eq!(info.metadata["correlationId"], correlation.as_str());
            assert_eq!(info.metadata["retryable"], expected_retryable.to_string());
            assert_eq!(details.request_info().expect("RequestInfo").request_id, correlation.as_str());
            assert_eq!(
                details.retry_info().is_some(),
                expected_retryable,
                "{expected_reason}: RetryInfo iff retryable"
            );
            seen += 1;
        }
        assert_eq!(seen, CONTRACT.len(), "every contract code exists in the proto enum");
    }

    #[test]
    fn validation_errors_carry_every_field_violation() {
        let error = ApiError::validation(vec![
            FieldViolation { field: "origin".into(), description: "bad".into() },
            FieldViolation { field: "passengers".into(), description: "worse".into() },
        ]);
        let status = error.into_status(&CorrelationId::generate());
        assert_eq!(status.message(), "invalid request: check origin, passengers");
        let violations = status.get_error_details().bad_request().expect("BadRequest").field_violations.clone();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["origin", "passengers"]);
    }

    #[test]
    fn an_error_stays_small_whatever_it_quotes() {
        let huge = "é\u{0}".repeat(35_000);
        let violations = (0..crate::domain::validation::MAX_VIOLATIONS)
            .map(|i| FieldViolation { field: format!("{i}{huge}"), description: huge.clone() })
            .collect();
        let mut error = ApiError::validation(violations);
        error.message = huge.clone();
        let status = error.into_status(&CorrelationId::generate());
        let response = status.clone().into_http::<String>();
        let bytes: usize = response.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
        assert!(bytes < 12 * 1024, "{bytes} bytes of trailers");
        let violations = status.get_error_details().bad_request().expect("BadRequest").field_violations.clone();
        assert!(!violations.is_empty());
        assert!(violations.iter().all(|v| v.field.len() <= MAX_FIELD_BYTES && v.description.ends_with("...")));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn explicit_retry_delays_and_metadata_are_kept() {
        let mut error = ApiError::new(ErrorCode::RateLimited, "slow down");
        error.retry_after = Some(Duration::from_secs(7));
        error.metadata.insert("limit".into(), "search".into());
        let status = error.into_status(&CorrelationId::generate());
        let details = status.get_error_details();
        assert_eq!(details.retry_info().unwrap().retry_delay, Some(Duration::from_secs(7)));
        assert_eq!(details.error_info().unwrap().metadata["limit"], "search");
    }
}
