//! Waiting-room rules: a room's settings and their limits, the steady pace of admission, a ticket's place
//! in the queue, and the wait it can expect.
//!
//! A queue is two counters, as in AWS's Virtual Waiting Room: `issued` (queue numbers given out) and
//! `serving` (numbers admitted so far). Ticket `n` is admitted once `serving >= n`; until then it is at
//! position `n - serving`. `serving` moves with time at the room's rate, whoever looks: every reader
//! first [`advance`]s it to the present, so instances that share the counters can never admit twice, and
//! no ticker has to run for admission to happen.

use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};

/// Callers admitted per minute.
pub const ADMIT_PER_MINUTE: RangeInclusive<i32> = 1..=60_000;
/// How long a pass stays valid after admission, in seconds.
pub const PASS_TTL_SECONDS: RangeInclusive<i32> = 30..=3_600;
/// How far ahead a room may open.
pub const MAX_OPENS_IN: TimeDelta = TimeDelta::days(366);
/// Elapsed time one advance credits at most: a queue nobody read for longer admits no faster for it.
const MAX_CREDITED_MS: i64 = 86_400_000;
/// Credit units per admission: credit accrues at `admit_per_minute` units per millisecond, so integer
/// arithmetic keeps the pace exact (the Redis scripts do the same sums).
pub const CREDIT_PER_ADMISSION: i64 = 60_000;

/// Longest pass a booking call may carry: the version, a 64-bit expiry and a 32-byte signature fit well
/// within it, and a longer value is refused before any work.
pub const MAX_PASS_CHARS: usize = 96;

/// The shape of a booking call's `waiting_room_pass` (empty: none): at most [`MAX_PASS_CHARS`] characters
/// of the pass alphabet (URL-safe base64, digits, dots). Whether it admits the caller is the room's to say.
pub fn check_pass_shape(pass: &str) -> Result<(), String> {
    let alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if pass.len() <= MAX_PASS_CHARS && pass.chars().all(alphabet) {
        Ok(())
    } else {
        Err(format!("is not a waiting-room pass: at most {MAX_PASS_CHARS} characters from JoinWaitingRoom's answer"))
    }
}

/// A flight's waiting room, as an operator configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// While enabled, holds on the flight need a pass.
    pub enabled: bool,
    pub admit_per_minute: u32,
    pub pass_ttl: TimeDelta,
    pub opens_at: DateTime<Utc>,
}

pub fn check_admit_per_minute(value: i32) -> Result<u32, String> {
    ADMIT_PER_MINUTE
        .contains(&value)
        .then(|| value.unsigned_abs())
        .ok_or_else(|| format!("must be {}..={} callers per minute", ADMIT_PER_MINUTE.start(), ADMIT_PER_MINUTE.end()))
}

pub fn check_pass_ttl(seconds: i32) -> Result<TimeDelta, String> {
    PASS_TTL_SECONDS
        .contains(&seconds)
        .then(|| TimeDelta::seconds(seconds.into()))
        .ok_or_else(|| format!("must be {}..={} seconds", PASS_TTL_SECONDS.start(), PASS_TTL_SECONDS.end()))
}

/// When the room opens: `None` (unset) means now.
pub fn check_opens_at(opens_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match opens_at {
        None => Ok(now),
        Some(at) if at > now + MAX_OPENS_IN => Err(format!("must be within {} days", MAX_OPENS_IN.num_days())),
        Some(at) => Ok(at),
    }
}

/// The admission counters of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    pub issued: u64,
    pub serving: u64,
    /// Credit towards the next admission, below [`CREDIT_PER_ADMISSION`].
    pub carry: i64,
}

impl Admission {
    /// The counters `elapsed_ms` later at `admit_per_minute`. Credit accrues only while someone waits: an
    /// empty queue banks none, so a crowd arriving after a quiet spell is still admitted at the pace.
    pub fn advance(self, elapsed_ms: i64, admit_per_minute: u32) -> Self {
        if self.serving >= self.issued {
            return Self { serving: self.issued, carry: 0, ..self };
        }
        let credit = self.carry + elapsed_ms.clamp(0, MAX_CREDITED_MS) * i64::from(admit_per_minute);
        let admitted = u64::try_from(credit / CREDIT_PER_ADMISSION).unwrap_or(0);
        if self.serving + admitted >= self.issued {
            Self { serving: self.issued, carry: 0, ..self }
        } else {
            Self { serving: self.serving + admitted, carry: credit % CREDIT_PER_ADMISSION, ..self }
        }
    }

    pub fn waiting(self) -> u64 {
        self.issued - self.serving.min(self.issued)
    }
}

/// Where queue number `number` stands while `serving` numbers are admitted: 0 once admitted.
pub fn position(number: u64, serving: u64) -> u64 {
    number.saturating_sub(serving)
}

/// About how long `position` waits at `admit_per_minute`, plus the time left until `opens_at`.
pub fn estimated_wait(position: u64, admit_per_minute: u32, opens_at: DateTime<Utc>, now: DateTime<Utc>) -> TimeDelta {
    if position == 0 {
        return TimeDelta::zero();
    }
    let until_open = (opens_at - now).max(TimeDelta::zero());
    let millis = i64::try_from(position).unwrap_or(i64::MAX).saturating_mul(CREDIT_PER_ADMISSION)
        / i64::from(admit_per_minute.max(1));
    until_open + TimeDelta::milliseconds(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_keeps_a_steady_pace_with_exact_remainders() {
        let mut queue = Admission { issued: 1_000, serving: 0, carry: 0 };
        // 90 per minute is one per 666.67 ms: three every two seconds, however the time is sliced.
        for _ in 0..20 {
            queue = queue.advance(100, 90);
        }
        assert_eq!(queue.serving, 3);
        queue = queue.advance(2_000, 90);
        assert_eq!(queue.serving, 6);
        assert_eq!(Admission { issued: 1_000, serving: 0, carry: 0 }.advance(4_000, 90).serving, 6);
    }

    #[test]
    fn admission_never_passes_the_numbers_issued_and_banks_nothing_while_nobody_waits() {
        let queue = Admission { issued: 5, serving: 0, carry: 0 }.advance(60_000, 600);
        assert_eq!((queue.serving, queue.carry, queue.waiting()), (5, 0, 0));
        let idle = queue.advance(3_600_000, 600);
        assert_eq!((idle.serving, idle.carry), (5, 0), "an hour with nobody waiting earns no credit");
        let joined = Admission { issued: 7, ..idle };
        assert_eq!(joined.advance(99, 600).serving, 5, "a new arrival waits a full interval");
        assert_eq!(joined.advance(100, 600).serving, 6);
        assert_eq!(Admission { issued: 10, serving: 0, carry: 0 }.advance(-5, 600).serving, 0, "time never runs back");
    }

    #[test]
    fn positions_and_waits_follow_the_counters() {
        let now = Utc::now();
        assert_eq!((position(7, 3), position(3, 3), position(2, 3)), (4, 0, 0));
        assert_eq!(estimated_wait(4, 60, now, now), TimeDelta::seconds(4));
        assert_eq!(estimated_wait(4, 60, now + TimeDelta::seconds(10), now), TimeDelta::seconds(14));
        assert_eq!(estimated_wait(0, 60, now + TimeDelta::seconds(10), now), TimeDelta::zero());
    }

    #[test]
    fn settings_outside_their_limits_are_refused() {
        let now = Utc::now();
        assert!(check_admit_per_minute(0).is_err() && check_admit_per_minute(60_001).is_err());
        assert_eq!(check_admit_per_minute(60_000), Ok(60_000));
        assert!(check_pass_ttl(29).is_err() && check_pass_ttl(3_601).is_err());
        assert_eq!(check_pass_ttl(30), Ok(TimeDelta::seconds(30)));
        assert_eq!(check_opens_at(None, now), Ok(now));
        assert!(check_opens_at(Some(now + TimeDelta::days(367)), now).is_err());
        let past = now - TimeDelta::hours(1);
        assert_eq!(check_opens_at(Some(past), now), Ok(past), "a room may open in the past: it is open");
    }
}
