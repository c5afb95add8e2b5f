//! The sold-out gate: per flight cabin, how many seats at most are left, as the database last said in a
//! refusal. A hold for a larger party is answered `SEATS_UNAVAILABLE` without touching the database.
//!
//! The database still decides every hold; the gate only remembers its answers, so it can never oversell.
//! It must never hide seats that came back either, which a late answer could do: a hold refused with "0
//! left" may report after a cancellation has already returned seats. So every change of a flight's counts
//! (the availability feed's signal, sent after the commit) bumps the flight's *generation* and forgets what
//! the gate knew; a refusal is remembered only under the generation read before its transaction began,
//! and is dropped if the generation moved meanwhile.
//!
//! With Redis the gate lives there (two small keys per flight, read and written by Lua scripts), shared by
//! every instance, so one instance's cancellation reopens the gate for all of them at once. While Redis is
//! away the gate is open (every hold goes to the database): an instance cannot tell whether others changed
//! counts. Each instance keeps what it read from Redis for up to [`NEAR_FOR`] in a near cache, forgotten at
//! once whenever it hears of a change (its own, or another instance's through the availability feed), so
//! a sold-out cabin's refusals cost no round trip; a change whose signal is lost shows within that time.
//! Without Redis (one embedded instance) it lives in process. Knowledge also expires after
//! [`KNOWN_FOR`], which bounds how long a change made outside this server's signals (another process on the
//! same SQLite file, a Redis outage during a bump) can keep seats hidden.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fred::types::scripts::Script;
use uuid::Uuid;

use super::redis::Redis;
use crate::domain::flight::CabinClass;

/// How long the gate trusts a refusal it has not seen contradicted.
pub const KNOWN_FOR: Duration = Duration::from_secs(60);
/// How long an instance uses what it read from Redis without reading again (unless it hears of a change).
pub const NEAR_FOR: Duration = Duration::from_secs(1);
/// Cabins whose reading an instance keeps at most; past it, it forgets them all.
const NEAR_CABINS: usize = 4_096;
/// How long a flight's generation is kept after its last change: far longer than any hold transaction,
/// so a generation read before one cannot come round again before it ends.
const GENERATION_KEPT: Duration = Duration::from_secs(86_400);

/// What the gate knew about a cabin when a hold started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    generation: u64,
    /// At most this many seats are left, when known.
    pub seats_left: Option<i32>,
}

#[derive(Clone)]
pub struct SoldOutGate {
    inner: Arc<Backing>,
}

enum Backing {
    Local(Mutex<HashMap<Uuid, LocalFlight>>),
    Redis { redis: Redis, read: Script, learn: Script, bump: Script, near: Box<Near> },
}

/// Readings from Redis, each kept until [`NEAR_FOR`] passes or the instance hears of any change.
#[derive(Default)]
struct Near {
    /// Changes heard of: a reading fetched across one is not kept.
    changes: AtomicU64,
    readings: Mutex<HashMap<(Uuid, CabinClass), NearReading>>,
}

struct NearReading {
    reading: Reading,
    read_at: Instant,
    /// [`Near::changes`] when the read began.
    changes: u64,
}

impl Near {
    fn get(&self, flight_id: Uuid, cabin: CabinClass) -> Option<Reading> {
        let readings = self.readings.lock().unwrap_or_else(PoisonError::into_inner);
        let changes = self.changes.load(Ordering::Acquire);
        readings
            .get(&(flight_id, cabin))
            .filter(|near| near.changes == changes && near.read_at.elapsed() < NEAR_FOR)
            .map(|near| near.reading)
    }

    fn keep(&self, flight_id: Uuid, cabin: CabinClass, reading: Reading, changes_before: u64) {
        let mut readings = self.readings.lock().unwrap_or_else(PoisonError::into_inner);
        if self.changes.load(Ordering::Acquire) != changes_before {
            return;
        }
        if readings.len() >= NEAR_CABINS {
            readings.clear();
        }
        readings.insert((flight_id, cabin), NearReading { reading, read_at: Instant::now(), changes: changes_before });
    }

    fn forget(&self, flight_id: Uuid, cabin: CabinClass) {
        self.readings.lock().unwrap_or_else(PoisonError::into_inner).remove(&(flight_id, cabin));
    }
}

#[derive(Default)]
struct LocalFlight {
    generation: u64,
    known: HashMap<CabinClass, (i32, Instant)>,
}

impl SoldOutGate {
    pub fn new(redis: Option<Redis>) -> Self {
        let inner = match redis {
            Some(redis) => Backing::Redis {
                redis,
                read: Script::from_lua(READ),
                learn: Script::from_lua(LEARN),
                bump: Script::from_lua(BUMP),
                near: Box::default(),
            },
            None => Backing::Local(Mutex::default()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// What the gate knows about the cabin now; `None` when it cannot know (Redis away): let the hold through.
    pub async fn read(&self, flight_id: Uuid, cabin: CabinClass) -> Option<Reading> {
        match &*self.inner {
            Backing::Local(flights) => {
                let flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(flight) = flights.get(&flight_id) else {
                    return Some(Reading { generation: 0, seats_left: None });
                };
                let seats_left =
                    flight.known.get(&cabin).filter(|(_, at)| at.elapsed() < KNOWN_FOR).map(|(seats, _)| *seats);
                Some(Reading { generation: flight.generation, seats_left })
            }
            Backing::Redis { redis, read, near, .. } => {
                if let Some(reading) = near.get(flight_id, cabin) {
                    return Some(reading);
                }
                let client = redis.available()?;
                let changes_before = near.changes.load(Ordering::Acquire);
                let (generation, seats_left): (Option<u64>, Option<i32>) = read
                    .evalsha_with_reload(client, keys(redis, flight_id), vec![cabin.as_str()])
                    .await
                    .inspect_err(|error| tracing::debug!(%error, "sold-out gate unreadable; letting the hold through"))
                    .ok()?;
                let reading = Reading { generation: generation.unwrap_or(0), seats_left };
                near.keep(flight_id, cabin, reading, changes_before);
                Some(reading)
            }
        }
    }

    /// Remembers that at most `seats_left` seats are left in the cabin, as a refusal committed under
    /// `reading` said; ignored when the flight's counts changed since `reading` was taken.
    pub async fn learn(&self, flight_id: Uuid, cabin: CabinClass, reading: Reading, seats_left: i32) {
        match &*self.inner {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let flight = flights.entry(flight_id).or_default();
                if flight.generation == reading.generation {
                    flight.known.insert(cabin, (seats_left, Instant::now()));
                }
            }
            Backing::Redis { redis, learn, near, .. } => {
                // The next reading comes from Redis, with what was learned.
                near.forget(flight_id, cabin);
                let Some(client) = redis.available() else { return };
                let args = vec![
                    reading.generation.to_string(),
                    cabin.as_str().to_owned(),
                    seats_left.to_string(),
                    KNOWN_FOR.as_secs().to_string(),
                ];
                if let Err(error) = learn.evalsha_with_reload::<(), _, _>(client, keys(redis, flight_id), args).await {
                    tracing::debug!(%error, "sold-out gate not updated");
                }
            }
        }
    }

    /// This instance heard of a change of some flight's counts (its own or another instance's): what it
    /// read from Redis is read again.
    pub fn heard_of_change(&self) {
        if let Backing::Redis { near, .. } = &*self.inner {
            near.changes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The flight's counts changed (a commit that took or returned seats): forget what was known about it.
    pub async fn bump(&self, flight_id: Uuid) {
        match &*self.inner {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let flight = flights.entry(flight_id).or_default();
                flight.generation += 1;
                flight.known.clear();
            }
            Backing::Redis { redis, bump, .. } => {
                let Some(client) = redis.available() else { return };
                let args = vec![GENERATION_KEPT.as_secs().to_string()];
                if let Err(error) = bump.evalsha_with_reload::<(), _, _>(client, keys(redis, flight_id), args).await {
                    tracing::warn!(%error, %flight_id, "sold-out gate not reopened; it reopens within a minute");
                }
            }
        }
    }
}

/// The flight's generation counter and its known counts per cabin.
fn keys(redis: &Redis, flight_id: Uuid) -> Vec<String> {
    vec![redis.key(&format!("sold-out:{flight_id}:generation")), redis.key(&format!("sold-out:{flight_id}:known"))]
}

/// KEYS: generation, known. ARGV: cabin. Returns {generation or nil, seats left or nil}.
const READ: &str = r"
return {redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])}
";

/// KEYS: generation, known. ARGV: generation read, cabin, seats left, seconds known.
const LEARN: &str = r"
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
";

/// KEYS: generation, known. ARGV: seconds the generation is kept.
const BUMP: &str = r"
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_is_remembered_unless_the_counts_changed_since_it_started() {
        let gate = SoldOutGate::new(None);
        let flight = Uuid::now_v7();
        let before = gate.read(flight, CabinClass::Economy).await.unwrap();
        assert_eq!(before.seats_left, None);
        gate.learn(flight, CabinClass::Economy, before, 0).await;
        assert_eq!(gate.read(flight, CabinClass::Economy).await.unwrap().seats_left, Some(0));
        assert_eq!(gate.read(flight, CabinClass::Business).await.unwrap().seats_left, None, "per cabin");

        // A cancellation commits (and bumps) while a hold that started earlier is still deciding.
        let started = gate.read(flight, CabinClass::Economy).await.unwrap();
        gate.bump(flight).await;
        assert_eq!(gate.read(flight, CabinClass::Economy).await.unwrap().seats_left, None, "reopened");
        gate.learn(flight, CabinClass::Economy, started, 0).await;
        assert_eq!(
            gate.read(flight, CabinClass::Economy).await.unwrap().seats_left,
            None,
            "a stale refusal is dropped"
        );
    }

    #[tokio::test]
    async fn with_redis_instances_share_the_gate_and_keep_readings_until_they_hear_of_a_change() {
        let Some(redis) = crate::infra::redis::for_unit_test().await else { return };
        let (here, there) = (SoldOutGate::new(Some(redis.clone())), SoldOutGate::new(Some(redis.clone())));
        let (flight, economy) = (Uuid::now_v7(), CabinClass::Economy);
        let before = here.read(flight, economy).await.unwrap();
        assert_eq!(before.seats_left, None);
        here.learn(flight, economy, before, 0).await;
        assert_eq!(here.read(flight, economy).await.unwrap().seats_left, Some(0), "learning drops the old reading");
        assert_eq!(there.read(flight, economy).await.unwrap().seats_left, Some(0), "shared through Redis");

        // Another instance returns seats: this one answers from its reading until it hears of the change.
        there.bump(flight).await;
        there.heard_of_change();
        assert_eq!(there.read(flight, economy).await.unwrap().seats_left, None);
        assert_eq!(here.read(flight, economy).await.unwrap().seats_left, Some(0), "kept in front of Redis");
        here.heard_of_change();
        assert_eq!(here.read(flight, economy).await.unwrap().seats_left, None, "reopened once heard of");
        redis.quit().await;
    }
}
