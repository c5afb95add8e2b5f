//! Waiting-room queues: per flight, the tickets, their queue numbers and the admission counters of
//! [`crate::domain::waiting_room`].
//!
//! With Redis every instance shares one queue per flight (a few keys per flight, changed only by Lua
//! scripts, so joining, opening and admitting are atomic across instances). Without Redis, or while it is
//! away, each instance keeps its own queues in process: a waiting room still shapes the burst, but each
//! instance admits at the room's rate on its own; the switch is logged both ways.
//!
//! Early arrivals (before the room opens) draw a random number; at opening they get the first queue
//! numbers in the order of their draws, and the draw is kept, frozen, so every instance can tell the
//! final order without asking per ticket.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use fred::types::scripts::Script;
use uuid::Uuid;

use super::redis::Redis;
use crate::domain::waiting_room::Admission;

/// How long a flight's queue is kept in Redis after its last join.
const KEPT_FOR_SECONDS: i64 = 7 * 86_400;

/// A ticket: its flight (so whoever holds one can find its queue) and its own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TicketId {
    pub flight_id: Uuid,
    pub id: Uuid,
}

/// A queue's counters, advanced to the time they were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueState {
    pub opened: bool,
    pub admission: Admission,
    /// Early arrivals (all tickets before opening; after it, those numbered first).
    pub early: u64,
}

/// What the queue knows of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketRecord {
    pub user_id: Uuid,
    /// The ticket's queue number; `None` for an early arrival before opening.
    pub number: Option<u64>,
    /// When the ticket's pass expires, once it was admitted and issued one (Unix milliseconds).
    pub pass_expires_ms: Option<i64>,
    /// The ticket is in the queue this instance kept on its own while Redis was away.
    pub in_fallback: bool,
    /// The ticket joined before the room opened: its number came from its draw, at opening.
    pub early: bool,
}

/// A join's answer: the caller's ticket (new, or the one it already had) and the queue as it stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub ticket: TicketId,
    pub record: TicketRecord,
    /// Before opening: the ticket's place among the early arrivals' draws so far (1-based).
    pub early_rank: Option<u64>,
    pub state: QueueState,
}

/// The times and pace a queue operation settles the counters with.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub now_ms: i64,
    pub opens_at_ms: i64,
    pub admit_per_minute: u32,
    /// The flight is sold out: admission credits no time until a reader sees seats again, and then
    /// resumes from that moment (the sold-out spell is never admitted in one burst).
    pub paused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The shared queue did not answer in time.
    #[error("the shared waiting-room queue did not answer")]
    Unavailable,
}

#[derive(Clone)]
pub struct Queues {
    inner: Arc<Backing>,
}

enum Backing {
    Local(LocalQueues),
    Redis { redis: Redis, scripts: Box<Scripts>, fallback: LocalQueues, degraded: AtomicBool },
}

struct Scripts {
    join: Script,
    state: Script,
    early: Script,
    admit: Script,
}

impl Queues {
    pub fn new(redis: Option<Redis>) -> Self {
        let inner = match redis {
            Some(redis) => Backing::Redis {
                redis,
                scripts: Box::new(Scripts {
                    join: Script::from_lua(format!("{SETTLE}{JOIN}")),
                    state: Script::from_lua(format!("{SETTLE}{STATE}")),
                    early: Script::from_lua(EARLY),
                    admit: Script::from_lua(ADMIT),
                }),
                fallback: LocalQueues::default(),
                degraded: AtomicBool::new(false),
            },
            None => Backing::Local(LocalQueues::default()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Puts `user_id` in the flight's queue, or finds the ticket it has (a new one if that ticket's pass
    /// has expired). `draw` places an early arrival. While Redis is disconnected the caller joins this
    /// instance's own queue; a Redis command that fails (a timeout under load) fails the join instead, so
    /// that a slow moment never splits the queue.
    #[tracing::instrument(name = "redis waiting_room.join", skip_all, fields(otel.kind = "client"))]
    pub async fn join(&self, flight_id: Uuid, user_id: Uuid, pace: Pace, draw: u64) -> Result<Joined, QueueError> {
        let new_ticket = TicketId { flight_id, id: Uuid::new_v4() };
        let (redis, scripts, fallback, degraded) = match &*self.inner {
            Backing::Local(local) => return Ok(local.join(new_ticket, user_id, pace, draw)),
            Backing::Redis { redis, scripts, fallback, degraded } => (redis, scripts, fallback, degraded),
        };
        let Some(client) = redis.connected() else {
            degrade(degraded, None);
            return Ok(fallback.join(new_ticket, user_id, pace, draw).in_fallback_queue());
        };
        let mut args = pace_args(pace);
        args.extend([user_id.to_string(), new_ticket.id.simple().to_string(), draw.to_string()]);
        args.push(KEPT_FOR_SECONDS.to_string());
        let reply = scripts.join.evalsha_with_reload(client, keys(redis, flight_id), args).await;
        let JoinReply(ticket, number, rank, issued, serving, carry, opened, early, pass, drew) =
            reply.map_err(|error| {
                tracing::warn!(%error, "waiting-room join failed");
                QueueError::Unavailable
            })?;
        recovered(degraded);
        let id = Uuid::try_parse(&ticket).map_err(|_| {
            tracing::error!(ticket, "the waiting-room queue holds a malformed ticket");
            QueueError::Unavailable
        })?;
        Ok(Joined {
            ticket: TicketId { flight_id, id },
            record: TicketRecord {
                user_id,
                number: (number > 0).then_some(number),
                pass_expires_ms: (pass > 0).then_some(pass),
                in_fallback: false,
                early: drew == 1,
            },
            early_rank: (rank > 0).then_some(rank),
            state: state_of(opened, issued, serving, carry, early),
        })
    }

    /// The counters of the flight's queue (the shared one with Redis), advanced to `pace.now_ms` and
    /// opened when its time has come; `None` while the shared queue cannot be read.
    pub async fn state(&self, flight_id: Uuid, pace: Pace) -> Option<QueueState> {
        match &*self.inner {
            Backing::Local(local) => Some(local.state(flight_id, pace)),
            Backing::Redis { redis, scripts, degraded, .. } => {
                let answer = match redis.available() {
                    Some(client) => scripts
                        .state
                        .evalsha_with_reload(client, keys(redis, flight_id), pace_args(pace))
                        .await
                        .map_err(Some),
                    None => Err(None),
                };
                match answer {
                    Ok((opened, issued, serving, carry, early)) => {
                        recovered(degraded);
                        Some(state_of(opened, issued, serving, carry, early))
                    }
                    Err(None) => {
                        degrade(degraded, None);
                        None
                    }
                    Err(Some(error)) => {
                        tracing::debug!(%error, "waiting-room queue not read");
                        None
                    }
                }
            }
        }
    }

    /// The counters of the queue this instance kept for the flight while Redis was away, if it did: its
    /// tickets are admitted from it until they are done.
    pub fn fallback_state(&self, flight_id: Uuid, pace: Pace) -> Option<QueueState> {
        match &*self.inner {
            Backing::Redis { fallback, .. } if fallback.has(flight_id) => Some(fallback.state(flight_id, pace)),
            _ => None,
        }
    }

    /// The early arrivals' tickets in the order of their draws (their queue order once the room opened), in
    /// the shared queue or (`fallback`) this instance's own.
    pub async fn early_order(&self, flight_id: Uuid, fallback_queue: bool) -> Vec<Uuid> {
        match &*self.inner {
            Backing::Local(local) => local.early_order(flight_id),
            Backing::Redis { fallback, .. } if fallback_queue => fallback.early_order(flight_id),
            Backing::Redis { redis, scripts, .. } => {
                let Some(client) = redis.available() else { return Vec::new() };
                match scripts.early.evalsha_with_reload::<Vec<String>, _, _>(client, keys(redis, flight_id), ()).await {
                    Ok(tickets) => tickets.iter().filter_map(|t| Uuid::try_parse(t).ok()).collect(),
                    Err(error) => {
                        tracing::debug!(%error, "early arrivals not read");
                        Vec::new()
                    }
                }
            }
        }
    }

    /// Records that `ticket` (of this instance's own queue: `in_fallback`) was admitted with a pass
    /// expiring at `expires_ms`, unless it already was: returns the expiry of the ticket's one pass, so that
    /// watching again, on any instance, never extends it.
    #[tracing::instrument(name = "redis waiting_room.admit", skip_all, fields(otel.kind = "client"))]
    pub async fn admit(&self, ticket: TicketId, in_fallback: bool, expires_ms: i64) -> Result<i64, QueueError> {
        match &*self.inner {
            Backing::Local(local) => Ok(local.admit(ticket, expires_ms)),
            Backing::Redis { fallback, .. } if in_fallback => Ok(fallback.admit(ticket, expires_ms)),
            Backing::Redis { redis, scripts, .. } => {
                let client = redis.available().ok_or(QueueError::Unavailable)?;
                let args = vec![ticket.id.simple().to_string(), expires_ms.to_string()];
                scripts.admit.evalsha_with_reload(client, keys(redis, ticket.flight_id), args).await.map_err(|error| {
                    tracing::warn!(%error, "waiting-room admission not recorded");
                    QueueError::Unavailable
                })
            }
        }
    }
}

impl Joined {
    fn in_fallback_queue(self) -> Self {
        Self { record: TicketRecord { in_fallback: true, ..self.record }, ..self }
    }
}

/// The JOIN script's answer: ticket, number, early rank, issued, serving, carry, opened, early arrivals,
/// pass expiry, whether the ticket is an early arrival's.
#[derive(Debug)]
struct JoinReply(String, u64, u64, u64, u64, i64, u8, u64, i64, u8);

impl fred::types::FromValue for JoinReply {
    fn from_value(value: fred::types::Value) -> Result<Self, fred::error::Error> {
        let (ticket, number, rank, issued, serving, carry, opened, early, pass, drew) = value.convert()?;
        Ok(Self(ticket, number, rank, issued, serving, carry, opened, early, pass, drew))
    }
}

fn state_of(opened: u8, issued: u64, serving: u64, carry: i64, early: u64) -> QueueState {
    QueueState { opened: opened == 1, admission: Admission { issued, serving, carry }, early }
}

fn pace_args(pace: Pace) -> Vec<String> {
    vec![
        pace.now_ms.to_string(),
        pace.opens_at_ms.to_string(),
        pace.admit_per_minute.to_string(),
        u8::from(pace.paused).to_string(),
    ]
}

/// The flight's keys, in the order the scripts name them; one hash tag, so they share a cluster slot.
fn keys(redis: &Redis, flight_id: Uuid) -> Vec<String> {
    ["state", "early", "numbers", "owners", "tickets", "passes"]
        .into_iter()
        .map(|part| redis.key(&format!("waiting-room:{{{flight_id}}}:{part}")))
        .collect()
}

/// Logs the switch to this instance's own queues once per outage.
fn degrade(degraded: &AtomicBool, error: Option<fred::error::Error>) {
    if !degraded.swap(true, Ordering::AcqRel) {
        let error = error.map(|e| e.to_string()).unwrap_or_else(|| "not connected".to_owned());
        tracing::warn!(
            %error,
            "Redis unavailable: waiting rooms fall back to this instance's own queues, not shared with other instances"
        );
    }
}

fn recovered(degraded: &AtomicBool) {
    if degraded.swap(false, Ordering::AcqRel) {
        tracing::info!("Redis is back: new waiting-room tickets join the shared queues again");
    }
}

/// Queues kept in this process.
#[derive(Default)]
struct LocalQueues {
    flights: Mutex<HashMap<Uuid, LocalQueue>>,
}

#[derive(Default)]
struct LocalQueue {
    opened: bool,
    admission: Admission,
    advanced_at_ms: i64,
    /// The last settle was paused (the flight sold out).
    paused: bool,
    /// Early arrivals by draw (a repeated draw is moved up to the next free one).
    early: BTreeMap<u64, Uuid>,
    tickets: HashMap<Uuid, TicketRecord>,
    by_user: HashMap<Uuid, Uuid>,
}

impl LocalQueue {
    /// Opens the queue if its time has come, then advances admission to `pace.now_ms`: the sums of the
    /// Redis scripts' `settle`.
    fn settle(&mut self, pace: Pace) {
        if !self.opened {
            if pace.now_ms < pace.opens_at_ms {
                return;
            }
            for (offset, ticket) in (1..).zip(self.early.values()) {
                if let Some(record) = self.tickets.get_mut(ticket) {
                    record.number = Some(self.admission.issued + offset);
                }
            }
            self.admission.issued += self.early.len() as u64;
            self.opened = true;
            self.advanced_at_ms = pace.opens_at_ms;
            self.admission.carry = 0;
        }
        let credited_ms = if pace.paused || self.paused { 0 } else { pace.now_ms - self.advanced_at_ms };
        self.admission = self.admission.advance(credited_ms, pace.admit_per_minute);
        self.advanced_at_ms = self.advanced_at_ms.max(pace.now_ms);
        self.paused = pace.paused;
    }

    fn state(&self) -> QueueState {
        QueueState { opened: self.opened, admission: self.admission, early: self.early.len() as u64 }
    }

    fn early_rank(&self, ticket: Uuid) -> Option<u64> {
        let draw = self.early.iter().find(|(_, t)| **t == ticket).map(|(draw, _)| *draw)?;
        Some(self.early.range(..draw).count() as u64 + 1)
    }
}

impl LocalQueues {
    fn has(&self, flight_id: Uuid) -> bool {
        self.flights.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&flight_id)
    }

    fn join(&self, new_ticket: TicketId, user_id: Uuid, pace: Pace, draw: u64) -> Joined {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = flights.entry(new_ticket.flight_id).or_default();
        queue.settle(pace);
        let current = queue.by_user.get(&user_id).copied().filter(|ticket| {
            queue.tickets.get(ticket).and_then(|r| r.pass_expires_ms).is_none_or(|expires| expires > pace.now_ms)
        });
        let id = current.unwrap_or_else(|| {
            let mut record =
                TicketRecord { user_id, number: None, pass_expires_ms: None, in_fallback: false, early: !queue.opened };
            if queue.opened {
                queue.admission.issued += 1;
                record.number = Some(queue.admission.issued);
            } else {
                let mut draw = draw;
                while queue.early.contains_key(&draw) {
                    draw = draw.wrapping_add(1);
                }
                queue.early.insert(draw, new_ticket.id);
            }
            queue.tickets.insert(new_ticket.id, record);
            queue.by_user.insert(user_id, new_ticket.id);
            new_ticket.id
        });
        let record = queue.tickets[&id];
        let early_rank = if record.number.is_none() { queue.early_rank(id) } else { None };
        Joined { ticket: TicketId { flight_id: new_ticket.flight_id, id }, record, early_rank, state: queue.state() }
    }

    fn state(&self, flight_id: Uuid, pace: Pace) -> QueueState {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        match flights.get_mut(&flight_id) {
            Some(queue) => {
                queue.settle(pace);
                queue.state()
            }
            None => QueueState::default(),
        }
    }

    fn early_order(&self, flight_id: Uuid) -> Vec<Uuid> {
        let flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        flights.get(&flight_id).map(|queue| queue.early.values().copied().collect()).unwrap_or_default()
    }

    fn admit(&self, ticket: TicketId, expires_ms: i64) -> i64 {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        let record = flights.get_mut(&ticket.flight_id).and_then(|queue| queue.tickets.get_mut(&ticket.id));
        match record {
            Some(record) => *record.pass_expires_ms.get_or_insert(expires_ms),
            None => expires_ms,
        }
    }
}

/// Opens the queue when its time has come and advances admission to now: the sums of
/// [`LocalQueue::settle`] and [`Admission::advance`]. KEYS: state, early, numbers; ARGV: now (ms),
/// opens at (ms), admitted per minute, paused (1 or 0). Leaves `opened`, `issued`, `serving`, `carry` set.
const SETTLE: &str = r"
local now, opens_at, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local pause = ARGV[4] == '1'
local s = redis.call('HMGET', KEYS[1], 'opened', 'issued', 'serving', 'carry', 'advanced_at', 'paused')
local opened, issued, serving = s[1] == '1', tonumber(s[2]) or 0, tonumber(s[3]) or 0
local carry, advanced_at, was_paused = tonumber(s[4]) or 0, tonumber(s[5]) or 0, s[6] == '1'
if not opened and now >= opens_at then
  local order = redis.call('ZRANGE', KEYS[2], 0, -1)
  for i, ticket in ipairs(order) do
    redis.call('HSET', KEYS[3], ticket, issued + i)
  end
  issued = issued + #order
  opened, advanced_at, carry = true, opens_at, 0
end
if opened then
  if serving >= issued then
    serving, carry = issued, 0
  else
    local elapsed = math.min(math.max(now - advanced_at, 0), 86400000)
    if pause or was_paused then elapsed = 0 end
    local credit = carry + elapsed * rate
    local admitted = math.floor(credit / 60000)
    if serving + admitted >= issued then
      serving, carry = issued, 0
    else
      serving, carry = serving + admitted, credit % 60000
    end
  end
  redis.call('HSET', KEYS[1], 'opened', 1, 'issued', issued, 'serving', serving, 'carry', carry,
    'advanced_at', math.max(now, advanced_at), 'paused', pause and 1 or 0)
end
";

/// ARGV after the pace: user, new ticket id, draw, seconds to keep the keys. KEYS as [`keys`].
const JOIN: &str = r"
local user, fresh, draw, kept = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local ticket = redis.call('HGET', KEYS[4], user)
if ticket then
  local pass = tonumber(redis.call('HGET', KEYS[6], ticket))
  if pass and pass <= now then ticket = false end
end
if not ticket then
  ticket = fresh
  redis.call('HSET', KEYS[4], user, ticket)
  redis.call('HSET', KEYS[5], ticket, user)
  if opened then
    issued = issued + 1
    redis.call('HSET', KEYS[1], 'issued', issued)
    redis.call('HSET', KEYS[3], ticket, issued)
  else
    while redis.call('ZSCORE', KEYS[2], draw) do draw = draw + 1 end
    redis.call('ZADD', KEYS[2], draw, ticket)
  end
  for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, kept) end
end
local number = tonumber(redis.call('HGET', KEYS[3], ticket)) or 0
local rank = 0
if number == 0 then rank = redis.call('ZRANK', KEYS[2], ticket) + 1 end
local pass = tonumber(redis.call('HGET', KEYS[6], ticket)) or 0
local drew = redis.call('ZSCORE', KEYS[2], ticket) and 1 or 0
return {ticket, number, rank, issued, serving, carry, opened and 1 or 0, redis.call('ZCARD', KEYS[2]), pass, drew}
";

const STATE: &str = r"
return {opened and 1 or 0, issued, serving, carry, redis.call('ZCARD', KEYS[2])}
";

const EARLY: &str = r"
return redis.call('ZRANGE', KEYS[2], 0, -1)
";

/// ARGV: ticket, pass expiry. Sets the expiry unless set, returns the one set.
const ADMIT: &str = r"
redis.call('HSETNX', KEYS[6], ARGV[1], ARGV[2])
return tonumber(redis.call('HGET', KEYS[6], ARGV[1]))
";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn pace(now_ms: i64, admit_per_minute: u32) -> Pace {
        Pace { now_ms, opens_at_ms: 10 * MINUTE_MS, admit_per_minute, paused: false }
    }

    /// One scenario, told as what each step answered, so that both backings can be compared.
    async fn scenario(queues: &Queues) -> Vec<String> {
        let flight = Uuid::now_v7();
        let users: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let mut told = Vec::new();
        // Three early arrivals drawing 30, 10, 20; a repeated join changes nothing.
        let mut early = Vec::new();
        for (user, draw) in users.iter().zip([30, 10, 20]) {
            let joined = queues.join(flight, *user, pace(MINUTE_MS, 60), draw).await.unwrap();
            told.push(format!("early rank {:?} number {:?}", joined.early_rank, joined.record.number));
            early.push(joined.ticket);
        }
        let again = queues.join(flight, users[0], pace(2 * MINUTE_MS, 60), 99).await.unwrap();
        told.push(format!("rejoin same {} rank {:?}", again.ticket == early[0], again.early_rank));
        let order = queues.early_order(flight, false).await;
        told.push(format!(
            "order {:?}",
            order.iter().map(|t| early.iter().position(|e| e.id == *t)).collect::<Vec<_>>()
        ));
        // Opening numbers the early arrivals by draw; a late arrival comes after them.
        let late = queues.join(flight, users[3], pace(10 * MINUTE_MS, 60), 0).await.unwrap();
        told.push(format!("late number {:?} early {} state {:?}", late.record.number, late.record.early, late.state));
        for user in &users[..3] {
            let again = queues.join(flight, *user, pace(10 * MINUTE_MS, 60), 0).await.unwrap();
            told.push(format!("{:?} {}", again.record.number, again.record.early));
        }
        // A second and a half later: one admitted, the remainder carried.
        let state = queues.state(flight, pace(10 * MINUTE_MS + 1_500, 60)).await;
        told.push(format!("{state:?}"));
        // A pass's expiry is fixed the first time.
        let first = queues.admit(early[1], false, 11 * MINUTE_MS).await.unwrap();
        let second = queues.admit(early[1], false, 12 * MINUTE_MS).await.unwrap();
        told.push(format!("pass {first} {second}"));
        // Past it, joining takes a new ticket at the back.
        let expired = queues.join(flight, users[1], pace(11 * MINUTE_MS, 60), 0).await.unwrap();
        told.push(format!("new {} number {:?}", expired.ticket != early[1], expired.record.number));
        // Sold out: no credit while paused, and none for the paused spell once seats return.
        for (at, paused) in [(12, true), (13, true), (14, false)].map(|(m, p)| (m * MINUTE_MS, p)) {
            let state = queues.state(flight, Pace { paused, ..pace(at, 60) }).await.unwrap();
            told.push(format!("paused {paused} serving {} of {}", state.admission.serving, state.admission.issued));
        }
        let resumed = queues.state(flight, pace(14 * MINUTE_MS + 1_000, 60)).await.unwrap();
        told.push(format!("a second later serving {}", resumed.admission.serving));
        told
    }

    #[tokio::test]
    async fn the_shared_queue_and_the_in_process_queue_follow_the_same_rules() {
        let local = scenario(&Queues::new(None)).await;
        assert_eq!(
            local[..4],
            [
                "early rank Some(1) number None",
                "early rank Some(1) number None",
                "early rank Some(2) number None",
                "rejoin same true rank Some(3)",
            ]
        );
        assert_eq!(local[4], "order [Some(1), Some(2), Some(0)]");
        assert_eq!(local[6..9], ["Some(3) true", "Some(1) true", "Some(2) true"]);
        assert_eq!(local[10], format!("pass {} {}", 11 * MINUTE_MS, 11 * MINUTE_MS));
        assert_eq!(local[11], "new true number Some(5)");
        assert_eq!(
            local[12..],
            [
                "paused true serving 4 of 5",
                "paused true serving 4 of 5",
                "paused false serving 4 of 5",
                "a second later serving 5",
            ]
        );
        let Some(redis) = crate::infra::redis::for_unit_test().await else { return };
        assert_eq!(scenario(&Queues::new(Some(redis))).await, local, "Redis scripts and Rust agree");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_redis_each_instance_keeps_its_own_queue_and_says_so() {
        let log = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let log = log.clone();
            move || LogWriter(log.clone())
        };
        let subscriber = tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let config = crate::config::RedisConfig {
            url: crate::config::Secret::new("redis://127.0.0.1:1".to_owned()),
            key_prefix: "unreachable:".to_owned(),
        };
        let queues = Queues::new(Some(Redis::connect(&config).await.unwrap()));
        let flight = Uuid::now_v7();
        let joined = queues.join(flight, Uuid::now_v7(), pace(11 * MINUTE_MS, 60), 0).await.unwrap();
        assert!(joined.record.in_fallback);
        assert_eq!(joined.record.number, Some(1));
        assert_eq!(queues.state(flight, pace(11 * MINUTE_MS, 60)).await, None, "the shared queue is unknown");
        let own = queues.fallback_state(flight, pace(11 * MINUTE_MS + 1_000, 60)).unwrap();
        assert_eq!(own.admission.serving, 1);
        assert_eq!(queues.admit(joined.ticket, true, 12 * MINUTE_MS).await.unwrap(), 12 * MINUTE_MS);
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert_eq!(log.matches("waiting rooms fall back to this instance's own queues").count(), 1, "{log}");
    }

    struct LogWriter(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for LogWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
