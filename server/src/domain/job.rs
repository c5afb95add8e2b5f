//! Background jobs' life cycle and retry rules.

use chrono::TimeDelta;

string_enum!(
    /// Where a job is: waiting, held by a worker, waiting for a retry, out of attempts, finished, or set
    /// aside by an operator.
    JobState {
        Queued => "queued",
        Running => "running",
        Failed => "failed",
        Dead => "dead",
        Done => "done",
        Discarded => "discarded",
    }
);

impl JobState {
    /// The states an operator may retry a job from (a running job belongs to its worker, a done one is
    /// finished).
    pub const RETRYABLE: [JobState; 4] = [JobState::Queued, JobState::Failed, JobState::Dead, JobState::Discarded];
    /// The states an operator may discard a job from.
    pub const DISCARDABLE: [JobState; 3] = [JobState::Queued, JobState::Failed, JobState::Dead];
    /// The states `RetryJobs` takes: those a job rests in after things went wrong.
    pub const BULK_RETRYABLE: [JobState; 3] = [JobState::Failed, JobState::Dead, JobState::Discarded];
}

/// The first retry waits about this long; each further one about twice as long.
const FIRST_RETRY: TimeDelta = TimeDelta::seconds(2);
/// No retry waits longer than this.
pub const MAX_RETRY_DELAY: TimeDelta = TimeDelta::minutes(30);

/// How long to wait after failed attempt number `attempts` (1 for the first): exponential, capped at
/// [`MAX_RETRY_DELAY`], and spread by `jitter` (in `0.0..1.0`) over the upper half of that, so jobs that
/// failed together (a provider outage) do not all come back at the same moment.
pub fn retry_delay(attempts: i32, jitter: f64) -> TimeDelta {
    let doublings = attempts.clamp(1, 20) - 1;
    let ceiling =
        FIRST_RETRY.num_milliseconds().saturating_mul(1_i64 << doublings).min(MAX_RETRY_DELAY.num_milliseconds());
    let spread = (ceiling as f64 / 2.0 * jitter.clamp(0.0, 1.0)) as i64;
    TimeDelta::milliseconds(ceiling / 2 + spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_within_a_jittered_band_up_to_the_cap() {
        let low: Vec<i64> = (1..=12).map(|n| retry_delay(n, 0.0).num_milliseconds()).collect();
        let high: Vec<i64> = (1..=12).map(|n| retry_delay(n, 0.999_999).num_milliseconds()).collect();
        assert_eq!(
            low,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000, 900_000, 900_000]
        );
        assert_eq!(high[0], 1_999);
        assert_eq!(high[11], 1_799_999);
        assert_eq!(retry_delay(1_000, 1.0), MAX_RETRY_DELAY);
    }
}
