//! The server under test: an embedded one started in this process, or a running one given by `--addr`.
//! Also what every scenario needs to talk to it: connections, tokens minted with its signing key, flights
//! created for the run, keyed requests, and error codes read from the error contract.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::{Duration, Instant},
};

use aerobook_proto::v1::{self as pb, flight_service_client::FlightServiceClient};
use aerobook_server::{AccessTokens, Application, Caller, Config, Role, grpc_code_name};
use futures::{StreamExt, TryStreamExt, stream};
use tonic::{Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

use crate::{Error, args::Args};

/// Streams per HTTP/2 connection the tool opens at most: half of the 200 a tonic server allows by default,
/// so no call waits in the client for a stream slot.
pub const STREAMS_PER_CONNECTION: usize = 100;

/// Letters of every cabin the tool creates: 10 seats a row, the most a row may have.
const SEAT_LETTERS: &str = "ABCDEFGHJK";
pub const SEATS_PER_ROW: usize = SEAT_LETTERS.len();

/// How long `--addr` may take to answer its health check (it may still be migrating).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Target {
    /// The instances of the server, the first one set up and probed.
    pub addrs: Vec<String>,
    /// Whether the server runs inside this process (then its memory is this process's).
    pub embedded: bool,
    /// The process whose memory is sampled: the first instance's, or this one when embedded.
    pub pid: Option<u32>,
    /// The processes of every instance whose CPU time is measured (none when embedded).
    pub external_pids: Vec<u32>,
    /// Connections the call loops share, to the instances in turn.
    pub channels: Vec<Channel>,
    tokens: Option<Tokens>,
    /// Departure of the next flight the tool creates, in minutes since the epoch: each flight of the run
    /// departs in its own minute, so flight numbers never collide (they are unique per departure).
    next_departure_minute: AtomicI64,
    /// Keeps the embedded server's SQLite file alive for the run.
    _data_dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn start(args: &Args) -> Result<Self, Error> {
        let mut data_dir = None;
        let (addrs, secret, embedded) = match args.addr.as_slice() {
            [] => {
                let dir = tempfile::tempdir()?;
                let secret = args.jwt_secret.clone().unwrap_or_else(|| format!("load-{}", uuid::Uuid::new_v4()));
                let source = [
                    ("AEROBOOK_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
                    ("AEROBOOK_DATA_DIR", dir.path().display().to_string()),
                    ("AEROBOOK_DEMO_DAYS", "3".to_owned()),
                    ("AEROBOOK_MAX_CONCURRENT_CALLS", "100000".to_owned()),
                    ("RUST_LOG", "warn".to_owned()),
                    // The benchmark measures throughput, not the limiter saying no.
                    ("AEROBOOK_RATE_LIMITS", "disabled".to_owned()),
                    ("AEROBOOK_JWT_SECRET", secret.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
                let app = Application::build(Config::from_source(&source)?).await?;
                let addr = format!("http://{}", app.local_addr());
                tokio::spawn(app.run_until_stopped(std::future::pending()));
                data_dir = Some(dir);
                (vec![addr], Some(secret), true)
            }
            addrs => {
                for addr in addrs {
                    wait_until_serving(addr).await?;
                }
                (addrs.to_vec(), args.jwt_secret.clone(), false)
            }
        };
        let pid = if embedded { Some(std::process::id()) } else { args.server_pid.first().copied() };
        let channels = connect_spread(&addrs, args.connections.max(1) * addrs.len()).await?;
        let tokens =
            secret.map(|secret| Tokens(AccessTokens::new(secret.as_bytes(), None, Duration::from_secs(6 * 3600))));
        // A random minute 30 to 330 days ahead, so runs against the same database do not meet either.
        let random_minutes = (uuid::Uuid::new_v4().as_u128() % (300 * 24 * 60)) as i64;
        let first_departure = (chrono::Utc::now().timestamp() / 60) + 30 * 24 * 60 + random_minutes;
        Ok(Self {
            addrs,
            embedded,
            pid,
            external_pids: if embedded { Vec::new() } else { args.server_pid.clone() },
            channels,
            tokens,
            next_departure_minute: AtomicI64::new(first_departure),
            _data_dir: data_dir,
        })
    }

    /// Minting tokens needs the server's signing key.
    pub fn tokens(&self) -> Result<Tokens, Error> {
        self.tokens.clone().ok_or_else(|| "this scenario mints tokens: --jwt-secret is required with --addr".into())
    }

    /// `count` new flights (route DMM-MED, away from the demo routes the reads use), each with one economy
    /// cabin of `rows` x 10 seats; their ids in order.
    pub async fn create_flights(&self, count: usize, rows: i32) -> Result<Vec<String>, Error> {
        self.create_flights_on(count, rows, Leg::Out).await
    }

    /// `count` new flights on `leg`, each with one economy cabin of `rows` x 10 seats; their ids in order.
    /// The `n`-th return departs four hours after the `n`-th outbound flight created in the same call
    /// order, so each pair makes a trip.
    pub async fn create_flights_on(&self, count: usize, rows: i32, leg: Leg) -> Result<Vec<String>, Error> {
        let operator = self.tokens()?.bearer(Role::Operator);
        let (prefix, origin, destination, offset) = match leg {
            Leg::Out => ("XB", "DMM", "MED", 0),
            Leg::Back => ("XR", "MED", "DMM", 4 * 3600),
        };
        let requests: Vec<_> = (0..count)
            .map(|_| {
                let minute = self.next_departure_minute.fetch_add(1, Ordering::Relaxed);
                let departs = minute * 60 + offset;
                pb::CreateFlightRequest {
                    flight_number: format!("{prefix}{}", 1 + minute % 9999),
                    origin: origin.into(),
                    destination: destination.into(),
                    departs_at: Some(prost_types::Timestamp { seconds: departs, nanos: 0 }),
                    arrives_at: Some(prost_types::Timestamp { seconds: departs + 2 * 3600, nanos: 0 }),
                    cabins: vec![pb::CabinConfig {
                        cabin: pb::CabinClass::Economy.into(),
                        first_row: 1,
                        rows,
                        seat_letters: SEAT_LETTERS.into(),
                        price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: 45_000 }),
                        change_fee: None,
                    }],
                }
            })
            .collect();
        let channel = self.channels[0].clone();
        stream::iter(requests)
            .map(|request| {
                let mut client = FlightServiceClient::new(channel.clone());
                let request = keyed(request, &operator, &new_key());
                async move { Ok::<_, Error>(client.create_flight(request).await?.into_inner().id) }
            })
            .buffered(16)
            .try_collect()
            .await
    }
}

/// Tokens of new users, each call a different one, signed with the target's key.
#[derive(Clone)]
pub struct Tokens(AccessTokens);

impl Tokens {
    /// `Bearer <token>` of a new user with `role`.
    pub fn bearer(&self, role: Role) -> String {
        self.user(role).1
    }

    pub fn customer(&self) -> String {
        self.bearer(Role::Customer)
    }

    /// A new user with `role`: its id (what the server stores as the caller's) and `Bearer <token>`.
    pub fn user(&self, role: Role) -> (uuid::Uuid, String) {
        let user_id = uuid::Uuid::now_v7();
        let (token, _) = self.0.issue(Caller { user_id, role }, chrono::Utc::now());
        (user_id, format!("Bearer {token}"))
    }
}

/// At least `count` HTTP/2 connections, the `i`-th to instance `i % addrs.len()`: a caller taking
/// connections in turn takes the instances in turn. Their number is a multiple of the instances', so
/// connections `i` and `i + addrs.len()` (wrapped) always go to the same instance.
pub async fn connect_spread(addrs: &[String], count: usize) -> Result<Vec<Channel>, Error> {
    let count = count.max(1).div_ceil(addrs.len()) * addrs.len();
    let mut channels = Vec::with_capacity(count);
    for index in 0..count {
        channels.extend(connect(&addrs[index % addrs.len()], 1).await?);
    }
    Ok(channels)
}

/// `count` HTTP/2 connections to `addr`.
pub async fn connect(addr: &str, count: usize) -> Result<Vec<Channel>, Error> {
    let endpoint = Channel::from_shared(addr.to_owned())?;
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}

/// Waits until the server at `addr` answers its health check with SERVING.
pub async fn wait_until_serving(addr: &str) -> Result<(), Error> {
    let endpoint = Channel::from_shared(addr.to_owned())?.connect_timeout(Duration::from_secs(1));
    let started = Instant::now();
    loop {
        let last = match endpoint.connect().await {
            Ok(channel) => {
                match HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await {
                    Ok(answer) if answer.get_ref().status() == ServingStatus::Serving => return Ok(()),
                    Ok(answer) => format!("health status {:?}", answer.get_ref().status()),
                    Err(status) => format!("health check failed: {}", error_code(&status)),
                }
            }
            Err(error) => format!("cannot connect: {error}"),
        };
        if started.elapsed() > READY_TIMEOUT {
            return Err(format!("{addr} did not become ready in {READY_TIMEOUT:?}: {last}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A request with a bearer token and an idempotency key.
pub fn keyed<T>(message: T, bearer: &str, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.parse().expect("a bearer token is ASCII"));
    request.metadata_mut().insert("idempotency-key", key.parse().expect("an idempotency key is ASCII"));
    request
}

/// A request with a bearer token.
pub fn signed_in<T>(message: T, bearer: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.parse().expect("a bearer token is ASCII"));
    request
}

/// A fresh idempotency key (36 characters).
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A hold of one economy seat, no seat choice.
/// Which way a sale flight goes: trips pair an outbound flight with a return.
#[derive(Debug, Clone, Copy)]
pub enum Leg {
    Out,
    Back,
}

/// A trip of one seat over `flight_ids`, in order, for a new customer.
pub fn trip_request(flight_ids: &[&str]) -> pb::CreateBookingRequest {
    let segments = flight_ids
        .iter()
        .map(|id| pb::SegmentRequest {
            flight_id: (*id).to_owned(),
            cabin: pb::CabinClass::Economy.into(),
            seat_numbers: Vec::new(),
        })
        .collect();
    pb::CreateBookingRequest { segments, flight_id: String::new(), cabin: 0, ..hold_request("") }
}

pub fn hold_request(flight_id: &str) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        flight_id: flight_id.to_owned(),
        cabin: pb::CabinClass::Economy.into(),
        passengers: vec![pb::Passenger {
            given_name: "Bench".into(),
            family_name: "Buyer".into(),
            date_of_birth: "1990-01-01".into(),
            r#type: pb::PassengerType::Adult.into(),
            ..Default::default()
        }],
        contact_email: "bench@example.com".into(),
        ..Default::default()
    }
}

/// The error contract's machine code (`google.rpc.ErrorInfo.reason`), or the gRPC code's name when the
/// failure never reached the server's code (transport errors, limits in front of it).
pub fn error_code(status: &Status) -> String {
    match status.get_details_error_info() {
        Some(info) if !info.reason.is_empty() => info.reason,
        _ => grpc_code_name(status.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_details_is_named_by_its_grpc_code() {
        assert_eq!(error_code(&Status::unavailable("down")), "UNAVAILABLE");
    }
}
