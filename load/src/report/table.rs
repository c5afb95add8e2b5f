//! The table of the run (Markdown, also printed): each scenario's figures, then the targets of the issue
//! and how the run did against each, as ratios to the ceilings where the target is one.

use std::{collections::BTreeMap, fmt::Write as _};

use super::{CallsReport, Report, ScenarioReport, TargetCheck};
use crate::{
    args::Scenario, filling::FillingReport, flash_sale::SaleReport, stats::Summary, waiting_room::WaitingRoomReport,
};

/// Targets of the issue; a missed one is reported, it does not fail the run.
const OPEN_LOOP_P99_MS: f64 = 50.0;
const PEAK_RSS_MB: f64 = 200.0;
const SOLD_OUT_NOTICE_MS: f64 = 1000.0;
const FILLING_LAST_TO_FIRST: f64 = 0.9;

impl Report {
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

    fn filling(&self) -> Option<&FillingReport> {
        match self.scenarios.get(Scenario::HoldSpreadFilling.name()) {
            Some(ScenarioReport::Filling(filling)) => Some(filling),
            _ => None,
        }
    }

    fn waiting_room(&self) -> Option<&WaitingRoomReport> {
        match self.scenarios.get(Scenario::FlashSaleWaitingRoom.name()) {
            Some(ScenarioReport::WaitingRoom(sale)) => Some(sale),
            _ => None,
        }
    }

    pub(super) fn target_checks(&self) -> Vec<TargetCheck> {
        let ping = self.ceilings.ping_rps;
        let sale = self.sale();
        // The open-loop sale sells seats too: nothing may be oversold in either.
        let oversold = sale.map(|s| s.oversold.max(s.open_loop.as_ref().map_or(0, |open| open.oversold)));
        let mut checks = vec![TargetCheck {
            target: "flash-sale oversold".into(),
            value: oversold.map(|n| n as f64),
            ratio: None,
            required: "= 0".into(),
            pass: oversold.map(|n| n == 0),
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
            Some(0.5),
        );
        ratio("mixed calls/s to ping", calls_per_s("mixed"), ping, None);
        // What a booking costs, whatever the machine's other load: CPU microseconds per call.
        let cost = |target: String, value: Option<f64>| TargetCheck {
            target,
            value,
            ratio: None,
            required: "(for information)".into(),
            pass: None,
        };
        if let Some(spread) = self.calls("hold-spread") {
            checks.push(cost("hold-spread server CPU us per call".into(), spread.cost.server_cpu_us_per_call));
            checks.push(cost("hold-spread PostgreSQL CPU us per call".into(), spread.cost.postgres_cpu_us_per_call));
            checks.push(cost("hold-spread Redis CPU us per call".into(), spread.cost.redis_cpu_us_per_call));
        }
        if let Some(sale) = sale {
            checks.push(cost("flash-sale server CPU us per decision".into(), sale.server_cpu_us_per_decision));
            checks.push(cost("flash-sale PostgreSQL CPU us per hold".into(), sale.postgres_cpu_us_per_hold));
            checks.push(cost("flash-sale Redis CPU us per hold".into(), sale.redis_cpu_us_per_hold));
        }
        if let Some(filling) = self.filling() {
            checks.push(TargetCheck {
                target: format!(
                    "hold-spread-filling last round calls/s to the first ({} rounds)",
                    filling.rounds.len()
                ),
                value: filling.rounds.last().map(|round| round.run.summary.calls_per_s),
                ratio: filling.last_to_first,
                required: format!(">= {FILLING_LAST_TO_FIRST}"),
                pass: filling.last_to_first.map(|ratio| ratio >= FILLING_LAST_TO_FIRST),
            });
        }
        let mut open_loop_p99 = |target: String, p99: f64| {
            checks.push(TargetCheck {
                target,
                value: Some(p99),
                ratio: None,
                required: format!("<= {OPEN_LOOP_P99_MS}"),
                pass: Some(p99 <= OPEN_LOOP_P99_MS),
            });
        };
        for (name, scenario) in self.scenarios.iter() {
            match scenario {
                ScenarioReport::Calls(calls) => {
                    if let Some(open) = &calls.open_loop {
                        open_loop_p99(
                            format!("{name} open loop at {:.0}/s: p99 ms", open.rate),
                            open.run.summary.p99_ms,
                        );
                    }
                }
                ScenarioReport::FlashSale(sale) => {
                    if let Some(open) = &sale.open_loop {
                        let rate = open.rate.unwrap_or(0.0);
                        open_loop_p99(format!("{name} open loop at {rate:.0} buyers/s: p99 ms"), open.calls.p99_ms);
                    }
                }
                _ => {}
            }
        }
        if let Some(room) = self.waiting_room() {
            let name = Scenario::FlashSaleWaitingRoom.name();
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
        let sales: Vec<String> = [
            sale.map(|_| "flash-sale".to_owned()),
            self.waiting_room().map(|room| {
                format!("{} ({} waiting-room streams)", Scenario::FlashSaleWaitingRoom, room.streams_open_peak)
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        checks.push(TargetCheck {
            target: format!(
                "server peak RSS MiB during {}, {streams} watch streams (target: 10000){}",
                sales.join(" and "),
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
                ScenarioReport::Filling(filling) => {
                    for (round, figures) in filling.rounds.iter().enumerate() {
                        let rss = number(figures.rss_mb);
                        let label = format!("{name} round {} (closed, server RSS after it {rss} MiB)", round + 1);
                        row(&mut out, label, &figures.run.summary);
                    }
                }
                ScenarioReport::FlashSale(sale) => {
                    let paced = std::iter::once((sale.as_ref(), String::new())).chain(
                        sale.open_loop
                            .iter()
                            .map(|open| (open.as_ref(), format!(" (open loop, {} buyers/s)", number(open.rate)))),
                    );
                    for (sale, mode) in paced {
                        let label = format!(
                            "{name}{mode}: {} buyers x 2 taps, {} seats; holds {:.0}/s, sold out {}/s, decisions {:.0}/s",
                            sale.buyers,
                            sale.seats,
                            sale.holds_per_s,
                            number(sale.sold_out_per_s),
                            sale.decisions_per_s
                        );
                        row(&mut out, label, &sale.calls);
                    }
                }
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
