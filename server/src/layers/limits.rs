//! The server-side deadline and the concurrency limit of calls.
//!
//! The deadline covers a call until its response starts (for a stream: until the stream is open). Calls
//! over the concurrency limit wait for a slot, within their deadline, instead of overloading the database.
//! Health probes are exempt from both, so a saturated server still answers its load balancer.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tokio::sync::Semaphore;

use super::{correlation::CorrelationId, errors::ApiError, reject};

#[derive(Clone)]
pub struct CallLimits {
    deadline: Duration,
    slots: Arc<Semaphore>,
}

impl CallLimits {
    pub fn new(deadline: Duration, max_concurrent_calls: usize) -> Self {
        Self { deadline, slots: Arc::new(Semaphore::new(max_concurrent_calls)) }
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
    let call = async {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = limits.slots.acquire().await;
        next.run(request).await
    };
    match tokio::time::timeout(limits.deadline, call).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(deadline_ms = limits.deadline.as_millis() as u64, "call exceeded the server deadline");
            reject(ApiError::deadline_exceeded(limits.deadline), &correlation_id)
        }
    }
}
