//! What each reliability scenario did, for `scripts/reliability`: when `AEROBOOK_RELIABILITY_REPORT` names
//! a file, a scenario that ends appends one JSON line to it (calls sent, faults injected, invariant checks
//! and violations). Without it, nothing is written.

use std::io::Write as _;

use aerobook_server::InvariantReport;

/// Appends the scenario's line to the report file, if one is asked for.
pub fn record(scenario: &str, backend: &str, calls: usize, faults: usize, invariants: &InvariantReport) {
    let Some(path) = std::env::var_os("AEROBOOK_RELIABILITY_REPORT") else { return };
    let line = serde_json::json!({
        "scenario": scenario,
        "backend": backend,
        "calls": calls,
        "faults": faults,
        "invariant_checks": invariants.checks.len(),
        "violations": invariants.violations(),
    });
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the reliability report");
    writeln!(file, "{line}").expect("a line of the reliability report");
}
