//! The flight catalogue: search (cached per route), flight details, seat maps, live seat counts, and new
//! flights.

use chrono::{DateTime, Utc};
use futures::{Stream, stream};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    AppError,
    idempotency::{Idempotency, KeyedRequest, Outcome},
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
    store::{Store, StoreError, airports, bookings, flights},
};

#[derive(Clone)]
pub struct FlightCatalog {
    store: Store,
    cache: SearchCache,
    feed: AvailabilityFeed,
    idempotency: Idempotency,
    clock: Clock,
}

impl FlightCatalog {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        cache: SearchCache,
        feed: AvailabilityFeed,
        clock: Clock,
    ) -> Self {
        Self { idempotency, store, cache, feed, clock }
    }

    #[tracing::instrument(skip_all, fields(route = %search.route.tag()))]
    pub async fn search(&self, search: FlightSearch) -> Result<FlightPage, AppError> {
        let route = search.route.tag();
        let key = search.cache_key();
        if let Some(page) = self.cache.get(&route, &key).await {
            return Ok(page);
        }
        let page = flights::search(self.store.conn(), &search, self.clock.now()).await?;
        self.cache.put(&route, &key, &page).await;
        Ok(page)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_flight(&self, id: Uuid) -> Result<Flight, AppError> {
        flights::get(self.store.conn(), id).await?.ok_or(AppError::NotFound("flight"))
    }

    /// Every seat of the flight (or one cabin of it), each free or not: exact, never cached.
    #[tracing::instrument(skip(self))]
    pub async fn seat_map(&self, id: Uuid, cabin: Option<CabinClass>) -> Result<(Flight, Vec<SeatState>), AppError> {
        let flight = self.get_flight(id).await?;
        if let Some(cabin) = cabin
            && !flight.cabins.iter().any(|c| c.cabin == cabin)
        {
            return Err(ValidationError::single("cabin", "this flight has no such cabin").into());
        }
        let taken = bookings::taken_seats(self.store.conn(), id, cabin).await?;
        let seats = seat_map(&flight.cabins, cabin, &taken);
        Ok((flight, seats))
    }

    /// The flight's cabins now, then again each time its seat counts change. Ends when the flight is gone
    /// or after a database failure (the failure is the stream's last item).
    pub async fn watch_availability(
        &self,
        id: Uuid,
    ) -> Result<impl Stream<Item = Result<Vec<CabinAvailability>, AppError>> + Send + 'static, AppError> {
        // Subscribe before the first read, so a change between the two is not lost.
        let watch = self.feed.watch(id);
        let flight = self.get_flight(id).await?;
        let state = AvailabilityStream { id, watch, store: self.store.clone(), next: Some(flight), last: None };
        Ok(stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                let flight = match state.next.take() {
                    Some(flight) => flight,
                    None => {
                        state.watch.changed().await;
                        match flights::get(state.store.conn(), state.id).await {
                            Ok(Some(flight)) => flight,
                            Ok(None) => return None,
                            Err(error) => return Some((Err(error.into()), None)),
                        }
                    }
                };
                // A signal does not always mean new counts (another cabin's seats moved, or a relay echo).
                if state.last.as_ref() != Some(&flight.cabins) {
                    state.last = Some(flight.cabins.clone());
                    return Some((Ok(flight.cabins), Some(state)));
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
    store: Store,
    /// The flight to send next without waiting (the state when the stream opened).
    next: Option<Flight>,
    last: Option<Vec<CabinAvailability>>,
}
