//! The server binary in a process of its own, as operators run it: started with a clean environment plus
//! the settings a test gives, its address learned from its own JSON log lines, stopped with SIGTERM (or
//! killed with SIGKILL).

pub mod deployment;
pub mod latency;
pub mod otlp;

use std::{
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use aerobook_proto::v1 as pb;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    process::{Child, Command},
    sync::mpsc,
};
use tonic::transport::Channel;

/// How long a test waits for the server before failing (a guard, not a synchronisation).
pub const PATIENCE: Duration = Duration::from_secs(30);
/// The signing key every test server uses.
pub const JWT_SECRET: &str = "telemetry-test-secret-0123456789-abcdefghijklmnop";

/// The server binary, its addresses and every line it logged.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    logs: Arc<Mutex<Vec<String>>>,
    _data_dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_aerobook-server"));
        for inherited in ["DATABASE_URL", "REDIS_URL", "AEROBOOK_CONFIG"] {
            command.env_remove(inherited);
        }
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("OTEL_") || key.starts_with("AEROBOOK_")) {
            command.env_remove(key);
        }
        command
            .env("AEROBOOK_LISTEN_ADDR", "127.0.0.1:0")
            .env("AEROBOOK_DATA_DIR", data_dir.path())
            .env("AEROBOOK_LOG_FORMAT", "json")
            .env("AEROBOOK_JWT_SECRET", JWT_SECRET)
            .env("AEROBOOK_DEMO_DAYS", "3")
            .env("RUST_LOG", "debug")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start the server binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, mut lines) = mpsc::unbounded_channel::<serde_json::Value>();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        tokio::spawn({
            let logs = logs.clone();
            async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    if let Ok(json) = serde_json::from_str(&line) {
                        let _ = lines_tx.send(json);
                    }
                    logs.lock().unwrap().push(line);
                }
            }
        });
        let wants_metrics = settings.iter().any(|(key, _)| *key == "AEROBOOK_METRICS_ADDR");
        let (mut addr, mut metrics_addr) = (None, None);
        tokio::time::timeout(PATIENCE, async {
            while addr.is_none() || (wants_metrics && metrics_addr.is_none()) {
                let line = lines.recv().await.expect("the server stopped before serving");
                let field = |name: &str| line.get(name).and_then(|v| v.as_str()).and_then(|v| v.parse().ok());
                match line.get("message").and_then(|m| m.as_str()) {
                    Some("serving gRPC, gRPC-web and HTTP") => addr = field("local_addr"),
                    Some("serving Prometheus metrics on /metrics") => metrics_addr = field("bound"),
                    _ => {}
                }
            }
        })
        .await
        .expect("the server logs its addresses");
        Self { child, addr: addr.expect("address"), metrics_addr, logs, _data_dir: data_dir }
    }

    /// Kills the process as SIGKILL does (a crash: nothing flushed, nothing drained) and waits for it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("kill");
        tokio::time::timeout(PATIENCE, self.child.wait()).await.expect("dies").expect("exit status");
    }

    /// The process's largest resident set since it started (`VmHWM`), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("VmHWM");
        line["VmHWM:".len()..].trim().trim_end_matches("kB").trim().parse().expect("a size in kB")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("connect")
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Stops the server as SIGTERM does, so it flushes what it has not exported yet.
    pub async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().expect("running");
        Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await.expect("kill");
        tokio::time::timeout(PATIENCE, self.child.wait()).await.expect("stops").expect("exit status");
        self.logs()
    }
}

pub fn tomorrow_in_riyadh() -> String {
    (chrono::Utc::now() + chrono::TimeDelta::days(1))
        .with_timezone(&chrono_tz::Asia::Riyadh)
        .format("%Y-%m-%d")
        .to_string()
}

/// Tomorrow's economy flights from Riyadh to Jeddah for one passenger (the demo data has some).
pub fn search_request() -> pb::SearchFlightsRequest {
    pb::SearchFlightsRequest {
        origin: "RUH".into(),
        destination: "JED".into(),
        departure_date: tomorrow_in_riyadh(),
        passengers: 1,
        cabin: pb::CabinClass::Economy.into(),
        page_size: 0,
        page_token: String::new(),
    }
}

/// The access token of a new customer, signed with the deployment's key.
pub fn new_customer_token() -> String {
    new_token(aerobook_server::Role::Customer)
}

/// The access token of a new user with `role`, signed with the deployment's key.
pub fn new_token(role: aerobook_server::Role) -> String {
    let tokens = aerobook_server::AccessTokens::new(JWT_SECRET.as_bytes(), None, Duration::from_secs(3_600));
    let caller = aerobook_server::Caller { user_id: uuid::Uuid::now_v7(), role };
    tokens.issue(caller, chrono::Utc::now()).0
}

/// A hold of one economy seat for one adult on `flight_id`.
pub fn one_seat_hold(flight_id: &str) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest {
        flight_id: flight_id.to_owned(),
        cabin: pb::CabinClass::Economy.into(),
        passengers: vec![pb::Passenger {
            given_name: "Sara".into(),
            family_name: "Haddad".into(),
            date_of_birth: "1990-04-01".into(),
            r#type: pb::PassengerType::Adult.into(),
            ..Default::default()
        }],
        contact_email: "sara@example.com".into(),
        ..Default::default()
    }
}

/// Seats still free in `flight`'s economy cabin.
pub fn economy_available(flight: &pb::Flight) -> i32 {
    flight.cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).expect("economy").seats_available
}

/// `GET path` over plain HTTP/1.1; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}
