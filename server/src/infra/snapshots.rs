//! Per-flight snapshots (of a flight with its held or sold seats, as `GetFlight`, `GetSeatMap` and
//! `WatchAvailability` show them), read from the database once per change instead of once per call.
//!
//! The availability feed invalidates a flight's snapshot on every change it hears of: this instance's
//! commits (signalled before their callers are answered, so a caller reads its own writes) and, through
//! Redis, other instances'. A snapshot is also never used past [`MAX_AGE`], which bounds how far it can lag
//! another instance's commits when their signal is lost (Redis away). Callers that find a snapshot stale
//! wait for one read of the database together (one per flight at a time), then all use its result.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

/// The longest a snapshot is used without a fresh read.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Flights with a snapshot at most; past it, one is dropped (and read again when asked for).
const MAX_FLIGHTS: usize = 1_024;

/// Snapshots of `T`, one per flight.
pub struct Snapshots<T> {
    slots: Mutex<HashMap<Uuid, Arc<Slot<T>>>>,
}

impl<T> Default for Snapshots<T> {
    fn default() -> Self {
        Self { slots: Mutex::default() }
    }
}

struct Slot<T> {
    /// Changes heard of since the slot was made.
    generation: AtomicU64,
    current: Mutex<Option<Snapshot<T>>>,
    /// Held by the one caller reading the database for this flight.
    reading: tokio::sync::Mutex<()>,
}

struct Snapshot<T> {
    value: Arc<T>,
    /// The flight's change count when the read began: the snapshot is current while it has not moved.
    generation: u64,
    read_at: Instant,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self { generation: AtomicU64::new(0), current: Mutex::new(None), reading: tokio::sync::Mutex::new(()) }
    }
}

impl<T> Slot<T> {
    fn current(&self) -> Option<Arc<T>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|s| s.generation == self.generation.load(Ordering::Acquire) && s.read_at.elapsed() < MAX_AGE)
            .map(|s| s.value.clone())
    }
}

impl<T> Snapshots<T> {
    /// Marks the flight's snapshot stale: its seats or details changed.
    pub fn invalidate(&self, flight_id: Uuid) {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(&flight_id) {
            slot.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The flight's current snapshot, or a new one from `read` (`None`: there is no such flight).
    pub async fn get<E>(
        &self,
        flight_id: Uuid,
        read: impl AsyncFnOnce() -> Result<Option<T>, E>,
    ) -> Result<Option<Arc<T>>, E> {
        let slot = self.slot(flight_id);
        if let Some(snapshot) = slot.current() {
            return Ok(Some(snapshot));
        }
        let _reading = slot.reading.lock().await;
        // Whoever read while this caller waited may have left a current snapshot.
        if let Some(snapshot) = slot.current() {
            return Ok(Some(snapshot));
        }
        // Taken before the read: a change committed during it leaves the snapshot stale, as it may be.
        let (generation, read_at) = (slot.generation.load(Ordering::Acquire), Instant::now());
        let Some(value) = read().await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        *slot.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Snapshot { value: value.clone(), generation, read_at });
        Ok(Some(value))
    }

    fn slot(&self, flight_id: Uuid) -> Arc<Slot<T>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if !slots.contains_key(&flight_id) && slots.len() >= MAX_FLIGHTS {
            // Any will do: a dropped slot's flight starts over with no snapshot, so nothing stale survives.
            if let Some(dropped) = slots.keys().next().copied() {
                slots.remove(&dropped);
            }
        }
        slots.entry(flight_id).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn a_snapshot_is_read_once_until_its_flight_changes_and_concurrent_readers_share_one_read() {
        let snapshots = Arc::new(Snapshots::<usize>::default());
        let id = Uuid::now_v7();
        let reads = Arc::new(AtomicUsize::new(0));
        let read = {
            let reads = reads.clone();
            move || {
                let reads = reads.clone();
                async move || {
                    let read = reads.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(Some(read))
                }
            }
        };
        let callers: Vec<_> = (0..16)
            .map(|_| {
                let (snapshots, read) = (snapshots.clone(), read());
                tokio::spawn(async move { *snapshots.get(id, read).await.unwrap().unwrap() })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1, "every caller got the first read");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "sixteen concurrent callers, one read");
        snapshots.get(id, read()).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 1, "still current");
        snapshots.invalidate(id);
        snapshots.get(id, read()).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2, "a change makes the next caller read again");
        snapshots.invalidate(Uuid::now_v7());
        snapshots.get(id, read()).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2, "another flight's change does not");
        let missing = snapshots.get(Uuid::now_v7(), async || Ok::<_, ()>(None)).await.unwrap();
        assert!(missing.is_none());
    }
}
