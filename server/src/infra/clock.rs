//! The time use cases see: the system clock, which tests may move forward so hold expiry can be tested
//! without waiting for it. Timed background work waits on this clock too ([`Clock::sleep_until`]), so
//! moving it moves the work that is due.

use std::{
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Added to the system time; only tests ever change it.
    offset_micros: AtomicI64,
    /// Wakes everything waiting on this clock when it moves.
    advanced: Notify,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, to the microsecond: what both databases store, so a stored time compares equal to itself.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + TimeDelta::microseconds(self.shared.offset_micros.load(Ordering::Relaxed));
        now.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(now)
    }

    /// Moves this clock (and every clone of it) forward, waking whatever waits on it.
    pub fn advance(&self, by: std::time::Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.shared.offset_micros.fetch_add(micros, Ordering::Relaxed);
        self.shared.advanced.notify_waiters();
    }

    /// Returns once this clock reads `deadline` or later, whether time passed or the clock was moved.
    pub async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            // Registered before reading the time, so an advance in between is not missed.
            let mut advanced = pin!(self.shared.advanced.notified());
            advanced.as_mut().enable();
            let now = self.now();
            if now >= deadline {
                return;
            }
            let left = (deadline - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                () = advanced => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let clone = clock.clone();
        let before = clone.now();
        clock.advance(std::time::Duration::from_secs(3600));
        assert!(clone.now() - before >= TimeDelta::seconds(3600));
        assert_eq!(clone.now().timestamp_subsec_nanos() % 1000, 0);
    }

    #[tokio::test]
    async fn an_advance_wakes_a_sleeper_whose_deadline_it_passes() {
        let clock = Clock::system();
        let deadline = clock.now() + TimeDelta::hours(1);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        clock.advance(std::time::Duration::from_secs(1800));
        clock.advance(std::time::Duration::from_secs(1800));
        // An hour of wall time would fail the test long before the sleeper woke on its own.
        tokio::time::timeout(std::time::Duration::from_secs(10), sleeper).await.expect("woken").unwrap();
    }
}
