//! `aerobook-load`: drives Aerobook RPCs with many concurrent callers and reports throughput and latency,
//! each as a ratio to a ceiling measured in the same run on the same machine: `grpc.health.v1.Health/Check`
//! over the same connections, i.e. HTTP/2, protobuf, CORS, gRPC-web dispatch and the correlation layer with
//! no work behind them (health probes skip the deadline and concurrency-limit layer).
//!
//! Ratios, not absolute numbers, are what compare across machines. By default it starts an embedded server
//! (SQLite, in-process cache, demo data) in-process; `--addr` targets a running one instead (then
//! `--jwt-secret` must be its signing key). Every run is bounded by `--seconds` per scenario and
//! `--max-requests`, and only ever talks to the given address.
//!
//! The flash sale comes last: `--buyers` customers each ask for one seat of a new flight at the same moment,
//! every one of them sending its request twice (a double tap, same idempotency key). It checks that exactly
//! the cabin's seats were sold, each once, and reports how fast the sale was decided.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
};
use aerobook_server::{AccessTokens, Application, Caller, Config, Role};
use clap::Parser;
use hdrhistogram::Histogram;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Parser)]
#[command(about = "Aerobook load benchmark")]
struct Args {
    /// A running server (http://host:port) on this machine; default: start an embedded one.
    #[arg(long)]
    addr: Option<String>,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured seconds per scenario (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Upper bound of calls per scenario.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Customers in the flash sale, all at once; the cabin has 990 seats.
    #[arg(long, default_value_t = 2_000)]
    buyers: usize,
    /// The target's token signing key (`AEROBOOK_JWT_SECRET`); the embedded server uses a random one.
    #[arg(long, env = "AEROBOOK_JWT_SECRET")]
    jwt_secret: Option<String>,
}

/// Seats of the flash sale's cabin: 99 rows of 10, the largest cabin a flight may have.
const SALE_ROWS: i32 = 99;
const SALE_LETTERS: &str = "ABCDEFGHJK";

type Call = Arc<dyn Fn(Channel) -> Pin<Box<dyn Future<Output = Result<(), tonic::Status>> + Send>> + Send + Sync>;

struct Outcome {
    name: &'static str,
    calls: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Outcome {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args::parse();
    let _data_dir;
    let addr = match &args.addr {
        Some(addr) => addr.clone(),
        None => {
            let dir = tempfile::tempdir()?;
            let secret = args.jwt_secret.get_or_insert_with(|| format!("load-{}", uuid::Uuid::new_v4())).clone();
            let source = [
                ("AEROBOOK_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                ("AEROBOOK_DATA_DIR", dir.path().display().to_string()),
                ("AEROBOOK_DEMO_DAYS", "3".to_owned()),
                ("AEROBOOK_MAX_CONCURRENT_CALLS", "100000".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
                // The benchmark measures throughput, not the limiter saying no.
                ("AEROBOOK_RATE_LIMITS", "disabled".to_owned()),
                ("AEROBOOK_JWT_SECRET", secret),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let app = Application::build(Config::from_source(&source)?).await?;
            let addr = format!("http://{}", app.local_addr());
            tokio::spawn(app.run_until_stopped(std::future::pending()));
            _data_dir = dir;
            addr
        }
    };
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(Channel::from_shared(addr.clone())?.connect().await?);
    }

    let date =
        (chrono::Utc::now() + chrono::Duration::hours(3) + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let search = pb::SearchFlightsRequest {
        origin: "RUH".into(),
        destination: "JED".into(),
        departure_date: date,
        passengers: 2,
        cabin: pb::CabinClass::Economy.into(),
        ..Default::default()
    };
    let flights =
        FlightServiceClient::new(channels[0].clone()).search_flights(search.clone()).await?.into_inner().flights;
    let flight_id = flights.first().ok_or("no demo flight found: the target needs the demo schedule")?.id.clone();

    let health: Call = Arc::new(|channel| {
        Box::pin(async move {
            HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.map(drop)
        })
    });
    let search_call: Call = Arc::new(move |channel| {
        let search = search.clone();
        Box::pin(async move { FlightServiceClient::new(channel).search_flights(search).await.map(drop) })
    });
    let get_id = flight_id.clone();
    let get_flight: Call = Arc::new(move |channel| {
        let flight_id = get_id.clone();
        Box::pin(async move {
            FlightServiceClient::new(channel).get_flight(pb::GetFlightRequest { flight_id }).await.map(drop)
        })
    });
    let seat_map: Call = Arc::new(move |channel| {
        let request = pb::GetSeatMapRequest { flight_id: flight_id.clone(), cabin: pb::CabinClass::Economy.into() };
        Box::pin(async move { FlightServiceClient::new(channel).get_seat_map(request).await.map(drop) })
    });

    let scenarios: [(&'static str, Call); 4] = [
        ("Health/Check (ceiling)", health),
        ("SearchFlights (cached)", search_call),
        ("GetFlight (database)", get_flight),
        ("GetSeatMap economy (database)", seat_map),
    ];
    let mut outcomes = Vec::new();
    for (name, call) in scenarios {
        run(&args, &channels, call.clone(), Duration::from_secs(1)).await;
        let mut outcome = run(&args, &channels, call, Duration::from_secs(args.seconds)).await;
        outcome.name = name;
        outcomes.push(outcome);
    }

    println!(
        "target: {addr} | callers: {} | connections: {} | {} s per scenario",
        args.concurrency, args.connections, args.seconds
    );
    println!("| scenario | calls/s | ratio to ceiling | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    let ceiling = outcomes[0].per_second();
    for outcome in &outcomes {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            outcome.name,
            outcome.per_second(),
            outcome.per_second() / ceiling,
            outcome.latency.value_at_quantile(0.5) as f64 / 1000.0,
            outcome.latency.value_at_quantile(0.99) as f64 / 1000.0,
            outcome.errors
        );
    }
    let secret = args.jwt_secret.as_deref().ok_or("--jwt-secret is required with --addr")?;
    let sale = flash_sale(&channels, secret, args.buyers).await?;
    println!(
        "| flash sale: {} buyers x 2 taps, {} seats | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
        args.buyers,
        sale.sold,
        sale.outcome.per_second(),
        sale.outcome.per_second() / ceiling,
        sale.outcome.latency.value_at_quantile(0.5) as f64 / 1000.0,
        sale.outcome.latency.value_at_quantile(0.99) as f64 / 1000.0,
        sale.outcome.errors
    );
    if outcomes.iter().chain([&sale.outcome]).any(|o| o.errors > 0) {
        return Err("some calls failed".into());
    }
    Ok(())
}

struct Sale {
    outcome: Outcome,
    sold: usize,
}

/// Every buyer asks for one seat twice at once (same key); checks that the cabin sold out exactly, each
/// seat to one booking, and that each buyer got one booking at most.
async fn flash_sale(channels: &[Channel], secret: &str, buyers: usize) -> Result<Sale, Box<dyn std::error::Error>> {
    let tokens = AccessTokens::new(secret.as_bytes(), None, Duration::from_secs(3600));
    let bearer = |role| {
        let (token, _) = tokens.issue(Caller { user_id: uuid::Uuid::now_v7(), role }, chrono::Utc::now());
        format!("Bearer {token}")
    };
    let departs = chrono::Utc::now() + chrono::Duration::days(2);
    let departs = departs.timestamp() - departs.timestamp() % 60;
    let flight = pb::CreateFlightRequest {
        flight_number: format!("FS{}", 1000 + departs % 9000),
        origin: "RUH".into(),
        destination: "JED".into(),
        departs_at: Some(prost_types::Timestamp { seconds: departs, nanos: 0 }),
        arrives_at: Some(prost_types::Timestamp { seconds: departs + 5400, nanos: 0 }),
        cabins: vec![pb::CabinConfig {
            cabin: pb::CabinClass::Economy.into(),
            first_row: 1,
            rows: SALE_ROWS,
            seat_letters: SALE_LETTERS.into(),
            price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: 45_000 }),
        }],
    };
    let flight = FlightServiceClient::new(channels[0].clone())
        .create_flight(keyed(flight, &bearer(Role::Operator), &uuid::Uuid::new_v4().to_string()))
        .await?
        .into_inner();
    let capacity = (SALE_ROWS as usize) * SALE_LETTERS.len();

    let started = Instant::now();
    let mut calls = Vec::with_capacity(buyers * 2);
    for buyer in 0..buyers {
        let (bearer, key) = (bearer(Role::Customer), uuid::Uuid::new_v4().to_string());
        let hold = pb::CreateBookingRequest {
            flight_id: flight.id.clone(),
            cabin: pb::CabinClass::Economy.into(),
            passengers: vec![pb::Passenger {
                given_name: "Buyer".into(),
                family_name: format!("Number {buyer}"),
                date_of_birth: "1990-01-01".into(),
                r#type: pb::PassengerType::Adult.into(),
            }],
            contact_email: format!("buyer{buyer}@example.com"),
            ..Default::default()
        };
        for tap in 0..2 {
            let mut client = BookingServiceClient::new(channels[(buyer * 2 + tap) % channels.len()].clone());
            let request = keyed(hold.clone(), &bearer, &key);
            calls.push(tokio::spawn(async move {
                let sent = Instant::now();
                let result = client.create_booking(request).await;
                (buyer, sent.elapsed(), result.map(|r| r.into_inner().id))
            }));
        }
    }
    let mut latency = latency_histogram();
    let mut errors = 0;
    let mut booking_of_buyer = std::collections::HashMap::new();
    for call in calls {
        let (buyer, took, result) = call.await?;
        latency.saturating_record(took.as_micros() as u64);
        match result {
            Ok(id) => {
                if booking_of_buyer.insert(buyer, id.clone()).is_some_and(|other| other != id) {
                    return Err(format!("buyer {buyer} got two bookings").into());
                }
            }
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {}
            Err(status) if status.code() == tonic::Code::Aborted => {} // in progress: the other tap's answer counts
            Err(status) => {
                eprintln!("flash sale call failed: {status:?}");
                errors += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let sold = booking_of_buyer.len();
    let available = FlightServiceClient::new(channels[0].clone())
        .get_flight(pb::GetFlightRequest { flight_id: flight.id.clone() })
        .await?
        .into_inner()
        .cabins[0]
        .seats_available;
    let expected = capacity.min(buyers);
    if errors == 0 && (sold != expected || available as usize != capacity - expected) {
        return Err(format!("sold {sold} bookings with {available} seats left; expected {expected} sold").into());
    }
    Ok(Sale { outcome: Outcome { name: "flash sale", calls: latency.len(), errors, elapsed, latency }, sold })
}

fn keyed<T>(message: T, bearer: &str, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.parse().expect("ASCII token"));
    request.metadata_mut().insert("idempotency-key", key.parse().expect("ASCII key"));
    request
}

/// Runs `call` from `args.concurrency` callers for `duration` (or until `max_requests`), recording latency
/// in microseconds.
async fn run(args: &Args, channels: &[Channel], call: Call, duration: Duration) -> Outcome {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut callers = Vec::new();
    for caller in 0..args.concurrency.max(1) {
        let (call, channel, issued, max) =
            (call.clone(), channels[caller % channels.len()].clone(), issued.clone(), args.max_requests);
        callers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            let mut errors = 0;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let sent = Instant::now();
                if call(channel.clone()).await.is_err() {
                    errors += 1;
                }
                latency.saturating_record(sent.elapsed().as_micros() as u64);
            }
            (latency, errors)
        }));
    }
    let mut latency = latency_histogram();
    let mut errors = 0;
    for caller in callers {
        let (caller_latency, caller_errors) = caller.await.expect("caller task");
        latency.add(caller_latency).expect("same precision");
        errors += caller_errors;
    }
    Outcome { name: "", calls: latency.len(), errors, elapsed: started.elapsed(), latency }
}

/// Microseconds from 1 µs to 60 s at 3 significant digits; slower calls are recorded as 60 s.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}
