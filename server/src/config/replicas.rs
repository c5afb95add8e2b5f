//! `AEROBOOK_DATABASE_READ_URL` and `AEROBOOK_REPLICA_MAX_LAG_MS`: the PostgreSQL replicas that serve the
//! reads allowed to lag.

use std::time::Duration;

use super::{ConfigError, Secret, read::invalid, read::parse_in};

/// PostgreSQL read replicas for the reads that may lag (flight search, airport listings).
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub urls: Vec<Secret>,
    /// A replica further behind the primary serves nothing.
    pub max_lag: Duration,
}

/// The replicas named (comma-separated `postgres://` URLs), or `None`; they need a PostgreSQL primary.
pub(super) fn replica_config<'a>(
    get: impl Fn(&str) -> Option<&'a str> + Copy,
    is_sqlite: bool,
) -> Result<Option<ReplicaConfig>, ConfigError> {
    let max_lag = Duration::from_millis(parse_in(get, "AEROBOOK_REPLICA_MAX_LAG_MS", 1_000, 0..=600_000)?);
    // Empty is unset: a deployment's template may pass the variable through empty.
    let Some(list) = get("AEROBOOK_DATABASE_READ_URL").filter(|list| !list.trim().is_empty()) else {
        return Ok(None);
    };
    let urls: Vec<&str> = list.split(',').map(str::trim).filter(|url| !url.is_empty()).collect();
    if is_sqlite {
        return Err(invalid("AEROBOOK_DATABASE_READ_URL", "replicas need a PostgreSQL primary (DATABASE_URL)"));
    }
    if urls.is_empty() || !urls.iter().all(|url| url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid("AEROBOOK_DATABASE_READ_URL", "must be one or more postgres:// URLs, comma-separated"));
    }
    Ok(Some(ReplicaConfig { urls: urls.into_iter().map(Secret::new).collect(), max_lag }))
}
