//! End-to-end tests: the real server on port 0, called over gRPC (HTTP/2) and gRPC-web (HTTP/1.1).
//! One test binary keeps link time down on small CI machines.

mod admin;
mod airports;
mod auth;
mod availability;
mod bookings;
mod catalogue;
mod change_payments;
mod changes;
mod check_in;
mod check_in_gate;
mod cluster;
mod contract;
mod create_flight;
mod faults;
mod grpc_web;
mod hostile;
mod idempotency;
mod instances;
mod jobs;
mod life_cycle;
mod payments;
mod platform;
mod redis_ha;
mod refunds;
mod replicas;
mod sdk;
mod sdk_trips;
mod seat_choice;
mod tickets;
mod trips;
mod waiting_room;
