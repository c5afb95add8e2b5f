//! The outbox worker: runs due jobs as soon as this instance writes one, and polls for jobs written by
//! other instances or due for a retry. Runs on every instance; leases keep a job to one worker at a time.

use std::time::Duration;

use crate::app::outbox::Outbox;

/// How often the worker looks for jobs it was not woken for.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Works until the task is aborted. A failed pass is logged and retried at the next wake-up or poll.
pub async fn run(outbox: Outbox) {
    loop {
        loop {
            match outbox.run_due().await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "outbox pass failed; retrying at the next poll");
                    break;
                }
            }
        }
        tokio::select! {
            () = outbox.signal().woken() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
