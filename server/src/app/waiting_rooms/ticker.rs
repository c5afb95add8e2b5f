//! One broadcast per watched flight and instance: every [`TICK`](super::TICK) it reads the room's settings,
//! the flight's sell-out and the queue's counters (one Redis call), and hands them to every watcher.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError},
};

use tokio::sync::watch;
use uuid::Uuid;

use super::{RoomView, TICK, WaitingRooms, pace};
use crate::{
    app::AppError,
    domain::waiting_room::RoomSettings,
    infra::{
        metrics,
        waiting_room::{QueueState, Queues, TicketRecord},
    },
};

/// Early arrivals' places in a queue, by ticket id.
type EarlyPlaces = Arc<HashMap<Uuid, u64>>;

/// A room as one tick read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomTick {
    pub settings: Option<RoomSettings>,
    /// The shared queue (or, without Redis, the only one); the last reading while it cannot be read.
    pub shared: Option<QueueState>,
    /// The queue this instance kept while Redis was away, while it has one.
    pub fallback: Option<QueueState>,
    /// Early arrivals' places (by ticket id) in each queue.
    pub shared_early: EarlyPlaces,
    pub fallback_early: EarlyPlaces,
    pub sold_out: bool,
}

impl RoomTick {
    pub fn queue(&self, record: &TicketRecord) -> (Option<QueueState>, &HashMap<Uuid, u64>) {
        if record.in_fallback { (self.fallback, &self.fallback_early) } else { (self.shared, &self.shared_early) }
    }
}

impl WaitingRooms {
    /// The flight's room broadcast, started by its first watcher and stopped after its last.
    pub(super) fn subscribe(&self, flight_id: Uuid) -> watch::Receiver<Option<Arc<RoomTick>>> {
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
        let pace = pace(room, self.inner.clock.now(), sold_out);
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
