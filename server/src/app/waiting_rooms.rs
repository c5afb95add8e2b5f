//! Waiting rooms: operators configure a flight's room; callers join its queue, watch their place, and
//! are admitted at the room's pace with a signed pass that placing a hold then requires.
//!
//! However many watch a flight's room, each instance reads its queue once per [`TICK`]: one task per
//! watched flight reads the counters (one Redis call) and broadcasts them, and every watcher works out
//! its own position from them. A watcher asks the queue only once, when it is admitted, to fix its pass's
//! expiry. Sell-out is read from the flight's snapshot, so every waiter hears of it on the next tick.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use futures::{Stream, stream};
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    AppError,
    flights::flight_snapshot,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    streams::{WatchLimits, WatchPermit, Watchers},
};
use crate::{
    domain::{
        auth::Caller,
        validation::ValidationError,
        waiting_room::{RoomSettings, estimated_wait, position},
    },
    infra::{
        availability::AvailabilityFeed,
        clock::Clock,
        metrics,
        passes::{PassSigner, TicketClaims},
        waiting_room::{Pace, QueueError, QueueState, Queues, TicketId, TicketRecord},
    },
    store::{Store, flights, waiting_rooms},
};

/// How often a watched room's counters are read and broadcast (and so how late a waiter may hear of its
/// admission or of the sell-out).
pub const TICK: Duration = Duration::from_millis(100);
/// The shortest time between two position updates of one stream (admission and sell-out go at once).
pub const POSITION_UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// A room with its queue's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub flight_id: Uuid,
    /// `None`: the flight never had a room.
    pub settings: Option<RoomSettings>,
    pub waiting: u64,
    pub admitted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    /// The sealed ticket (see [`crate::infra::passes`]).
    pub ticket: String,
    pub position: u64,
}

/// One update of a watched ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketStatus {
    pub position: u64,
    /// The pass and its expiry, once admitted.
    pub pass: Option<(String, DateTime<Utc>)>,
    pub sold_out: bool,
    pub estimated_wait: TimeDelta,
}

#[derive(Clone)]
pub struct WaitingRooms {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    idempotency: Idempotency,
    feed: AvailabilityFeed,
    queues: Queues,
    signer: PassSigner,
    clock: Clock,
    watchers: Arc<Watchers>,
    /// The broadcast of each watched flight's room; `None` until its first tick.
    rooms: Mutex<HashMap<Uuid, watch::Sender<Option<Arc<RoomTick>>>>>,
}

/// Early arrivals' places in a queue, by ticket id.
type EarlyPlaces = Arc<HashMap<Uuid, u64>>;

/// A room as one tick read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RoomTick {
    settings: Option<RoomSettings>,
    /// The shared queue (or, without Redis, the only one); the last reading while it cannot be read.
    shared: Option<QueueState>,
    /// The queue this instance kept while Redis was away, while it has one.
    fallback: Option<QueueState>,
    /// Early arrivals' places (by ticket id) in each queue.
    shared_early: EarlyPlaces,
    fallback_early: EarlyPlaces,
    sold_out: bool,
}

impl RoomTick {
    fn queue(&self, record: &TicketRecord) -> (Option<QueueState>, &HashMap<Uuid, u64>) {
        if record.in_fallback { (self.fallback, &self.fallback_early) } else { (self.shared, &self.shared_early) }
    }
}

impl WaitingRooms {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        feed: AvailabilityFeed,
        queues: Queues,
        signer: PassSigner,
        clock: Clock,
        limits: WatchLimits,
    ) -> Self {
        let watchers = Watchers::new(limits);
        Self {
            inner: Arc::new(Inner {
                store,
                idempotency,
                feed,
                queues,
                signer,
                clock,
                watchers,
                rooms: Mutex::default(),
            }),
        }
    }

    /// Creates or replaces the flight's room (a keyed call). Its queue is kept.
    #[tracing::instrument(skip_all, fields(%flight_id))]
    pub async fn configure(
        &self,
        keyed: &KeyedRequest,
        flight_id: Uuid,
        settings: RoomSettings,
        encode: impl FnOnce(&RoomView) -> Vec<u8>,
    ) -> Result<Outcome<RoomView>, AppError> {
        let now = self.inner.clock.now();
        let outcome = self
            .inner
            .idempotency
            .run(keyed, now, encode, async |txn| {
                flights::get(txn, flight_id).await?.ok_or(AppError::NotFound("flight"))?;
                waiting_rooms::put(txn, flight_id, &settings, now).await?;
                let state = self.queue_state(flight_id, &settings, now).await;
                Ok(RoomView::new(flight_id, Some(settings), state))
            })
            .await?;
        if let Outcome::Executed(_) = &outcome {
            // Every instance reads the new settings before it answers another call for the flight.
            self.inner.feed.room_changed(flight_id).await;
        }
        Ok(outcome)
    }

    /// The flight's room and its counts; a disabled, empty room for a flight that never had one.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, flight_id: Uuid) -> Result<RoomView, AppError> {
        match self.settings(flight_id).await? {
            Some(settings) => {
                let state = self.queue_state(flight_id, &settings, self.inner.clock.now()).await;
                Ok(RoomView::new(flight_id, Some(settings), state))
            }
            None => {
                flight_snapshot(&self.inner.feed, &self.inner.store, flight_id)
                    .await?
                    .ok_or(AppError::NotFound("flight"))?;
                Ok(RoomView { flight_id, settings: None, waiting: 0, admitted: 0 })
            }
        }
    }

    /// Puts the caller in the flight's queue, or finds the ticket it has.
    #[tracing::instrument(skip_all, fields(%flight_id))]
    pub async fn join(&self, caller: Caller, flight_id: Uuid) -> Result<TicketView, AppError> {
        let settings =
            self.settings(flight_id).await?.filter(|room| room.enabled).ok_or(AppError::NotFound("waiting room"))?;
        let now = self.inner.clock.now();
        // 53 bits: Redis keeps sorted-set scores as doubles, exact up to 2^53.
        let draw = rand::random::<u64>() >> 11;
        let joined = match self.inner.queues.join(flight_id, caller.user_id, pace(&settings, now), draw).await {
            Ok(joined) => joined,
            Err(QueueError::Unavailable) => return Err(AppError::Unavailable("waiting-room queue")),
        };
        let admitted = joined.record.pass_expires_ms.is_some();
        let position = match (joined.record.number, joined.early_rank) {
            _ if admitted => 0,
            (Some(number), _) => position(number, joined.state.admission.serving),
            (None, Some(rank)) => rank,
            (None, None) => 0,
        };
        // Sealed from what never changes, so joining again returns the very same ticket: an early arrival's
        // number comes from the broadcast draw, not the ticket.
        let ticket = self.inner.signer.seal_ticket(&TicketClaims {
            flight_id,
            ticket_id: joined.ticket.id,
            user_id: caller.user_id,
            number: joined.record.number.filter(|_| !joined.record.early),
            in_fallback: joined.record.in_fallback,
        });
        Ok(TicketView { ticket, position })
    }

    /// The ticket's status now, then as it changes, ending with the pass or the sell-out. Only the ticket's
    /// owner may watch it; a ticket whose pass has expired is gone. Opening a stream asks the queue nothing:
    /// the ticket says what the stream needs.
    #[tracing::instrument(skip_all)]
    pub async fn watch(
        &self,
        caller: Caller,
        ticket: &str,
    ) -> Result<impl Stream<Item = Result<TicketStatus, AppError>> + Send + 'static, AppError> {
        let claims = self
            .inner
            .signer
            .open_ticket(ticket)
            .ok_or_else(|| ValidationError::single("ticket_id", "is not a waiting-room ticket"))?;
        if claims.user_id != caller.user_id {
            return Err(AppError::NotFound("ticket"));
        }
        let record = TicketRecord {
            user_id: claims.user_id,
            number: claims.number,
            pass_expires_ms: None,
            in_fallback: claims.in_fallback,
            early: claims.number.is_none(),
        };
        let ticket = TicketId { flight_id: claims.flight_id, id: claims.ticket_id };
        let permit = self.inner.watchers.admit(format!("user:{}", caller.user_id))?;
        let watcher = TicketWatcher {
            rooms: self.clone(),
            ticket,
            record,
            ticks: self.subscribe(ticket.flight_id),
            sent: None,
            _permit: permit,
        };
        Ok(stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(Step::Final(status)) => Some((Ok(status), None)),
                Ok(Step::Update(status)) => Some((Ok(status), Some(watcher))),
                Err(error) => Some((Err(error), None)),
            }
        }))
    }

    /// Whether `pass` lets `caller` place a hold on the flight: always on a flight without an enabled room.
    /// Needs no I/O but the room's settings, which come from the flight's snapshot.
    #[tracing::instrument(skip_all)]
    pub async fn check_pass(&self, caller: &Caller, flight_id: Uuid, pass: &str) -> Result<(), AppError> {
        match self.settings(flight_id).await? {
            Some(room) if room.enabled => {
                Ok(self.inner.signer.verify(pass, flight_id, caller.user_id, self.inner.clock.now())?)
            }
            _ => Ok(()),
        }
    }

    /// Whether every cabin of the flight is sold out (or the flight is gone), as of its last change.
    async fn sold_out(&self, flight_id: Uuid) -> Result<bool, AppError> {
        let flight = flight_snapshot(&self.inner.feed, &self.inner.store, flight_id).await?;
        Ok(flight.is_none_or(|flight| flight.cabins.iter().all(|cabin| cabin.seats_available <= 0)))
    }

    async fn settings(&self, flight_id: Uuid) -> Result<Option<RoomSettings>, AppError> {
        let store = &self.inner.store;
        let room = self
            .inner
            .feed
            .rooms()
            .get(flight_id, async || waiting_rooms::get(store.conn(), flight_id).await.map(Some))
            .await?;
        Ok(room.and_then(|room| room.as_ref().clone()))
    }

    async fn queue_state(&self, flight_id: Uuid, settings: &RoomSettings, now: DateTime<Utc>) -> QueueState {
        let pace = pace(settings, now);
        let shared = self.inner.queues.state(flight_id, pace).await.unwrap_or_default();
        match self.inner.queues.fallback_state(flight_id, pace) {
            // Both queues' callers wait for this room.
            Some(own) => QueueState {
                admission: crate::domain::waiting_room::Admission {
                    issued: shared.admission.issued + own.admission.issued,
                    serving: shared.admission.serving + own.admission.serving,
                    carry: 0,
                },
                early: shared.early + own.early,
                ..shared
            },
            None => shared,
        }
    }

    /// The flight's room broadcast, started by its first watcher and stopped after its last.
    fn subscribe(&self, flight_id: Uuid) -> watch::Receiver<Option<Arc<RoomTick>>> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = rooms.get(&flight_id) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        rooms.insert(flight_id, sender.clone());
        tokio::spawn(self.clone().broadcast(flight_id, sender));
        receiver
    }

    async fn broadcast(self, flight_id: Uuid, sender: watch::Sender<Option<Arc<RoomTick>>>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Arc<RoomTick>> = None;
        loop {
            ticks.tick().await;
            {
                let mut rooms = self.inner.rooms.lock().unwrap_or_else(PoisonError::into_inner);
                if sender.receiver_count() == 0 {
                    // Under the lock, so no watcher subscribes to a broadcast that is ending.
                    rooms.remove(&flight_id);
                    metrics::update_samples(|samples| {
                        samples.waiting.remove(&flight_id);
                    });
                    return;
                }
            }
            let tick = match self.read_tick(flight_id, last.as_deref()).await {
                Ok(tick) => tick,
                Err(error) => {
                    tracing::warn!(%error, %flight_id, "waiting room not read; watchers keep the last reading");
                    continue;
                }
            };
            if let (Some(_), Some(state)) = (&tick.settings, tick.shared.or(tick.fallback)) {
                let view = RoomView::new(flight_id, None, state);
                metrics::update_samples(|samples| {
                    samples.waiting.insert(flight_id, view.waiting);
                });
            }
            if last.as_deref() != Some(&tick) {
                let tick = Arc::new(tick);
                last = Some(tick.clone());
                sender.send_replace(Some(tick));
            }
        }
    }

    async fn read_tick(&self, flight_id: Uuid, last: Option<&RoomTick>) -> Result<RoomTick, AppError> {
        let settings = self.settings(flight_id).await?;
        let sold_out = self.sold_out(flight_id).await?;
        let Some(room) = &settings else {
            return Ok(RoomTick {
                settings,
                shared: None,
                fallback: None,
                shared_early: Arc::default(),
                fallback_early: Arc::default(),
                sold_out,
            });
        };
        let pace = pace(room, self.inner.clock.now());
        let queues = &self.inner.queues;
        let shared = queues.state(flight_id, pace).await.or(last.and_then(|last| last.shared));
        let fallback = queues.fallback_state(flight_id, pace);
        let shared_early =
            early_places(queues, flight_id, shared, last.map(|l| (l.shared, &l.shared_early)), false).await;
        let fallback_early =
            early_places(queues, flight_id, fallback, last.map(|l| (l.fallback, &l.fallback_early)), true).await;
        Ok(RoomTick { settings, shared, fallback, shared_early, fallback_early, sold_out })
    }
}

impl RoomView {
    fn new(flight_id: Uuid, settings: Option<RoomSettings>, state: QueueState) -> Self {
        let waiting = state.admission.waiting() + if state.opened { 0 } else { state.early };
        Self { flight_id, settings, waiting, admitted: state.admission.serving }
    }
}

/// The early arrivals' places: read again while the room is not open (new draws move them), kept once
/// it is (the draw is final at opening).
async fn early_places(
    queues: &Queues,
    flight_id: Uuid,
    state: Option<QueueState>,
    last: Option<(Option<QueueState>, &EarlyPlaces)>,
    fallback: bool,
) -> EarlyPlaces {
    let Some(state) = state.filter(|state| state.early > 0) else { return Arc::default() };
    if let Some((Some(previous), places)) = last
        && previous.opened
        && state.opened
    {
        return places.clone();
    }
    let order = queues.early_order(flight_id, fallback).await;
    Arc::new(order.into_iter().zip(1..).collect())
}

fn pace(settings: &RoomSettings, now: DateTime<Utc>) -> Pace {
    Pace {
        now_ms: now.timestamp_millis(),
        opens_at_ms: settings.opens_at.timestamp_millis(),
        admit_per_minute: settings.admit_per_minute,
    }
}

enum Step {
    Update(TicketStatus),
    /// The stream's last message.
    Final(TicketStatus),
}

/// One `WatchWaitingRoom` stream.
struct TicketWatcher {
    rooms: WaitingRooms,
    ticket: TicketId,
    record: TicketRecord,
    ticks: watch::Receiver<Option<Arc<RoomTick>>>,
    /// The position last sent, and when.
    sent: Option<(u64, tokio::time::Instant)>,
    _permit: WatchPermit,
}

impl TicketWatcher {
    /// The next message: at once if the status moved and the last position update is old enough, else as
    /// soon as it is (or the next tick brings admission or the sell-out).
    async fn next(&mut self) -> Result<Step, AppError> {
        loop {
            let tick = self.ticks.borrow_and_update().clone();
            let mut due = None;
            if let Some(tick) = tick {
                match self.status(&tick).await? {
                    Some(Step::Final(status)) => return Ok(Step::Final(status)),
                    Some(Step::Update(status)) => match self.sent {
                        Some((position, _)) if position == status.position => {}
                        Some((_, at)) if at.elapsed() < POSITION_UPDATE_INTERVAL => {
                            due = Some(at + POSITION_UPDATE_INTERVAL);
                        }
                        _ => {
                            self.sent = Some((status.position, tokio::time::Instant::now()));
                            return Ok(Step::Update(status));
                        }
                    },
                    None => {}
                }
            }
            let wait_for_due = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.ticks.changed() => {
                    if changed.is_err() {
                        return Err(AppError::Interrupted("the waiting room's broadcast ended"));
                    }
                }
                () = wait_for_due => {}
            }
        }
    }

    /// The ticket's status under `tick`; `None` while its place is not known yet (an early arrival the
    /// broadcast has not read, or a queue not read yet).
    async fn status(&mut self, tick: &RoomTick) -> Result<Option<Step>, AppError> {
        let now = self.rooms.inner.clock.now();
        let ended = |sold_out| TicketStatus { position: 0, pass: None, sold_out, estimated_wait: TimeDelta::zero() };
        if tick.sold_out {
            return Ok(Some(Step::Final(ended(true))));
        }
        let Some(room) = tick.settings.as_ref().filter(|room| room.enabled) else {
            // No room any more: a pass is not needed, but one does no harm to a client that waits for it.
            return Ok(Some(Step::Final(Box::pin(self.admitted(None, now)).await?)));
        };
        let (Some(queue), early) = tick.queue(&self.record) else { return Ok(None) };
        let number = self.record.number.or_else(|| early.get(&self.ticket.id).copied().filter(|_| queue.opened));
        let position = match number {
            Some(number) => position(number, queue.admission.serving),
            None => match early.get(&self.ticket.id) {
                Some(&rank) => rank,
                None => return Ok(None),
            },
        };
        if position == 0 {
            // The tick may be up to a tick old: a pass is not given for seats sold since.
            if self.rooms.sold_out(self.ticket.flight_id).await? {
                return Ok(Some(Step::Final(ended(true))));
            }
            return Ok(Some(Step::Final(Box::pin(self.admitted(Some(room), now)).await?)));
        }
        let estimated_wait = estimated_wait(position, room.admit_per_minute, room.opens_at, now);
        Ok(Some(Step::Update(TicketStatus { position, pass: None, sold_out: false, estimated_wait })))
    }

    /// The admitted ticket's status with its pass, whose expiry is fixed the first time it is given out.
    /// Boxed where it is awaited: its Redis call is the one large future of a stream, and every waiting
    /// stream would otherwise keep room for it.
    async fn admitted(&self, room: Option<&RoomSettings>, now: DateTime<Utc>) -> Result<TicketStatus, AppError> {
        let ttl = room.map_or(TimeDelta::minutes(5), |room| room.pass_ttl);
        let queues = &self.rooms.inner.queues;
        let expires_ms = match queues.admit(self.ticket, self.record.in_fallback, (now + ttl).timestamp_millis()).await
        {
            Ok(expires_ms) => expires_ms,
            Err(QueueError::Unavailable) => return Err(AppError::Unavailable("waiting-room queue")),
        };
        if expires_ms <= now.timestamp_millis() {
            // Admitted long ago, and the pass has expired since: the ticket is spent.
            return Err(AppError::NotFound("ticket"));
        }
        // Passes carry whole seconds: the expiry told is the one the pass holds.
        let expires_at = DateTime::from_timestamp(expires_ms.div_euclid(1_000), 0).unwrap_or(now + ttl);
        let pass = self.rooms.inner.signer.issue(self.ticket.flight_id, self.record.user_id, expires_at);
        metrics::metrics()
            .waiting_room_admissions
            .add(1, &[opentelemetry::KeyValue::new("flight_id", self.ticket.flight_id.to_string())]);
        Ok(TicketStatus {
            position: 0,
            pass: Some((pass, expires_at)),
            sold_out: false,
            estimated_wait: TimeDelta::zero(),
        })
    }
}
