//! The server-side deadline and the concurrency limit of calls.
//!
//! The deadline covers a call until its response starts (for a stream: until the stream is open). Calls
//! over the concurrency limit wait for a slot, within their deadline, instead of overloading the database;
//! once as many calls wait as are allowed to, further ones are shed: answered `SERVICE_UNAVAILABLE`
//! (retryable, with a retry delay) at once, rather than each waiting out its deadline behind a slow
//! database. Health probes are exempt from all of it, so a saturated server still answers its load balancer.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tokio::sync::Semaphore;

use super::{correlation::CorrelationId, errors::ApiError, reject};
use crate::infra::deadline;

#[derive(Clone)]
pub struct CallLimits {
    deadline: Duration,
    slots: Arc<Semaphore>,
    /// Calls waiting for a slot now, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl CallLimits {
    pub fn new(deadline: Duration, max_concurrent_calls: usize, max_waiting_calls: usize) -> Self {
        Self {
            deadline,
            slots: Arc::new(Semaphore::new(max_concurrent_calls)),
            waiting: Arc::default(),
            max_waiting: max_waiting_calls,
        }
    }
}

/// One call counted among those waiting for a slot, until dropped.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// Counts a call in; also how many were waiting before it.
    fn join(count: &Arc<AtomicUsize>) -> (Self, usize) {
        let ahead = count.fetch_add(1, Ordering::AcqRel);
        (Self(count.clone()), ahead)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn is_health_probe(path: &str) -> bool {
    path == "/healthz" || path.starts_with("/grpc.health.v1.Health/")
}

pub async fn limit_calls(State(limits): State<CallLimits>, request: Request, next: Next) -> Response {
    if is_health_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let correlation_id = CorrelationId::of(request.extensions());
    let slot = limits.slots.clone().try_acquire_owned().ok();
    let waiting = match slot {
        Some(_) => None,
        None => {
            let (waiting, ahead) = Waiting::join(&limits.waiting);
            if ahead >= limits.max_waiting {
                tracing::warn!(max_waiting = limits.max_waiting, "call shed: every slot busy and the queue full");
                return reject(ApiError::unavailable(), &correlation_id);
            }
            Some(waiting)
        }
    };
    let call = async {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = match slot {
            Some(slot) => Ok(slot),
            None => limits.slots.clone().acquire_owned().await,
        };
        drop(waiting);
        next.run(request).await
    };
    let deadline = tokio::time::Instant::now() + limits.deadline;
    match tokio::time::timeout_at(deadline, deadline::within(deadline, call)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(deadline_ms = limits.deadline.as_millis() as u64, "call exceeded the server deadline");
            reject(ApiError::deadline_exceeded(limits.deadline), &correlation_id)
        }
    }
}
