//! Adapters to the outside world: Redis, the search cache, telemetry. Each one degrades instead of failing
//! the call when its backend is away: Redis accelerates, the database decides.

pub mod availability;
pub mod barcode;
pub mod cache;
pub mod clock;
pub mod deadline;
pub mod digest;
pub mod mail;
pub mod metrics;
pub mod passes;
pub mod passwords;
pub mod payments;
pub mod rate_limit;
pub mod redis;
pub mod snapshots;
pub mod sold_out;
pub mod telemetry;
pub mod tokens;
pub mod waiting_room;
