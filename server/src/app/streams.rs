//! Limits on open server streams (`WatchAvailability`, `WatchWaitingRoom`): each kind of stream counts
//! its open streams per instance and per caller, and refuses more with `RATE_LIMITED`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use super::AppError;

/// Bounds on open streams of one kind (see [`crate::config::Limits`]).
#[derive(Debug, Clone, Copy)]
pub struct WatchLimits {
    pub total: usize,
    pub per_caller: usize,
}

/// When a refused watcher may try again.
const WATCH_RETRY: Duration = Duration::from_secs(5);

/// The open streams, per caller.
pub struct Watchers {
    limits: WatchLimits,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    total: usize,
    by_caller: HashMap<String, usize>,
}

impl Watchers {
    pub fn new(limits: WatchLimits) -> Arc<Self> {
        Arc::new(Self { limits, open: Mutex::default() })
    }

    /// A permit for one more stream of `watcher`, or `RateLimited` past either limit.
    pub fn admit(self: &Arc<Self>, watcher: String) -> Result<WatchPermit, AppError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_caller.get(&watcher).copied().unwrap_or(0);
        if open.total >= self.limits.total || mine >= self.limits.per_caller {
            return Err(AppError::RateLimited(WATCH_RETRY));
        }
        open.total += 1;
        open.by_caller.insert(watcher.clone(), mine + 1);
        Ok(WatchPermit { watchers: self.clone(), watcher })
    }
}

/// One open stream; dropping it (the stream ends or its client goes away) frees its place.
pub struct WatchPermit {
    watchers: Arc<Watchers>,
    watcher: String,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut open = self.watchers.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(mine) = open.by_caller.get_mut(&self.watcher) {
            *mine -= 1;
            if *mine == 0 {
                open.by_caller.remove(&self.watcher);
            }
        }
    }
}
