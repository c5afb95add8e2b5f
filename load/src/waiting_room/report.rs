//! The scenario's part of `report.json`: `scenarios.flash-sale-waiting-room`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{flash_sale::Invariants, stats::Summary};

/// The report's `scenarios.flash-sale-waiting-room`.
#[derive(Debug, Serialize)]
pub struct WaitingRoomReport {
    /// The admitted waiters' `CreateBooking` calls (with their pass): calls/s, latency, errors; sold out is
    /// `expected`.
    #[serde(flatten)]
    pub calls: Summary,
    pub flights: usize,
    pub seats: u64,
    pub waiters: u64,
    /// Server instances the waiters alternate between (`--addr`).
    pub instances: usize,
    pub admit_per_minute: i32,
    pub pass_ttl_seconds: i32,
    /// Every `JoinWaitingRoom` call (with two instances, both of each waiter's).
    pub join_p50_ms: f64,
    pub join_p99_ms: f64,
    /// `JoinWaitingRoom` failures, by error code.
    pub join_errors: BTreeMap<String, u64>,
    /// `WatchWaitingRoom` streams refused or broken (by error code), ended without a pass or a sold-out
    /// notice, or still waiting at the deadline.
    pub watch_errors: BTreeMap<String, u64>,
    /// Most `WatchWaitingRoom` streams open at once.
    pub streams_open_peak: usize,
    /// Messages between each stream's first and its last: position changes.
    pub position_updates: u64,
    /// Waiters given a pass, and told sold out by their stream.
    pub admitted: u64,
    pub told_sold_out: u64,
    /// Holds placed with a pass, and passes whose hold was refused for want of seats.
    pub holds: u64,
    pub refused_with_pass: u64,
    pub admitted_per_s: AdmittedPerSecond,
    /// Passes by the whole second the server issued them (their expiry less the TTL), from the first such
    /// second to the last: the server's pace without this tool's delays in receiving; for information.
    pub passes_by_issue_second: Vec<u64>,
    /// From a flight's sell-out (this tool's receipt of the hold that filled it) to its last waiter told it
    /// is sold out, the longest over the flights; `null` if no flight sold out with waiters left.
    pub sold_out_notice_ms: Option<f64>,
    /// With two instances (each waiter joins and watches on both): waiters given two tickets, or two passes
    /// (expiries) for one ticket. `null` with one.
    pub double_admissions: Option<u64>,
    /// With two instances: tickets one instance admitted and the other told sold out (each reads the
    /// sell-out on its own tick); for information. `null` with one.
    pub split_at_sell_out: Option<u64>,
    /// `GetWaitingRoom` after the sale, summed over the flights (the counters go on admitting over the
    /// waiters told sold out).
    pub rooms_waiting: i64,
    pub rooms_admitted: i64,
    pub oversold: i64,
    /// What `CreateBooking` without a pass was answered while the rooms were enabled (`OK`: it booked).
    pub passless_probe: String,
    /// Live bookings on the flights of customers never given a pass, in the tables; `null` without them.
    pub passless_holds: Option<i64>,
    /// Peak resident set of the server while the sale ran (this process's when embedded), MiB.
    pub peak_rss_mb: Option<f64>,
    pub invariants: Invariants,
    pub violations: Vec<String>,
}

/// Passes received per whole second, from the end of the first second after the first pass to the first
/// flight's sell-out (or the last pass, where a flight's queue ran dry first): the span in which every room
/// admits at its full pace.
#[derive(Debug, PartialEq, Serialize)]
pub struct AdmittedPerSecond {
    /// `admit_per_minute / 60`, summed over the flights.
    pub target: f64,
    /// Whole seconds measured.
    pub seconds: usize,
    pub mean: Option<f64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Every second measured within 10 % of `target` (false when none was).
    pub steady: bool,
    /// The passes of each second measured.
    pub per_second: Vec<u64>,
}
