//! `aerobook-load`: drives Aerobook's RPCs and reports throughput and latency, each against a ceiling
//! measured in the same run on the same machine: `grpc.health.v1.Health/Check` over the same connections
//! (HTTP/2, protobuf and the server's layers with no work behind them) and, from `scripts/bench`, pgbench
//! running the minimal hold transaction on the same PostgreSQL. Ratios, not absolute numbers, are what
//! compare across machines.
//!
//! By default it starts an embedded server (SQLite, in-process cache, demo data) in its own process;
//! `--addr` targets a running one (then `--jwt-secret` must be its signing key). Every run is bounded in
//! time and in calls, and only ever talks to the given address.
//!
//! # Layout
//! - `args`: the command line and the scenario names.
//! - `target`: the server (embedded or `--addr`), connections, tokens, flights made for the run, error codes.
//! - `scenarios`: what one call of each call-per-call scenario is, and its preparation.
//! - `runner`: closed and open loops, bounded in time and count, with a progress bar.
//! - `stats`: latency histograms, per-second series, answers by code.
//! - `filling`: `hold-spread-filling`, hold-spread in rounds as the flights and the database fill.
//! - `flash_sale` (with `watch` and `invariants`): the sale, the streams open during it, and its checks;
//!   paced, the open-loop sale.
//! - `waiting_room/`: the sale through waiting rooms (`flash-sale-waiting-room`), with the same checks;
//!   `mod.rs` sets it up, runs it and checks it.
//!   - `journey.rs`: one waiter: joins, watches its ticket, books with its pass.
//!   - `tally.rs`: the waiters' outcomes summed up; admissions per second, the sold-out notice.
//!   - `report.rs`: its part of `report.json`.
//! - `rss`: the server's memory; `cpu`: the CPU time the server and PostgreSQL spend per call.
//! - `report`: `report.json`; `report/table.rs` the ratio table; `report/svg.rs` the chart, `report.svg`.
//!
//! The run fails (exit 1) on a broken invariant or an unexpected error, never on a missed target; exit 2 is
//! a run that could not be carried out.

mod args;
mod cpu;
mod filling;
mod flash_sale;
mod invariants;
mod report;
mod rss;
mod runner;
mod scenarios;
mod stats;
mod target;
mod waiting_room;
mod watch;

use std::{process::ExitCode, time::Duration};

use clap::Parser;

use crate::{
    args::{Args, Scenario},
    report::{Ceilings, OpenLoop, Report, ScenarioReport, Scenarios, Server, Settings},
    runner::{Bounds, Loop},
    scenarios::Fixtures,
    target::Target,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("aerobook-load: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs every chosen scenario, writes the report; whether the run passed.
async fn run(args: Args) -> Result<bool, Error> {
    let open_loop = args.open_loop_scenarios()?;
    if !(args.seconds > 0.0 && args.warmup >= 0.0 && args.open_loop_fraction > 0.0) {
        return Err("--seconds and --open-loop-fraction must be positive, --warmup not negative".into());
    }
    if args.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        return Err("--rate must be a positive number of calls per second".into());
    }
    let started_at = chrono::Utc::now().to_rfc3339();
    let target = Target::start(&args).await?;
    let chosen = |check: fn(Scenario) -> bool| Scenario::ALL.into_iter().any(|s| args.runs(s) && check(s));
    if chosen(scenarios::needs_tokens) {
        target.tokens()?;
    }
    let fixtures = match chosen(scenarios::needs_fixtures) {
        true => Some(Fixtures::find(&target).await?),
        false => None,
    };
    let db = match &args.database_url {
        Some(url) => Some(invariants::connect(url, args.database_schema.as_deref()).await?),
        None => None,
    };
    let mode = match args.rate {
        Some(rate) => Loop::Open { rate, max_in_flight: args.max_in_flight },
        None => Loop::Closed { concurrency: args.concurrency },
    };
    let mode_name = if args.rate.is_some() { "open" } else { "closed" };
    let bounds = Bounds { duration: Duration::from_secs_f64(args.seconds), max_calls: args.max_requests };
    println!("target: {} ({})", target.addrs.join(", "), if target.embedded { "embedded" } else { "external" });

    let mut scenarios = Scenarios::default();
    for scenario in Scenario::ALL.into_iter().filter(|s| s.is_call_loop() && args.runs(*s)) {
        let call = scenarios::prepare(scenario, &target, fixtures.as_ref(), &args).await?;
        if args.warmup > 0.0 {
            let warmup = Bounds { duration: Duration::from_secs_f64(args.warmup), ..bounds };
            runner::run(&format!("{scenario} (warm-up)"), &target.channels, &call, mode, warmup).await;
        }
        let meter = cpu::CpuMeter::start(&target.external_pids);
        let run = runner::run(scenario.name(), &target.channels, &call, mode, bounds).await;
        let cost = meter.stop().per_call(run.summary.calls);
        println!("{}", one_line(&format!("{scenario} ({mode_name})"), &run.summary, run.dropped));
        scenarios.push(
            scenario.name(),
            ScenarioReport::Calls(Box::new(report::CallsReport {
                mode: mode_name,
                run,
                cost,
                to_pgbench_spread: None,
                open_loop: None,
            })),
        );
    }

    if args.runs(Scenario::HoldSpreadFilling) {
        let filling = filling::run(&target, &args).await?;
        for (round, figures) in filling.rounds.iter().enumerate() {
            let label = format!("{} round {}", Scenario::HoldSpreadFilling, round + 1);
            println!("{}", one_line(&label, &figures.run.summary, None));
        }
        scenarios.push(Scenario::HoldSpreadFilling.name(), ScenarioReport::Filling(Box::new(filling)));
    }

    let mut server = Server {
        embedded: target.embedded,
        instances: target.addrs.len(),
        pid: target.pid,
        peak_rss_mb: None,
        lifetime_peak_rss_mb: None,
        watch_streams_open: None,
    };
    let mut watched = None;
    if args.runs(Scenario::FlashSale) {
        let (sale, watch) = flash_sale::run(&target, &args, db.as_ref(), (None, false)).await?;
        println!("{}", sale_line(Scenario::FlashSale.name(), &sale));
        server.peak_rss_mb = sale.peak_rss_mb;
        watched = watched.or(watch);
        scenarios.push(Scenario::FlashSale.name(), ScenarioReport::FlashSale(Box::new(sale)));
    }
    if args.runs(Scenario::FlashSaleTrips) {
        let (sale, _) = flash_sale::run(&target, &args, db.as_ref(), (None, true)).await?;
        println!("{}", sale_line(Scenario::FlashSaleTrips.name(), &sale));
        if let Some(trips) = &sale.trips {
            println!("flash-sale-trips: {} trips held, {} trips refused", trips.held, trips.refused);
        }
        server.peak_rss_mb = larger(server.peak_rss_mb, sale.peak_rss_mb);
        scenarios.push(Scenario::FlashSaleTrips.name(), ScenarioReport::FlashSale(Box::new(sale)));
    }
    if args.runs(Scenario::FlashSaleWaitingRoom) {
        let (sale, watch) = waiting_room::run(&target, &args, db.as_ref()).await?;
        print_waiting_room(&sale);
        server.peak_rss_mb = larger(server.peak_rss_mb, sale.peak_rss_mb);
        watched = watched.or(watch);
        scenarios.push(Scenario::FlashSaleWaitingRoom.name(), ScenarioReport::WaitingRoom(Box::new(sale)));
    }
    if let Some(watch) = watched {
        println!(
            "watch: {} of {} streams open, {} updates, {} refused",
            watch.streams_open,
            watch.watchers,
            watch.updates_received,
            watch.refused.values().sum::<u64>()
        );
        server.watch_streams_open = Some(watch.streams_open);
        scenarios.push(Scenario::Watch.name(), ScenarioReport::Watch(watch));
    }

    // The open-loop phase reruns scenarios at a fraction of the most they did in closed loop.
    if args.rate.is_none() {
        for scenario in open_loop {
            if let Some(ScenarioReport::FlashSale(closed)) = scenarios.get(scenario.name()) {
                let rate = closed.decisions_per_s * args.open_loop_fraction;
                if rate > 0.0 {
                    let (paced, _) = flash_sale::run(&target, &args, db.as_ref(), (Some(rate), false)).await?;
                    println!("{}", sale_line(&format!("{scenario} (open loop at {rate:.0} buyers/s)"), &paced));
                    if let Some(ScenarioReport::FlashSale(closed)) = scenarios.get_mut(scenario.name()) {
                        closed.open_loop = Some(Box::new(paced));
                    }
                }
                continue;
            }
            let Some(ScenarioReport::Calls(closed)) = scenarios.get(scenario.name()) else { continue };
            let rate = closed.run.summary.calls_per_s * args.open_loop_fraction;
            if rate <= 0.0 {
                continue;
            }
            let call = scenarios::prepare(scenario, &target, fixtures.as_ref(), &args).await?;
            let open = Loop::Open { rate, max_in_flight: args.max_in_flight };
            let run = runner::run(&format!("{scenario} (open loop)"), &target.channels, &call, open, bounds).await;
            println!("{}", one_line(&format!("{scenario} (open loop at {rate:.0}/s)"), &run.summary, run.dropped));
            if let Some(ScenarioReport::Calls(closed)) = scenarios.get_mut(scenario.name()) {
                closed.open_loop = Some(OpenLoop { rate, run });
            }
        }
    }

    if let Some(pid) = target.pid {
        // The kernel updates the high-water mark lazily: it can lag the largest sample.
        server.lifetime_peak_rss_mb = larger(rss::high_water_mark_mb(pid), server.peak_rss_mb);
    }
    let ping_rps = match scenarios.get(Scenario::Ping.name()) {
        Some(ScenarioReport::Calls(ping)) => Some(ping.run.summary.calls_per_s),
        _ => None,
    };
    let mut report = Report {
        version: 1,
        started_at,
        target: target.addrs.join(","),
        settings: Settings::of(&args),
        ceilings: Ceilings {
            ping_rps,
            pgbench_hold_hot_tps: args.pgbench_hold_hot_tps,
            pgbench_hold_spread_tps: args.pgbench_hold_spread_tps,
        },
        scenarios,
        server,
        targets: Vec::new(),
        failures: Vec::new(),
        passed: false,
    };
    report.conclude();
    report.write(&args.report, &args.svg, &args.table)?;
    println!("\n{}", report.table());
    println!("report: {}, chart: {}, table: {}", args.report.display(), args.svg.display(), args.table.display());
    Ok(report.passed)
}

/// The larger of two figures, where either is known.
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn sale_line(label: &str, sale: &flash_sale::SaleReport) -> String {
    format!(
        "{label}: {} buyers, {} seats: {} holds ({:.0}/s), {} sold out, {} failed; decisions {:.0}/s, p99 {:.2} ms; oversold {}",
        sale.buyers,
        sale.seats,
        sale.holds,
        sale.holds_per_s,
        sale.sold_out,
        sale.failed,
        sale.decisions_per_s,
        sale.calls.p99_ms,
        sale.oversold
    )
}

fn print_waiting_room(sale: &waiting_room::WaitingRoomReport) {
    let name = Scenario::FlashSaleWaitingRoom.name();
    let rate = &sale.admitted_per_s;
    println!(
        "{name}: {} waiters, {} seats: join p99 {:.2} ms; {} admitted ({}/s, target {:.0}/s, {}), {} holds, {} told sold out (notice {} ms); oversold {}",
        sale.waiters,
        sale.seats,
        sale.join_p99_ms,
        sale.admitted,
        rate.mean.map_or("n/a".into(), |mean| format!("{mean:.0}")),
        rate.target,
        if rate.steady { "steady" } else { "not steady" },
        sale.holds,
        sale.told_sold_out,
        sale.sold_out_notice_ms.map_or("n/a".into(), |ms| format!("{ms:.0}")),
        sale.oversold
    );
    if let Some(double) = sale.double_admissions {
        println!(
            "{name}: {} instances: {double} double admissions, {} tickets split at the sell-out",
            sale.instances,
            sale.split_at_sell_out.unwrap_or(0)
        );
    }
}

fn one_line(label: &str, summary: &stats::Summary, dropped: Option<u64>) -> String {
    let errors: u64 = summary.errors.values().sum();
    let dropped = dropped.map_or(String::new(), |d| format!(", {d} dropped"));
    format!(
        "{label}: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, {errors} errors{dropped}",
        summary.calls_per_s, summary.p50_ms, summary.p99_ms, summary.p999_ms
    )
}
