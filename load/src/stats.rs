//! Recording calls: latency histograms (whole run and per second), calls per second, answers by code.
//!
//! One recorder is shared by every caller of a run behind a mutex held for a few hundred nanoseconds: one
//! histogram per caller would cost 256 KiB each at 3 significant digits, too much for thousands of callers.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Microseconds; slower calls are recorded as this.
const LATENCY_MAX_US: u64 = 60_000_000;

/// How a call ended, as far as the scenario is concerned.
pub enum Answer {
    Ok,
    /// A refusal the scenario expects (e.g. sold out in a flash sale): counted by code, not an error.
    Expected(String),
    /// Anything else, by error code; the run fails if a scenario has any.
    Error(String),
}

pub struct Recorder {
    started: Instant,
    state: Mutex<State>,
    /// Read by the progress bar without taking the lock.
    calls: AtomicU64,
    errors: AtomicU64,
}

struct State {
    latency: Histogram<u64>,
    seconds: Vec<Second>,
    errors: BTreeMap<String, u64>,
    expected: BTreeMap<String, u64>,
}

/// Calls completed within one second of the run, and their latency at 2 significant digits (enough for a
/// chart, and 20 KiB a second instead of 256).
struct Second {
    calls: u64,
    latency: Histogram<u64>,
}

impl Recorder {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            state: Mutex::new(State {
                latency: histogram(3),
                seconds: Vec::new(),
                errors: BTreeMap::new(),
                expected: BTreeMap::new(),
            }),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Records a call answered at `finished` after `latency`.
    pub fn record(&self, finished: Instant, latency: Duration, answer: Answer) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(LATENCY_MAX_US);
        let second = usize::try_from(finished.saturating_duration_since(self.started).as_secs()).unwrap_or(0);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().expect("a recorder's lock is never held across a panic");
        state.latency.saturating_record(micros);
        if state.seconds.len() <= second {
            state.seconds.resize_with(second + 1, || Second { calls: 0, latency: histogram(2) });
        }
        let bucket = &mut state.seconds[second];
        bucket.calls += 1;
        bucket.latency.saturating_record(micros);
        match answer {
            Answer::Ok => {}
            Answer::Expected(code) => *state.expected.entry(code).or_default() += 1,
            Answer::Error(code) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *state.errors.entry(code).or_default() += 1;
            }
        }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The figures of a run that lasted `elapsed` from the recorder's start.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let state = self.state.lock().expect("a recorder's lock is never held across a panic");
        let total = elapsed.as_secs_f64().max(1e-9);
        let calls = state.latency.len();
        let mut series: Vec<Point> = Vec::with_capacity(state.seconds.len());
        let mut merged: Option<Histogram<u64>> = None;
        for (t, second) in state.seconds.iter().enumerate() {
            let width = (total - t as f64).clamp(0.0, 1.0);
            // A run rarely ends on a whole second: a last sliver (callers finishing their last call) is
            // folded into the second before it, so that a handful of calls does not plot as a dip or spike.
            if width < 0.5 && t > 0 && t + 1 == state.seconds.len() {
                let last = series.last_mut().expect("t > 0");
                let mut latency = merged.take().expect("kept for the previous second");
                latency.add(&second.latency).expect("same bounds");
                last.calls_per_s = (last.calls_per_s + second.calls as f64) / (1.0 + width);
                last.p50_ms = millis(&latency, 0.5);
                last.p99_ms = millis(&latency, 0.99);
                break;
            }
            series.push(Point {
                t: t as u32,
                calls_per_s: second.calls as f64 / width.max(0.1),
                p50_ms: millis(&second.latency, 0.5),
                p99_ms: millis(&second.latency, 0.99),
            });
            merged = Some(second.latency.clone());
        }
        Summary {
            calls,
            seconds: total,
            calls_per_s: calls as f64 / total,
            p50_ms: millis(&state.latency, 0.5),
            p90_ms: millis(&state.latency, 0.9),
            p99_ms: millis(&state.latency, 0.99),
            p999_ms: millis(&state.latency, 0.999),
            max_ms: state.latency.max() as f64 / 1000.0,
            errors: state.errors.clone(),
            expected: state.expected.clone(),
            series,
        }
    }
}

/// What a run measured; the report's per-scenario figures.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Calls answered, errors included.
    pub calls: u64,
    pub seconds: f64,
    pub calls_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Unexpected failures by error code (`ErrorInfo.reason`, else the gRPC code).
    pub errors: BTreeMap<String, u64>,
    /// Refusals the scenario expects, by error code.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub expected: BTreeMap<String, u64>,
    /// One point per second of the run, by the time calls were answered.
    pub series: Vec<Point>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Seconds since the run started.
    pub t: u32,
    pub calls_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, significant_digits).expect("valid histogram bounds")
}

fn millis(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() { 0.0 } else { histogram.value_at_quantile(quantile) as f64 / 1000.0 }
}

/// A histogram of durations for figures outside a [`Recorder`] (e.g. stream opening times).
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(histogram(3))
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(LATENCY_MAX_US));
    }

    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        millis(&self.0, quantile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_answers_by_code_and_folds_a_last_sliver_into_the_second_before() {
        let started = Instant::now();
        let recorder = Recorder::new(started);
        for i in 0..100 {
            recorder.record(started + Duration::from_millis(i * 10), Duration::from_millis(2), Answer::Ok);
        }
        recorder.record(started + Duration::from_millis(1050), Duration::from_millis(4), Answer::Error("X".into()));
        recorder.record(started + Duration::from_millis(1060), Duration::from_millis(4), Answer::Expected("Y".into()));
        let summary = recorder.summary(Duration::from_millis(1100));
        assert_eq!((summary.calls, recorder.calls(), recorder.errors()), (102, 102, 1));
        assert_eq!((summary.errors["X"], summary.expected["Y"]), (1, 1));
        assert_eq!(summary.series.len(), 1);
        assert!((summary.series[0].calls_per_s - 102.0 / 1.1).abs() < 1e-9);
        assert!((summary.series[0].p99_ms - 4.0).abs() < 0.1 && (summary.p50_ms - 2.0).abs() < 0.01);
    }

    #[test]
    fn a_last_part_second_of_half_or_more_is_its_own_point() {
        let started = Instant::now();
        let recorder = Recorder::new(started);
        for at in [100, 1100, 2100, 2200] {
            recorder.record(started + Duration::from_millis(at), Duration::from_millis(1), Answer::Ok);
        }
        let series = recorder.summary(Duration::from_millis(2600)).series;
        let rates: Vec<f64> = series.iter().map(|p| p.calls_per_s).collect();
        assert_eq!(series.len(), 3);
        assert!((rates[2] - 2.0 / 0.6).abs() < 1e-9 && rates[0] == 1.0, "{rates:?}");
    }
}
