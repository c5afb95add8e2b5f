//! `hold-spread-filling`: `--fill-rounds` closed-loop rounds of `hold-spread`, `--fill-seconds` each, on the
//! same `--spread-flights` flights, one after another on one server. Each round leaves the cabins and the
//! database fuller than the last, so a hold whose cost grows with either shows as a falling rate from round
//! to round; the server's resident set after each round shows whether memory grows with them.

use std::time::Duration;

use serde::Serialize;

use crate::{
    Error,
    args::{Args, Scenario},
    cpu::{CpuCost, CpuMeter},
    rss,
    runner::{self, Bounds, Loop, Run},
    scenarios,
    target::Target,
};

/// The report's `scenarios.hold-spread-filling`.
#[derive(Debug, Serialize)]
pub struct FillingReport {
    pub flights: usize,
    pub rounds: Vec<Round>,
    /// The last round's calls/s over the first's (the target: at least 0.9).
    pub last_to_first: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Round {
    #[serde(flatten)]
    pub run: Run,
    #[serde(flatten)]
    pub cost: CpuCost,
    /// The server's resident set when the round ended, MiB (`null` when it cannot be read).
    pub rss_mb: Option<f64>,
}

pub async fn run(target: &Target, args: &Args) -> Result<FillingReport, Error> {
    let name = Scenario::HoldSpreadFilling.name();
    let call = scenarios::prepare(Scenario::HoldSpread, target, None, args).await?;
    let mode = Loop::Closed { concurrency: args.concurrency };
    let bounds = Bounds { duration: Duration::from_secs_f64(args.fill_seconds), max_calls: args.max_requests };
    let mut rounds = Vec::new();
    for round in 1..=args.fill_rounds {
        let meter = CpuMeter::start(&target.external_pids);
        let run = runner::run(&format!("{name} (round {round})"), &target.channels, &call, mode, bounds).await;
        let cost = meter.stop().per_call(run.summary.calls);
        rounds.push(Round { run, cost, rss_mb: target.pid.and_then(rss::current_mb) });
    }
    let rate = |round: Option<&Round>| round.map(|r| r.run.summary.calls_per_s);
    let last_to_first = rate(rounds.first()).filter(|first| *first > 0.0).zip(rate(rounds.last())).map(|(f, l)| l / f);
    Ok(FillingReport { flights: args.spread_flights, rounds, last_to_first })
}
