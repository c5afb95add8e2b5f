//! Building and running the server, shared by `main` and the tests: `Application::build` connects,
//! migrates, seeds and binds (port 0 works); `run_until_stopped` serves until the injected shutdown future
//! resolves, then drains.
//!
//! - `build`: the composition root, every use case, service and layer wired together.
//! - `providers`: the signing keys and the payment provider the configuration asks for.
//! - `serve`: serving, and the orderly shutdown (drain, grace period, background work).
//! - `starting`: the listener that answers NOT_SERVING until the database is ready, then hands over.

mod build;
mod providers;
mod serve;
mod starting;

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;

pub use self::starting::run_when_ready;
use crate::{
    config::Config,
    infra::{availability::AvailabilityFeed, clock::Clock, mail::MailError, payments::ProviderError, redis::Redis},
    jobs::{Background, health::Readiness},
    store::{Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {0}: {1}")]
    DataDir(std::path::PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Redis configuration: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("payment provider: {0}")]
    Payments(#[from] ProviderError),
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

pub struct Application {
    listener: Arc<TcpListener>,
    local_addr: SocketAddr,
    router: axum::Router,
    readiness: Readiness,
    /// The operator endpoint serving `GET /metrics`, once started.
    metrics_endpoint: Option<tokio::task::JoinHandle<()>>,
    store: Store,
    redis: Option<Redis>,
    background: Background,
    clock: Clock,
    feed: AvailabilityFeed,
    config: Config,
}

/// Creates the SQLite data directory when needed, then applies pending migrations.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    if config.database.is_sqlite {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| StartupError::DataDir(config.data_dir.clone(), e))?;
    }
    Ok(Store::migrate(&config.database).await?)
}

impl Application {
    /// The server's scheduled work (hold sweeps, outbox jobs, reconciliation), to run on demand.
    pub fn background(&self) -> Background {
        self.background.clone()
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}
