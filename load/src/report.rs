//! The run's report: `report.json` (fixed keys, below), the table of ratios to the targets (Markdown,
//! also printed: `report/table.rs`) and the chart (`report/svg.rs`).
//!
//! Keys that other tools read:
//! - `ceilings.{ping_rps, pgbench_hold_hot_tps, pgbench_hold_spread_tps}`;
//! - `scenarios.<name>.{calls_per_s, p50_ms, p99_ms, p999_ms, errors}`, and `scenarios.<name>.open_loop` for
//!   the open-loop phase;
//! - for the call-per-call scenarios also `server_cpu_us_per_call`, `postgres_cpu_us_per_call` and
//!   `redis_cpu_us_per_call`, for `hold-spread` also `to_pgbench_spread`;
//! - for `flash-sale` also `holds_per_s`, `sold_out_per_s`, `decisions_per_s`, `oversold`,
//!   `server_cpu_us_per_decision`, `postgres_cpu_us_per_hold`, `redis_cpu_us_per_hold`, and `open_loop` (the
//!   paced sale: the same keys and its `rate` of buyers/s);
//! - for `hold-spread-filling` `rounds[].{calls_per_s, p50_ms, p99_ms, server_cpu_us_per_call,
//!   postgres_cpu_us_per_call, redis_cpu_us_per_call, rss_mb}` and `last_to_first`;
//! - for `flash-sale-waiting-room` (its calls are the admitted waiters' holds) also
//!   `admitted_per_s.{target, mean, min, max, steady}`, `join_p99_ms`, `sold_out_notice_ms`, `waiters`,
//!   `admitted`, `told_sold_out`, `holds`, `oversold`, `passless_holds`, `double_admissions`;
//! - `server.{instances, peak_rss_mb}`.
//!
//! Missing figures are `null`.

mod svg;
mod table;

use std::path::Path;

use serde::Serialize;

use crate::{
    Error, args::Args, cpu::CpuCost, filling::FillingReport, flash_sale::SaleReport, runner::Run,
    waiting_room::WaitingRoomReport, watch::WatchReport,
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub started_at: String,
    pub target: String,
    pub settings: Settings,
    pub ceilings: Ceilings,
    pub scenarios: Scenarios,
    pub server: Server,
    pub targets: Vec<TargetCheck>,
    /// Invariant violations and unexpected errors; any one fails the run.
    pub failures: Vec<String>,
    pub passed: bool,
}

/// The knobs of the run (never the secret or the database URL).
#[derive(Debug, Serialize)]
pub struct Settings {
    pub scenarios: Vec<&'static str>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub max_in_flight: usize,
    pub connections: usize,
    pub seconds: f64,
    pub warmup: f64,
    pub max_requests: u64,
    pub open_loop_fraction: f64,
    pub spread_flights: usize,
    pub fill_rounds: u32,
    pub fill_seconds: f64,
    pub flights: usize,
    pub rows: i32,
    pub buyers_per_seat: usize,
    pub sale_concurrency: usize,
    pub watchers: usize,
    pub waiters: usize,
    pub admit_per_minute: i32,
    pub pass_ttl_seconds: i32,
}

impl Settings {
    pub fn of(args: &Args) -> Self {
        Self {
            scenarios: args.scenarios.iter().map(|s| s.name()).collect(),
            concurrency: args.rate.is_none().then_some(args.concurrency),
            rate: args.rate,
            max_in_flight: args.max_in_flight,
            connections: args.connections,
            seconds: args.seconds,
            warmup: args.warmup,
            max_requests: args.max_requests,
            open_loop_fraction: args.open_loop_fraction,
            spread_flights: args.spread_flights,
            fill_rounds: args.fill_rounds,
            fill_seconds: args.fill_seconds,
            flights: args.flights,
            rows: args.rows,
            buyers_per_seat: args.buyers_per_seat,
            sale_concurrency: args.sale_concurrency,
            watchers: args.watchers,
            waiters: args.waiters,
            admit_per_minute: args.admit_per_minute,
            pass_ttl_seconds: args.pass_ttl_seconds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Ceilings {
    /// `grpc.health.v1.Health/Check` calls/s in this run.
    pub ping_rps: Option<f64>,
    /// pgbench: the minimal hold transaction on one cabin row (transactions/s).
    pub pgbench_hold_hot_tps: Option<f64>,
    /// pgbench: the same spread over 1,000 cabin rows.
    pub pgbench_hold_spread_tps: Option<f64>,
}

/// The scenarios in the order they ran, written as a JSON object keyed by name.
#[derive(Debug, Default)]
pub struct Scenarios(Vec<(&'static str, ScenarioReport)>);

impl Scenarios {
    pub fn push(&mut self, name: &'static str, scenario: ScenarioReport) {
        self.0.push((name, scenario));
    }

    pub fn get(&self, name: &str) -> Option<&ScenarioReport> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ScenarioReport> {
        self.0.iter_mut().find(|(n, _)| *n == name).map(|(_, s)| s)
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &ScenarioReport)> {
        self.0.iter().map(|(name, scenario)| (*name, scenario))
    }
}

impl Serialize for Scenarios {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ScenarioReport {
    Calls(Box<CallsReport>),
    Filling(Box<FillingReport>),
    FlashSale(Box<SaleReport>),
    WaitingRoom(Box<WaitingRoomReport>),
    Watch(WatchReport),
}

/// A call-per-call scenario: its main run (closed loop, or open loop with `--rate`) and the open-loop rerun.
#[derive(Debug, Serialize)]
pub struct CallsReport {
    /// `closed` or `open`.
    pub mode: &'static str,
    #[serde(flatten)]
    pub run: Run,
    /// The main run's CPU time per call.
    #[serde(flatten)]
    pub cost: CpuCost,
    /// hold-spread only: calls/s over pgbench's spread ceiling of the same run (`null` without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_pgbench_spread: Option<Option<f64>>,
    pub open_loop: Option<OpenLoop>,
}

#[derive(Debug, Serialize)]
pub struct OpenLoop {
    /// Calls per second scheduled.
    pub rate: f64,
    #[serde(flatten)]
    pub run: Run,
}

#[derive(Debug, Serialize)]
pub struct Server {
    /// The server ran inside the load tool, so its memory figures include the tool's.
    pub embedded: bool,
    /// Server instances the calls were spread over (`--addr`).
    pub instances: usize,
    /// The first instance's process, whose memory is sampled.
    pub pid: Option<u32>,
    /// Peak resident set sampled during the flash sale (and its watch streams).
    pub peak_rss_mb: Option<f64>,
    /// Peak resident set over the process's life (`VmHWM`).
    pub lifetime_peak_rss_mb: Option<f64>,
    /// Watch streams open during the flash sale, for reading `peak_rss_mb`.
    pub watch_streams_open: Option<usize>,
}

/// One row of the table: a target of the issue and how this run did.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub value: Option<f64>,
    /// `value` over the ceiling it is compared with, when the target is a ratio.
    pub ratio: Option<f64>,
    pub required: String,
    /// `null` when a figure is missing (scenario not run, ceiling not measured) or the row is informative.
    pub pass: Option<bool>,
}

impl Report {
    /// Fills in the targets and whether the run passed.
    pub fn conclude(&mut self) {
        let spread_ceiling = self.ceilings.pgbench_hold_spread_tps.filter(|tps| *tps > 0.0);
        if let Some(ScenarioReport::Calls(spread)) = self.scenarios.get_mut("hold-spread") {
            spread.to_pgbench_spread = Some(spread_ceiling.map(|tps| spread.run.summary.calls_per_s / tps));
        }
        self.targets = self.target_checks();
        for (name, scenario) in self.scenarios.iter() {
            let errors = match scenario {
                ScenarioReport::Calls(calls) => {
                    let open = calls.open_loop.iter().map(|open| &open.run.summary.errors);
                    std::iter::once(&calls.run.summary.errors).chain(open).flatten().collect::<Vec<_>>()
                }
                ScenarioReport::Filling(filling) => filling.rounds.iter().flat_map(|r| &r.run.summary.errors).collect(),
                ScenarioReport::FlashSale(sale) => {
                    let sales = std::iter::once(sale.as_ref()).chain(sale.open_loop.as_deref());
                    let mut errors = Vec::new();
                    for (sale, run) in sales.zip(["", " (open loop)"]) {
                        self.failures.extend(sale.violations.iter().map(|v| format!("{name}{run}: {v}")));
                        errors.extend(&sale.calls.errors);
                    }
                    errors
                }
                ScenarioReport::WaitingRoom(sale) => {
                    self.failures.extend(sale.violations.iter().map(|v| format!("{name}: {v}")));
                    let streams = [("JoinWaitingRoom", &sale.join_errors), ("WatchWaitingRoom", &sale.watch_errors)];
                    for (rpc, errors) in streams {
                        for (code, count) in errors {
                            self.failures.push(format!("{name}: {count} unexpected {rpc} {code}"));
                        }
                    }
                    sale.calls.errors.iter().collect()
                }
                ScenarioReport::Watch(watch) => watch.errors.iter().collect(),
            };
            for (code, count) in errors {
                // Holds refused for want of seats mean the run filled the flights made for it.
                let hint = match (name, code.as_str()) {
                    ("hold-spread" | "mixed" | "hold-spread-filling", "SEATS_UNAVAILABLE") => {
                        " (the run filled its flights: raise --spread-flights)"
                    }
                    _ => "",
                };
                self.failures.push(format!("{name}: {count} unexpected {code}{hint}"));
            }
        }
        self.passed = self.failures.is_empty();
    }

    /// Writes the JSON report, the chart and the table, creating their folders.
    pub fn write(&self, json: &Path, chart: &Path, table: &Path) -> Result<(), Error> {
        for path in [json, chart, table] {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
        }
        std::fs::write(json, serde_json::to_string_pretty(self)? + "\n")?;
        std::fs::write(table, self.table())?;
        svg::write(chart, &self.panels())
    }

    /// One chart row per run that has a per-second series.
    fn panels(&self) -> Vec<svg::Panel<'_>> {
        let mut panels = Vec::new();
        for (name, scenario) in self.scenarios.iter() {
            match scenario {
                ScenarioReport::Calls(calls) => {
                    panels.push(svg::Panel {
                        title: format!("{name} ({})", calls.mode),
                        series: &calls.run.summary.series,
                    });
                    if let Some(open) = &calls.open_loop {
                        panels.push(svg::Panel {
                            title: format!("{name} (open loop, {:.0}/s)", open.rate),
                            series: &open.run.summary.series,
                        });
                    }
                }
                ScenarioReport::Filling(filling) => {
                    for (round, figures) in filling.rounds.iter().enumerate() {
                        let title = format!("{name} (round {})", round + 1);
                        panels.push(svg::Panel { title, series: &figures.run.summary.series });
                    }
                }
                ScenarioReport::FlashSale(sale) => {
                    panels.push(svg::Panel { title: format!("{name} (every tap)"), series: &sale.calls.series });
                    if let Some(open) = &sale.open_loop {
                        let title = format!("{name} (open loop, {:.0} buyers/s)", open.rate.unwrap_or(0.0));
                        panels.push(svg::Panel { title, series: &open.calls.series });
                    }
                }
                ScenarioReport::WaitingRoom(sale) => {
                    panels
                        .push(svg::Panel { title: format!("{name} (holds with a pass)"), series: &sale.calls.series });
                }
                ScenarioReport::Watch(_) => {}
            }
        }
        panels
    }
}
