//! The server's memory, from `/proc/<pid>/status`: resident set sampled during a phase, and the process's
//! high-water mark.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::task::JoinHandle;

const PERIOD: Duration = Duration::from_millis(100);

/// Samples `VmRSS` until stopped and keeps the largest.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Option<u64>>,
    pid: u32,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = None;
            loop {
                if let Some(kb) = status_kb(pid, "VmRSS") {
                    peak = peak.max(Some(kb));
                }
                if stopping.load(Ordering::Relaxed) {
                    return peak;
                }
                tokio::time::sleep(PERIOD).await;
            }
        });
        Self { stop, task, pid }
    }

    /// The largest resident set seen, in MiB (taking one last sample), or `None` when the process's status
    /// cannot be read (not Linux, another user's process, gone).
    pub async fn stop(self) -> Option<f64> {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.task.await.expect("the sampler does not panic");
        sampled.max(status_kb(self.pid, "VmRSS")).map(mib)
    }
}

/// The process's resident set now, in MiB.
pub fn current_mb(pid: u32) -> Option<f64> {
    status_kb(pid, "VmRSS").map(mib)
}

/// The process's peak resident set since it started (`VmHWM`), in MiB.
pub fn high_water_mark_mb(pid: u32) -> Option<f64> {
    status_kb(pid, "VmHWM").map(mib)
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field) && line[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_s_memory() {
        let pid = std::process::id();
        let rss = status_kb(pid, "VmRSS").expect("Linux /proc");
        let peak = status_kb(pid, "VmHWM").expect("Linux /proc");
        assert!(rss > 0 && peak >= rss, "{rss} {peak}");
        assert!(current_mb(pid).is_some_and(|mb| mb > 0.0));
    }
}
