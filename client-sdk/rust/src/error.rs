//! [`ApiError`]: every failed call, decoded from the contract's rich status (`google.rpc.ErrorInfo`,
//! `RequestInfo`, `RetryInfo`, `BadRequest`), or built from a status without those details (a lost
//! connection, a proxy, a gRPC protocol limit) so callers always switch on one [`ErrorCode`].

use std::{collections::HashMap, fmt, time::Duration};

pub use aerobook_proto::v1::ErrorCode;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// `ErrorInfo.domain` of Aerobook's errors.
const ERROR_DOMAIN: &str = "aerobook";
/// Response header the server echoes the correlation id in.
pub(crate) const CORRELATION_HEADER: &str = "x-correlation-id";

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message} (correlation id {correlation_id})", reason = reason(*.code))]
pub struct ApiError {
    /// What went wrong, as the contract names it.
    pub code: ErrorCode,
    /// Short English for humans; show it with the correlation id.
    pub message: String,
    /// Quote it to support: the server logs every call under it. For calls that never reached the server,
    /// the id the SDK sent.
    pub correlation_id: String,
    /// Whether the same call may succeed if repeated (the SDK already retried it within its policy).
    pub retryable: bool,
    /// The server's `RetryInfo`: wait at least this long before repeating.
    pub retry_after: Option<Duration>,
    /// For `VALIDATION_ERROR`: which fields (proto paths such as `passengers[1].given_name`, or
    /// `idempotency-key`) and why.
    pub field_violations: Vec<FieldViolation>,
    /// `ErrorInfo.metadata`, e.g. `seatsAvailable`, `currentStatus`, `declineCode`; it includes
    /// `correlationId` and `retryable`.
    pub metadata: HashMap<String, String>,
    /// Where the error was decided.
    pub origin: ErrorOrigin,
    /// The gRPC status code the call ended with.
    pub status_code: Code,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Where an [`ApiError`] was decided, which tells whether the server acted on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// Aerobook answered with the error contract: the code is exactly the server's.
    Server,
    /// A gRPC status without the contract's details, from the gRPC stack or a proxy in between (an oversized
    /// message, an unknown method, a gateway error); the code is inferred from the gRPC status code.
    Protocol,
    /// The connection failed: refused, reset, or closed before the answer (`SERVICE_UNAVAILABLE`). The server
    /// may or may not have acted; the SDK repeats only calls that are safe to repeat.
    Transport,
    /// The SDK ended the call: its deadline passed (`DEADLINE_EXCEEDED`), or a caller-supplied header was not
    /// valid metadata (`VALIDATION_ERROR`).
    Client,
}

impl ApiError {
    /// Decodes a status from any Aerobook call, including calls made with the raw tonic clients of
    /// `aerobook-proto`.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let header_id =
            || status.metadata().get(CORRELATION_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let Some(info) = details.error_info().filter(|info| info.domain == ERROR_DOMAIN) else {
            return Self::without_details(status, header_id());
        };
        let code = ErrorCode::from_str_name(&format!("ERROR_CODE_{}", info.reason)).unwrap_or(ErrorCode::Unspecified);
        let correlation_id = info
            .metadata
            .get("correlationId")
            .cloned()
            .or_else(|| details.request_info().map(|request| request.request_id.clone()))
            .filter(|id| !id.is_empty())
            .unwrap_or_else(header_id);
        let retry_after = details.retry_info().and_then(|retry| retry.retry_delay);
        let retryable = info.metadata.get("retryable").map_or(retry_after.is_some(), |flag| flag == "true");
        let field_violations = details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|v| FieldViolation { field: v.field.clone(), description: v.description.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            code,
            message: status.message().to_owned(),
            correlation_id,
            retryable,
            retry_after,
            field_violations,
            metadata: info.metadata.clone(),
            origin: ErrorOrigin::Server,
            status_code: status.code(),
        }
    }

    /// The error of a call that sent `correlation_id`, which stands in when the answer carries none.
    pub(crate) fn from_call(status: &Status, correlation_id: &str) -> Self {
        let mut error = Self::from_status(status);
        if error.correlation_id.is_empty() {
            correlation_id.clone_into(&mut error.correlation_id);
        }
        error
    }

    /// A status without Aerobook's details. tonic attaches the underlying error as the source of statuses it
    /// makes for failed connections; statuses read off the wire have none.
    fn without_details(status: &Status, correlation_id: String) -> Self {
        let (origin, code) = if std::error::Error::source(status).is_some() {
            (ErrorOrigin::Transport, ErrorCode::ServiceUnavailable)
        } else {
            (ErrorOrigin::Protocol, code_of_plain_status(status.code()))
        };
        Self {
            code,
            message: status.message().to_owned(),
            correlation_id,
            retryable: matches!(code, ErrorCode::ServiceUnavailable | ErrorCode::RateLimited),
            retry_after: None,
            field_violations: Vec::new(),
            metadata: HashMap::new(),
            origin,
            status_code: status.code(),
        }
    }

    /// The call's deadline passed before it finished.
    pub(crate) fn deadline_exceeded(correlation_id: &str, timeout: Duration) -> Self {
        Self::client(
            ErrorCode::DeadlineExceeded,
            Code::DeadlineExceeded,
            format!("the call did not finish within its {} ms deadline", timeout.as_millis()),
            correlation_id,
        )
    }

    /// A caller-supplied header that cannot be sent as gRPC metadata.
    pub(crate) fn invalid_header(header: &str, correlation_id: &str) -> Self {
        Self {
            field_violations: vec![FieldViolation {
                field: header.to_owned(),
                description: "must be visible ASCII".to_owned(),
            }],
            ..Self::client(
                ErrorCode::ValidationError,
                Code::InvalidArgument,
                format!("invalid request: check {header}"),
                correlation_id,
            )
        }
    }

    fn client(code: ErrorCode, status_code: Code, message: String, correlation_id: &str) -> Self {
        Self {
            code,
            message,
            correlation_id: correlation_id.to_owned(),
            retryable: false,
            retry_after: None,
            field_violations: Vec::new(),
            metadata: HashMap::new(),
            origin: ErrorOrigin::Client,
            status_code,
        }
    }

    /// The contract's name of the code, e.g. `SEATS_UNAVAILABLE`.
    pub fn reason(&self) -> &'static str {
        reason(self.code)
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

fn reason(code: ErrorCode) -> &'static str {
    code.as_str_name().trim_start_matches("ERROR_CODE_")
}

/// The contract code closest to a bare gRPC status code, following the contract's own table.
fn code_of_plain_status(code: Code) -> ErrorCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorCode::ValidationError,
        Code::Unauthenticated => ErrorCode::Unauthorized,
        Code::PermissionDenied => ErrorCode::Forbidden,
        Code::NotFound => ErrorCode::NotFound,
        Code::ResourceExhausted => ErrorCode::RateLimited,
        Code::Unavailable => ErrorCode::ServiceUnavailable,
        Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => ErrorCode::InternalError,
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    /// A status shaped as the server shapes one (see the server's `layers::errors`).
    fn server_status(code: ErrorCode, grpc: Code, retryable: bool) -> Status {
        let mut details = ErrorDetails::new();
        let metadata = HashMap::from([
            ("correlationId".to_owned(), "corr-1".to_owned()),
            ("retryable".to_owned(), retryable.to_string()),
            ("seatsAvailable".to_owned(), "0".to_owned()),
        ]);
        details.set_error_info(reason(code), ERROR_DOMAIN, metadata).set_request_info("corr-1", "");
        if retryable {
            details.set_retry_info(Some(Duration::from_millis(1500)));
        }
        Status::with_error_details(grpc, "refused", details)
    }

    #[test]
    fn every_contract_code_decodes_from_its_reason() {
        let codes = (1..)
            .map_while(|number| ErrorCode::try_from(number).ok())
            .filter(|code| *code != ErrorCode::Unspecified)
            .collect::<Vec<_>>();
        assert!(codes.len() >= 22, "the contract lists 22 codes, found {}", codes.len());
        for code in codes {
            let retryable = code as i32 % 2 == 0;
            let error = ApiError::from_status(&server_status(code, Code::FailedPrecondition, retryable));
            assert_eq!(error.code, code);
            assert_eq!((error.origin, error.retryable), (ErrorOrigin::Server, retryable));
            assert_eq!(error.correlation_id, "corr-1");
            assert_eq!(error.retry_after, retryable.then_some(Duration::from_millis(1500)));
            assert_eq!(error.metadata["seatsAvailable"], "0");
        }
    }

    #[test]
    fn field_violations_and_display() {
        let mut details = ErrorDetails::new();
        details
            .set_error_info("VALIDATION_ERROR", ERROR_DOMAIN, HashMap::from([("retryable".into(), "false".into())]))
            .set_request_info("corr-2", "")
            .add_bad_request_violation("passengers[1].given_name", "must not be empty");
        let error = ApiError::from_status(&Status::with_error_details(Code::InvalidArgument, "invalid", details));
        assert_eq!(error.correlation_id, "corr-2", "RequestInfo stands in for the metadata");
        assert_eq!(error.field_violations[0].field, "passengers[1].given_name");
        assert_eq!(error.to_string(), "VALIDATION_ERROR: invalid (correlation id corr-2)");
    }

    #[test]
    fn statuses_without_details_fall_back_on_the_grpc_code() {
        let mut plain = Status::resource_exhausted("message too large");
        plain.metadata_mut().insert(CORRELATION_HEADER, "from-header".parse().expect("ascii"));
        let error = ApiError::from_call(&plain, "sent");
        assert_eq!((error.code, error.origin), (ErrorCode::RateLimited, ErrorOrigin::Protocol));
        assert_eq!(error.correlation_id, "from-header");

        let unknown = ApiError::from_call(&Status::unimplemented("no such method"), "sent");
        assert_eq!((unknown.code, unknown.retryable), (ErrorCode::InternalError, false));
        assert_eq!(unknown.correlation_id, "sent");

        let foreign = Status::with_error_details(
            Code::Unavailable,
            "gateway",
            ErrorDetails::with_error_info("UPSTREAM", "proxy.example", HashMap::new()),
        );
        let foreign = ApiError::from_call(&foreign, "sent");
        assert_eq!((foreign.code, foreign.retryable), (ErrorCode::ServiceUnavailable, true), "other domains ignored");
    }

    #[test]
    fn statuses_with_a_source_are_transport_failures() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let status = Status::from_error(Box::new(cause));
        let error = ApiError::from_call(&status, "sent");
        assert_eq!(
            (error.origin, error.code, error.retryable),
            (ErrorOrigin::Transport, ErrorCode::ServiceUnavailable, true)
        );
    }
}
