//! The flight catalogue: search (cached per route), flight details, seat maps, and new flights.

use std::collections::BTreeSet;

use chrono::Utc;
use uuid::Uuid;

use super::AppError;
use crate::{
    domain::{
        flight::{CabinClass, Flight, NewFlight, SeatState, local_date, seat_map},
        search::{FlightPage, FlightSearch, Route},
        validation::{ValidationError, Violations},
    },
    infra::cache::SearchCache,
    store::{Store, StoreError, flights},
};

#[derive(Clone)]
pub struct FlightCatalog {
    store: Store,
    cache: SearchCache,
}

impl FlightCatalog {
    pub fn new(store: Store, cache: SearchCache) -> Self {
        Self { store, cache }
    }

    #[tracing::instrument(skip_all, fields(route = %search.route.tag()))]
    pub async fn search(&self, search: FlightSearch) -> Result<FlightPage, AppError> {
        let route = search.route.tag();
        let key = search.cache_key();
        if let Some(page) = self.cache.get(&route, &key).await {
            return Ok(page);
        }
        let page = flights::search(self.store.conn(), &search, Utc::now()).await?;
        self.cache.put(&route, &key, &page).await;
        Ok(page)
    }

    #[tracing::instrument(skip(self))]
    pub async fn get_flight(&self, id: Uuid) -> Result<Flight, AppError> {
        flights::get(self.store.conn(), id).await?.ok_or(AppError::NotFound("flight"))
    }

    /// Every seat of the flight (or one cabin of it). No seat is held before bookings exist, so all are free.
    #[tracing::instrument(skip(self))]
    pub async fn seat_map(&self, id: Uuid, cabin: Option<CabinClass>) -> Result<(Flight, Vec<SeatState>), AppError> {
        let flight = self.get_flight(id).await?;
        if let Some(cabin) = cabin
            && !flight.cabins.iter().any(|c| c.cabin == cabin)
        {
            return Err(ValidationError::single("cabin", "this flight has no such cabin").into());
        }
        let seats = seat_map(&flight.cabins, cabin, &BTreeSet::new());
        Ok((flight, seats))
    }

    /// Adds a flight, then drops the cached searches of its route so it shows up at once.
    #[tracing::instrument(skip_all, fields(flight_number = new.flight_number.as_str()))]
    pub async fn create_flight(&self, new: NewFlight) -> Result<Flight, AppError> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let txn = self.store.begin_write().await?;
        let zones = flights::airport_time_zones(&txn, &[new.origin, new.destination]).await?;
        let mut violations = Violations::new();
        for (field, code) in [("origin", new.origin), ("destination", new.destination)] {
            if !zones.contains_key(&code) {
                violations.add(field, format!("{code} is not a known airport"));
            }
        }
        violations.finish()?;
        let departure_date = local_date(new.departs_at, zones[&new.origin]);
        match flights::insert(&txn, id, &new, departure_date, now).await {
            Err(StoreError::Duplicate(_)) => {
                return Err(ValidationError::single(
                    "flight_number",
                    "this flight number already departs at that time",
                )
                .into());
            }
            other => other?,
        }
        let flight = flights::get(&txn, id).await?.ok_or(AppError::NotFound("flight"))?;
        txn.commit().await.map_err(StoreError::from)?;
        self.cache.invalidate_route(&Route { origin: new.origin, destination: new.destination }.tag()).await;
        Ok(flight)
    }
}
