//! PostgreSQL read replicas (`AEROBOOK_DATABASE_READ_URL`): streaming standbys that serve the reads allowed
//! to lag (flight search, airport listings) while each is within `AEROBOOK_REPLICA_MAX_LAG_MS` of the
//! primary. A monitor asks every replica its replay lag a few times a second; a replica behind, away, or no
//! longer in recovery (promoted: another primary) serves nothing until it is fresh again, and with none
//! fresh the primary serves. Reads a caller makes after its own write (its bookings, payments, keys) never
//! come here.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection, DbBackend, Statement};

use super::{StoreError, connect_options};
use crate::config::{DatabaseConfig, ReplicaConfig};

/// How often each replica's lag is measured.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// 0 when everything received is replayed; otherwise how long ago the last replayed commit was made; NULL
/// on a server that is not a standby.
const LAG_MS: &str = "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL \
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
    ELSE (EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint END AS lag_ms";

struct Replica {
    db: DatabaseConnection,
    fresh: AtomicBool,
}

/// The replicas, and which of them may serve now.
pub(super) struct Replicas {
    replicas: Vec<Replica>,
    next: AtomicUsize,
    monitor: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas").field("count", &self.replicas.len()).finish_non_exhaustive()
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        if let Some(monitor) = self.monitor.get() {
            monitor.abort();
        }
    }
}

impl Replicas {
    /// Connects to each replica (with the primary's schema and pool size) and starts measuring their lag.
    /// A replica that cannot be reached at start is not an error: it serves once it answers (start-up waits
    /// for its first answer at most one probe's timeout).
    pub(super) async fn connect(primary: &DatabaseConfig, config: &ReplicaConfig) -> Result<Arc<Self>, StoreError> {
        let mut replicas = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            let replica = DatabaseConfig { url: url.clone(), ..primary.clone() };
            let mut options = connect_options(&replica, primary.max_connections);
            options.connect_lazy(true);
            replicas.push(Replica { db: Database::connect(options).await?, fresh: AtomicBool::new(false) });
        }
        let replicas = Arc::new(Self { replicas, next: AtomicUsize::new(0), monitor: std::sync::OnceLock::new() });
        // Measured once before the first call, so a fresh replica serves from the start.
        probe(&replicas, config.max_lag).await;
        let monitor = tokio::spawn(monitor(Arc::downgrade(&replicas), config.max_lag));
        let _ = replicas.monitor.set(monitor);
        Ok(replicas)
    }

    /// A fresh replica, taken in turn; `None` when none is.
    pub(super) fn pick(&self) -> Option<&DatabaseConnection> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| &self.replicas[(start + offset) % count])
            .find(|replica| replica.fresh.load(Ordering::Acquire))
            .map(|replica| &replica.db)
    }
}

/// Measures every replica's lag until the replicas are dropped.
async fn monitor(replicas: std::sync::Weak<Replicas>, max_lag: Duration) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is at once, and `connect` has just probed
    loop {
        ticks.tick().await;
        let Some(replicas) = replicas.upgrade() else { return };
        probe(&replicas, max_lag).await;
    }
}

/// Measures each replica's lag once: within `max_lag` it serves reads, otherwise not until it is again.
async fn probe(replicas: &Replicas, max_lag: Duration) {
    let max_lag_ms = i64::try_from(max_lag.as_millis()).unwrap_or(i64::MAX);
    for (index, replica) in replicas.replicas.iter().enumerate() {
        let lag = tokio::time::timeout(PROBE_INTERVAL.max(max_lag), lag_ms(&replica.db)).await;
        let fresh = matches!(lag, Ok(Ok(Some(lag))) if lag <= max_lag_ms);
        if replica.fresh.swap(fresh, Ordering::AcqRel) != fresh {
            match lag {
                Ok(Ok(Some(lag))) if fresh => {
                    tracing::info!(replica = index, lag_ms = lag, "replica fresh: it serves reads")
                }
                Ok(Ok(Some(lag))) => {
                    tracing::warn!(replica = index, lag_ms = lag, "replica behind: the primary serves its reads")
                }
                Ok(Ok(None)) => tracing::warn!(
                    replica = index,
                    "replica is not a standby (promoted?): the primary serves its reads"
                ),
                Ok(Err(error)) => {
                    tracing::warn!(replica = index, %error, "replica away: the primary serves its reads")
                }
                Err(_) => tracing::warn!(replica = index, "replica does not answer: the primary serves its reads"),
            }
        }
    }
}

async fn lag_ms(db: &DatabaseConnection) -> Result<Option<i64>, StoreError> {
    let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, LAG_MS)).await?;
    Ok(row.map(|row| row.try_get::<Option<i64>>("", "lag_ms")).transpose()?.flatten())
}
