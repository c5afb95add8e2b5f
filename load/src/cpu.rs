//! CPU time spent during a phase, from `/proc`: the server's processes (every instance, all threads), and
//! PostgreSQL's and Redis's processes on this machine (for PostgreSQL the backends serving the server and
//! the WAL writer, walsenders and standbys working for them; for Redis every node of a cluster). Divided by
//! the calls of the phase it is a cost per call, steadier than calls/s on a shared machine and what a
//! capacity plan needs.
//!
//! PostgreSQL's and Redis's shares are read only where they run on this machine (processes named
//! `postgres`, `redis-server`); a process that ends during the phase takes its time with it, which the
//! server's pooled connections do not.

use std::collections::HashMap;

use serde::Serialize;

/// The CPU time of a phase, in microseconds per call of the phase; `null` where it could not be read (a
/// server inside the load tool, whose time would include the tool's; no PostgreSQL or Redis on this machine).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CpuCost {
    pub server_cpu_us_per_call: Option<f64>,
    pub postgres_cpu_us_per_call: Option<f64>,
    pub redis_cpu_us_per_call: Option<f64>,
}

/// The CPU time of a phase in microseconds, where it could be read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSpent {
    pub server_us: Option<f64>,
    pub postgres_us: Option<f64>,
    pub redis_us: Option<f64>,
}

impl CpuSpent {
    pub fn per_call(&self, calls: u64) -> CpuCost {
        CpuCost {
            server_cpu_us_per_call: per(self.server_us, calls),
            postgres_cpu_us_per_call: per(self.postgres_us, calls),
            redis_cpu_us_per_call: per(self.redis_us, calls),
        }
    }
}

/// `us` shared out over `count`; `None` for nothing to share it over.
pub fn per(us: Option<f64>, count: u64) -> Option<f64> {
    us.filter(|_| count > 0).map(|us| us / count as f64)
}

/// CPU ticks at the start of a phase.
pub struct CpuMeter {
    servers: HashMap<u32, u64>,
    postgres: HashMap<u32, u64>,
    redis: HashMap<u32, u64>,
}

impl CpuMeter {
    /// Starts measuring the `servers` (none: do not), PostgreSQL and Redis.
    pub fn start(servers: &[u32]) -> Self {
        let servers = servers.iter().filter_map(|&pid| Some((pid, ticks(pid)?))).collect();
        Self { servers, postgres: named_ticks("postgres"), redis: named_ticks("redis-server") }
    }

    /// The time spent since the start.
    pub fn stop(self) -> CpuSpent {
        let server_now = self.servers.keys().filter_map(|&pid| Some((pid, ticks(pid)?))).collect();
        CpuSpent {
            server_us: spent_since(&self.servers, &server_now),
            postgres_us: spent_since(&self.postgres, &named_ticks("postgres")),
            redis_us: spent_since(&self.redis, &named_ticks("redis-server")),
        }
    }
}

/// Microseconds the processes of `now` spent since `before`; `None` when there are none.
fn spent_since(before: &HashMap<u32, u64>, now: &HashMap<u32, u64>) -> Option<f64> {
    // A process started during the phase spent all its time in it.
    let ticks: u64 = now.iter().map(|(pid, after)| after.saturating_sub(before.get(pid).copied().unwrap_or(0))).sum();
    (!now.is_empty()).then(|| ticks as f64 * 1e6 / ticks_per_second())
}

/// User plus system time of a process, all its threads, in clock ticks.
fn ticks(pid: u32) -> Option<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces, so fields are counted after
/// its closing one; utime and stime are the 14th and 15th fields.
fn parse_stat(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Every process whose command is `name`, with its ticks so far.
fn named_ticks(name: &str) -> HashMap<u32, u64> {
    let Ok(processes) = std::fs::read_dir("/proc") else { return HashMap::new() };
    processes
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name))
        .filter_map(|pid| Some((pid, ticks(pid)?)))
        .collect()
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 37 5 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(stat), Some(42));
        assert_eq!(parse_stat("4242 (short"), None);
    }

    #[test]
    fn measures_this_process_s_own_work() {
        let meter = CpuMeter::start(&[std::process::id()]);
        // Spins for 300 ms of this process's CPU time as the kernel's own clock counts it, however busy the
        // machine is.
        let spun_from = process_cpu_time();
        let mut spin = 0_u64;
        while process_cpu_time() - spun_from < 0.3 {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let spent = meter.stop().server_us.expect("Linux /proc");
        // Ticks are sampled (10 ms each): allow a few either side.
        assert!(spent >= 250_000.0, "{spent} us");
        assert_eq!(CpuMeter::start(&[]).stop().server_us, None);
        let spent = CpuSpent { server_us: Some(900.0), postgres_us: None, redis_us: Some(30.0) };
        assert_eq!(
            spent.per_call(3),
            CpuCost {
                server_cpu_us_per_call: Some(300.0),
                postgres_cpu_us_per_call: None,
                redis_cpu_us_per_call: Some(10.0)
            }
        );
        assert_eq!(spent.per_call(0).server_cpu_us_per_call, None);
    }

    fn process_cpu_time() -> f64 {
        let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `time` is a valid timespec for the call to fill.
        assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) }, 0);
        time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
    }
}
