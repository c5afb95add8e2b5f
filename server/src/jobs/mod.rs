//! Background work that runs inside the server process: the hold and retention sweeper, the outbox worker
//! and payment reconciliation, each on its own schedule, and [`Background`] to run the same work on demand.

pub mod gauges;
pub mod health;
pub mod outbox;
pub mod reconciler;
pub mod sweeper;

use std::sync::Arc;

use crate::{
    app::{
        AppError,
        bookings::Bookings,
        outbox::Outbox,
        payments::{Payments, ReconciliationReport},
        retention::{Retention, Swept},
    },
    infra::payments::simulated::SimulatedProvider,
};

/// The server's scheduled work, run now instead of on its schedule: what tests and operators' tools step
/// through when they must know the work has happened.
#[derive(Clone)]
pub struct Background {
    pub(crate) bookings: Bookings,
    pub(crate) payments: Payments,
    pub(crate) outbox: Outbox,
    pub(crate) retention: Retention,
    /// The embedded payment provider, when payments are simulated.
    pub(crate) simulated: Option<Arc<SimulatedProvider>>,
}

impl Background {
    /// One hold sweep, as the sweeper's timer runs it; returns how many holds expired.
    pub async fn expire_due_holds(&self) -> Result<usize, AppError> {
        self.bookings.expire_due_holds().await
    }

    /// One sweep of unpaid flight changes, as the sweeper's timer runs it; returns how many lapsed.
    pub async fn lapse_due_changes(&self) -> Result<usize, AppError> {
        self.bookings.lapse_due_changes().await
    }

    /// The sweeper's retention pass; returns what it deleted.
    pub async fn sweep_retention(&self) -> Result<Swept, AppError> {
        self.retention.sweep().await
    }

    /// Runs every due outbox job, waiting for any this instance's worker is running.
    pub async fn run_jobs(&self) -> Result<(), AppError> {
        self.outbox.run_until_idle().await
    }

    /// Waits until the simulated provider (if payments are simulated) has delivered every event it owes,
    /// then runs the jobs they queued.
    pub async fn settle_payments(&self) -> Result<(), AppError> {
        if let Some(simulated) = &self.simulated {
            simulated.settled().await;
        }
        self.run_jobs().await
    }

    /// One payment reconciliation pass.
    pub async fn reconcile(&self) -> Result<ReconciliationReport, AppError> {
        self.payments.reconcile().await
    }
}
