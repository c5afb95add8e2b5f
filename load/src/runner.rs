//! Driving a scenario's calls, bounded in time and in count.
//!
//! Closed loop: a fixed number of callers, each sending its next call when the last one is answered; it
//! finds the most a scenario can do. Open loop: calls sent on a fixed schedule whatever the answers do,
//! each call's latency measured from when it was due, not from when it went out, so a server that falls
//! behind cannot slow the schedule down and hide its own queueing (no coordinated omission). Calls due while
//! `max_in_flight` are unanswered are not sent and are counted as dropped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use crate::stats::{Answer, Recorder, Summary};

/// One call of a scenario: the connection to use and the call's index in the run (scenarios that need
/// per-call variety derive it from the index).
pub type CallFn = Arc<dyn Fn(Channel, u64) -> BoxFuture<'static, Answer> + Send + Sync>;

#[derive(Debug, Clone, Copy)]
pub enum Loop {
    Closed { concurrency: usize },
    Open { rate: f64, max_in_flight: usize },
}

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub duration: Duration,
    pub max_calls: u64,
}

/// A run's figures; `dropped` only in open loop.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

pub async fn run(label: &str, channels: &[Channel], call: &CallFn, mode: Loop, bounds: Bounds) -> Run {
    let started = Instant::now();
    let recorder = Arc::new(Recorder::new(started));
    let progress = TimedProgress::start(label, bounds.duration, recorder.clone());
    let dropped = match mode {
        Loop::Closed { concurrency } => {
            closed(channels, call, concurrency.max(1), bounds, &recorder).await;
            None
        }
        Loop::Open { rate, max_in_flight } => {
            Some(open(channels, call, rate, max_in_flight.max(1), bounds, &recorder).await)
        }
    };
    progress.finish();
    Run { summary: recorder.summary(started.elapsed()), dropped }
}

async fn closed(channels: &[Channel], call: &CallFn, concurrency: usize, bounds: Bounds, recorder: &Arc<Recorder>) {
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + bounds.duration;
    let callers: Vec<_> = (0..concurrency)
        .map(|caller| {
            let (call, channel, issued, recorder) =
                (call.clone(), channels[caller % channels.len()].clone(), issued.clone(), recorder.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let index = issued.fetch_add(1, Ordering::Relaxed);
                    if index >= bounds.max_calls {
                        break;
                    }
                    let sent = Instant::now();
                    let answer = call(channel.clone(), index).await;
                    let answered = Instant::now();
                    recorder.record(answered, answered - sent, answer);
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller does not panic");
    }
}

/// Returns the number of calls dropped because `max_in_flight` were unanswered when they were due.
async fn open(
    channels: &[Channel],
    call: &CallFn,
    rate: f64,
    max_in_flight: usize,
    bounds: Bounds,
    recorder: &Arc<Recorder>,
) -> u64 {
    let started = Instant::now();
    let deadline = started + bounds.duration;
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut dropped = 0;
    for index in 0..bounds.max_calls {
        // From the start, not from the previous call: rounding does not accumulate.
        let due = started + Duration::from_secs_f64(index as f64 / rate);
        if due >= deadline {
            break;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let (call, channel, recorder) =
            (call.clone(), channels[index as usize % channels.len()].clone(), recorder.clone());
        tokio::spawn(async move {
            let answer = call(channel, index).await;
            let answered = Instant::now();
            recorder.record(answered, answered - due, answer);
            drop(permit);
        });
    }
    // Every permit back means every call sent has been answered.
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    drop(permits.acquire_many(all).await.expect("the semaphore is never closed"));
    dropped
}

/// A progress bar over a run's duration showing calls and errors so far; hidden when stderr is no terminal.
struct TimedProgress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl TimedProgress {
    fn start(label: &str, duration: Duration, recorder: Arc<Recorder>) -> Self {
        let bar = ProgressBar::new(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>28} [{bar:30}] {elapsed:>4} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        let started = Instant::now();
        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                ticking.set_position(started.elapsed().as_millis() as u64);
                ticking.set_message(format!("{} calls, {} errors", recorder.calls(), recorder.errors()));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
