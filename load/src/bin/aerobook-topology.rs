//! `aerobook-topology`: sums up the reports of `scripts/bench --topology` side by side, one column per
//! deployment, as a Markdown table: each deployment's ceilings, each scenario's calls/s with its ratio to the
//! same run's ping and to the first deployment, the CPU time a booking costs, and where reads went.
//!
//! Usage: `aerobook-topology <table.md> <name>=<report.json>...`; a `metrics*.txt` beside a report (the
//! instances' `/metrics` after the run) gives the reads by target.

use std::{path::Path, process::ExitCode};

use serde_json::Value;

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aerobook-topology: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let [table, columns @ ..] = args else {
        return Err("usage: aerobook-topology <table.md> <name>=<report.json>...".into());
    };
    if columns.is_empty() {
        return Err("no reports given".into());
    }
    let mut deployments = Vec::with_capacity(columns.len());
    for column in columns {
        let (name, path) = column.split_once('=').ok_or_else(|| format!("{column}: expected <name>=<report.json>"))?;
        let report: Value = serde_json::from_str(&std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?)?;
        let reads = reads_by_target(Path::new(path).parent().unwrap_or(Path::new(".")))?;
        deployments.push(Deployment { name: name.to_owned(), report, reads });
    }
    let markdown = render(&deployments);
    std::fs::write(table, &markdown)?;
    print!("{markdown}");
    Ok(())
}

struct Deployment {
    name: String,
    report: Value,
    /// `aerobook_database_reads_total` by `target`, summed over the instances.
    reads: Vec<(String, f64)>,
}

impl Deployment {
    fn number(&self, path: &str) -> Option<f64> {
        path.split('.').try_fold(&self.report, |value, key| value.get(key))?.as_f64()
    }

    fn scenario(&self, scenario: &str, key: &str) -> Option<f64> {
        self.report.get("scenarios")?.get(scenario)?.get(key)?.as_f64()
    }

    /// CPU microseconds of the server, PostgreSQL and Redis per call of a scenario, with their sum.
    fn cpu(&self, scenario: &str, keys: [&str; 3]) -> String {
        let parts = keys.map(|key| self.scenario(scenario, key));
        let shown = parts.map(|part| part.map_or("n/a".to_owned(), |us| format!("{us:.0}")));
        let total: f64 = parts.iter().flatten().sum();
        format!("{} + {} + {} = {total:.0}", shown[0], shown[1], shown[2])
    }
}

/// Rows: a label and how each deployment shows it.
fn render(deployments: &[Deployment]) -> String {
    let first = &deployments[0];
    let calls = |d: &Deployment, scenario: &str| d.scenario(scenario, "calls_per_s");
    let ping = |d: &Deployment| d.number("ceilings.ping_rps");
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&Deployment) -> String| {
        rows.push((label.to_owned(), deployments.iter().map(cell).collect()));
    };
    row("server instances", &|d| d.number("server.instances").map_or("n/a".into(), |n| format!("{n:.0}")));
    row("ping calls/s (the ceiling)", &|d| figure(ping(d)));
    row("pgbench hold, hot cabin / spread, tps", &|d| {
        format!(
            "{} / {}",
            figure(d.number("ceilings.pgbench_hold_hot_tps")),
            figure(d.number("ceilings.pgbench_hold_spread_tps"))
        )
    });
    for scenario in ["search", "get-flight", "seat-map", "mixed", "hold-spread"] {
        row(&format!("{scenario} calls/s (to ping; to {})", first.name), &|d| {
            let own = calls(d, scenario);
            format!("{} ({}; {})", figure(own), ratio(own, ping(d)), ratio(own, calls(first, scenario)))
        });
    }
    row("hold-spread to pgbench spread", &|d| {
        ratio(calls(d, "hold-spread"), d.number("ceilings.pgbench_hold_spread_tps"))
    });
    row("hold-spread p99 ms", &|d| d.scenario("hold-spread", "p99_ms").map_or("n/a".into(), |ms| format!("{ms:.1}")));
    row("hold-spread CPU us per hold: server + PostgreSQL + Redis", &|d| {
        d.cpu("hold-spread", ["server_cpu_us_per_call", "postgres_cpu_us_per_call", "redis_cpu_us_per_call"])
    });
    row(&format!("flash-sale decisions/s (to {})", first.name), &|d| {
        let own = d.scenario("flash-sale", "decisions_per_s");
        format!("{} ({})", figure(own), ratio(own, first.scenario("flash-sale", "decisions_per_s")))
    });
    row("flash-sale holds/s", &|d| figure(d.scenario("flash-sale", "holds_per_s")));
    row("flash-sale CPU us: server per decision + PostgreSQL + Redis per hold", &|d| {
        d.cpu("flash-sale", ["server_cpu_us_per_decision", "postgres_cpu_us_per_hold", "redis_cpu_us_per_hold"])
    });
    row("flash-sale oversold", &|d| d.scenario("flash-sale", "oversold").map_or("n/a".into(), |n| format!("{n:.0}")));
    row("database reads by target (all instances)", &|d| match d.reads.as_slice() {
        [] => "n/a".into(),
        reads => reads.iter().map(|(target, count)| format!("{target} {count:.0}")).collect::<Vec<_>>().join(", "),
    });

    let mut out = format!(
        "| | {} |\n|---|{}\n",
        deployments.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(" | "),
        "---:|".repeat(deployments.len())
    );
    for (label, cells) in rows {
        out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    }
    out
}

fn figure(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |value| format!("{value:.0}"))
}

fn ratio(value: Option<f64>, to: Option<f64>) -> String {
    match (value, to) {
        (Some(value), Some(to)) if to > 0.0 => format!("{:.2}", value / to),
        _ => "n/a".into(),
    }
}

/// `aerobook_database_reads_total{target="..."}` summed by target over the `metrics*.txt` files in `dir`.
fn reads_by_target(dir: &Path) -> Result<Vec<(String, f64)>, Error> {
    let mut reads: Vec<(String, f64)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if !(name.starts_with("metrics") && name.ends_with(".txt")) {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            let Some(labels) = line.strip_prefix("aerobook_database_reads_total{") else { continue };
            let Some((labels, value)) = labels.rsplit_once("} ") else { continue };
            let Some(target) = labels.split(',').find_map(|label| label.strip_prefix("target=\"")) else { continue };
            let (target, count) = (target.trim_end_matches('"').to_owned(), value.trim().parse::<f64>()?);
            match reads.iter_mut().find(|(known, _)| *known == target) {
                Some((_, sum)) => *sum += count,
                None => reads.push((target, count)),
            }
        }
    }
    reads.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_compare_each_deployment_with_its_own_ping_and_the_first() {
        let report = |ping: f64, holds: f64| {
            serde_json::json!({
                "ceilings": { "ping_rps": ping, "pgbench_hold_hot_tps": 1000.0, "pgbench_hold_spread_tps": 4000.0 },
                "scenarios": { "hold-spread": {
                    "calls_per_s": holds, "p99_ms": 12.5,
                    "server_cpu_us_per_call": 300.0, "postgres_cpu_us_per_call": 200.0, "redis_cpu_us_per_call": null
                } },
                "server": { "instances": 1 }
            })
        };
        let deployments = [
            Deployment { name: "one".into(), report: report(10_000.0, 2000.0), reads: Vec::new() },
            Deployment { name: "two".into(), report: report(8000.0, 3000.0), reads: vec![("replica".into(), 5.0)] },
        ];
        let table = render(&deployments);
        assert!(table.starts_with("| | one | two |\n|---|---:|---:|\n"), "{table}");
        assert!(
            table.contains("| hold-spread calls/s (to ping; to one) | 2000 (0.20; 1.00) | 3000 (0.38; 1.50) |"),
            "{table}"
        );
        assert!(table.contains("| 300 + 200 + n/a = 500 |"), "{table}");
        assert!(table.contains("| n/a | replica 5 |"), "{table}");
    }

    #[test]
    fn reads_are_summed_by_target_over_the_instances() {
        let dir = tempfile::tempdir().expect("a directory");
        let metric = "aerobook_database_reads_total";
        std::fs::write(
            dir.path().join("metrics-1.txt"),
            format!("{metric}{{target=\"replica\"}} 7\n{metric}{{target=\"primary\"}} 1\n"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("metrics-2.txt"),
            format!("# HELP {metric} reads\n{metric}{{target=\"replica\"}} 3\n"),
        )
        .expect("write");
        std::fs::write(dir.path().join("report.json"), "{}").expect("write");
        let reads = reads_by_target(dir.path()).expect("readable");
        assert_eq!(reads, vec![("primary".to_owned(), 1.0), ("replica".to_owned(), 10.0)]);
    }
}
