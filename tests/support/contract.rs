//! The error contract as a test reads it: every failure's rich status, decoded and checked.

use std::time::Duration;

use tonic::Status;
use tonic_types::StatusExt as _;

/// The parts of the error contract a test checks, decoded from a failed call.
#[derive(Debug)]
pub struct ContractError {
    pub code: tonic::Code,
    pub reason: String,
    pub message: String,
    pub correlation_id: String,
    pub retryable: bool,
    pub request_id: String,
    pub has_retry_info: bool,
    pub retry_delay: Option<Duration>,
    pub fields: Vec<String>,
    pub metadata: std::collections::HashMap<String, String>,
}

impl ContractError {
    /// Decodes the rich status, asserting the invariants every failure must hold: exactly one ErrorInfo in
    /// the `aerobook` domain, RequestInfo = correlation id, RetryInfo iff retryable.
    pub fn from_status(status: &Status) -> Self {
        let details = status.check_error_details().expect("grpc-status-details-bin decodes");
        let info = details.error_info().expect("ErrorInfo present");
        assert_eq!(info.domain, "aerobook");
        let correlation_id = info.metadata.get("correlationId").cloned().expect("correlationId in ErrorInfo");
        let retryable = info.metadata.get("retryable").map(String::as_str) == Some("true");
        let request_id = details.request_info().expect("RequestInfo present").request_id.clone();
        assert_eq!(request_id, correlation_id, "RequestInfo.request_id is the correlation id");
        let has_retry_info = details.retry_info().is_some();
        assert_eq!(has_retry_info, retryable, "RetryInfo exactly when retryable");
        let error_infos = status
            .get_error_details_vec()
            .iter()
            .filter(|d| matches!(d, tonic_types::ErrorDetail::ErrorInfo(_)))
            .count();
        assert_eq!(error_infos, 1, "exactly one ErrorInfo");
        Self {
            code: status.code(),
            reason: info.reason.clone(),
            message: status.message().to_owned(),
            correlation_id,
            retryable,
            request_id,
            has_retry_info,
            retry_delay: details.retry_info().and_then(|r| r.retry_delay),
            fields: details
                .bad_request()
                .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
                .unwrap_or_default(),
            metadata: info.metadata.clone(),
        }
    }

    /// A `VALIDATION_ERROR` naming exactly `fields`.
    pub fn assert_validation(&self, fields: &[&str]) {
        assert_eq!((self.code, self.reason.as_str()), (tonic::Code::InvalidArgument, "VALIDATION_ERROR"), "{self:?}");
        assert_eq!(self.fields, fields, "{self:?}");
        assert!(!self.retryable);
    }
}
