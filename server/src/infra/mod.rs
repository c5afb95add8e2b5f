//! Adapters to the outside world: Redis, the search cache, telemetry. Each one degrades instead of failing
//! the call when its backend is away: Redis accelerates, the database decides.

pub mod cache;
pub mod redis;
pub mod telemetry;
