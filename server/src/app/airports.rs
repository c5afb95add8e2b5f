//! Airports: listing and reading the reference data, and operators' changes to it.

use sea_orm::ConnectionTrait;

use super::{
    AppError,
    idempotency::{Idempotency, KeyedRequest, Outcome},
    lagging_read,
};
use crate::{
    domain::{airport::Airport, flight::AirportCode, pagination::KeyCursor, search::Route},
    infra::{cache::SearchCache, clock::Clock},
    store::{Store, airports, flights},
};

/// One page of airports, by code.
#[derive(Debug, Clone)]
pub struct AirportPage {
    pub airports: Vec<Airport>,
    pub next_page_token: Option<String>,
}

#[derive(Clone)]
pub struct AirportDirectory {
    store: Store,
    cache: SearchCache,
    idempotency: Idempotency,
    clock: Clock,
}

impl AirportDirectory {
    pub fn new(store: Store, idempotency: Idempotency, cache: SearchCache, clock: Clock) -> Self {
        Self { idempotency, store, cache, clock }
    }

    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        query: Option<String>,
        after: Option<AirportCode>,
        page_size: u32,
    ) -> Result<AirportPage, AppError> {
        let mut airports =
            airports::list(lagging_read(&self.store), query.as_deref(), after, u64::from(page_size) + 1).await?;
        let next_page_token = if airports.len() > page_size as usize {
            airports.truncate(page_size as usize);
            airports.last().map(|last| KeyCursor(last.code.as_str().to_owned()).encode())
        } else {
            None
        };
        Ok(AirportPage { airports, next_page_token })
    }

    #[tracing::instrument(skip(self))]
    pub async fn get(&self, code: AirportCode) -> Result<Airport, AppError> {
        // The primary: an operator reads an airport back right after putting it.
        airports::get(self.store.conn(), code).await?.ok_or(AppError::NotFound("airport"))
    }

    /// Adds or replaces an airport (a keyed call). A new time zone moves the local departure dates of the
    /// flights leaving from it, and the cached searches of their routes are dropped.
    #[tracing::instrument(skip_all, fields(code = %airport.code))]
    pub async fn upsert(
        &self,
        keyed: &KeyedRequest,
        airport: Airport,
        encode: impl FnOnce(&Airport) -> Vec<u8>,
    ) -> Result<Outcome<Airport>, AppError> {
        let outcome = self
            .idempotency
            .run(keyed, self.clock.now(), |(airport, _)| encode(airport), async |txn| Self::write(txn, airport).await)
            .await?;
        if let Outcome::Executed((airport, moved)) = &outcome {
            for destination in moved {
                self.cache.invalidate_route(&Route { origin: airport.code, destination: *destination }.tag()).await;
            }
        }
        Ok(outcome.map(|(airport, _)| airport))
    }

    async fn write(txn: &impl ConnectionTrait, airport: Airport) -> Result<(Airport, Vec<AirportCode>), AppError> {
        let previous = airports::get(txn, airport.code).await?;
        airports::upsert(txn, &airport).await?;
        let moved = match previous {
            Some(previous) if previous.time_zone != airport.time_zone => {
                flights::redate_departures(txn, airport.code, airport.time_zone).await?
            }
            _ => Vec::new(),
        };
        Ok((airport, moved))
    }
}
