//! The run's report: `report.json` (fixed keys, below), the table of ratios to the targets (Markdown,
//! also printed) and the chart (`report/svg.rs`).
//!
//! Keys that other tools read: `ceilings.{ping_rps, pgbench_hold_hot_tps, pgbench_hold_spread_tps}`;
//! `scenarios.<name>.{calls_per_s, p50_ms, p99_ms, p999_ms, errors}`; for `flash-sale` also `holds_per_s`,
//! `sold_out_per_s`, `decisions_per_s`, `oversold`; for `flash-sale-waiting-room` (its calls are the
//! admitted waiters' holds) also `admitted_per_s.{target, mean, min, max, steady}`, `join_p99_ms`,
//! `sold_out_notice_ms`, `waiters`, `admitted`, `told_sold_out`, `holds`, `oversold`, `passless_holds`,
//! `double_admissions`;
//! `scenarios.<name>.open_loop` for the open-loop phase; `server.peak_rss_mb`. Missing figures are `null`.

mod svg;

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::Serialize;

use crate::{
    Error,
    args::Args,
    flash_sale::SaleReport,
    runner::Run,
    stats::Summary,
    waiting_room::{self, WaitingRoomReport},
    watch::WatchReport,
};

/// Targets of the issue; a missed one is reported, it does not fail the run.
const OPEN_LOOP_P99_MS: f64 = 50.0;
const PEAK_RSS_MB: f64 = 200.0;
const SOLD_OUT_NOTICE_MS: f64 = 1000.0;

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
    pub flights: usize,
    pub rows: i32,
    pub buyers_per_seat: usize,
    pub sale_concurrency: usize,
    pub watchers: usize,
    pub waiting_room: bool,
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
            flights: args.flights,
            rows: args.rows,
            buyers_per_seat: args.buyers_per_seat,
            sale_concurrency: args.sale_concurrency,
            watchers: args.watchers,
            waiting_room: args.waiting_room,
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
        self.targets = self.target_checks();
        for (name, scenario) in self.scenarios.iter() {
            let errors = match scenario {
                ScenarioReport::Calls(calls) => {
                    let open = calls.open_loop.iter().map(|open| &open.run.summary.errors);
                    std::iter::once(&calls.run.summary.errors).chain(open).flatten().collect::<Vec<_>>()
                }
                ScenarioReport::FlashSale(sale) => {
                    self.failures.extend(sale.violations.iter().map(|v| format!("flash-sale: {v}")));
                    sale.calls.errors.iter().collect()
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
                    ("hold-spread" | "mixed", "SEATS_UNAVAILABLE") => {
                        " (the run filled its flights: raise --spread-flights)"
                    }
                    _ => "",
                };
                self.failures.push(format!("{name}: {count} unexpected {code}{hint}"));
            }
        }
        self.passed = self.failures.is_empty();
    }

    fn calls(&self, name: &str) -> Option<&CallsReport> {
        match self.scenarios.get(name) {
            Some(ScenarioReport::Calls(calls)) => Some(calls),
            _ => None,
        }
    }

    fn sale(&self) -> Option<&SaleReport> {
        match self.scenarios.get("flash-sale") {
            Some(ScenarioReport::FlashSale(sale)) => Some(sale),
            _ => None,
        }
    }

    fn waiting_room(&self) -> Option<&WaitingRoomReport> {
        match self.scenarios.get(waiting_room::NAME) {
            Some(ScenarioReport::WaitingRoom(sale)) => Some(sale),
            _ => None,
        }
    }

    fn target_checks(&self) -> Vec<TargetCheck> {
        let ping = self.ceilings.ping_rps;
        let sale = self.sale();
        let mut checks = vec![TargetCheck {
            target: "flash-sale oversold".into(),
            value: sale.map(|s| s.oversold as f64),
            ratio: None,
            required: "= 0".into(),
            pass: sale.map(|s| s.oversold == 0),
        }];
        let mut ratio = |target: &str, value: Option<f64>, ceiling: Option<f64>, required: Option<f64>| {
            let ratio = value.zip(ceiling.filter(|c| *c > 0.0)).map(|(v, c)| v / c);
            checks.push(TargetCheck {
                target: target.into(),
                value,
                ratio,
                required: required.map_or("(for information)".into(), |r| format!(">= {r}")),
                pass: required.and_then(|r| ratio.map(|ratio| ratio >= r)),
            });
        };
        ratio(
            "flash-sale holds/s to pgbench hot cabin tps",
            sale.map(|s| s.holds_per_s),
            self.ceilings.pgbench_hold_hot_tps,
            Some(5.0),
        );
        ratio("flash-sale decisions/s to ping", sale.map(|s| s.decisions_per_s), ping, Some(0.25));
        ratio("flash-sale sold-out answers/s to ping", sale.and_then(|s| s.sold_out_per_s), ping, Some(0.6));
        let calls_per_s = |name| self.calls(name).map(|c| c.run.summary.calls_per_s);
        ratio("search calls/s to ping", calls_per_s("search"), ping, Some(0.6));
        ratio("replay calls/s to ping", calls_per_s("replay"), ping, Some(0.5));
        ratio("get-flight calls/s to ping", calls_per_s("get-flight"), ping, Some(0.3));
        ratio("seat-map calls/s to ping", calls_per_s("seat-map"), ping, Some(0.3));
        ratio(
            "hold-spread calls/s to pgbench spread tps",
            calls_per_s("hold-spread"),
            self.ceilings.pgbench_hold_spread_tps,
            None,
        );
        ratio("mixed calls/s to ping", calls_per_s("mixed"), ping, None);
        for (name, scenario) in self.scenarios.iter() {
            if let ScenarioReport::Calls(calls) = scenario
                && let Some(open) = &calls.open_loop
            {
                let p99 = open.run.summary.p99_ms;
                checks.push(TargetCheck {
                    target: format!("{name} open loop at {:.0}/s: p99 ms", open.rate),
                    value: Some(p99),
                    ratio: None,
                    required: format!("<= {OPEN_LOOP_P99_MS}"),
                    pass: Some(p99 <= OPEN_LOOP_P99_MS),
                });
            }
        }
        if let Some(room) = self.waiting_room() {
            let name = waiting_room::NAME;
            let rate = &room.admitted_per_s;
            checks.push(TargetCheck {
                target: format!("{name} oversold"),
                value: Some(room.oversold as f64),
                ratio: None,
                required: "= 0".into(),
                pass: Some(room.oversold == 0),
            });
            checks.push(TargetCheck {
                target: format!(
                    "{name} admitted/s, mean of {} s (min {}, max {})",
                    rate.seconds,
                    number(rate.min.map(|n| n as f64)),
                    number(rate.max.map(|n| n as f64))
                ),
                value: rate.mean,
                ratio: rate.mean.map(|mean| mean / rate.target),
                required: format!("every second within 10 % of {:.0}", rate.target),
                pass: (rate.seconds > 0).then_some(rate.steady),
            });
            checks.push(TargetCheck {
                target: format!("{name} sold-out notice ms, {} waiters told", room.told_sold_out),
                value: room.sold_out_notice_ms,
                ratio: None,
                required: format!("<= {SOLD_OUT_NOTICE_MS}"),
                pass: room.sold_out_notice_ms.map(|ms| ms <= SOLD_OUT_NOTICE_MS),
            });
            if let Some(double) = room.double_admissions {
                checks.push(TargetCheck {
                    target: format!("{name} double admissions over {} instances", room.instances),
                    value: Some(double as f64),
                    ratio: None,
                    required: "= 0".into(),
                    pass: Some(double == 0),
                });
            }
            checks.push(TargetCheck {
                target: format!("{name} join p99 ms"),
                value: Some(room.join_p99_ms),
                ratio: None,
                required: "(for information)".into(),
                pass: None,
            });
        }
        let streams = self.server.watch_streams_open.unwrap_or(0);
        let (sale, waiting_room_streams) = match self.waiting_room() {
            Some(room) => (waiting_room::NAME, format!(" + {} waiting-room streams", room.streams_open_peak)),
            None => ("flash-sale", String::new()),
        };
        checks.push(TargetCheck {
            target: format!(
                "server peak RSS MiB during {sale}, {streams} watch streams (target: 10000){waiting_room_streams}{}",
                if self.server.embedded { ", embedded: includes the load tool" } else { "" }
            ),
            value: self.server.peak_rss_mb,
            ratio: None,
            required: format!("<= {PEAK_RSS_MB}"),
            pass: self.server.peak_rss_mb.map(|mb| mb <= PEAK_RSS_MB),
        });
        checks
    }

    /// The scenarios' figures and the targets, as Markdown.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let ping = self.ceilings.ping_rps;
        let ms = |v: f64| format!("{v:.2}");
        let _ = writeln!(
            out,
            "target: {} | ceilings: ping {} calls/s, pgbench hold hot {} tps, spread {} tps\n",
            self.target,
            number(ping),
            number(self.ceilings.pgbench_hold_hot_tps),
            number(self.ceilings.pgbench_hold_spread_tps)
        );
        let _ = writeln!(out, "| scenario | calls/s | to ping | p50 ms | p99 ms | p99.9 ms | errors |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        let row = |out: &mut String, name: String, summary: &Summary| {
            let ratio = ping.filter(|p| *p > 0.0).map(|p| summary.calls_per_s / p);
            let _ = writeln!(
                out,
                "| {name} | {:.0} | {} | {} | {} | {} | {} |",
                summary.calls_per_s,
                ratio.map_or("n/a".into(), |r| format!("{r:.2}")),
                ms(summary.p50_ms),
                ms(summary.p99_ms),
                ms(summary.p999_ms),
                codes(&summary.errors)
            );
        };
        for (name, scenario) in self.scenarios.iter() {
            match scenario {
                ScenarioReport::Calls(calls) => {
                    row(&mut out, format!("{name} ({})", calls.mode), &calls.run.summary);
                    if let Some(open) = &calls.open_loop {
                        row(
                            &mut out,
                            format!(
                                "{name} (open loop, {:.0}/s, {} dropped)",
                                open.rate,
                                open.run.dropped.unwrap_or(0)
                            ),
                            &open.run.summary,
                        );
                    }
                }
                ScenarioReport::FlashSale(sale) => row(
                    &mut out,
                    format!(
                        "{name}: {} buyers x 2 taps, {} seats; holds {:.0}/s, sold out {}/s, decisions {:.0}/s",
                        sale.buyers,
                        sale.seats,
                        sale.holds_per_s,
                        number(sale.sold_out_per_s),
                        sale.decisions_per_s
                    ),
                    &sale.calls,
                ),
                ScenarioReport::WaitingRoom(sale) => row(
                    &mut out,
                    format!(
                        "{name}: {} waiters, {} seats; join p99 {} ms; admitted {}/s of {:.0}/s; {} passes, {} holds with a pass, {} told sold out in {} ms",
                        sale.waiters,
                        sale.seats,
                        ms(sale.join_p99_ms),
                        number(sale.admitted_per_s.mean),
                        sale.admitted_per_s.target,
                        sale.admitted,
                        sale.holds,
                        sale.told_sold_out,
                        number(sale.sold_out_notice_ms)
                    ),
                    &sale.calls,
                ),
                ScenarioReport::Watch(watch) => {
                    let _ = writeln!(
                        out,
                        "| {name}: {} of {} streams open, {} updates, opening p50/p99 {}/{} ms | {:.0} updates/s | | | | | {} |",
                        watch.streams_open,
                        watch.watchers,
                        watch.updates_received,
                        ms(watch.p50_ms),
                        ms(watch.p99_ms),
                        watch.calls_per_s,
                        codes(&watch.errors)
                    );
                }
            }
        }
        let _ = writeln!(out, "\n| target | value | ratio | required | result |");
        let _ = writeln!(out, "|---|---:|---:|---|---|");
        for check in &self.targets {
            let result = match check.pass {
                Some(true) => "pass",
                Some(false) => "MISSED",
                None => "n/a",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {result} |",
                check.target,
                number(check.value),
                check.ratio.map_or(String::new(), |r| format!("{r:.2}")),
                check.required
            );
        }
        let _ = writeln!(
            out,
            "\n{}",
            if self.passed {
                "invariants held, no unexpected errors".to_owned()
            } else {
                format!("FAILED:\n- {}", self.failures.join("\n- "))
            }
        );
        out
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
                ScenarioReport::FlashSale(sale) => {
                    panels.push(svg::Panel { title: format!("{name} (every tap)"), series: &sale.calls.series });
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

fn number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "n/a".into(),
    }
}

fn codes(codes: &BTreeMap<String, u64>) -> String {
    if codes.is_empty() {
        return "0".into();
    }
    codes.iter().map(|(code, n)| format!("{code} {n}")).collect::<Vec<_>>().join(", ")
}
