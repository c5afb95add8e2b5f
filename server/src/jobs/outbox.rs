//! The outbox worker: keeps up to `AEROBOOK_JOB_CONCURRENCY` jobs running, claiming more as slots free
//! up, as soon as this instance writes a job (a booking event's email, a payment job), and every
//! `AEROBOOK_JOB_POLL_INTERVAL_MS` for jobs written by other instances or due for a retry. Runs on every
//! instance; leases keep a job to one worker at a time.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{Semaphore, oneshot},
    task::JoinSet,
};

use crate::app::outbox::Outbox;

/// Works until `stop` fires (or its sender is dropped): then claims nothing more and returns once the
/// running jobs have finished. Aborted instead, its running jobs stop with it and run again after their
/// lease. A failed claim is logged and retried at the next wake-up or poll.
pub async fn run(outbox: Outbox, poll_interval: Duration, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(outbox.concurrency()));
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        if free > 0 {
            match outbox.claim(free).await {
                Ok(jobs) => {
                    for job in jobs {
                        let Ok(slot) = slots.clone().acquire_owned().await else { return };
                        let outbox = outbox.clone();
                        running.spawn(async move {
                            outbox.run(job).await;
                            drop(slot);
                        });
                    }
                }
                Err(error) => tracing::warn!(%error, "claiming outbox jobs failed; retrying at the next poll"),
            }
        }
        // Every slot busy: the next claim waits for one to free up.
        tokio::select! {
            () = outbox.signal().woken() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = tokio::time::sleep(poll_interval) => {}
            _ = &mut stop => break,
        }
    }
    if !running.is_empty() {
        tracing::info!(running = running.len(), "stopping: waiting for running background jobs");
    }
    while running.join_next().await.is_some() {}
}
