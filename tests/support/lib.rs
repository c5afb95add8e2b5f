//! Test harness: starts the real server (`Application`, as `main` does) on port 0 and hands out clients.
//!
//! Every test written with [`backend_tests!`] runs twice: `embedded` (fresh SQLite file, in-process cache)
//! and `external` (fresh PostgreSQL schema and Redis key prefix) when `DATABASE_URL` / `REDIS_URL` are set.
//! Under CI the external variant refuses to skip.

pub mod cluster;
pub mod contract;
pub mod grpc_web;
pub mod hostile;
pub mod pg_ha;
pub mod proxy;
pub mod redis_ha;
pub mod reliability;
pub mod requests;
pub mod smtp;
pub mod stripe;
pub mod tokens;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use aerobook_proto::v1::{
    airport_service_client::AirportServiceClient, auth_service_client::AuthServiceClient,
    booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
    payment_service_client::PaymentServiceClient, waiting_room_service_client::WaitingRoomServiceClient,
};
pub use aerobook_server::Role;
use aerobook_server::{
    Application, Background, Clock, Config, DatabaseConfig, InvariantReport, ReconciliationReport, Secret,
    StartupError, Store, check_invariants,
};
pub use contract::ContractError;
pub use requests::{create_flight_request, idempotency_key, request, riyadh_date, search_request};
use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DbBackend, Statement};
use tokens::bearer_for;
pub use tokens::{JWT_SECRET, bearer_signed_with, expired_access_token};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// Sends server logs (level from `TEST_LOG`, default warn) to each test's captured output.
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file in a temporary directory, in-process cache.
    Embedded,
    /// PostgreSQL (`DATABASE_URL`) in a fresh schema, Redis (`REDIS_URL`) under a fresh key prefix.
    External,
}

/// A running server and what it runs on.
pub struct TestApp {
    pub addr: SocketAddr,
    pub config: Config,
    pub channel: Channel,
    database_url: String,
    postgres_schema: Option<String>,
    /// Whether dropping this app drops the schema (the first of instances that share one).
    owns_schema: bool,
    pub redis_prefix: Option<String>,
    /// The server's clock: tests move it forward instead of sleeping.
    pub clock: Clock,
    /// The server's scheduled work, run on demand.
    background: Background,
    source: BTreeMap<String, String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), StartupError>>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn embedded() -> Self {
        Self::spawn(Backend::Embedded, &[]).await.expect("the embedded backend is always available")
    }

    /// `None` (the test is skipped) when neither `DATABASE_URL` nor `REDIS_URL` is set, except under CI.
    pub async fn external() -> Option<Self> {
        Self::spawn(Backend::External, &[]).await
    }

    /// Starts a server on `backend` with extra configuration (environment variable names).
    pub async fn spawn(backend: Backend, settings: &[(&str, &str)]) -> Option<Self> {
        init_logs();
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let mut source: BTreeMap<String, String> = [
            ("AEROBOOK_LISTEN_ADDR", "127.0.0.1:0"),
            ("AEROBOOK_SEED_DEMO_DATA", "true"),
            ("AEROBOOK_DEMO_DAYS", "3"),
            ("AEROBOOK_SHUTDOWN_GRACE_SECONDS", "2"),
            // The drain delay is tested on its own; elsewhere a stopping server closes its listener at once.
            ("AEROBOOK_SHUTDOWN_DRAIN_SECONDS", "0"),
            ("AEROBOOK_JWT_SECRET", JWT_SECRET),
            // Tests sweep holds themselves, after moving the clock; none runs behind their back.
            ("AEROBOOK_SWEEP_INTERVAL_SECONDS", "3600"),
            // Simulated payments report at once; tests wait for them with `settle_payments`.
            ("AEROBOOK_SIMULATED_PAYMENT_DELAY_MS", "0"),
            // Tests reconcile themselves.
            ("AEROBOOK_RECONCILE_INTERVAL_SECONDS", "86400"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        source.insert("AEROBOOK_DATA_DIR".into(), data_dir.path().display().to_string());
        let mut postgres_schema = None;
        let mut redis_prefix = None;
        if backend == Backend::External {
            // A test's own PostgreSQL (settings' DATABASE_URL) gets the fresh schema, else the configured one.
            let given = settings.iter().find(|(key, _)| *key == "DATABASE_URL").map(|(_, url)| (*url).to_owned());
            let database_url =
                given.or_else(|| std::env::var("DATABASE_URL").ok()).filter(|url| url.starts_with("postgres"));
            let redis_url = std::env::var("REDIS_URL").ok();
            // Under CI a missing service fails the test instead of letting part of it pass empty.
            if std::env::var_os("CI").is_some() {
                assert!(
                    database_url.is_some() && redis_url.is_some(),
                    "CI must set DATABASE_URL (PostgreSQL) and REDIS_URL"
                );
            }
            if database_url.is_none() && redis_url.is_none() {
                eprintln!("skipped: neither DATABASE_URL nor REDIS_URL is set");
                return None;
            }
            if let Some(url) = database_url {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                admin_connection(&url)
                    .await
                    .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .expect("create schema");
                source.insert("DATABASE_URL".into(), url);
                source.insert("AEROBOOK_DATABASE_SCHEMA".into(), schema.clone());
                // Outside the embedded defaults the simulation must be asked for; Stripe tests override it.
                source.insert("AEROBOOK_PAYMENTS".into(), "simulated".into());
                postgres_schema = Some(schema);
            }
            if let Some(url) = redis_url {
                let prefix = format!("aerobook-test:{}:", uuid::Uuid::new_v4().simple());
                source.insert("REDIS_URL".into(), url);
                source.insert("AEROBOOK_REDIS_KEY_PREFIX".into(), prefix.clone());
                redis_prefix = Some(prefix);
            }
        }
        for (key, value) in settings {
            source.insert((*key).to_owned(), (*value).to_owned());
        }
        Some(Self::start(source, postgres_schema, redis_prefix, data_dir, true).await)
    }

    /// A server on PostgreSQL (and Redis when `REDIS_URL` is set), for what only PostgreSQL can show (lock
    /// waits, row locks). `None` (the test is skipped, saying so) without a PostgreSQL `DATABASE_URL`, except
    /// under CI, where that fails the test instead of letting it pass empty.
    pub async fn on_postgres(settings: &[(&str, &str)]) -> Option<Self> {
        if !std::env::var("DATABASE_URL").is_ok_and(|url| url.starts_with("postgres")) {
            assert!(std::env::var_os("CI").is_none(), "CI must set DATABASE_URL to a PostgreSQL database");
            eprintln!("skipped: DATABASE_URL does not name PostgreSQL");
            return None;
        }
        let app = Self::spawn(Backend::External, settings).await.expect("DATABASE_URL is set");
        assert!(app.is_postgres());
        Some(app)
    }

    /// Another server instance on the same database (and Redis prefix), as a second replica would run.
    pub async fn another_instance(&self) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let mut source = self.source.clone();
        if self.postgres_schema.is_none() {
            // SQLite: the same file, so the two instances share one database.
            source.insert("DATABASE_URL".into(), self.database_url.clone());
        }
        source.insert("AEROBOOK_DATA_DIR".into(), data_dir.path().display().to_string());
        Self::start(source, self.postgres_schema.clone(), self.redis_prefix.clone(), data_dir, false).await
    }

    async fn start(
        source: BTreeMap<String, String>,
        postgres_schema: Option<String>,
        redis_prefix: Option<String>,
        data_dir: tempfile::TempDir,
        owns_schema: bool,
    ) -> Self {
        let config = Config::from_source(&source).expect("valid test configuration");
        let database_url = config.database.url.expose().to_owned();
        let clock = Clock::system();
        let app = Application::build_with_clock(config.clone(), clock.clone()).await.expect("server starts");
        let background = app.background();
        let addr = app.local_addr();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = shutdown_rx.await;
        }));
        let channel =
            Channel::from_shared(format!("http://{addr}")).expect("valid uri").connect().await.expect("connects");
        Self {
            addr,
            config,
            channel,
            database_url,
            postgres_schema,
            owns_schema,
            redis_prefix,
            clock,
            background,
            source,
            shutdown: Some(shutdown_tx),
            server: Some(server),
            _data_dir: data_dir,
        }
    }

    pub fn flights(&self) -> FlightServiceClient<Channel> {
        FlightServiceClient::new(self.channel.clone())
    }

    pub fn airports(&self) -> AirportServiceClient<Channel> {
        AirportServiceClient::new(self.channel.clone())
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    pub fn bookings(&self) -> BookingServiceClient<Channel> {
        BookingServiceClient::new(self.channel.clone())
    }

    pub fn payments(&self) -> PaymentServiceClient<Channel> {
        PaymentServiceClient::new(self.channel.clone())
    }

    pub fn waiting_rooms(&self) -> WaitingRoomServiceClient<Channel> {
        WaitingRoomServiceClient::new(self.channel.clone())
    }

    pub fn check_in(&self) -> aerobook_proto::v1::check_in_service_client::CheckInServiceClient<Channel> {
        aerobook_proto::v1::check_in_service_client::CheckInServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> aerobook_proto::v1::admin_service_client::AdminServiceClient<Channel> {
        aerobook_proto::v1::admin_service_client::AdminServiceClient::new(self.channel.clone())
    }

    /// `POST /webhooks/stripe` of this server.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/stripe", self.addr)
    }

    /// Runs every due outbox job now (waiting for any this instance's worker is running).
    pub async fn run_jobs(&self) {
        self.background.run_jobs().await.expect("outbox jobs run");
    }

    /// Waits until the simulated provider has delivered every event it owes, then runs the jobs they queued.
    pub async fn settle_payments(&self) {
        self.background.settle_payments().await.expect("payments settle");
    }

    /// Runs payment reconciliation now.
    pub async fn reconcile(&self) -> ReconciliationReport {
        self.background.reconcile().await.expect("reconciliation")
    }

    /// Runs the hold sweeper now, as its timer would; returns how many holds it expired.
    pub async fn sweep(&self) -> usize {
        self.background.expire_due_holds().await.expect("sweep")
    }

    /// Runs the sweeper's pass over unpaid flight changes now; returns how many lapsed.
    pub async fn sweep_changes(&self) -> usize {
        self.background.lapse_due_changes().await.expect("sweep of changes")
    }

    /// Runs the sweeper's retention pass now; returns how many idempotency keys it deleted.
    pub async fn forget_expired_keys(&self) -> u64 {
        self.sweep_retention().await.idempotency_keys
    }

    /// Runs the sweeper's retention pass now; returns what it deleted.
    pub async fn sweep_retention(&self) -> aerobook_server::Swept {
        self.background.sweep_retention().await.expect("retention sweep")
    }

    /// `Bearer <token>` for a new user id with `role`, signed with the server's key: for calls that only
    /// need a role. Accounts themselves are tested through the Auth RPCs.
    pub fn bearer(&self, role: Role) -> String {
        bearer_signed_with(JWT_SECRET, role, chrono::Utc::now())
    }

    /// `Bearer <token>` for a given user, so several calls act as the same person.
    pub fn bearer_for(&self, user_id: uuid::Uuid, role: Role) -> String {
        bearer_for(JWT_SECRET, user_id, role, chrono::Utc::now())
    }

    /// `Bearer <token>` for a new user id with `role`, issued at the server's clock (which tests may have
    /// moved far ahead of the real one).
    pub fn bearer_now(&self, role: Role) -> String {
        bearer_signed_with(JWT_SECRET, role, self.clock.now())
    }

    /// Every invariant of the database, checked as `aerobook-server admin check` does.
    pub async fn invariants(&self) -> InvariantReport {
        check_invariants(&self.store().await, self.clock.now()).await.expect("the invariant check runs")
    }

    /// Fails the test, listing each violation, unless every invariant holds.
    pub async fn assert_invariants(&self) {
        let report = self.invariants().await;
        assert!(report.holds(), "invariants violated:\n{report}");
    }

    /// Ends a reliability scenario: checks every invariant (failing the test on a violation) and records
    /// what the scenario did for `scripts/reliability`.
    pub async fn scenario_done(&self, scenario: &str, calls: usize, faults: usize) {
        let report = self.invariants().await;
        let backend = if self.postgres_schema.is_some() { "postgres" } else { "sqlite" };
        let backend = if self.redis_prefix.is_some() { format!("{backend}+redis") } else { backend.to_owned() };
        reliability::record(scenario, &backend, calls, faults, &report);
        assert!(report.holds(), "invariants violated after {scenario}:\n{report}");
    }

    /// A direct connection to the server's database, to check what was (not) written.
    pub async fn database(&self) -> DatabaseConnection {
        self.store().await.conn().clone()
    }

    /// The server's store API on its database, for set-ups the RPCs cannot make.
    pub async fn store(&self) -> Store {
        let config = DatabaseConfig {
            url: Secret::new(self.database_url.clone()),
            schema: self.postgres_schema.clone(),
            max_connections: 2,
            is_sqlite: self.postgres_schema.is_none(),
        };
        Store::connect(&config).await.expect("test database connection")
    }

    /// PostgreSQL only: whether some statement of the server waits for a lock.
    pub async fn server_waits_for_a_lock(&self) -> bool {
        let db = admin_connection(&self.database_url).await;
        let sql = "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
        let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap() > 0
    }

    /// A transaction holding a lock that blocks the server's writes until it ends: `flights` on
    /// PostgreSQL, the single write lock on SQLite.
    pub async fn block_writes(&self) -> sea_orm::DatabaseTransaction {
        use sea_orm::TransactionTrait as _;
        let db = self.database().await;
        let blocker = db.begin().await.expect("begin");
        let lock = match db.get_database_backend() {
            DbBackend::Postgres => "LOCK TABLE flights IN ACCESS EXCLUSIVE MODE",
            _ => "UPDATE airports SET name = name",
        };
        blocker.execute_unprepared(lock).await.expect("lock taken");
        blocker
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres_schema.is_some()
    }

    /// Starts the shutdown, as SIGTERM does in production.
    pub fn trigger_shutdown(&mut self) {
        self.shutdown.take().map(|tx| tx.send(()));
    }

    /// Waits (at most 30 s) until the server has stopped.
    pub async fn stopped(&mut self) -> Result<(), StartupError> {
        let server = self.server.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("stops within the grace period")
            .expect("task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(schema) = self.postgres_schema.take().filter(|_| self.owns_schema) {
            let url = self.database_url.clone();
            // Runs on its own thread and runtime: Drop cannot await, and the test's runtime may be ending.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    let db = admin_connection(&url).await;
                    db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(_))) {
                eprintln!("could not drop test schema: {dropped:?}");
            }
        }
    }
}

async fn admin_connection(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options).await.expect("PostgreSQL reachable at DATABASE_URL")
}

/// Generates `embedded` and `external` variants of each test: `async fn name(app: TestApp) { ... }`, or
/// with extra server settings: `async fn name(app: TestApp, settings = [("KEY", "value")]) { ... }`.
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$meta:meta])* async fn $name:ident(
        $app:ident: TestApp $(, settings = [$(($key:literal, $value:literal)),* $(,)?])?
    ) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::TestApp) $body

            fn settings() -> &'static [(&'static str, &'static str)] {
                &[$($(($key, $value)),*)?]
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let app = $crate::TestApp::spawn($crate::Backend::Embedded, settings()).await;
                run(app.expect("the embedded backend is always available")).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some(app) = $crate::TestApp::spawn($crate::Backend::External, settings()).await {
                    run(app).await
                }
            }
        }
    )*};
}
