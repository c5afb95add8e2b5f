//! Group-committed holds. A hot cabin's holds would otherwise queue one transaction at a time on the
//! cabin's row lock (taken by the conditional update of its count and kept until the commit), so a flash
//! sale would run at the database's single-row-lock rate.
//!
//! Instead, holds for one cabin wait in the cabin's queue, and one task per cabin drains it: the holds
//! waiting when it looks (at most [`MAX_BATCH`], first come first served) go into one write transaction
//! that reads the callers' keys once, locks the cabin's row once, decides every hold in memory against the
//! count and the taken seats read under that lock, then writes the batch with one conditional update of
//! the count and one multi-row insert each for bookings, passengers, segments, seats, history rows and keys. Each
//! caller still gets its own result and its own stored outcome: a refusal (sold out, seats taken, too many
//! holds) is stored under its caller's key, an invalid request (or one whose key names another call)
//! answers its caller only, and neither changes the others' holds. No time is spent waiting to fill a
//! batch: while one transaction runs, the next batch gathers.
//!
//! A second call with a key whose hold is queued or in a batch on this instance (a double tap) does not
//! queue: it waits for the first to finish and gets its stored outcome from the completed-call memory, so
//! duplicates cost the database nothing. Should the first end without storing one (an invalid request, a
//! failure, its caller gone), the second is queued as a hold of its own.
//!
//! The database still arbitrates between instances (each batches its own callers; the row lock orders
//! their batches), and SQLite's single writer runs batches one after another like any write. Should a
//! batch fail as a whole (a key taken meanwhile by another instance, a lost connection, a bug), it rolls
//! back and each of its holds is decided again as a batch of its own, so only a hold that fails alone
//! fails (a key another instance still holds then answers `IDEMPOTENCY_IN_PROGRESS`, as any duplicate
//! that waited too long).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Actor, Bookings, REFERENCE_ATTEMPTS};
use crate::{
    app::{
        AppError,
        idempotency::{KEY_RETENTION, KeyedRequest, Outcome, Replay, stored},
    },
    domain::{
        booking::{Booking, BookingReference, BookingStatus, Refusal, Segment},
        flight::{CabinClass, Flight},
        hold::{Hold, HoldRequest, LockedCabin},
        money::Money,
    },
    infra::{
        sold_out::known_keys::{KeyDigest, key_digest},
        telemetry,
    },
    store::{
        StoreError,
        bookings::{self, HOLD_PLACED},
        flights,
        history::Change,
        hold_writes::{self, HoldWrite, KeyedOutcome, SeatsTaken, Written},
        idempotency, seats,
    },
};

/// Holds decided in one transaction at most. Bounds the statements' sizes (9 passengers each, 7 columns a
/// passenger: well within every database's parameter limit) and how long one batch keeps the cabin.
pub const MAX_BATCH: usize = 64;

/// How a caller's response is encoded: the stored bytes are exactly what the caller gets.
pub type Encoder = fn(&Booking) -> Vec<u8>;

/// What a queued hold's caller gets back.
pub type Placed = Result<Outcome<Booking>, AppError>;

/// A hold waiting for its cabin's next batch.
pub struct QueuedHold {
    pub actor: Actor,
    pub keyed: KeyedRequest,
    pub hold: HoldRequest,
    pub encode: Encoder,
    reply: oneshot::Sender<Placed>,
}

type CabinKey = (Uuid, CabinClass);
type CallKey = (Uuid, String);

/// The waiting holds of each cabin with a drain task at work (a cabin is listed exactly while its task
/// runs, so a hold queued here is always drained), and the keys of the holds queued or in a batch, each
/// with the calls that wait for it to finish.
#[derive(Default)]
pub struct HoldQueues(std::sync::Mutex<Queues>);

#[derive(Default)]
struct Queues {
    cabins: HashMap<CabinKey, VecDeque<QueuedHold>>,
    keys_in_flight: HashMap<CallKey, Vec<oneshot::Sender<()>>>,
}

impl HoldQueues {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A key this call has in flight: unlisted when the call ends, however it ends, which wakes the calls
/// that followed it.
struct KeyInFlight<'q> {
    queues: &'q HoldQueues,
    key: CallKey,
}

impl Drop for KeyInFlight<'_> {
    fn drop(&mut self) {
        self.queues.lock().keys_in_flight.remove(&self.key);
    }
}

impl Bookings {
    /// Queues a hold for its cabin's next batch and waits for its result; or, while a call with the same
    /// key is queued or in a batch here, waits for that call and replays its outcome.
    #[tracing::instrument(skip_all)]
    pub(super) async fn place_in_batch(
        &self,
        actor: Actor,
        keyed: KeyedRequest,
        hold: HoldRequest,
        encode: Encoder,
    ) -> Placed {
        let key: CallKey = (keyed.caller_id, keyed.key.clone());
        let _in_flight = loop {
            let first_done = {
                let mut queues = self.queues.lock();
                match queues.keys_in_flight.get_mut(&key) {
                    Some(followers) => {
                        let (done, first_done) = oneshot::channel();
                        followers.push(done);
                        first_done
                    }
                    None => {
                        queues.keys_in_flight.insert(key.clone(), Vec::new());
                        break KeyInFlight { queues: &self.queues, key };
                    }
                }
            };
            // Woken when the first call ends: its sender is dropped with its listing.
            let _ = first_done.await;
            if let Some(replay) = self.idempotency.replay_completed(&keyed, self.clock.now()) {
                return replay.map(Outcome::Replayed);
            }
        };
        let cabin = (hold.flight_id, hold.cabin);
        let (reply, result) = oneshot::channel();
        let queued = QueuedHold { actor, keyed, hold, encode, reply };
        let start_draining = {
            let cabins = &mut self.queues.lock().cabins;
            match cabins.get_mut(&cabin) {
                Some(waiting) => {
                    waiting.push_back(queued);
                    false
                }
                None => {
                    cabins.insert(cabin, VecDeque::from([queued]));
                    true
                }
            }
        };
        if start_draining {
            // Its own task: the batch goes on for the others if this caller goes away.
            tokio::spawn(self.clone().drain(cabin));
        }
        result.await.map_err(|_| AppError::Interrupted("the hold's batch was lost"))?
    }

    /// Places the cabin's waiting holds batch after batch until none waits.
    async fn drain(self, cabin: CabinKey) {
        let _listed = Drainer { bookings: &self, cabin };
        loop {
            let batch = {
                let cabins = &mut self.queues.lock().cabins;
                let Some(waiting) = cabins.get_mut(&cabin) else { return };
                let batch = next_batch(waiting);
                if batch.is_empty() {
                    cabins.remove(&cabin);
                    return;
                }
                batch
            };
            self.place_batch(batch).await;
        }
    }

    async fn place_batch(&self, batch: Vec<QueuedHold>) {
        let now = self.clock.now();
        let flight_id = batch[0].hold.flight_id;
        let started = std::time::Instant::now();
        match self.decide_batch(&batch, now).await {
            Ok(results) => {
                tracing::debug!(
                    %flight_id,
                    holds = batch.len(),
                    placed = results.iter().filter(|r| matches!(r, Ok(Outcome::Executed(_)))).count(),
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "batch of holds committed"
                );
                if results.iter().any(|result| matches!(result, Ok(Outcome::Executed(_)))) {
                    self.feed.changed(flight_id).await;
                }
                self.note_refused(&batch, &results).await;
                for (queued, result) in batch.into_iter().zip(results) {
                    // A caller that went away has its outcome stored under its key all the same.
                    let _ = queued.reply.send(result);
                }
            }
            Err(error) => {
                tracing::warn!(%error, holds = batch.len(), "a batch of holds failed as a whole; placing each alone");
                if matches!(error, AppError::Store(StoreError::Corrupt(_))) {
                    self.rebuild_taken_seats(flight_id, batch[0].hold.cabin).await;
                }
                for queued in batch {
                    // A batch of one: whatever fails now is this hold's own failure.
                    let result = match self.decide_batch(std::slice::from_ref(&queued), self.clock.now()).await {
                        Ok(results) => results.into_iter().next().unwrap_or(Err(AppError::Interrupted("empty batch"))),
                        Err(error) => Err(error),
                    };
                    if let Ok(Outcome::Executed(booking)) = &result {
                        self.feed.changed(booking.flight_id).await;
                    }
                    self.note_refused(std::slice::from_ref(&queued), std::slice::from_ref(&result)).await;
                    let _ = queued.reply.send(result);
                }
            }
        }
    }

    /// Makes the cabin's taken seats its seat assignments again when a batch found them disagreeing (a
    /// seat chosen as free was assigned, or too few free for the count): written by a version before the
    /// cabin kept them, or by hand. Each hold is then decided again against the truth.
    async fn rebuild_taken_seats(&self, flight_id: Uuid, cabin: CabinClass) {
        let rebuilt = async {
            let txn = self.store.begin_write().await?;
            let changed = seats::rebuild_taken(&txn, flight_id, cabin).await?;
            txn.commit().await?;
            Ok::<_, StoreError>(changed)
        };
        match rebuilt.await {
            Ok(true) => {
                tracing::warn!(%flight_id, cabin = cabin.as_str(), "the cabin's taken seats disagreed with its seat assignments; rebuilt")
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, %flight_id, "the cabin's taken seats could not be rebuilt"),
        }
    }

    /// Tells a closed sold-out gate the keys whose refusals just committed, before their callers hear of
    /// them: a retry of one must be looked up, not refused from memory.
    async fn note_refused(&self, batch: &[QueuedHold], results: &[Placed]) {
        let refused: Vec<KeyDigest> = batch
            .iter()
            .zip(results)
            .filter(|(_, result)| matches!(result, Err(AppError::Refused(_))))
            .map(|(queued, _)| key_digest(queued.keyed.caller_id, &queued.keyed.key))
            .collect();
        if let Some(queued) = batch.first()
            && !refused.is_empty()
        {
            self.feed.refused_keys(queued.hold.flight_id, queued.hold.cabin, &refused).await;
        }
    }

    /// Decides and writes one batch of holds for one cabin in one transaction; a result per hold, in order.
    async fn decide_batch(&self, batch: &[QueuedHold], now: DateTime<Utc>) -> Result<Vec<Placed>, AppError> {
        let (flight_id, cabin) = (batch[0].hold.flight_id, batch[0].hold.cabin);
        let txn = self.store.begin_write().await?;
        let Some(flight) = flights::get(&txn, flight_id).await? else {
            return Ok(batch.iter().map(|_| Err(AppError::NotFound("flight"))).collect());
        };
        let requests: Vec<&KeyedRequest> = batch.iter().map(|queued| &queued.keyed).collect();
        let known = self.idempotency.look_up_batch(&txn, &requests, now).await?;
        let mut decisions: Vec<Decision> = known
            .into_iter()
            .zip(batch)
            .map(|(known, queued)| match known {
                Some(Ok(replay)) => Decision::Replay(replay),
                Some(Err(error)) => Decision::Failed(error),
                None => match Hold::place(&flight, &queued.hold, now, self.config.hold_ttl) {
                    Ok(placed) => {
                        Decision::Undecided { total_price: placed.total_price, expires_at: placed.expires_at }
                    }
                    Err(invalid) => Decision::Failed(invalid.into()),
                },
            })
            .collect();

        let mut locked = self.take_seats_for(&txn, &flight, batch, &mut decisions, now).await?;
        // Every placed or refused hold is written; a booking whose reference was in use is written again
        // with another (its seats already counted), until none is refused.
        let mut pending: Vec<usize> = (0..batch.len()).filter(|&i| decisions[i].is_written()).collect();
        let mut replays: Vec<Option<Replay>> = vec![None; batch.len()];
        let scope = idempotency::hold_scope(flight_id, cabin);
        let trace_parent = telemetry::current_traceparent();
        for _ in 0..REFERENCE_ATTEMPTS {
            let refused = {
                let mut bookings = Vec::new();
                let mut changes = Vec::new();
                let mut keys = Vec::with_capacity(pending.len());
                for &i in &pending {
                    let queued = &batch[i];
                    let (replay, booking_id) = match &decisions[i] {
                        Decision::Placed(booking) => {
                            bookings.push(booking);
                            changes.push(Change {
                                booking_id: booking.id,
                                from: None,
                                to: BookingStatus::Held,
                                cause: HOLD_PLACED,
                                correlation_id: &queued.actor.correlation_id,
                                actor_id: Some(booking.user_id),
                                note: None,
                                at: now,
                            });
                            (Ok((queued.encode)(booking)), Some(booking.id))
                        }
                        Decision::Refused(refusal) => (Err(refusal.clone()), None),
                        _ => continue,
                    };
                    keys.push(KeyedOutcome { call: queued.keyed.call(), outcome: stored(&replay)?, booking_id });
                    replays[i] = Some(replay);
                }
                let write = HoldWrite {
                    flight_id,
                    cabin,
                    seats: locked
                        .as_ref()
                        .map(|locked| SeatsTaken { count: locked.seats_placed(), taken: locked.taken() }),
                    bookings: &bookings,
                    changes: &changes,
                    trace_parent: trace_parent.as_deref(),
                    keys: &keys,
                    scope: &scope,
                    now,
                    keys_expire_at: now + KEY_RETENTION,
                };
                match hold_writes::write(&txn, &write).await? {
                    Written::KeyTaken => return Err(AppError::KeyInProgress),
                    Written::Rows { refused, recorded } => {
                        changes.retain(|change| !refused.contains(&change.booking_id));
                        super::enqueue_emails(&txn, &changes, &recorded).await?;
                        refused
                    }
                }
            };
            if refused.is_empty() {
                txn.commit().await.map_err(StoreError::from)?;
                let outcomes = batch.iter().zip(replays).filter_map(|(queued, replay)| Some((&queued.keyed, replay?)));
                self.idempotency.remember_batch(outcomes.collect(), now);
                return Ok(decisions.into_iter().map(Decision::into_result).collect());
            }
            locked = None;
            pending.retain(|&i| matches!(&decisions[i], Decision::Placed(b) if refused.contains(&b.id)));
            for &i in &pending {
                if let Decision::Placed(booking) = &mut decisions[i] {
                    booking.reference = BookingReference::random(&mut rand::rng());
                }
            }
        }
        Err(StoreError::Corrupt("no free booking reference found".into()).into())
    }
}

/// Where one hold of a batch stands.
enum Decision {
    /// Its key is free and the request fits the flight (priced, with its expiry): the cabin decides.
    Undecided {
        total_price: Money,
        expires_at: DateTime<Utc>,
    },
    /// Its key names a completed call: that call's outcome.
    Replay(Replay),
    /// Not stored: an invalid request, or a key that names another call or one still running.
    Failed(AppError),
    /// A business refusal, stored under the key.
    Refused(Refusal),
    Placed(Booking),
}

impl Decision {
    /// Placed and refused holds are written (a refusal is stored under its key).
    fn is_written(&self) -> bool {
        matches!(self, Self::Placed(_) | Self::Refused(_))
    }

    fn into_result(self) -> Placed {
        match self {
            Self::Replay(replay) => Ok(Outcome::Replayed(replay)),
            Self::Failed(error) => Err(error),
            Self::Refused(refusal) => Err(refusal.into()),
            Self::Placed(booking) => Ok(Outcome::Executed(booking)),
            Self::Undecided { .. } => Err(StoreError::Corrupt("a hold of a batch was left undecided".into()).into()),
        }
    }
}

impl Bookings {
    /// Decides the batch's undecided holds in order against the cabin, locked for the rest of the
    /// transaction. Returns the cabin as the placed holds leave it (`None` when there was none to decide).
    async fn take_seats_for(
        &self,
        txn: &DatabaseTransaction,
        flight: &Flight,
        batch: &[QueuedHold],
        decisions: &mut [Decision],
        now: DateTime<Utc>,
    ) -> Result<Option<LockedCabin>, AppError> {
        let cabin_class = batch[0].hold.cabin;
        if !flight.cabins.iter().any(|c| c.cabin == cabin_class) {
            // Hold::place refused every hold of the batch already.
            return Ok(None);
        }
        let undecided: Vec<(usize, Money, DateTime<Utc>)> = decisions
            .iter()
            .enumerate()
            .filter_map(|(i, decision)| match decision {
                Decision::Undecided { total_price, expires_at } => Some((i, *total_price, *expires_at)),
                _ => None,
            })
            .collect();
        if undecided.is_empty() {
            return Ok(None);
        }
        let users: Vec<Uuid> = undecided.iter().map(|&(i, ..)| batch[i].actor.caller.user_id).collect();
        let seats = bookings::lock_cabin_for_holds(txn, &users, flight.id, cabin_class).await?;
        let live_holds = bookings::live_holds(txn, &users, flight.id, now).await?;
        let mut locked =
            LockedCabin::new(seats.seats_available, seats.taken, live_holds, self.config.max_holds_per_user);
        for (i, total_price, expires_at) in undecided {
            let queued = &batch[i];
            let user_id = queued.actor.caller.user_id;
            let decided = locked
                .decide(user_id, queued.hold.passengers.len(), &queued.hold.seats)
                .map_err(|disagree| StoreError::Corrupt(disagree.to_string()))?;
            decisions[i] = match decided {
                Err(refusal) => Decision::Refused(refusal.on_flight(flight.id)),
                Ok(seats) => Decision::Placed(Booking {
                    id: Uuid::now_v7(),
                    reference: BookingReference::random(&mut rand::rng()),
                    user_id,
                    flight_id: flight.id,
                    cabin: cabin_class,
                    status: BookingStatus::Held,
                    total_price,
                    passengers: queued.hold.passengers.clone(),
                    segments: vec![Segment::on(flight, cabin_class, seats, total_price)],
                    contact_email: queued.hold.contact_email.as_str().to_owned(),
                    hold_expires_at: Some(expires_at),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                    pending_change: None,
                    tickets: Vec::new(),
                    documents: BTreeMap::new(),
                }),
            };
        }
        Ok(Some(locked))
    }
}

/// The next batch from a cabin's waiting holds, in arrival order: at most [`MAX_BATCH`], and never two
/// with the same key (a later one waits for the next batch, where it replays the first one's outcome).
fn next_batch(waiting: &mut VecDeque<QueuedHold>) -> Vec<QueuedHold> {
    let mut batch = Vec::new();
    let mut keys = HashSet::new();
    let mut later = VecDeque::new();
    while batch.len() < MAX_BATCH
        && let Some(queued) = waiting.pop_front()
    {
        if keys.insert((queued.keyed.caller_id, queued.keyed.key.clone())) {
            batch.push(queued);
        } else {
            later.push_back(queued);
        }
    }
    while let Some(queued) = later.pop_back() {
        waiting.push_front(queued);
    }
    batch
}

/// Unlists its cabin when a drain task dies (a panic): the holds still waiting are dropped, which answers
/// their callers, and the next hold for the cabin starts a new task.
struct Drainer<'b> {
    bookings: &'b Bookings,
    cabin: CabinKey,
}

impl Drop for Drainer<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.bookings.queues.lock().cabins.remove(&self.cabin);
        }
    }
}
