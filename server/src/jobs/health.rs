//! Readiness: the health service says SERVING while the database answers and the server is not draining.
//! A probe loop asks the database on its own schedule (health calls never wait for a query), turns every
//! service NOT_SERVING when the database stops answering, and SERVING again when it recovers.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{infra::metrics, store::Store};

/// How long one probe may take before the database counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The serving state of this instance, published on the gRPC health service and `GET /healthz`.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

struct Inner {
    reporter: HealthReporter,
    services: Vec<&'static str>,
    database_answers: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Serving, for the overall service (`""`) and `services`: the database has just been migrated and
    /// answered when this is built.
    pub async fn new(reporter: HealthReporter, services: Vec<&'static str>) -> Self {
        let readiness = Self {
            inner: Arc::new(Inner {
                reporter,
                services,
                database_answers: AtomicBool::new(true),
                draining: AtomicBool::new(false),
            }),
        };
        readiness.publish().await;
        readiness
    }

    pub fn is_serving(&self) -> bool {
        self.inner.database_answers.load(Ordering::SeqCst) && !self.inner.draining.load(Ordering::SeqCst)
    }

    /// NOT_SERVING for good: the server is shutting down.
    pub async fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.publish().await;
    }

    async fn publish(&self) {
        let serving = self.is_serving();
        let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
        let reporter = &self.inner.reporter;
        reporter.set_service_status("", status).await;
        for service in &self.inner.services {
            reporter.set_service_status(*service, status).await;
        }
        metrics::update_samples(|samples| samples.serving = serving);
    }

    /// Probes the database every `interval`, publishing changes; runs until aborted.
    pub async fn probe(self, store: Store, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let answers = match tokio::time::timeout(PROBE_TIMEOUT.min(interval * 2), store.ping()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "database probe failed");
                    false
                }
                Err(_) => false,
            };
            if self.inner.database_answers.swap(answers, Ordering::SeqCst) != answers {
                match answers {
                    true => tracing::info!("database answers again: serving"),
                    false => tracing::error!("database does not answer: health NOT_SERVING"),
                }
                self.publish().await;
            }
        }
    }
}
