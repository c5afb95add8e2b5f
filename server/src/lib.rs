//! Aerobook: an airline booking backend served over gRPC, gRPC-web and plain HTTP on one port.
//!
//! # Layout
//! The modules form a DAG, dependencies pointing inward:
//! `domain` <- `store`, `infra` <- `app` <- `api`, `layers` <- `startup`; `config` is a leaf.
//!
//! - `api`: thin tonic handlers (validate while converting from proto, take the caller, call one use case,
//!   map the result). Proto types stop here.
//! - `layers`: tower layers for every call: CORS, gRPC-web, correlation id, client address, deadline and
//!   concurrency limits, and the per-RPC policy declared in the proto; the error contract.
//! - `app`: use cases; they own transaction boundaries. Keyed calls go through `Idempotency::run`.
//! - `domain`: pure rules and value types; no I/O, no tonic, sea-orm or Redis.
//! - `store`: sea-orm entities and queries, migrations, demo data.
//! - `infra`: Redis, the search cache, the rate limiter, the availability feed, the clock, tokens, the
//!   payment providers, telemetry.
//! - `jobs`: background work inside the server: the hold sweeper, the outbox worker, reconciliation; and
//!   [`Background`] to run it on demand.
//! - `startup`: [`Application`], shared by `main`, the tests and `load/`.
//! - `config`: the one place that reads configuration, plain values that depend on nothing else in the
//!   server (layers and infra build their types from them); `cli`: the command line.
//!
//! Modules are private; the `pub use` list below is the whole surface.

// The instrumented payment futures nest async-stripe's list types deeply enough to need more than the
// default 128 levels when the compiler proves them `Send`.
#![recursion_limit = "256"]

mod api;
mod app;
mod cli;
mod config;
mod domain;
#[doc(hidden)]
pub mod fuzzing;
mod infra;
mod jobs;
mod layers;
mod startup;
mod store;

// What `main`, the tests and `load/` use; everything else stays inside the crate.
pub use crate::{
    app::{
        invariants::{InvariantReport, check_invariants},
        payments::ReconciliationReport,
        retention::Swept,
    },
    cli::{AdminError, Cli, Command, run_admin},
    config::{Config, DatabaseConfig, Secret},
    domain::auth::{Caller, Role},
    infra::{clock::Clock, payments::wire as stripe_wire, telemetry, tokens::AccessTokens},
    jobs::Background,
    layers::grpc_code::grpc_code_name,
    startup::{Application, StartupError, migrate, run_when_ready},
    store::{Store, seed::seed_demo_data},
};
