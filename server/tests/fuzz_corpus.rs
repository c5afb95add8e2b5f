//! The fuzz targets' committed inputs, replayed on stable in every run of the suite: the seeds each target
//! starts from (`fuzz/seeds/<target>/`) and every input a fuzzing run found to crash
//! (`fuzz/regressions/<target>/`, kept once fixed). Each must come back without a panic. `scripts/fuzz`
//! runs the same targets coverage-guided.

use std::{fs, path::Path};

use aerobook_server::fuzzing;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("request", fuzzing::request),
    ("webhook", fuzzing::webhook),
    ("tokens", fuzzing::tokens),
    ("passes", fuzzing::passes),
    ("page_token", fuzzing::page_token),
    ("configuration", fuzzing::configuration),
];

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    entries
        .map(|entry| {
            let path = entry.expect("a readable directory").path();
            (path.display().to_string(), fs::read(&path).expect("a readable input"))
        })
        .collect()
}

#[test]
fn every_seed_and_regression_input_is_answered_without_a_panic() {
    for (target, run) in TARGETS {
        let seeds = inputs("seeds", target);
        assert!(seeds.len() >= 3, "{target} starts from a few seeds, has {}", seeds.len());
        for (name, bytes) in seeds.iter().chain(&inputs("regressions", target)) {
            let answered = std::panic::catch_unwind(|| run(bytes));
            assert!(answered.is_ok(), "{target} panicked on {name}");
        }
    }
}

#[test]
fn every_fuzz_target_of_the_fuzz_crate_is_replayed_here() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).expect("read");
    let declared: Vec<&str> =
        manifest.lines().filter_map(|line| line.strip_prefix("name = \"")?.strip_suffix('"')).skip(1).collect();
    let replayed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, replayed);
}
