//! The flight catalogue: search (cached per route), flight details, seat maps, live seat counts, and new
//! flights. Flight details, seat maps and live counts come from the availability feed's per-flight
//! snapshots: one database read per change of a flight, however many ask.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures::{Stream, stream};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    AppError,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    lagging_read,
    streams::{WatchLimits, WatchPermit, Watchers},
};
use crate::{
    domain::{
        flight::{CabinAvailability, CabinClass, Flight, NewFlight, SeatState, local_date, seat_map},
        search::{FlightPage, FlightSearch, Route},
        validation::{ValidationError, Violations},
    },
    infra::{
        availability::{AvailabilityFeed, AvailabilityWatch},
        cache::SearchCache,
        clock::Clock,
    },
    store::{Store, StoreError, airports, flights, seats},
};

#[derive(Clone)]
pub struct FlightCatalog {
    store: Store,
    cache: SearchCache,
    feed: AvailabilityFeed,
    idempotency: Idempotency,
    clock: Clock,
    watchers: Arc<Watchers>,
}

impl FlightCatalog {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        cache: SearchCache,
        feed: AvailabilityFeed,
        clock: Clock,
        watch_limits: WatchLimits,
    ) -> Self {
        let watchers = Watchers::new(watch_limits);
        Self { idempotency, store, cache, feed, clock, watchers }
    }

    #[tracing::instrument(skip_all, fields(route = %search.route.tag()))]
    pub async fn search(&self, search: FlightSearch) -> Result<Arc<FlightPage>, AppError> {
        let route = search.route.tag();
        let key = search.cache_key();
        if let Some(page) = self.cache.get(&route, &key).await {
            return Ok(page);
        }
        let page = flights::search(lagging_read(&self.store), &search, self.clock.now()).await?;
        self.cache.put(&route, &key, &page).await;
        Ok(Arc::new(page))
    }

    /// Each leg's search, as [`Self::search`] answers it, in leg order; the legs run at once.
    #[tracing::instrument(skip_all, fields(legs = legs.len()))]
    pub async fn search_trip(&self, legs: Vec<FlightSearch>) -> Result<Vec<Arc<FlightPage>>, AppError> {
        futures::future::try_join_all(legs.into_iter().map(|leg| self.search(leg))).await
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_flight(&self, id: Uuid) -> Result<Arc<Flight>, AppError> {
        flight_snapshot(&self.feed, &self.store, id).await?.ok_or(AppError::NotFound("flight"))
    }

    /// Every seat of the flight (or one cabin of it), each free or not, as of the flight's last change.
    #[tracing::instrument(skip(self))]
    pub async fn seat_map(
        &self,
        id: Uuid,
        cabin: Option<CabinClass>,
    ) -> Result<(Arc<Flight>, Vec<SeatState>), AppError> {
        let flight = self.get_flight(id).await?;
        if let Some(cabin) = cabin
            && !flight.cabins.iter().any(|c| c.cabin == cabin)
        {
            return Err(ValidationError::single("cabin", "this flight has no such cabin").into());
        }
        let store = &self.store;
        let taken = self
            .feed
            .taken_seats()
            .get(id, async || Ok::<_, StoreError>(Some(seats::taken_seats(store.conn(), id, None).await?)))
            .await?
            .unwrap_or_default();
        let seats = seat_map(&flight.cabins, cabin, &taken);
        Ok((flight, seats))
    }

    /// The flight's cabins now, then again each time its seat counts change. Ends when the flight is gone
    /// or after a database failure (the failure is the stream's last item). `watcher` names the caller for
    /// the per-caller limit of open streams.
    #[tracing::instrument(skip_all)]
    pub async fn watch_availability(
        &self,
        id: Uuid,
        watcher: String,
    ) -> Result<impl Stream<Item = Result<Vec<CabinAvailability>, AppError>> + Send + 'static, AppError> {
        let permit = self.watchers.admit(watcher)?;
        // Subscribe before the first read, so a change between the two is not lost.
        let watch = self.feed.watch(id);
        let flight = self.get_flight(id).await?;
        let state = AvailabilityStream {
            id,
            watch,
            feed: self.feed.clone(),
            store: self.store.clone(),
            next: Some(flight),
            last: None,
            last_sent: tokio::time::Instant::now(),
            _permit: permit,
        };
        Ok(stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                let flight = match state.next.take() {
                    Some(flight) => flight,
                    None => {
                        state.watch.changed().await;
                        // Changes within the interval go out as one update: a hot flight changes with every
                        // committed batch, and each update costs every watcher a message.
                        tokio::time::sleep_until(state.last_sent + UPDATE_INTERVAL).await;
                        // Every watcher of the flight on this instance shares one read per change.
                        match flight_snapshot(&state.feed, &state.store, state.id).await {
                            Ok(Some(flight)) => flight,
                            Ok(None) => return None,
                            Err(error) => return Some((Err(error), None)),
                        }
                    }
                };
                // A signal does not always mean new counts (another cabin's seats moved, or a relay echo).
                if state.last.as_ref() != Some(&flight.cabins) {
                    state.last = Some(flight.cabins.clone());
                    state.last_sent = tokio::time::Instant::now();
                    return Some((Ok(flight.cabins.clone()), Some(state)));
                }
            }
        }))
    }

    /// Adds a flight (a keyed call), then drops the cached searches of its route so it shows up at once.
    #[tracing::instrument(skip_all, fields(flight_number = new.flight_number.as_str()))]
    pub async fn create_flight(
        &self,
        keyed: &KeyedRequest,
        new: NewFlight,
        encode: impl FnOnce(&Flight) -> Vec<u8>,
    ) -> Result<Outcome<Flight>, AppError> {
        let now = self.clock.now();
        let outcome =
            self.idempotency.run(keyed, now, encode, async |txn| Self::insert_flight(txn, &new, now).await).await?;
        if let Outcome::Executed(_) = &outcome {
            self.cache.invalidate_route(&Route { origin: new.origin, destination: new.destination }.tag()).await;
        }
        Ok(outcome)
    }

    async fn insert_flight(
        txn: &impl ConnectionTrait,
        new: &NewFlight,
        now: DateTime<Utc>,
    ) -> Result<Flight, AppError> {
        let id = Uuid::now_v7();
        let zones = airports::time_zones(txn, &[new.origin, new.destination]).await?;
        let mut violations = Violations::new();
        for (field, code) in [("origin", new.origin), ("destination", new.destination)] {
            if !zones.contains_key(&code) {
                violations.add(field, format!("{code} is not a known airport"));
            }
        }
        violations.finish()?;
        let departure_date = local_date(new.departs_at, zones[&new.origin]);
        match flights::insert(txn, id, new, departure_date, now).await {
            Err(StoreError::Duplicate(_)) => {
                return Err(ValidationError::single(
                    "flight_number",
                    "this flight number already departs at that time",
                )
                .into());
            }
            other => other?,
        }
        flights::get(txn, id).await?.ok_or(AppError::NotFound("flight"))
    }
}

struct AvailabilityStream {
    id: Uuid,
    watch: AvailabilityWatch,
    feed: AvailabilityFeed,
    store: Store,
    /// The flight to send next without waiting (the state when the stream opened).
    next: Option<Arc<Flight>>,
    last: Option<Vec<CabinAvailability>>,
    last_sent: tokio::time::Instant,
    _permit: WatchPermit,
}

/// The flight as of its last change, from the feed's snapshots.
pub(super) async fn flight_snapshot(
    feed: &AvailabilityFeed,
    store: &Store,
    id: Uuid,
) -> Result<Option<Arc<Flight>>, AppError> {
    Ok(feed.flights().get(id, async || flights::get(store.conn(), id).await).await?)
}

/// The shortest time between two updates of one stream.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(250);
