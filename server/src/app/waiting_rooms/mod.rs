//! Waiting rooms: operators configure a flight's room; callers join its queue, watch their place, and
//! are admitted at the room's pace with a signed pass that placing a hold then requires.
//!
//! However many watch a flight's room, each instance reads its queue once per [`TICK`]: one task per
//! watched flight reads the counters (one Redis call) and broadcasts them, and every watcher works out
//! its own position from them. A watcher asks the queue only once, when it is admitted, to fix its pass's
//! expiry. Sell-out is read from the flight's snapshot, so every waiter hears of it on the next tick, and
//! admission pauses while the flight is sold out (every reader of the queue says so when it settles the
//! counters, so the pause holds across instances) and resumes when seats return.
//!
//! - `ticker`: the per-flight broadcast of the room's counters.
//! - `watcher`: one `WatchWaitingRoom` stream, from position to pass or sell-out.

mod ticker;
mod watcher;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use futures::{Stream, stream};
use tokio::sync::watch;
use uuid::Uuid;

use self::{
    ticker::RoomTick,
    watcher::{Step, TicketWatcher},
};
use super::{
    AppError,
    flights::flight_snapshot,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    streams::{WatchLimits, Watchers},
};
use crate::{
    domain::{
        auth::Caller,
        validation::ValidationError,
        waiting_room::{RoomSettings, position},
    },
    infra::{
        availability::AvailabilityFeed,
        clock::Clock,
        passes::{PassError, PassSigner, TicketClaims},
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
                let state = self.queue_state(flight_id, &settings, now).await?;
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
                let state = self.queue_state(flight_id, &settings, self.inner.clock.now()).await?;
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
        let paused = self.sold_out(flight_id).await?;
        let joined = match self.inner.queues.join(flight_id, caller.user_id, pace(&settings, now, paused), draw).await {
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
        let watcher = TicketWatcher::new(self.clone(), ticket, record, permit);
        Ok(stream::unfold(Some(watcher), |watcher| async move {
            let mut watcher = watcher?;
            match watcher.next().await {
                Ok(Step::Final(status)) => Some((Ok(status), None)),
                Ok(Step::Update(status)) => Some((Ok(status), Some(watcher))),
                Err(error) => Some((Err(error), None)),
            }
        }))
    }

    /// Whether one of `passes` lets `caller` place a hold on the flight: always on a flight without an
    /// enabled room. Needs no I/O but the room's settings, which come from the flight's snapshot. Refused,
    /// the answer says why of the pass closest to admitting: expired rather than not this flight's.
    #[tracing::instrument(skip_all)]
    pub async fn check_passes(&self, caller: &Caller, flight_id: Uuid, passes: &[String]) -> Result<(), AppError> {
        match self.settings(flight_id).await? {
            Some(room) if room.enabled => {
                let now = self.inner.clock.now();
                let mut why = PassError::Missing;
                for pass in passes {
                    match self.inner.signer.verify(pass, flight_id, caller.user_id, now) {
                        Ok(()) => return Ok(()),
                        Err(PassError::Expired) => why = PassError::Expired,
                        Err(refused) if why == PassError::Missing => why = refused,
                        Err(_) => {}
                    }
                }
                Err(AppError::WaitingRoomRequired { flight_id, why })
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

    async fn queue_state(
        &self,
        flight_id: Uuid,
        settings: &RoomSettings,
        now: DateTime<Utc>,
    ) -> Result<QueueState, AppError> {
        let pace = pace(settings, now, self.sold_out(flight_id).await?);
        let shared = self.inner.queues.state(flight_id, pace).await.unwrap_or_default();
        Ok(match self.inner.queues.fallback_state(flight_id, pace) {
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
        })
    }
}

impl RoomView {
    fn new(flight_id: Uuid, settings: Option<RoomSettings>, state: QueueState) -> Self {
        let waiting = state.admission.waiting() + if state.opened { 0 } else { state.early };
        Self { flight_id, settings, waiting, admitted: state.admission.serving }
    }
}

/// The pace a reader settles the counters with; `sold_out` pauses admission.
fn pace(settings: &RoomSettings, now: DateTime<Utc>, sold_out: bool) -> Pace {
    Pace {
        paused: sold_out,
        now_ms: now.timestamp_millis(),
        opens_at_ms: settings.opens_at.timestamp_millis(),
        admit_per_minute: settings.admit_per_minute,
    }
}
