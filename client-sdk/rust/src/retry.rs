//! When the SDK repeats a failed call, and how long it waits first.

use std::time::Duration;

use crate::error::{ApiError, ErrorOrigin};

/// How often, and how patiently, a call is repeated. Repeats happen only when the server says the error is
/// retryable, or when the connection failed on a call that is safe to repeat (a read, an idempotent RPC, or a
/// call carrying an idempotency key, which every repeat sends again). They are bounded by `max_attempts` and
/// by the call's deadline: the SDK never waits past it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The backoff before the first repeat; it doubles after each one, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Never repeats a call.
    pub fn never() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// How long to wait before repeating a call after its `failures`-th failed attempt (1 for the first), or
    /// `None` when it must not be repeated. `jitter` in `[0, 1)` spreads repeats of many clients: the wait is
    /// between half and all of the exponential backoff, and never shorter than the server's `RetryInfo`.
    pub(crate) fn delay_after(
        &self,
        failures: u32,
        error: &ApiError,
        safe_to_repeat: bool,
        time_left: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        let repeatable = match error.origin {
            ErrorOrigin::Server => error.retryable,
            ErrorOrigin::Protocol | ErrorOrigin::Transport => error.retryable && safe_to_repeat,
            ErrorOrigin::Client => false,
        };
        if !repeatable || failures >= self.max_attempts {
            return None;
        }
        let exponent = failures.saturating_sub(1).min(16);
        let backoff = self.initial_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        let delay = backoff.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0).max(error.retry_after.unwrap_or_default());
        match time_left {
            Some(left) if delay >= left => None,
            _ => Some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic::Code;

    use super::*;
    use crate::error::ErrorCode;

    fn error(origin: ErrorOrigin, retryable: bool, retry_after: Option<Duration>) -> ApiError {
        ApiError {
            code: ErrorCode::ServiceUnavailable,
            message: String::new(),
            correlation_id: String::new(),
            retryable,
            retry_after,
            field_violations: Vec::new(),
            metadata: HashMap::new(),
            origin,
            status_code: Code::Unavailable,
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_stops_at_max_attempts() {
        let policy = RetryPolicy::default();
        let retryable = error(ErrorOrigin::Server, true, None);
        assert_eq!(policy.delay_after(1, &retryable, false, None, 0.0), Some(50 * MS));
        assert_eq!(policy.delay_after(1, &retryable, false, None, 1.0), Some(100 * MS));
        assert_eq!(policy.delay_after(3, &retryable, false, None, 1.0), Some(400 * MS));
        assert_eq!(policy.delay_after(4, &retryable, false, None, 0.5), None, "4 attempts in all");
        let long = RetryPolicy { max_attempts: 40, ..policy };
        assert_eq!(long.delay_after(30, &retryable, false, None, 1.0), Some(Duration::from_secs(5)), "capped");
        assert_eq!(RetryPolicy::never().delay_after(1, &retryable, true, None, 0.5), None);
    }

    #[test]
    fn the_servers_retry_info_is_a_floor_and_the_deadline_a_ceiling() {
        let policy = RetryPolicy::default();
        let rate_limited = error(ErrorOrigin::Server, true, Some(Duration::from_millis(1200)));
        assert_eq!(policy.delay_after(1, &rate_limited, false, None, 0.9), Some(1200 * MS));
        assert_eq!(policy.delay_after(1, &rate_limited, false, Some(Duration::from_secs(1)), 0.9), None);
        assert_eq!(policy.delay_after(1, &rate_limited, false, Some(Duration::from_secs(2)), 0.9), Some(1200 * MS));
    }

    #[test]
    fn only_retryable_errors_and_safe_calls_after_transport_failures_are_repeated() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_after(1, &error(ErrorOrigin::Server, false, None), true, None, 0.0), None);
        let lost = error(ErrorOrigin::Transport, true, None);
        assert!(policy.delay_after(1, &lost, true, None, 0.0).is_some());
        assert_eq!(policy.delay_after(1, &lost, false, None, 0.0), None, "a login may have happened");
        assert_eq!(policy.delay_after(1, &error(ErrorOrigin::Client, true, None), true, None, 0.0), None);
    }
}
