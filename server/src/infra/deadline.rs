//! The deadline of the call being served, for work done on its behalf: a provider call gives up early
//! enough for the call to answer `PROVIDER_TIMEOUT` in time, however long the work before it took.

use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static CALL_DEADLINE: Instant;
}

/// Runs `call` with `deadline` as its deadline.
pub async fn within<F: Future>(deadline: Instant, call: F) -> F::Output {
    CALL_DEADLINE.scope(deadline, call).await
}

/// The time the current call has left; `None` outside a call (a job, a background loop).
pub fn remaining() -> Option<Duration> {
    CALL_DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_sees_its_time_shrink_and_other_work_sees_none() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(2);
        within(deadline, async {
            assert_eq!(remaining(), Some(Duration::from_secs(2)));
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(remaining(), Some(Duration::from_millis(500)));
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(remaining(), Some(Duration::ZERO));
        })
        .await;
    }
}
