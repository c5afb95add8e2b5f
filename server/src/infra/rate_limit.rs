//! Token buckets per (bucket, principal): a bucket holds `burst` calls and refills them evenly over
//! `period`. With Redis the buckets live there, updated by one atomic Lua script using Redis' own clock,
//! so a limit holds across server instances. Without Redis, or while it is unreachable, in-process buckets
//! with the same arithmetic take over: limits then hold per instance, and no call fails because Redis is
//! away.
//!
//! A bucket can be taken from ([`RateLimiter::check`]) or only looked at ([`RateLimiter::peek`]): sign-in
//! looks before checking a password and takes only when the password was wrong, so failures alone count.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fred::types::scripts::Script;
use opentelemetry::KeyValue;

use super::{metrics::metrics, redis::Redis};
use crate::config::Quota;

/// KEYS[1] bucket; ARGV burst, period in ms, cost (1 takes a token, 0 only looks). Returns 0 when the
/// call may proceed, else the milliseconds until it may.
const TAKE_TOKEN: &str = r"
local burst = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local rate = burst / period
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - cost else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], period)
return wait";

/// How often in-process buckets of idle principals are dropped, in checks.
const RETAIN_EVERY: u64 = 4096;

/// Whether a check takes a token or only looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    Take,
    Look,
}

impl Cost {
    fn tokens(self) -> f64 {
        match self {
            Cost::Take => 1.0,
            Cost::Look => 0.0,
        }
    }
}

/// In-process buckets of one quota: (tokens, when last updated) per principal.
struct Bucket {
    quota: Quota,
    local: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Bucket {
    /// The Lua script's arithmetic, on this process' clock.
    fn check(&self, principal: &str, cost: Cost, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.quota.burst.get());
        let rate = burst / self.quota.period.as_secs_f64();
        let mut buckets = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = buckets.get(principal).copied().unwrap_or((burst, now));
        let tokens = (tokens + now.saturating_duration_since(at).as_secs_f64() * rate).min(burst);
        let (left, verdict) = if tokens >= 1.0 {
            (tokens - cost.tokens(), Ok(()))
        } else {
            (tokens, Err(Duration::from_secs_f64((1.0 - tokens) / rate)))
        };
        buckets.insert(principal.to_owned(), (left, now));
        verdict
    }

    /// Drops principals whose bucket has refilled: they are indistinguishable from new ones.
    fn retain_recent(&self, now: Instant) {
        let mut buckets = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        buckets.retain(|_, (_, at)| now.saturating_duration_since(*at) < self.quota.period);
    }
}

struct Limits {
    buckets: HashMap<&'static str, Bucket>,
    redis: Option<(Redis, Script)>,
    /// Whether the last check had to fall back from Redis; logged once per change.
    degraded: AtomicBool,
    checks: AtomicU64,
}

/// Shared by the rate-limit layer and the use cases (login attempts per email).
#[derive(Clone)]
pub struct RateLimiter {
    limits: Option<Arc<Limits>>,
}

impl RateLimiter {
    /// Lets every call through (`AEROBOOK_RATE_LIMITS=disabled`, for load tests).
    pub fn disabled() -> Self {
        Self { limits: None }
    }

    pub fn new(quotas: impl IntoIterator<Item = (&'static str, Quota)>, redis: Option<Redis>) -> Self {
        let buckets =
            quotas.into_iter().map(|(name, quota)| (name, Bucket { quota, local: Mutex::default() })).collect();
        let redis = redis.map(|redis| (redis, Script::from_lua(TAKE_TOKEN)));
        Self {
            limits: Some(Arc::new(Limits {
                buckets,
                redis,
                degraded: AtomicBool::new(false),
                checks: AtomicU64::new(0),
            })),
        }
    }

    /// Takes one call from `principal`'s token in `bucket`; `Err` (a refusal) says how long to wait.
    /// Unknown buckets are not limited.
    pub async fn check(&self, bucket: &'static str, principal: &str) -> Result<(), Duration> {
        counted_refusal(bucket, self.apply(bucket, principal, Cost::Take).await)
    }

    /// Whether `principal` could take a token from `bucket` now, without taking one; `Err` is a refusal.
    pub async fn peek(&self, bucket: &'static str, principal: &str) -> Result<(), Duration> {
        counted_refusal(bucket, self.apply(bucket, principal, Cost::Look).await)
    }

    /// Takes a token to record an event (a failed sign-in) rather than to admit a call: an empty bucket
    /// refuses nothing here, it makes the next [`Self::peek`] refuse.
    pub async fn spend(&self, bucket: &'static str, principal: &str) -> Result<(), Duration> {
        self.apply(bucket, principal, Cost::Take).await
    }

    async fn apply(&self, bucket: &'static str, principal: &str, cost: Cost) -> Result<(), Duration> {
        let Some(limits) = &self.limits else { return Ok(()) };
        let Some(quota) = limits.buckets.get(bucket) else { return Ok(()) };
        if let Some((redis, script)) = &limits.redis {
            match Self::check_redis(redis, script, bucket, principal, quota.quota, cost).await {
                Ok(verdict) => {
                    if limits.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits are shared through Redis again");
                    }
                    return verdict;
                }
                Err(reason) => {
                    if !limits.degraded.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%reason, "rate limits fall back to this instance while Redis is away");
                    }
                }
            }
        }
        let now = Instant::now();
        if limits.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == 0 {
            limits.buckets.values().for_each(|b| b.retain_recent(now));
        }
        quota.check(principal, cost, now)
    }

    #[tracing::instrument(name = "redis rate_limit.take", skip_all, fields(otel.kind = "client"))]
    async fn check_redis(
        redis: &Redis,
        script: &Script,
        bucket: &str,
        principal: &str,
        quota: Quota,
        cost: Cost,
    ) -> Result<Result<(), Duration>, String> {
        let client = redis.available().ok_or("not connected")?;
        let key = redis.key(&format!("rl:{bucket}:{principal}"));
        let cost = if cost == Cost::Take { "1" } else { "0" };
        let args = vec![quota.burst.get().to_string(), (quota.period.as_millis() as u64).to_string(), cost.to_owned()];
        let wait_ms: u64 = script.evalsha_with_reload(client, key, args).await.map_err(|e| e.to_string())?;
        Ok(if wait_ms == 0 { Ok(()) } else { Err(Duration::from_millis(wait_ms)) })
    }
}

/// Counts a refusal (the rate-limit metric), passing the verdict through.
fn counted_refusal(bucket: &'static str, verdict: Result<(), Duration>) -> Result<(), Duration> {
    if verdict.is_err() {
        metrics().rate_limit_refusals.add(1, &[KeyValue::new("class", bucket)]);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_buckets_allow_the_burst_then_say_how_long_to_wait() {
        let limiter = RateLimiter::new([("search", Quota::parse("3/60").unwrap())], None);
        for _ in 0..3 {
            assert_eq!(limiter.check("search", "ip:1").await, Ok(()));
        }
        let wait = limiter.check("search", "ip:1").await.unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(limiter.check("search", "ip:2").await, Ok(()), "principals have their own buckets");
        assert_eq!(limiter.check("other", "ip:1").await, Ok(()), "unknown buckets are not limited");
        assert_eq!(RateLimiter::disabled().check("search", "ip:1").await, Ok(()));
    }

    #[tokio::test]
    async fn peeking_never_spends_a_token() {
        let limiter = RateLimiter::new([("login", Quota::parse("2/60").unwrap())], None);
        for _ in 0..10 {
            assert_eq!(limiter.peek("login", "a").await, Ok(()));
        }
        limiter.check("login", "a").await.unwrap();
        limiter.check("login", "a").await.unwrap();
        assert!(limiter.peek("login", "a").await.is_err(), "an empty bucket shows as empty");
        assert!(limiter.check("login", "a").await.is_err());
    }

    #[test]
    fn buckets_refill_evenly_and_idle_ones_are_dropped() {
        let bucket = Bucket { quota: Quota::parse("2/10").unwrap(), local: Mutex::default() };
        let start = Instant::now();
        assert!(bucket.check("p", Cost::Take, start).is_ok() && bucket.check("p", Cost::Take, start).is_ok());
        let wait = bucket.check("p", Cost::Take, start).unwrap_err();
        assert!((4_900..=5_000).contains(&wait.as_millis()), "{wait:?}");
        assert!(bucket.check("p", Cost::Take, start + Duration::from_secs(5)).is_ok(), "one token back after 5 s");
        bucket.retain_recent(start + Duration::from_secs(9));
        assert_eq!(bucket.local.lock().unwrap().len(), 1);
        bucket.retain_recent(start + Duration::from_secs(16));
        assert!(bucket.local.lock().unwrap().is_empty());
    }
}
