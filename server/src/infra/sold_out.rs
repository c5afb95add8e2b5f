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
//! counts. Without Redis (one embedded instance) it lives in process. Knowledge also expires after
//! [`KNOWN_FOR`], which bounds how long a change made outside this server's signals (another process on the
//! same SQLite file, a Redis outage during a bump) can keep seats hidden.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use fred::types::scripts::Script;
use uuid::Uuid;

use super::redis::Redis;
use crate::domain::flight::CabinClass;

/// How long the gate trusts a refusal it has not seen contradicted.
pub const KNOWN_FOR: Duration = Duration::from_secs(60);
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
    Redis { redis: Redis, read: Script, learn: Script, bump: Script },
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
            Backing::Redis { redis, read, .. } => {
                let client = redis.available()?;
                let (generation, seats_left): (Option<u64>, Option<i32>) = read
                    .evalsha_with_reload(client, keys(redis, flight_id), vec![cabin.as_str()])
                    .await
                    .inspect_err(|error| tracing::debug!(%error, "sold-out gate unreadable; letting the hold through"))
                    .ok()?;
                Some(Reading { generation: generation.unwrap_or(0), seats_left })
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
            Backing::Redis { redis, learn, .. } => {
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
}
