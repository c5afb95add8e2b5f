//! Persistence: the database connection, migrations, sea-orm entities and the queries the use cases run.
//!
//! Queries take `&impl ConnectionTrait`, so a use case decides whether they run inside its transaction.
//! Knows the domain types it stores; knows nothing of tonic or Redis.

pub mod entities;
pub mod flights;
pub mod seed;

use std::time::Duration;

use aerobook_migrations::{Migrator, MigratorTrait as _};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqlErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait as _,
};

use crate::config::DatabaseConfig;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
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
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(err),
            other => StoreError::Query(other),
        }
    }
}

/// The connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects, and on SQLite switches the file to write-ahead logging so readers never wait for writers.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        let db = Database::connect(connect_options(config, config.max_connections)).await?;
        if db.get_database_backend() == DbBackend::Sqlite {
            db.execute_unprepared("PRAGMA journal_mode = WAL").await?;
        }
        Ok(Self { db })
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
        Ok(self.db.begin_with_options(options).await?)
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// A trivial query, for readiness.
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
    options
}
