//! Tells watchers of a flight that its seat counts may have changed (and instances that its waiting room did). Watchers then read the counts from
//! the database, which stays the only source of truth: a lost or duplicated signal costs a read, never a
//! wrong count. The reads go through the flight's snapshots, which every signal invalidates, so however
//! many watch a flight (or ask for it), each change costs this instance one read.
//!
//! Signals travel in-process through one `watch` channel per watched flight (a burst of changes reaches a
//! slow watcher as one wake-up), and, with Redis, over pub/sub to every other instance.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use fred::prelude::{ClientLike as _, EventInterface as _, PubsubInterface as _};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use super::{
    redis::Redis,
    snapshots::Snapshots,
    sold_out::{SoldOutGate, known_keys::KeyDigest},
};
use crate::domain::{
    flight::{CabinClass, Flight, SeatNumber},
    waiting_room::RoomSettings,
};

#[derive(Clone)]
pub struct AvailabilityFeed {
    inner: Arc<Inner>,
}

struct Inner {
    watched: Mutex<HashMap<Uuid, watch::Sender<()>>>,
    redis: Option<Redis>,
    /// Tags this instance's messages, so it does not signal its own watchers twice.
    origin: Uuid,
    /// Reopened by every change this instance signals (with Redis, for every instance at once).
    gate: SoldOutGate,
    /// Made stale by every signal, from this instance or another.
    flights: Snapshots<Flight>,
    /// Each flight's held or sold seats.
    taken_seats: Snapshots<BTreeSet<SeatNumber>>,
    /// Each flight's waiting room (`None`: it has none); made stale by room signals only.
    rooms: Snapshots<Option<RoomSettings>>,
}

/// A subscription to one flight's changes; dropping it unsubscribes.
pub struct AvailabilityWatch {
    receiver: watch::Receiver<()>,
    flight_id: Uuid,
    feed: AvailabilityFeed,
}

impl AvailabilityWatch {
    /// Waits for the next change signal; returns at once for a signal that arrived since the last call.
    pub async fn changed(&mut self) {
        // The sender lives in the registry while this watch exists, so this only fails if the feed is gone.
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for AvailabilityWatch {
    fn drop(&mut self) {
        let mut watched = self.feed.inner.watched.lock().unwrap_or_else(PoisonError::into_inner);
        // This watch's receiver still counts until the end of this function.
        if watched.get(&self.flight_id).is_some_and(|sender| sender.receiver_count() <= 1) {
            watched.remove(&self.flight_id);
        }
    }
}

impl AvailabilityFeed {
    /// An in-process feed; with `redis`, also shared with other instances once [`Self::listen`] runs.
    pub fn new(redis: Option<Redis>) -> Self {
        let gate = SoldOutGate::new(redis.clone());
        Self {
            inner: Arc::new(Inner {
                watched: Mutex::default(),
                redis,
                origin: Uuid::new_v4(),
                gate,
                flights: Snapshots::default(),
                taken_seats: Snapshots::default(),
                rooms: Snapshots::default(),
            }),
        }
    }

    /// Snapshots of flights, current as of the last signal.
    pub fn flights(&self) -> &Snapshots<Flight> {
        &self.inner.flights
    }

    /// Snapshots of flights' held or sold seats, current as of the last signal.
    pub fn taken_seats(&self) -> &Snapshots<BTreeSet<SeatNumber>> {
        &self.inner.taken_seats
    }

    /// Snapshots of flights' waiting-room settings, current as of the last signal.
    pub fn rooms(&self) -> &Snapshots<Option<RoomSettings>> {
        &self.inner.rooms
    }

    /// The sold-out gate this feed reopens on every change.
    pub fn sold_out_gate(&self) -> &SoldOutGate {
        &self.inner.gate
    }

    pub fn watch(&self, flight_id: Uuid) -> AvailabilityWatch {
        let mut watched = self.inner.watched.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = watched.entry(flight_id).or_insert_with(|| watch::channel(()).0).subscribe();
        AvailabilityWatch { receiver, flight_id, feed: self.clone() }
    }

    /// Signals a change of the flight's counts, after the change committed.
    pub async fn changed(&self, flight_id: Uuid) {
        self.inner.gate.bump(flight_id).await;
        self.signal_local(flight_id);
        self.publish(format!("{}:{flight_id}", self.inner.origin)).await;
    }

    /// Notes at the sold-out gate keys whose refusals just committed; other instances read the gate again
    /// when it was closed, so they know of the keys too (a retry of one reaching them is looked up).
    pub async fn refused_keys(&self, flight_id: Uuid, cabin: CabinClass, refused: &[KeyDigest]) {
        if self.inner.gate.note_refused(flight_id, cabin, refused).await {
            self.publish(format!("{}:{GATE_TAG}{flight_id}", self.inner.origin)).await;
        }
    }

    /// Signals a change of the flight's waiting room, after it committed. Apart from seat counts: a hot
    /// flight's counts change with every batch of holds, and each hold reads the room's settings.
    pub async fn room_changed(&self, flight_id: Uuid) {
        self.inner.rooms.invalidate(flight_id);
        self.publish(format!("{}:{ROOM_TAG}{flight_id}", self.inner.origin)).await;
    }

    async fn publish(&self, message: String) {
        if let Some(redis) = &self.inner.redis
            && let Some(client) = redis.available()
            && let Err(error) = client.publish::<(), _, _>(redis.key(CHANNEL), message).await
        {
            tracing::debug!(%error, "availability signal not published");
        }
    }

    fn signal_local(&self, flight_id: Uuid) {
        // Before waking anyone, so whoever wakes reads afresh.
        self.inner.gate.heard_of_change();
        self.inner.flights.invalidate(flight_id);
        self.inner.taken_seats.invalidate(flight_id);
        let watched = self.inner.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = watched.get(&flight_id) {
            sender.send_replace(());
        }
    }

    /// Relays other instances' signals to this instance's watchers until [`Relay::stop`]. Subscribes before
    /// returning (waiting at most [`SUBSCRIBE_WAIT`] for Redis), so a server that starts serving afterwards
    /// misses no change; an unreachable Redis is subscribed to when it comes back. `None` without Redis, or
    /// when the subscriber cannot be configured (logged; this instance's own signals still reach its
    /// watchers).
    pub async fn listen(&self) -> Option<Relay> {
        let redis = self.inner.redis.clone()?;
        let subscriber = redis
            .subscriber()
            .inspect_err(|error| tracing::warn!(%error, "availability signals from other instances are off"))
            .ok()?;
        let mut messages = subscriber.message_rx();
        let connection = subscriber.connect();
        // Subscribes again after every reconnection.
        let resubscribe = subscriber.manage_subscriptions();
        let subscribed = tokio::time::timeout(SUBSCRIBE_WAIT, async {
            subscriber.wait_for_connect().await?;
            subscriber.subscribe(redis.key(CHANNEL)).await
        })
        .await;
        if !matches!(subscribed, Ok(Ok(()))) {
            tracing::warn!(?subscribed, "availability channel not subscribed yet; subscribing on reconnection");
        }
        let feed = self.clone();
        let own_origin = self.inner.origin.to_string();
        let relay = tokio::spawn(async move {
            while let Ok(message) = messages.recv().await {
                let Some(text) = message.value.as_str() else { continue };
                let Some((origin, flight)) = text.split_once(':') else { continue };
                if origin == own_origin {
                    continue;
                }
                if flight.starts_with(GATE_TAG) {
                    feed.inner.gate.heard_of_change();
                } else if let Some(room) = flight.strip_prefix(ROOM_TAG) {
                    if let Ok(flight_id) = Uuid::try_parse(room) {
                        feed.inner.rooms.invalidate(flight_id);
                    }
                } else if let Ok(flight_id) = Uuid::try_parse(flight) {
                    feed.signal_local(flight_id);
                }
            }
        });
        Some(Relay { connection, resubscribe, relay })
    }
}

/// The tasks that relay other instances' signals.
pub struct Relay {
    connection: JoinHandle<Result<(), fred::error::Error>>,
    resubscribe: JoinHandle<()>,
    relay: JoinHandle<()>,
}

impl Relay {
    /// Ends the relay and closes its Redis connection.
    pub fn stop(self) {
        self.relay.abort();
        self.resubscribe.abort();
        self.connection.abort();
    }
}

/// How long start-up waits for the availability subscription.
const SUBSCRIBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The pub/sub channel, under the deployment's key prefix.
const CHANNEL: &str = "availability";
/// Marks a message about a flight's waiting room rather than its counts.
const ROOM_TAG: &str = "room:";
/// Marks a signal that a sold-out gate learned keys (not a change of counts).
const GATE_TAG: &str = "gate:";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_of_a_flight_wake_on_its_changes_only() {
        let feed = AvailabilityFeed::new(None);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut watch_a = feed.watch(a);
        let mut watch_b = feed.watch(b);
        feed.changed(a).await;
        feed.changed(a).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), watch_a.changed()).await.expect("signalled");
        assert!(!watch_a.receiver.has_changed().unwrap(), "two signals coalesce into one wake-up");
        assert!(!watch_b.receiver.has_changed().unwrap());
        drop(watch_a);
        assert!(!feed.inner.watched.lock().unwrap().contains_key(&a), "the last watch of a flight unregisters it");
        feed.changed(b).await;
        watch_b.changed().await;
    }
}
