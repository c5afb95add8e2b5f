//! The search cache: results of `SearchFlights` for at most the configured TTL (<= 120 s), grouped by route
//! so creating or changing a flight drops every cached search of its route at once.
//!
//! In Redis each route is one hash (field = search, value = JSON) whose TTL starts with its first entry,
//! set in the same atomic script as the entry so no hash ever lives without one; invalidation deletes the
//! hash. In process the same shape lives in a map. Every failure is a miss: the
//! cache never fails a read.
//!
//! With Redis, each instance keeps what it read or wrote for [`NEAR_TTL`] in a near cache in front, so a
//! burst of identical searches costs one Redis round trip per second instead of one each. Invalidation
//! clears this instance's near cache at once; another instance's may show a route's old results for up to
//! [`NEAR_TTL`] after a flight is created there (the results' seat counts are already up to the TTL old).
//!
//! In-process entries (the near cache's and the embedded mode's) keep the value they were read as once it
//! has been, so a hit costs no parsing: readers share it.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use fred::prelude::{HashesInterface as _, KeysInterface as _};
use fred::types::scripts::Script;
use opentelemetry::KeyValue;
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{metrics::metrics, redis::Redis};

/// Upper bound of cached searches held in process; past it new results are simply not cached.
const MAX_LOCAL_ENTRIES: usize = 10_000;
/// How long a search read from Redis is kept in front of it, in process.
pub const NEAR_TTL: Duration = Duration::from_secs(1);

/// KEYS[1] route hash; ARGV search, JSON, TTL seconds. The route's TTL runs from its first entry.
const PUT_SEARCH: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1";

#[derive(Clone)]
pub enum SearchCache {
    Disabled,
    Local(LocalCache),
    Redis { redis: Redis, ttl: Duration, put: Script, near: LocalCache },
}

impl SearchCache {
    pub fn redis(redis: Redis, ttl: Duration) -> Self {
        SearchCache::Redis { redis, ttl, put: Script::from_lua(PUT_SEARCH), near: LocalCache::new(NEAR_TTL.min(ttl)) }
    }

    pub async fn get<T: DeserializeOwned + Send + Sync + 'static>(&self, route: &str, search: &str) -> Option<Arc<T>> {
        let found = self.lookup(route, search).await;
        if !matches!(self, SearchCache::Disabled) {
            let result = if found.is_some() { "hit" } else { "miss" };
            metrics().cache_lookups.add(1, &[KeyValue::new("cache", "search"), KeyValue::new("result", result)]);
        }
        found
    }

    async fn lookup<T: DeserializeOwned + Send + Sync + 'static>(&self, route: &str, search: &str) -> Option<Arc<T>> {
        let entry = match self {
            SearchCache::Disabled => None,
            SearchCache::Local(local) => local.get(route, search),
            SearchCache::Redis { redis, near, .. } => match near.get(route, search) {
                Some(entry) => Some(entry),
                None => {
                    let client = redis.available()?;
                    let json = client
                        .hget::<Option<String>, _, _>(redis.key(&route_key(route)), search)
                        .instrument(tracing::info_span!("redis search_cache.get", otel.kind = "client"))
                        .await
                        .inspect_err(|error| tracing::warn!(%error, "search cache read failed"))
                        .ok()
                        .flatten()?;
                    Some(near.put(route, search, json))
                }
            },
        }?;
        entry.value()
    }

    pub async fn put<T: Serialize>(&self, route: &str, search: &str, value: &T) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        match self {
            SearchCache::Disabled => {}
            SearchCache::Local(local) => {
                local.put(route, search, json);
            }
            SearchCache::Redis { redis, ttl, put, near } => {
                near.put(route, search, json.clone());
                let Some(client) = redis.available() else { return };
                let key = redis.key(&route_key(route));
                let args: Vec<String> = vec![search.to_owned(), json, ttl.as_secs().to_string()];
                if let Err(error) = put.evalsha_with_reload::<(), _, _>(client, key, args).await {
                    tracing::warn!(%error, "search cache write failed");
                }
            }
        }
    }

    /// Drops every cached search of the route. If Redis is away the entries still expire within the TTL.
    pub async fn invalidate_route(&self, route: &str) {
        match self {
            SearchCache::Disabled => {}
            SearchCache::Local(local) => local.invalidate_route(route),
            SearchCache::Redis { redis, near, .. } => {
                near.invalidate_route(route);
                let result = match redis.available() {
                    Some(client) => client.del::<(), _>(redis.key(&route_key(route))).await,
                    None => Ok(()),
                };
                if let Err(error) = result {
                    tracing::warn!(%error, route, "search cache invalidation failed; entries expire with their TTL");
                }
            }
        }
    }
}

fn route_key(route: &str) -> String {
    format!("search:{route}")
}

/// In-process equivalent of the Redis layout, for the embedded mode.
#[derive(Clone)]
pub struct LocalCache {
    ttl: Duration,
    routes: Arc<Mutex<HashMap<String, RouteEntries>>>,
}

struct RouteEntries {
    expires_at: Instant,
    searches: HashMap<String, Arc<Entry>>,
}

/// A cached search: its JSON, and the value it was first read as.
struct Entry {
    json: String,
    value: OnceLock<Option<Arc<dyn Any + Send + Sync>>>,
}

impl Entry {
    /// The value, parsed on first use; `None` when the JSON is not a `T` (logged).
    fn value<T: DeserializeOwned + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let parsed = self.value.get_or_init(|| {
            let value: Result<T, _> = serde_json::from_str(&self.json);
            value
                .inspect_err(|error| tracing::warn!(%error, "search cache entry unreadable"))
                .ok()
                .map(|value| Arc::new(value) as Arc<dyn Any + Send + Sync>)
        });
        parsed.clone()?.downcast().ok()
    }
}

impl LocalCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, routes: Arc::default() }
    }

    fn get(&self, route: &str, search: &str) -> Option<Arc<Entry>> {
        let routes = self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entries = routes.get(route).filter(|entries| entries.expires_at > Instant::now())?;
        entries.searches.get(search).cloned()
    }

    /// Keeps `json` (unless the cache is full) and returns its entry.
    fn put(&self, route: &str, search: &str, json: String) -> Arc<Entry> {
        let entry = Arc::new(Entry { json, value: OnceLock::new() });
        let now = Instant::now();
        let mut routes = self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut total: usize = routes.values().map(|entries| entries.searches.len()).sum();
        if total >= MAX_LOCAL_ENTRIES {
            routes.retain(|_, entries| entries.expires_at > now);
            total = routes.values().map(|entries| entries.searches.len()).sum();
            if total >= MAX_LOCAL_ENTRIES {
                return entry;
            }
        }
        let entries = routes
            .entry(route.to_owned())
            .and_modify(|entries| {
                if entries.expires_at <= now {
                    *entries = RouteEntries { expires_at: now + self.ttl, searches: HashMap::new() };
                }
            })
            .or_insert_with(|| RouteEntries { expires_at: now + self.ttl, searches: HashMap::new() });
        entries.searches.insert(search.to_owned(), entry.clone());
        entry
    }

    fn invalidate_route(&self, route: &str) {
        self.routes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(route);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn local_entries_expire_with_their_route_and_invalidate_per_route() {
        let cache = SearchCache::Local(LocalCache::new(Duration::from_secs(30)));
        cache.put("RUH-JED", "a", &1u32).await;
        cache.put("JED-RUH", "a", &2u32).await;
        let first = cache.get::<u32>("RUH-JED", "a").await.unwrap();
        assert_eq!(*first, 1);
        assert!(Arc::ptr_eq(&first, &cache.get::<u32>("RUH-JED", "a").await.unwrap()), "parsed once, then shared");
        assert_eq!(cache.get::<String>("RUH-JED", "a").await, None, "read as another type: a miss");
        assert_eq!(cache.get::<u32>("RUH-JED", "b").await, None);

        cache.invalidate_route("RUH-JED").await;
        assert_eq!(cache.get::<u32>("RUH-JED", "a").await, None);
        assert_eq!(cache.get::<u32>("JED-RUH", "a").await.as_deref(), Some(&2), "other routes are untouched");

        tokio::time::advance(Duration::from_secs(20)).await;
        cache.put("JED-RUH", "b", &3u32).await;
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(cache.get::<u32>("JED-RUH", "b").await, None, "the route's TTL runs from its first entry");
        cache.put("JED-RUH", "c", &4u32).await;
        assert_eq!(cache.get::<u32>("JED-RUH", "c").await.as_deref(), Some(&4), "an expired route starts afresh");
    }

    #[tokio::test]
    async fn the_local_cache_is_bounded() {
        let cache = LocalCache::new(Duration::from_secs(30));
        for i in 0..MAX_LOCAL_ENTRIES + 5 {
            cache.put("R", &i.to_string(), String::new());
        }
        let held: usize = cache.routes.lock().unwrap().values().map(|e| e.searches.len()).sum();
        assert_eq!(held, MAX_LOCAL_ENTRIES);
    }

    #[tokio::test]
    async fn with_redis_a_near_cache_answers_in_front_and_invalidation_clears_both() {
        let Some(redis) = crate::infra::redis::for_unit_test().await else { return };
        let cache = SearchCache::redis(redis.clone(), Duration::from_secs(30));
        cache.put("RUH-JED", "a", &1u32).await;
        let client = redis.available().expect("connected");
        let hash = redis.key(&route_key("RUH-JED"));
        assert_eq!(client.hget::<Option<String>, _, _>(&hash, "a").await.unwrap().as_deref(), Some("1"), "shared");
        client.del::<(), _>(&hash).await.unwrap();
        assert_eq!(cache.get::<u32>("RUH-JED", "a").await.as_deref(), Some(&1), "answered in front of Redis");

        cache.put("RUH-JED", "a", &2u32).await;
        cache.invalidate_route("RUH-JED").await;
        assert_eq!(cache.get::<u32>("RUH-JED", "a").await, None, "gone from both");
        assert_eq!(client.exists::<u32, _>(&hash).await.unwrap(), 0);
        redis.quit().await;
    }

    #[tokio::test]
    async fn disabled_caches_nothing() {
        let cache = SearchCache::Disabled;
        cache.put("R", "a", &1u32).await;
        assert_eq!(cache.get::<u32>("R", "a").await, None);
    }
}
