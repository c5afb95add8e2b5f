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
//!
//! A refusal at the gate must still give a retry of a completed call that call's answer, on any instance.
//! So once a closing refusal said "none left", the gate also learns which keys may be recorded for holds
//! on the cabin ([`known_keys`]): the keys recorded when it closed (read after that refusal committed) and
//! every key refused after that (each batch notes its refused keys while the gate is closed). A key it
//! does not know of is refused from memory; one it may know of is looked up first. A hold cannot complete
//! on the cabin while its count stays unchanged, so no key escapes; a change reopens the gate, and the
//! next closing reads the keys afresh. Keys are known per closure of the gate: when the gate's knowledge
//! lapses and a refusal closes it again, the keys are read again too.

mod in_redis;
pub mod known_keys;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fred::types::Value;
use uuid::Uuid;

use self::{
    in_redis::{ReadReply, Scripts, flight_keys, keys},
    known_keys::{KeyDigest, KeyFilter, KnownKeys},
};
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
#[derive(Debug, Clone)]
pub struct Reading {
    generation: u64,
    /// At most this many seats are left, when known.
    pub seats_left: Option<i32>,
    /// The keys that may be recorded for the cabin, when the gate closed with "none left" and read them.
    keys: Option<KnownKeys>,
}

impl Reading {
    /// Whether a completed call may be recorded under the key, so a refusal must look it up first.
    pub fn may_hold_key(&self, digest: &KeyDigest) -> bool {
        self.keys.as_ref().is_none_or(|keys| keys.may_hold(digest))
    }
}

/// A closing of the gate that still wants its keys ([`SoldOutGate::know_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Closure(u64);

#[derive(Clone)]
pub struct SoldOutGate {
    inner: Arc<Inner>,
}

struct Inner {
    backing: Backing,
    /// Closures whose keys this instance is reading, so a batch's many refusals read them once.
    reading_keys: Mutex<HashSet<(Uuid, CabinClass, Closure)>>,
}

enum Backing {
    Local(Mutex<HashMap<Uuid, LocalFlight>>),
    Redis { redis: Redis, scripts: Box<Scripts>, near: Box<Near> },
}

/// Readings from Redis, each kept until [`NEAR_FOR`] passes or the instance hears of any change.
#[derive(Default)]
struct Near {
    /// Changes heard of: a reading fetched across one is not kept.
    changes: AtomicU64,
    readings: Mutex<HashMap<(Uuid, CabinClass), NearReading>>,
    /// The keys of each closed cabin as last read, so a reading read again fetches only what is new (a
    /// filter is sent once per closing; late keys are appended, and fetched from where the last read ended).
    keys: Mutex<HashMap<(Uuid, CabinClass), NearKeys>>,
}

struct NearKeys {
    closure: u64,
    keys: KnownKeys,
    late_seen: usize,
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
            .map(|near| near.reading.clone())
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

    /// The closing whose keys this instance holds for the cabin, and how many late keys it holds.
    fn keys_held(&self, flight_id: Uuid, cabin: CabinClass) -> Option<(u64, usize)> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(&(flight_id, cabin)).map(|held| (held.closure, held.late_seen))
    }

    /// The cabin's keys, from a READ that was told `late_seen` late keys were held; `None` when they are
    /// not known, or the reply and what is held do not fit together (the keys are then looked up).
    fn merge_keys(
        &self,
        flight_id: Uuid,
        cabin: CabinClass,
        reply: &mut ReadReply,
        late_seen: usize,
    ) -> Option<KnownKeys> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(closure) = reply.closure else {
            keys.remove(&(flight_id, cabin));
            return None;
        };
        let late = std::mem::take(&mut reply.late);
        if let Some(filter) = reply.filter.take() {
            if keys.len() >= NEAR_CABINS {
                keys.clear();
            }
            let late_seen = late.len();
            let known = KnownKeys { filter: Arc::new(filter), late: Arc::new(late.into_iter().collect()) };
            keys.insert((flight_id, cabin), NearKeys { closure, keys: known.clone(), late_seen });
            return Some(known);
        }
        let held = keys.get_mut(&(flight_id, cabin)).filter(|held| held.closure == closure)?;
        // Late keys are only ever appended: what is held and what came are both from the start.
        held.late_seen = held.late_seen.max(late_seen + late.len());
        Arc::make_mut(&mut held.keys.late).extend(late);
        Some(held.keys.clone())
    }
}

#[derive(Default)]
struct LocalFlight {
    generation: u64,
    known: HashMap<CabinClass, LocalKnown>,
}

/// What one closing of a cabin's gate knows, in process.
struct LocalKnown {
    seats_left: i32,
    learned_at: Instant,
    closure: Closure,
    filter: Option<Arc<KeyFilter>>,
    late: Arc<HashSet<KeyDigest>>,
}

impl LocalFlight {
    fn closed(&mut self, cabin: CabinClass) -> Option<&mut LocalKnown> {
        self.known.get_mut(&cabin).filter(|known| known.learned_at.elapsed() < KNOWN_FOR)
    }
}

impl SoldOutGate {
    pub fn new(redis: Option<Redis>) -> Self {
        let backing = match redis {
            Some(redis) => Backing::Redis { redis, scripts: Box::default(), near: Box::default() },
            None => Backing::Local(Mutex::default()),
        };
        Self { inner: Arc::new(Inner { backing, reading_keys: Mutex::default() }) }
    }

    /// What the gate knows about the cabin now; `None` when it cannot know (Redis away): let the hold through.
    pub async fn read(&self, flight_id: Uuid, cabin: CabinClass) -> Option<Reading> {
        match &self.inner.backing {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(flight) = flights.get_mut(&flight_id) else {
                    return Some(Reading { generation: 0, seats_left: None, keys: None });
                };
                let generation = flight.generation;
                let Some(known) = flight.closed(cabin) else {
                    return Some(Reading { generation, seats_left: None, keys: None });
                };
                let keys = known.filter.clone().map(|filter| KnownKeys { filter, late: known.late.clone() });
                Some(Reading { generation, seats_left: Some(known.seats_left), keys })
            }
            Backing::Redis { redis, scripts, near } => {
                if let Some(reading) = near.get(flight_id, cabin) {
                    return Some(reading);
                }
                let client = redis.available()?;
                let changes_before = near.changes.load(Ordering::Acquire);
                let (closure_held, late_seen) = near.keys_held(flight_id, cabin).unzip();
                let late_seen = late_seen.unwrap_or(0);
                let args = vec![
                    cabin.as_str().to_owned(),
                    closure_held.map(|closure| closure.to_string()).unwrap_or_default(),
                    late_seen.to_string(),
                ];
                let mut reply: ReadReply = scripts
                    .read
                    .evalsha_with_reload(client, keys(redis, flight_id, cabin), args)
                    .await
                    .inspect_err(|error| tracing::debug!(%error, "sold-out gate unreadable; letting the hold through"))
                    .ok()?;
                let keys = near.merge_keys(flight_id, cabin, &mut reply, late_seen);
                let reading = Reading { generation: reply.generation, seats_left: reply.seats_left, keys };
                near.keep(flight_id, cabin, reading.clone(), changes_before);
                Some(reading)
            }
        }
    }

    /// Remembers that at most `seats_left` seats are left in the cabin, as a refusal committed under
    /// `reading` said; ignored when the flight's counts changed since `reading` was taken. The closing it
    /// made or refreshed, when that closing does not know the cabin's keys yet.
    pub async fn learn(
        &self,
        flight_id: Uuid,
        cabin: CabinClass,
        reading: &Reading,
        seats_left: i32,
    ) -> Option<Closure> {
        match &self.inner.backing {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let flight = flights.entry(flight_id).or_default();
                if flight.generation != reading.generation {
                    return None;
                }
                if flight.closed(cabin).is_none() {
                    flight.known.insert(cabin, LocalKnown::closing());
                }
                let known = flight.known.get_mut(&cabin)?;
                known.seats_left = seats_left;
                known.learned_at = Instant::now();
                known.filter.is_none().then_some(known.closure)
            }
            Backing::Redis { redis, scripts, near } => {
                // The next reading comes from Redis, with what was learned.
                near.forget(flight_id, cabin);
                let client = redis.available()?;
                let args = vec![
                    reading.generation.to_string(),
                    cabin.as_str().to_owned(),
                    seats_left.to_string(),
                    KNOWN_FOR.as_secs().to_string(),
                    rand::random::<u64>().to_string(),
                ];
                let closure: Option<u64> = scripts
                    .learn
                    .evalsha_with_reload(client, keys(redis, flight_id, cabin), args)
                    .await
                    .inspect_err(|error| tracing::debug!(%error, "sold-out gate not updated"))
                    .ok()?;
                closure.map(Closure)
            }
        }
    }

    /// Whether this instance should read the keys for `closure`: `None` while it already does.
    pub fn start_reading_keys(&self, flight_id: Uuid, cabin: CabinClass, closure: Closure) -> Option<ReadingKeys> {
        let reading = (flight_id, cabin, closure);
        let mut busy = self.inner.reading_keys.lock().unwrap_or_else(PoisonError::into_inner);
        busy.insert(reading).then(|| ReadingKeys { gate: self.clone(), reading })
    }

    /// Gives `closure` the keys recorded for the cabin, as read (after the closing refusal committed) under
    /// `reading`; ignored when the gate reopened or closed afresh since. Past
    /// [`known_keys::MAX_FILTERED_KEYS`] the closing keeps looking keys up.
    pub async fn know_keys(
        &self,
        flight_id: Uuid,
        cabin: CabinClass,
        reading: &Reading,
        closure: Closure,
        recorded: &[KeyDigest],
    ) {
        let Some(filter) = KeyFilter::of(recorded) else { return };
        match &self.inner.backing {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(flight) =
                    flights.get_mut(&flight_id).filter(|flight| flight.generation == reading.generation)
                    && let Some(known) = flight.closed(cabin).filter(|known| known.closure == closure)
                {
                    known.filter = Some(Arc::new(filter));
                }
            }
            Backing::Redis { redis, scripts, near } => {
                near.forget(flight_id, cabin);
                let Some(client) = redis.available() else { return };
                let args: Vec<Value> = vec![
                    reading.generation.to_string().into(),
                    cabin.as_str().into(),
                    closure.0.to_string().into(),
                    filter.as_bytes().into(),
                    KNOWN_FOR.as_secs().to_string().into(),
                ];
                if let Err(error) =
                    scripts.know_keys.evalsha_with_reload::<(), _, _>(client, keys(redis, flight_id, cabin), args).await
                {
                    tracing::debug!(%error, "sold-out gate's keys not stored; its refusals look keys up");
                }
            }
        }
    }

    /// Notes keys just refused (their refusals committed): a closed gate must know them. `true` when it
    /// did, so other instances should read the gate again.
    pub async fn note_refused(&self, flight_id: Uuid, cabin: CabinClass, refused: &[KeyDigest]) -> bool {
        match &self.inner.backing {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(known) = flights.get_mut(&flight_id).and_then(|flight| flight.closed(cabin)) else {
                    return false;
                };
                Arc::make_mut(&mut known.late).extend(refused);
                true
            }
            Backing::Redis { redis, scripts, near } => {
                near.forget(flight_id, cabin);
                let Some(client) = redis.available() else { return false };
                let mut args: Vec<Value> = vec![cabin.as_str().into(), KNOWN_FOR.as_secs().to_string().into()];
                args.extend(refused.iter().map(|digest| Value::from(&digest[..])));
                scripts
                    .note_refused
                    .evalsha_with_reload::<u8, _, _>(client, keys(redis, flight_id, cabin), args)
                    .await
                    .inspect_err(|error| tracing::warn!(%error, %flight_id, "refused keys not noted at the gate"))
                    .is_ok_and(|noted| noted == 1)
            }
        }
    }

    /// This instance heard of a change of some flight's counts (its own or another instance's): what it
    /// read from Redis is read again.
    pub fn heard_of_change(&self) {
        if let Backing::Redis { near, .. } = &self.inner.backing {
            near.changes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The flight's counts changed (a commit that took or returned seats): forget what was known about it.
    pub async fn bump(&self, flight_id: Uuid) {
        match &self.inner.backing {
            Backing::Local(flights) => {
                let mut flights = flights.lock().unwrap_or_else(PoisonError::into_inner);
                let flight = flights.entry(flight_id).or_default();
                flight.generation += 1;
                flight.known.clear();
            }
            Backing::Redis { redis, scripts, .. } => {
                let Some(client) = redis.available() else { return };
                let flight_keys = flight_keys(redis, flight_id);
                let args = vec![GENERATION_KEPT.as_secs().to_string()];
                if let Err(error) = scripts.bump.evalsha_with_reload::<(), _, _>(client, flight_keys, args).await {
                    tracing::warn!(%error, %flight_id, "sold-out gate not reopened; it reopens within a minute");
                }
            }
        }
    }
}

impl LocalKnown {
    fn closing() -> Self {
        Self {
            seats_left: 0,
            learned_at: Instant::now(),
            closure: Closure(rand::random()),
            filter: None,
            late: Arc::default(),
        }
    }
}

/// This instance reads a closure's keys until dropped.
pub struct ReadingKeys {
    gate: SoldOutGate,
    reading: (Uuid, CabinClass, Closure),
}

impl Drop for ReadingKeys {
    fn drop(&mut self) {
        self.gate.inner.reading_keys.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.reading);
    }
}

#[cfg(test)]
mod tests {
    use super::{known_keys::key_digest, *};

    #[tokio::test]
    async fn a_refusal_is_remembered_unless_the_counts_changed_since_it_started() {
        let gate = SoldOutGate::new(None);
        let flight = Uuid::now_v7();
        let before = gate.read(flight, CabinClass::Economy).await.unwrap();
        assert_eq!(before.seats_left, None);
        gate.learn(flight, CabinClass::Economy, &before, 0).await;
        assert_eq!(gate.read(flight, CabinClass::Economy).await.unwrap().seats_left, Some(0));
        assert_eq!(gate.read(flight, CabinClass::Business).await.unwrap().seats_left, None, "per cabin");

        // A cancellation commits (and bumps) while a hold that started earlier is still deciding.
        let started = gate.read(flight, CabinClass::Economy).await.unwrap();
        gate.bump(flight).await;
        assert_eq!(gate.read(flight, CabinClass::Economy).await.unwrap().seats_left, None, "reopened");
        gate.learn(flight, CabinClass::Economy, &started, 0).await;
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
        here.learn(flight, economy, &before, 0).await;
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

    /// Closes the gate on a fresh flight's economy cabin with keys `recorded` known, as a closing refusal does.
    async fn closed_knowing(gate: &SoldOutGate, flight: Uuid, recorded: &[KeyDigest]) -> Reading {
        let open = gate.read(flight, CabinClass::Economy).await.unwrap();
        let closure = gate.learn(flight, CabinClass::Economy, &open, 0).await.expect("a fresh closing wants its keys");
        let _reading = gate.start_reading_keys(flight, CabinClass::Economy, closure).unwrap();
        assert!(gate.start_reading_keys(flight, CabinClass::Economy, closure).is_none(), "read once at a time");
        gate.know_keys(flight, CabinClass::Economy, &open, closure, recorded).await;
        assert_eq!(gate.learn(flight, CabinClass::Economy, &open, 0).await, None, "its keys are known");
        gate.read(flight, CabinClass::Economy).await.unwrap()
    }

    async fn knows_recorded_and_late_keys_until_it_reopens(here: SoldOutGate, there: SoldOutGate) {
        let flight = Uuid::now_v7();
        let [recorded, late, fresh] = ["recorded", "late", "fresh"].map(|key| key_digest(Uuid::nil(), key));
        let open = here.read(flight, CabinClass::Economy).await.unwrap();
        assert!(open.may_hold_key(&fresh), "an open gate knows no keys: every refusal looks its key up");
        assert!(!here.note_refused(flight, CabinClass::Economy, &[late]).await, "nothing to note while open");

        let closed = closed_knowing(&here, flight, &[recorded]).await;
        assert_eq!(closed.seats_left, Some(0));
        assert!(closed.may_hold_key(&recorded) && !closed.may_hold_key(&late) && !closed.may_hold_key(&fresh));
        assert!(there.note_refused(flight, CabinClass::Economy, &[late]).await, "a late refusal is noted");
        here.heard_of_change();
        let read = here.read(flight, CabinClass::Economy).await.unwrap();
        assert!(read.may_hold_key(&recorded) && read.may_hold_key(&late) && !read.may_hold_key(&fresh));
        // Read again, the reading adds what was refused since to what it held.
        let later = key_digest(Uuid::nil(), "later");
        assert!(there.note_refused(flight, CabinClass::Economy, &[later]).await);
        here.heard_of_change();
        let read = here.read(flight, CabinClass::Economy).await.unwrap();
        assert!([recorded, late, later].iter().all(|key| read.may_hold_key(key)) && !read.may_hold_key(&fresh));

        // Seats come back: the next closing knows nothing until it reads the keys again.
        there.bump(flight).await;
        here.heard_of_change();
        let reopened = here.read(flight, CabinClass::Economy).await.unwrap();
        assert_eq!(reopened.seats_left, None);
        let closure = here.learn(flight, CabinClass::Economy, &reopened, 0).await.unwrap();
        assert!(here.read(flight, CabinClass::Economy).await.unwrap().may_hold_key(&fresh), "no keys known yet");
        // A reading of keys for an earlier closing is not taken for this one's.
        here.know_keys(flight, CabinClass::Economy, &closed, closure, &[recorded]).await;
        assert!(here.read(flight, CabinClass::Economy).await.unwrap().may_hold_key(&fresh));
    }

    #[tokio::test]
    async fn a_closed_gate_knows_recorded_and_late_keys_until_it_reopens() {
        let gate = SoldOutGate::new(None);
        knows_recorded_and_late_keys_until_it_reopens(gate.clone(), gate).await;
    }

    #[tokio::test]
    async fn with_redis_every_instance_knows_the_closed_gate_keys() {
        let Some(redis) = crate::infra::redis::for_unit_test().await else { return };
        let (here, there) = (SoldOutGate::new(Some(redis.clone())), SoldOutGate::new(Some(redis.clone())));
        knows_recorded_and_late_keys_until_it_reopens(here, there).await;
        redis.quit().await;
    }
}
