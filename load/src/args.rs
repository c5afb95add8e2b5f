//! The command line: which scenarios run, how hard, against what, and where the report goes.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(about = "Aerobook load benchmark: throughput and latency as ratios to ceilings measured in the same run")]
pub struct Args {
    /// A running server (http://host:port) on this machine; default: start an embedded one in this process.
    /// Several, comma-separated: instances of one deployment (the same database and Redis). Calls are spread
    /// over all of them (`--connections` to each; flash-sale buyers take them in turn, each buyer's two taps
    /// on one; a waiting-room waiter joins and watches on every instance, which must give one ticket and
    /// admit it once, and books on its own). The first one is set up, probed and its memory sampled.
    #[arg(long, value_delimiter = ',')]
    pub addr: Vec<String>,
    /// The target's token signing key (`AEROBOOK_JWT_SECRET`); the embedded server uses a random one.
    #[arg(long, env = "AEROBOOK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Process ids of the `--addr` servers, comma-separated: the CPU time of all of them is measured, the
    /// memory of the first (`/proc/<pid>/status`).
    #[arg(long, value_delimiter = ',', requires = "addr")]
    pub server_pid: Vec<u32>,
    /// The `--addr` server's PostgreSQL database, to check the flash sale's invariants in the tables too.
    /// Not read from `DATABASE_URL`: that may be set for other tools while this run uses the embedded server.
    #[arg(long, requires = "addr")]
    pub database_url: Option<String>,
    /// The `--addr` server's PostgreSQL schema (its `AEROBOOK_DATABASE_SCHEMA`).
    #[arg(long, requires = "database_url")]
    pub database_schema: Option<String>,

    /// Scenarios to run, in this order whatever order they are given in; `watch` runs during the flash sale.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Scenario::ALL)]
    pub scenarios: Vec<Scenario>,
    /// Closed loop: callers that each send their next call when the previous one is answered.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop instead of closed: calls per second sent on a fixed schedule, whatever the answers do.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Open loop: calls that may be unanswered at once; a call due beyond that is counted as dropped.
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// HTTP/2 connections the callers share, to each `--addr` instance.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Unmeasured seconds before each scenario's main run (not before the open-loop phase).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Upper bound of calls per scenario run.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_requests: u64,
    /// After the closed-loop runs, these scenarios run again in open loop at `--open-loop-fraction` of their
    /// measured calls/s (`none` for no open-loop phase). For `flash-sale`: a second sale on new flights,
    /// its buyers arriving at that fraction of the first sale's decisions/s.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ping,search,get-flight,seat-map,hold-spread,replay,mixed,flash-sale"
    )]
    pub open_loop: Vec<String>,
    /// The open-loop phase's rate as a fraction of each scenario's closed-loop calls/s.
    #[arg(long, default_value_t = 0.7)]
    pub open_loop_fraction: f64,

    /// hold-spread (and mixed, hold-spread-filling): new flights per run, each with one 990-seat economy
    /// cabin; holds pick one at random. A run must not fill them (refusals would be measured instead of
    /// holds): raise it for long runs.
    #[arg(long, default_value_t = 100)]
    pub spread_flights: usize,
    /// hold-spread-filling: rounds of hold-spread on the same flights, one after another.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=20))]
    pub fill_rounds: u32,
    /// hold-spread-filling: measured seconds per round.
    #[arg(long, default_value_t = 20.0)]
    pub fill_seconds: f64,
    /// flash-sale: flights on sale, each with one economy cabin.
    #[arg(long, default_value_t = 10)]
    pub flights: usize,
    /// flash-sale: rows of 10 seats in each sale cabin (1..=99).
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(i32).range(1..=99))]
    pub rows: i32,
    /// flash-sale: buyers per seat, each asking for one seat with a double tap.
    #[arg(long, default_value_t = 3)]
    pub buyers_per_seat: usize,
    /// flash-sale: buyers in flight at once (each with two calls); flash-sale-waiting-room: waiters joining
    /// and opening their stream at once.
    #[arg(long, default_value_t = 512)]
    pub sale_concurrency: usize,
    /// watch: `WatchAvailability` streams open on the sale's flights while it sells, one customer each (the
    /// server's memory target is for 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub watchers: usize,
    /// flash-sale-waiting-room: customers in the queues, spread over the flights (instead of
    /// `--buyers-per-seat`), each with its own `WatchWaitingRoom` stream.
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,
    /// flash-sale-waiting-room: each flight's admissions per minute (1..=60000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(i32).range(1..=60_000))]
    pub admit_per_minute: i32,
    /// flash-sale-waiting-room: how long a pass stays valid, seconds (30..=3600).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i32).range(30..=3600))]
    pub pass_ttl_seconds: i32,

    /// Ceiling from pgbench: the minimal hold transaction on one hot cabin (transactions/s).
    #[arg(long)]
    pub pgbench_hold_hot_tps: Option<f64>,
    /// Ceiling from pgbench: the minimal hold transaction spread over many cabins (transactions/s).
    #[arg(long)]
    pub pgbench_hold_spread_tps: Option<f64>,

    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/report.json")]
    pub report: PathBuf,
    /// Where the SVG chart goes (throughput and latency percentiles per second).
    #[arg(long, default_value = "target/bench/report.svg")]
    pub svg: PathBuf,
    /// Where the table of ratios to the targets goes (Markdown; also printed).
    #[arg(long, default_value = "target/bench/ratios.md")]
    pub table: PathBuf,
}

impl Args {
    pub fn runs(&self, scenario: Scenario) -> bool {
        // The watchers need a sale to watch, so asking for `watch` alone runs the flash sale too.
        self.scenarios.contains(&scenario)
            || (scenario == Scenario::FlashSale && self.watched_sale() == Some(Scenario::FlashSale))
    }

    /// The sale the `watch` streams are open during: the flash sale, or the waiting-room sale when that is
    /// the only sale asked for.
    pub fn watched_sale(&self) -> Option<Scenario> {
        if !self.scenarios.contains(&Scenario::Watch) || self.watchers == 0 {
            return None;
        }
        let room_only =
            self.scenarios.contains(&Scenario::FlashSaleWaitingRoom) && !self.scenarios.contains(&Scenario::FlashSale);
        Some(if room_only { Scenario::FlashSaleWaitingRoom } else { Scenario::FlashSale })
    }

    /// Scenarios of the open-loop phase, in run order; unknown names are an error.
    pub fn open_loop_scenarios(&self) -> Result<Vec<Scenario>, String> {
        if self.open_loop.iter().any(|name| name == "none") {
            return Ok(Vec::new());
        }
        let mut chosen = Vec::new();
        for name in &self.open_loop {
            let scenario = Scenario::from_str(name, false).map_err(|e| format!("--open-loop: {e}"))?;
            if !(scenario.is_call_loop() || scenario == Scenario::FlashSale) {
                return Err(format!("--open-loop: {name} has no open-loop run"));
            }
            chosen.push(scenario);
        }
        Ok(Scenario::ALL.into_iter().filter(|s| chosen.contains(s) && self.runs(*s)).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// `grpc.health.v1.Health/Check`: the ceiling every ratio is taken against.
    Ping,
    /// `SearchFlights` on a demo route (cached).
    Search,
    /// `GetFlight` of a demo flight.
    GetFlight,
    /// `GetSeatMap` of a demo flight's economy cabin.
    SeatMap,
    /// `CreateBooking` re-sent with the key of a completed call: answered from the completed-call memory.
    Replay,
    /// `CreateBooking` of one seat by a new customer on a random flight of many.
    HoldSpread,
    /// 60 % search, 20 % get-flight, 10 % seat-map, 10 % hold-spread.
    Mixed,
    /// `hold-spread` in rounds on the same flights, as they and the database fill.
    HoldSpreadFilling,
    /// Every seat of a few flights sold at once to more buyers than seats, each tapping twice.
    FlashSale,
    /// The flash sale with return trips in the crowd: every tenth buyer books an outbound flight and its
    /// return as one trip, the others one seat on one of those flights.
    FlashSaleTrips,
    /// Availability streams open during the flash sale.
    Watch,
    /// The flash sale through each flight's waiting room: waiters join, watch their place and book one
    /// seat with the pass they are given.
    FlashSaleWaitingRoom,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Self::Ping,
        Self::Search,
        Self::GetFlight,
        Self::SeatMap,
        Self::Replay,
        Self::HoldSpread,
        Self::Mixed,
        Self::HoldSpreadFilling,
        Self::FlashSale,
        Self::FlashSaleTrips,
        Self::Watch,
        Self::FlashSaleWaitingRoom,
    ];

    /// The report's key.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Search => "search",
            Self::GetFlight => "get-flight",
            Self::SeatMap => "seat-map",
            Self::Replay => "replay",
            Self::HoldSpread => "hold-spread",
            Self::Mixed => "mixed",
            Self::HoldSpreadFilling => "hold-spread-filling",
            Self::FlashSale => "flash-sale",
            Self::FlashSaleTrips => "flash-sale-trips",
            Self::Watch => "watch",
            Self::FlashSaleWaitingRoom => "flash-sale-waiting-room",
        }
    }

    /// Whether the scenario is a stream of independent calls that the closed and open loops can drive.
    pub fn is_call_loop(self) -> bool {
        !matches!(
            self,
            Self::HoldSpreadFilling | Self::FlashSale | Self::FlashSaleTrips | Self::Watch | Self::FlashSaleWaitingRoom
        )
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn watch_brings_the_flash_sale_and_the_open_loop_phase_can_be_turned_off() {
        let args = Args::parse_from(["aerobook-load", "--scenarios", "watch,ping", "--open-loop", "none"]);
        assert!(args.runs(Scenario::FlashSale) && args.runs(Scenario::Ping) && !args.runs(Scenario::Search));
        assert_eq!(args.open_loop_scenarios(), Ok(Vec::new()));
        let args =
            Args::parse_from(["aerobook-load", "--scenarios", "search,ping", "--open-loop", "search,mixed,ping"]);
        assert_eq!(args.open_loop_scenarios(), Ok(vec![Scenario::Ping, Scenario::Search]));
        let args = Args::parse_from(["aerobook-load", "--open-loop", "flash-sale"]);
        assert_eq!(args.open_loop_scenarios(), Ok(vec![Scenario::FlashSale]));
        for no_open_loop in ["watch", "hold-spread-filling", "flash-sale-waiting-room"] {
            assert!(Args::parse_from(["aerobook-load", "--open-loop", no_open_loop]).open_loop_scenarios().is_err());
        }
    }

    #[test]
    fn the_default_run_has_both_sales_and_the_watchers_watch_the_flash_sale() {
        let args = Args::parse_from(["aerobook-load"]);
        assert!(args.runs(Scenario::FlashSale) && args.runs(Scenario::FlashSaleWaitingRoom));
        assert!(args.runs(Scenario::HoldSpreadFilling));
        assert_eq!(args.watched_sale(), Some(Scenario::FlashSale));
        assert_eq!(
            (args.watchers, args.waiters, args.admit_per_minute, args.pass_ttl_seconds),
            (10_000, 10_000, 3000, 300)
        );
        let room = Args::parse_from(["aerobook-load", "--scenarios", "flash-sale-waiting-room,watch"]);
        assert!(!room.runs(Scenario::FlashSale) && room.watched_sale() == Some(Scenario::FlashSaleWaitingRoom));
        let none =
            Args::parse_from(["aerobook-load", "--scenarios", "flash-sale-waiting-room,watch", "--watchers", "0"]);
        assert_eq!(none.watched_sale(), None);
        assert!(Args::try_parse_from(["aerobook-load", "--admit-per-minute", "60001"]).is_err());
        assert!(Args::try_parse_from(["aerobook-load", "--pass-ttl-seconds", "29"]).is_err());
        assert!(Args::try_parse_from(["aerobook-load", "--fill-rounds", "1"]).is_err());
    }
}
