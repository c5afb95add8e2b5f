//! An instance that crashes under load: three server processes on one PostgreSQL + Redis, buyers that send
//! each hold, with its one idempotency key, to another instance after a failure (as a load balancer with
//! retries does), and one instance killed with SIGKILL mid-load, then started again. Needs PostgreSQL and
//! Redis (`DATABASE_URL`, `REDIS_URL`): skipped without them, except under CI.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
};
use aerobook_server::{AccessTokens, Caller, Role};
use sea_orm::ConnectionTrait as _;
use support::{JWT_SECRET, Server};
use tokio::sync::mpsc;
use tonic::{Code, Request, transport::Channel};

const BUYERS: usize = 30;
/// Attempts a buyer makes before giving up (each on the next instance, 100 ms apart).
const ATTEMPTS: usize = 100;

fn required(variable: &str) -> Option<String> {
    let value = std::env::var(variable).ok();
    if value.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must set {variable}");
        eprintln!("skipped: {variable} is not set");
    }
    value
}

/// One buyer's hold, sent to the instances in turn (starting at `first`) until one answers it: a failed
/// connection, `UNAVAILABLE` or `IDEMPOTENCY_IN_PROGRESS` moves on to the next with the same key.
async fn book(
    instances: &Mutex<Vec<SocketAddr>>,
    first: usize,
    access_token: &str,
    message: pb::CreateBookingRequest,
) -> pb::Booking {
    let key = format!("crash-test-{}", uuid::Uuid::new_v4());
    for attempt in 0..ATTEMPTS {
        let addr = {
            let live = instances.lock().unwrap();
            live[(first + attempt) % live.len()]
        };
        let answer = async {
            let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await?;
            let mut request = Request::new(message.clone());
            request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
            request.metadata_mut().insert("idempotency-key", key.parse().unwrap());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                BookingServiceClient::new(channel).create_booking(request).await,
            )
        };
        match answer.await {
            Ok(Ok(booking)) => return booking.into_inner(),
            Ok(Err(status))
                if !matches!(status.code(), Code::Unavailable | Code::Aborted | Code::Unknown | Code::Cancelled) =>
            {
                panic!("a hold refused for good: {status:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no instance answered the hold in {ATTEMPTS} attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_load_loses_and_doubles_nothing() {
    let (Some(database_url), Some(redis_url)) = (required("DATABASE_URL"), required("REDIS_URL")) else { return };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(&database_url).await.expect("PostgreSQL");
    admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("schema");
    let prefix = format!("aerobook-test:{}:", uuid::Uuid::new_v4().simple());
    let settings = [
        ("DATABASE_URL", database_url.as_str()),
        ("AEROBOOK_DATABASE_SCHEMA", schema.as_str()),
        ("REDIS_URL", redis_url.as_str()),
        ("AEROBOOK_REDIS_KEY_PREFIX", prefix.as_str()),
        ("AEROBOOK_PAYMENTS", "simulated"),
        ("AEROBOOK_SEED_DEMO_DATA", "true"),
        ("AEROBOOK_DEMO_DAYS", "2"),
        ("AEROBOOK_RATE_LIMITS", "disabled"),
        ("RUST_LOG", "warn,aerobook_server::startup=info"),
    ];
    let mut servers =
        vec![Server::start(&settings).await, Server::start(&settings).await, Server::start(&settings).await];
    let instances = Arc::new(Mutex::new(servers.iter().map(|server| server.addr).collect::<Vec<_>>()));

    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1)).with_timezone(&chrono_tz::Asia::Riyadh);
    let search = pb::SearchFlightsRequest {
        origin: "RUH".into(),
        destination: "JED".into(),
        departure_date: tomorrow.format("%Y-%m-%d").to_string(),
        passengers: 1,
        cabin: pb::CabinClass::Economy.into(),
        page_size: 0,
        page_token: String::new(),
    };
    let found = FlightServiceClient::new(servers[0].channel().await).search_flights(search).await.expect("search");
    let flight = found.into_inner().flights.into_iter().next().expect("a demo flight tomorrow");
    let economy = |flight: &pb::Flight| {
        flight.cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).expect("economy").seats_available
    };
    let seats_before = economy(&flight);

    let tokens = AccessTokens::new(JWT_SECRET.as_bytes(), None, Duration::from_secs(3_600));
    let (answered, mut answers) = mpsc::unbounded_channel::<()>();
    let buyers = (0..BUYERS).map(|i| {
        let (instances, answered) = (instances.clone(), answered.clone());
        let caller = Caller { user_id: uuid::Uuid::now_v7(), role: Role::Customer };
        let (access_token, _) = tokens.issue(caller, chrono::Utc::now());
        let message = pb::CreateBookingRequest {
            flight_id: flight.id.clone(),
            cabin: pb::CabinClass::Economy.into(),
            passengers: vec![pb::Passenger {
                given_name: "Sara".into(),
                family_name: "Haddad".into(),
                date_of_birth: "1990-04-01".into(),
                r#type: pb::PassengerType::Adult.into(),
            }],
            contact_email: "sara@example.com".into(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let booking = book(&instances, i, &access_token, message).await;
            let _ = answered.send(());
            booking
        })
    });
    let buyers: Vec<_> = buyers.collect();

    // A third of the buyers have their answer: the second instance dies, and is started again.
    for _ in 0..BUYERS / 3 {
        answers.recv().await;
    }
    let killed = servers.remove(1);
    let killed_addr = killed.addr;
    killed.kill().await;
    instances.lock().unwrap().retain(|addr| *addr != killed_addr);
    let restarted = Server::start(&settings).await;
    instances.lock().unwrap().push(restarted.addr);
    servers.push(restarted);

    let mut booked = std::collections::BTreeSet::new();
    for buyer in buyers {
        assert!(booked.insert(buyer.await.expect("buyer").id), "each buyer has a booking of its own");
    }
    assert_eq!(booked.len(), BUYERS);
    let read = pb::GetFlightRequest { flight_id: flight.id.clone() };
    let after = FlightServiceClient::new(servers[0].channel().await).get_flight(read).await.expect("flight");
    assert_eq!(seats_before - economy(&after.into_inner()), BUYERS as i32, "one seat per buyer, none twice");

    // The operators' check, as they would run it after the incident.
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_aerobook-server"))
        .args(["admin", "check"])
        .env_clear()
        .envs(settings.iter().copied())
        .env("AEROBOOK_JWT_SECRET", JWT_SECRET)
        .output()
        .await
        .expect("admin check runs");
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{printed}{}", String::from_utf8_lossy(&check.stderr));
    assert!(printed.contains(" checks, 0 violations"), "{printed}");
    record(
        "an instance SIGKILLed mid-load and restarted, 3 processes",
        printed.lines().filter(|l| l.starts_with("ok  ")).count(),
    );
    for server in servers {
        server.stop().await;
    }
    admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("schema dropped");
}

/// The scenario's line of `scripts/reliability`'s report, when one is asked for.
fn record(scenario: &str, invariant_checks: usize) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("AEROBOOK_RELIABILITY_REPORT") else { return };
    let line = serde_json::json!({
        "scenario": scenario,
        "backend": "postgres+redis",
        "calls": BUYERS,
        "faults": 1,
        "invariant_checks": invariant_checks,
        "violations": 0,
    });
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the reliability report");
    writeln!(file, "{line}").expect("a line of the reliability report");
}
