//! Aerobook: an airline booking backend served over gRPC, gRPC-web and plain HTTP on one port.
//!
//! # Layout
//! Dependencies point inward: `api` and `layers` -> `app` -> `domain`; `app` uses `store` and `infra`.
//!
//! - [`api`]: thin tonic handlers (validate while converting from proto, take the caller, call one use case,
//!   map the result). Proto types stop here.
//! - [`layers`]: tower layers for every call: CORS, gRPC-web, correlation id, deadline and concurrency
//!   limits, and the per-RPC policy declared in the proto; the error contract.
//! - [`app`]: use cases; they own transaction boundaries.
//! - [`domain`]: pure rules and value types; no I/O, no tonic, sea-orm or Redis.
//! - [`store`]: sea-orm entities and queries, migrations, demo data.
//! - [`infra`]: Redis, the search cache, the availability feed, the clock, telemetry.
//! - [`jobs`]: background work inside the server: the hold sweeper, the outbox worker, reconciliation.
//! - [`startup`]: [`startup::Application`], shared by `main` and the tests.
//! - [`config`]: the one place that reads configuration, plain values that depend on nothing else in the
//!   server (layers and infra build their types from them); [`cli`]: the command line.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod infra;
pub mod jobs;
pub mod layers;
pub mod startup;
pub mod store;
