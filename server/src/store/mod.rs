//! Persistence: the database connection, migrations, sea-orm entities and the queries the use cases run.
//!
//! Queries take `&impl ConnectionTrait`, so a use case decides whether they run inside its transaction.
//! Knows the domain types it stores; knows nothing of tonic or Redis.

pub mod accounts;
pub mod airports;
pub mod bookings;
pub mod check_in;
pub mod entities;
pub mod flights;
pub mod history;
pub mod hold_writes;
pub mod idempotency;
pub mod invariants;
pub mod mail;
pub mod outbox;
pub mod payments;
pub mod pending_changes;
pub mod quotes;
mod replicas;
pub mod retention;
pub mod seats;
pub mod seed;
pub mod segments;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod tickets;
pub mod travel_documents;
pub mod waiting_rooms;

use std::{sync::Arc, time::Duration};

use aerobook_migrations::{Migrator, MigratorTrait as _};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, RuntimeErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait as _, sqlx,
};

use crate::config::{DatabaseConfig, ReplicaConfig};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// A statement gave up waiting for a row another transaction holds (PostgreSQL `lock_timeout`).
    #[error("lock wait timed out: {0}")]
    LockTimeout(#[source] DbErr),
    #[error("a row with the same unique key exists: {0}")]
    Duplicate(String),
    #[error("database query failed: {0}")]
    Query(#[source] DbErr),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            return StoreError::Duplicate(detail);
        }
        match transient(&err) {
            Some(Transient::LockTimeout) => StoreError::LockTimeout(err),
            Some(Transient::Unavailable) => StoreError::Unavailable(err),
            None => StoreError::Query(err),
        }
    }
}

/// How a failure that says nothing about the request may pass on a retry.
enum Transient {
    /// A statement gave up waiting for a lock (PostgreSQL `lock_timeout`).
    LockTimeout,
    /// No connection, a lost connection, lock contention, serialization failures, deadlocks, a server
    /// shutting down.
    Unavailable,
}

fn transient(err: &DbErr) -> Option<Transient> {
    let runtime = match err {
        // Whatever failed while connecting (refused, cut mid-handshake) says nothing about the request.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return Some(Transient::Unavailable),
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let RuntimeErr::SqlxError(error) = runtime else { return None };
    match error.as_ref() {
        // A connection that broke mid-conversation: its bytes stopped making sense, or stopped.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Transient::Unavailable),
        sqlx::Error::Database(database) => {
            if database.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                let code = database.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or_default();
                return matches!(code & 0xff, 5 | 6).then_some(Transient::Unavailable);
            }
            // PostgreSQL: lock_not_available; serialization_failure, deadlock_detected, too_many_connections,
            // admin_shutdown, crash_shutdown, cannot_connect_now.
            match database.code().as_deref() {
                Some("55P03") => Some(Transient::LockTimeout),
                Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03") => Some(Transient::Unavailable),
                _ => None,
            }
        }
        _ => None,
    }
}

/// How long a SQLite write transaction waits for the one writer connection; the call's deadline, which is
/// shorter, usually ends the wait first.
const SQLITE_WRITER_WAIT: Duration = Duration::from_secs(30);

/// The connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite only: the single connection every write transaction uses. SQLite has one writer at a time;
    /// queueing for this connection is fair and cheap, where many connections contending for the file's
    /// write lock would poll and back off.
    writer: Option<DatabaseConnection>,
    /// PostgreSQL read replicas, for reads that may lag.
    replicas: Option<Arc<replicas::Replicas>>,
}

impl Store {
    /// Connects. SQLite runs in write-ahead-log mode (readers never wait for the writer) with
    /// `synchronous = NORMAL`: a commit survives a crash of the process, and only a power loss can undo the
    /// last commits, never corrupt the file. Production runs on PostgreSQL.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let db = Database::connect(connect_options(config, config.max_connections)).await?;
        let writer = if db.get_database_backend() == DbBackend::Sqlite {
            let mut options = connect_options(config, 1);
            options.acquire_timeout(SQLITE_WRITER_WAIT);
            Some(Database::connect(options).await?)
        } else {
            None
        };
        Ok(Self { db, writer, replicas: None })
    }

    /// Adds read replicas for the reads that may lag ([`Store::lagging_reads`]).
    pub async fn with_replicas(mut self, primary: &DatabaseConfig, config: &ReplicaConfig) -> Result<Self, StoreError> {
        self.replicas = Some(replicas::Replicas::connect(primary, config).await?);
        Ok(self)
    }

    /// The connection for a read that may lag the primary by up to `AEROBOOK_REPLICA_MAX_LAG_MS` (flight
    /// search, airport listings): a fresh replica when there is one, else the primary; and whether it is a
    /// replica.
    pub fn lagging_reads(&self) -> (&DatabaseConnection, bool) {
        match self.replicas.as_deref().and_then(replicas::Replicas::pick) {
            Some(replica) => (replica, true),
            None => (&self.db, false),
        }
    }

    /// Applies pending migrations. On PostgreSQL a session advisory lock, held on a dedicated connection,
    /// makes concurrent start-ups of several instances migrate one at a time.
    pub async fn migrate(config: &DatabaseConfig) -> Result<(), StoreError> {
        let db = Database::connect(connect_options(config, 1)).await?;
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        if postgres {
            db.execute_unprepared("SELECT pg_advisory_lock(7460382519)").await?;
        }
        let migrated = Migrator::up(&db, None).await;
        if postgres {
            db.execute_unprepared("SELECT pg_advisory_unlock(7460382519)").await?;
        }
        db.close().await?;
        Ok(migrated?)
    }

    /// Closes the pools, waiting for their connections to be returned.
    pub async fn close(self) -> Result<(), StoreError> {
        if let Some(writer) = self.writer {
            writer.close().await?;
        }
        Ok(self.db.close().await?)
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A transaction that will write. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first cannot wait for the lock later and fails at once with
    /// "database is locked" when another writer holds it. PostgreSQL ignores the option.
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.writer.as_ref().unwrap_or(&self.db).begin_with_options(options).await?)
    }

    /// A read-only transaction that sees one snapshot: reads made of several statements (a booking, its
    /// segments and the change it waits on) never mix a write's before and after. PostgreSQL: REPEATABLE
    /// READ; SQLite's read transactions are snapshots already.
    pub async fn begin_snapshot(&self) -> Result<DatabaseTransaction, StoreError> {
        let (isolation, access) = match self.backend() {
            DbBackend::Postgres => (Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)),
            _ => (None, None),
        };
        Ok(self.db.begin_with_config(isolation, access).await?)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// One round trip to the database (the readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }
}

fn connect_options(config: &DatabaseConfig, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(config.url.expose().to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1.min(max_connections))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if let Some(schema) = &config.schema {
        options.set_schema_search_path(schema.clone());
    }
    options.map_sqlx_sqlite_opts(|sqlite| {
        sqlite
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .statement_cache_capacity(STATEMENT_CACHE)
    });
    options.map_sqlx_postgres_opts(|postgres| postgres.statement_cache_capacity(STATEMENT_CACHE));
    options
}

/// Prepared statements kept per connection. A batch of holds writes with multi-row statements whose text
/// depends on the batch's size, so a busy server uses a few hundred shapes; with the default (100) they
/// would evict each other and be parsed and planned again and again.
const STATEMENT_CACHE: usize = 1_024;
