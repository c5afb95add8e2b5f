//! The gate's state in Redis: its keys, the Lua scripts that read and change it atomically, and the
//! reading's reply.

use fred::types::{FromValue, Value, scripts::Script};
use uuid::Uuid;

use super::known_keys::{KeyDigest, KeyFilter};
use crate::{domain::flight::CabinClass, infra::redis::Redis};

pub(super) struct Scripts {
    pub read: Script,
    pub learn: Script,
    pub know_keys: Script,
    pub note_refused: Script,
    pub bump: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            read: Script::from_lua(READ),
            learn: Script::from_lua(LEARN),
            know_keys: Script::from_lua(KNOW_KEYS),
            note_refused: Script::from_lua(NOTE_REFUSED),
            bump: Script::from_lua(BUMP),
        }
    }
}

/// READ's answer: what the gate knows of the cabin, and of its keys only what the instance lacks.
pub(super) struct ReadReply {
    pub generation: u64,
    pub seats_left: Option<i32>,
    /// The closing's token, when its keys are known.
    pub closure: Option<u64>,
    /// The closing's filter, unless the instance said it holds this closing's already.
    pub filter: Option<KeyFilter>,
    /// The late keys from the position the instance asked for (from the first, with a filter).
    pub late: Vec<KeyDigest>,
}

impl FromValue for ReadReply {
    fn from_value(value: Value) -> Result<Self, fred::error::Error> {
        let mut parts = value.into_array().into_iter();
        let generation: Option<u64> = parts.next().map(Value::convert).transpose()?.flatten();
        let seats_left: Option<i32> = parts.next().map(Value::convert).transpose()?.flatten();
        let closure: Option<u64> = parts.next().map(Value::convert).transpose()?.flatten();
        let filter = parts.next().and_then(Value::into_owned_bytes).and_then(KeyFilter::from_bytes);
        let late = parts
            .next()
            .map(Value::into_array)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|digest| digest.into_owned_bytes().and_then(|bytes| bytes.try_into().ok()))
            .collect();
        Ok(Self { generation: generation.unwrap_or(0), seats_left, closure, filter, late })
    }
}

/// The flight's generation counter and its known counts per cabin, then the cabin's key filter and late
/// keys. Every key of a flight carries its id as a hash tag (`{flight_id}`), so the keys one script takes
/// share a slot of a Redis Cluster.
pub(super) fn keys(redis: &Redis, flight_id: Uuid, cabin: CabinClass) -> Vec<String> {
    let mut keys = flight_wide_keys(redis, flight_id);
    keys.extend(cabin_keys(redis, flight_id, cabin));
    keys
}

/// The keys BUMP takes: the flight's generation and known counts, then every cabin's filter and late keys.
pub(super) fn flight_keys(redis: &Redis, flight_id: Uuid) -> Vec<String> {
    let mut keys = flight_wide_keys(redis, flight_id);
    keys.extend(CabinClass::ALL.iter().flat_map(|cabin| cabin_keys(redis, flight_id, *cabin)));
    keys
}

fn flight_wide_keys(redis: &Redis, flight_id: Uuid) -> Vec<String> {
    vec![
        redis.key(&format!("sold-out:{{{flight_id}}}:generation")),
        redis.key(&format!("sold-out:{{{flight_id}}}:known")),
    ]
}

fn cabin_keys(redis: &Redis, flight_id: Uuid, cabin: CabinClass) -> [String; 2] {
    let cabin = cabin.as_str();
    [format!("sold-out:{{{flight_id}}}:filter:{cabin}"), format!("sold-out:{{{flight_id}}}:late:{cabin}")]
        .map(|suffix| redis.key(&suffix))
}

/// KEYS: generation, known, filter, late. ARGV: cabin, the closing whose filter the instance holds (or
/// empty), how many of its late keys it holds. Returns {generation}, {generation, seats left} or, once the
/// closing's keys are known, {generation, seats left, closing, filter or nil, late keys}: the filter and
/// every late key for another closing, else only the late keys the instance lacks.
const READ: &str = r"
local generation = redis.call('GET', KEYS[1])
local seats_left = redis.call('HGET', KEYS[2], ARGV[1])
if not seats_left then return {generation} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {generation, seats_left} end
local closure = redis.call('HGET', KEYS[2], ARGV[1] .. '#closure')
if closure == ARGV[2] then
  return {generation, seats_left, closure, false, redis.call('LRANGE', KEYS[4], ARGV[3], -1)}
end
return {generation, seats_left, closure, redis.call('GET', KEYS[3]), redis.call('LRANGE', KEYS[4], 0, -1)}
";

/// KEYS: generation, known, filter, late. ARGV: generation read, cabin, seats left, seconds known, a fresh
/// closure's token. A closing that was not open starts afresh with no keys known. Returns the closure's
/// token while it wants its keys, else nil.
const LEARN: &str = r"
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return nil end
local closure = ARGV[2] .. '#closure'
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('HSET', KEYS[2], closure, ARGV[5])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if redis.call('EXISTS', KEYS[3]) == 1 then return nil end
return redis.call('HGET', KEYS[2], closure)
";

/// KEYS: generation, known, filter, late. ARGV: generation read, cabin, closure, filter, seconds known.
/// The late keys live at least as long as the filter.
const KNOW_KEYS: &str = r"
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2] .. '#closure') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
redis.call('EXPIRE', KEYS[4], ARGV[5])
return 1
";

/// KEYS: generation, known, filter, late. ARGV: cabin, seconds known, refused key digests. Noted only while
/// the cabin's gate is closed; the next closing reads them from the database.
const NOTE_REFUSED: &str = r"
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[4], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[4], ARGV[2])
return 1
";

/// KEYS: generation, known, then every cabin's filter and late keys. ARGV: seconds the generation is kept.
const BUMP: &str = r"
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', unpack(KEYS, 2))
return 1
";
