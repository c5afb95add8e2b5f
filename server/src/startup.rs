//! Building and running the server, shared by `main` and the tests: `Application::build` connects,
//! migrates, seeds and binds (port 0 works); `run_until_stopped` serves until the injected shutdown future
//! resolves, then drains.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use aerobook_proto::v1::{
    RateLimitClass, admin_service_server::AdminServiceServer, airport_service_server::AirportServiceServer,
    auth_service_server::AuthServiceServer, booking_service_server::BookingServiceServer,
    flight_service_server::FlightServiceServer, payment_service_server::PaymentServiceServer,
    waiting_room_service_server::WaitingRoomServiceServer,
};
use axum::{extract::State, http::StatusCode, routing::get};
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
};
use tonic::service::Routes;
use tonic::{codec::CompressionEncoding, server::NamedService as _};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_server::{Health, HealthServer},
};
use tower::ServiceBuilder;

use crate::{
    api::{
        admin::AdminApi, airports::AirportApi, auth::AuthApi, bookings::BookingApi, flights::FlightApi,
        payments::PaymentApi, waiting_rooms::WaitingRoomApi, webhooks,
    },
    app::{
        accounts::{Accounts, LOGIN_FAILURES_BUCKET},
        admin::JobQueue,
        airports::AirportDirectory,
        bookings::Bookings,
        flights::FlightCatalog,
        idempotency::Idempotency,
        job::OutboxSignal,
        notifications::Notifications,
        outbox::Outbox,
        payments::Payments,
        retention::Retention,
        streams::WatchLimits,
        waiting_rooms::WaitingRooms,
    },
    config::{Config, PaymentMode, Secret},
    infra::{
        availability::AvailabilityFeed,
        cache::{LocalCache, SearchCache},
        clock::Clock,
        mail::{MailError, Mailer},
        passes::PassSigner,
        payments::{PaymentProvider, ProviderError, simulated::SimulatedProvider, stripe::StripeProvider},
        rate_limit::RateLimiter,
        redis::Redis,
        tokens::{self, AccessTokens},
        waiting_room::Queues,
    },
    jobs::{self, Background, gauges, health::Readiness, sweeper},
    layers::{
        client_address::{TrustedProxies, resolve_client_address},
        correlation::{CorrelationId, correlate},
        cors::cors_layer,
        errors::ApiError,
        grpc_web::GrpcWebOrPlainLayer,
        limits::{CallLimits, limit_calls},
        policy::{PolicyState, bucket, enforce_policy},
        reject,
    },
    store::{Store, StoreError, seed},
};

/// How long the answer to a keepalive ping may take before the connection is closed.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {0}: {1}")]
    DataDir(std::path::PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Redis configuration: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("payment provider: {0}")]
    Payments(#[from] ProviderError),
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A generated service with the server's message limits and compression: gzip and zstd accepted, and
/// used for responses when the caller accepts them.
macro_rules! configured {
    ($service:expr, $max_message:expr) => {
        $service
            .max_decoding_message_size($max_message)
            .max_encoding_message_size($max_message)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd)
    };
}

type FlightServer = FlightServiceServer<FlightApi>;
type AuthServer = AuthServiceServer<AuthApi>;
type BookingServer = BookingServiceServer<BookingApi>;
type PaymentServer = PaymentServiceServer<PaymentApi>;
type AirportServer = AirportServiceServer<AirportApi>;
type WaitingRoomServer = WaitingRoomServiceServer<WaitingRoomApi>;
type AdminServer = AdminServiceServer<AdminApi>;

pub struct Application {
    listener: Arc<TcpListener>,
    local_addr: SocketAddr,
    router: axum::Router,
    readiness: Readiness,
    /// The operator endpoint serving `GET /metrics`, once started.
    metrics_endpoint: Option<tokio::task::JoinHandle<()>>,
    store: Store,
    redis: Option<Redis>,
    background: Background,
    clock: Clock,
    feed: AvailabilityFeed,
    config: Config,
}

/// Creates the SQLite data directory when needed, then applies pending migrations.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    if config.database.is_sqlite {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| StartupError::DataDir(config.data_dir.clone(), e))?;
    }
    Ok(Store::migrate(&config.database).await?)
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As [`Self::build`], with the clock the use cases read (tests move it forward to expire holds).
    pub async fn build_with_clock(config: Config, clock: Clock) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.listen_addr).await.map_err(StartupError::Listen)?;
        Self::build_on(config, clock, Arc::new(listener)).await
    }

    /// Connects, migrates, seeds and wires the services, to serve on `listener` (which a starting server
    /// may be accepting on meanwhile: see [`run_when_ready`]).
    async fn build_on(config: Config, clock: Clock, listener: Arc<TcpListener>) -> Result<Self, StartupError> {
        migrate(&config).await?;
        let store = Store::connect(&config.database).await?;
        tracing::info!(backend = ?store.backend(), "database ready");
        if config.seed_demo_data {
            let flights = seed::seed_demo_data(&store, clock.now(), config.demo_days).await?;
            tracing::info!(flights, days = config.demo_days, "demo data seeded");
        }
        let redis = match &config.redis {
            Some(redis) => Some(Redis::connect(redis).await?),
            None => None,
        };
        let cache = match (config.search_cache_ttl, &redis) {
            (None, _) => SearchCache::Disabled,
            (Some(ttl), Some(redis)) => SearchCache::redis(redis.clone(), ttl),
            (Some(ttl), None) => SearchCache::Local(LocalCache::new(ttl)),
        };

        let (tokens, passes) = signing(&config);
        let limiter = match &config.rate_limits {
            Some(limits) => RateLimiter::new(
                [
                    (bucket(RateLimitClass::Auth), limits.auth),
                    (bucket(RateLimitClass::Search), limits.search),
                    (bucket(RateLimitClass::Read), limits.read),
                    (bucket(RateLimitClass::Mutation), limits.mutation),
                    (LOGIN_FAILURES_BUCKET, limits.login_failures),
                    (webhooks::WEBHOOK_BUCKET, limits.webhook),
                ],
                redis.clone(),
            ),
            None => RateLimiter::disabled(),
        };
        let accounts =
            Accounts::new(store.clone(), tokens.clone(), limiter.clone(), config.auth.refresh_token_ttl, clock.clone());

        let feed = AvailabilityFeed::new(redis.clone());
        // One idempotency store for every keyed call: a key is the caller's across all services.
        let idempotency = Idempotency::new(store.clone());
        let watch_limits = WatchLimits {
            total: config.limits.max_watch_streams,
            per_caller: config.limits.max_watch_streams_per_caller,
        };
        let rooms = WaitingRooms::new(
            store.clone(),
            idempotency.clone(),
            feed.clone(),
            Queues::new(redis.clone()),
            passes,
            clock.clone(),
            watch_limits,
        );
        let bookings = Bookings::new(
            store.clone(),
            idempotency.clone(),
            clock.clone(),
            feed.clone(),
            rooms.clone(),
            config.bookings.clone(),
        );

        let max_message = config.limits.max_message_bytes;
        let airports = configured!(
            AirportServiceServer::new(AirportApi::new(AirportDirectory::new(
                store.clone(),
                idempotency.clone(),
                cache.clone(),
                clock.clone(),
            ))),
            max_message
        );
        let flights = configured!(
            FlightServiceServer::new(FlightApi::new(
                FlightCatalog::new(
                    store.clone(),
                    idempotency.clone(),
                    cache,
                    feed.clone(),
                    clock.clone(),
                    watch_limits
                ),
                clock.clone(),
            )),
            max_message
        );
        let auth = configured!(AuthServiceServer::new(AuthApi::new(accounts)), max_message);
        let booking_service =
            configured!(BookingServiceServer::new(BookingApi::new(bookings.clone(), clock.clone())), max_message);
        let waiting_room_service =
            configured!(WaitingRoomServiceServer::new(WaitingRoomApi::new(rooms, clock.clone())), max_message);

        let PaymentSetup { provider, simulated, webhook_secrets } = payment_provider(&config, &clock)?;
        let signal = OutboxSignal::default();
        // A payment call that dies keeps its key reserved for two call deadlines; a retry then takes it over.
        let key_lease =
            chrono::TimeDelta::from_std(config.limits.request_timeout * 2).unwrap_or(chrono::TimeDelta::minutes(1));
        let payments = Payments::new(
            store.clone(),
            idempotency.clone(),
            clock.clone(),
            feed.clone(),
            provider,
            signal.clone(),
            key_lease,
        );
        let mailer = Mailer::new(&config.mail)?;
        tracing::info!(to = mailer.describe(), "customers' emails");
        let notifications = Notifications::new(store.clone(), mailer, clock.clone());
        let outbox = Outbox::new(
            store.clone(),
            payments.clone(),
            notifications,
            clock.clone(),
            signal.clone(),
            config.jobs.concurrency,
        );
        let retention = Retention::new(store.clone(), clock.clone());
        let admin_service = configured!(
            AdminServiceServer::new(AdminApi::new(JobQueue::new(store.clone(), idempotency, clock.clone(), signal))),
            max_message
        );
        let payment_service = configured!(PaymentServiceServer::new(PaymentApi::new(payments.clone())), max_message);
        let (health, health_service) = tonic_health::server::health_reporter();
        let readiness = Readiness::new(
            health,
            vec![
                FlightServer::NAME,
                AuthServer::NAME,
                BookingServer::NAME,
                PaymentServer::NAME,
                AirportServer::NAME,
                WaitingRoomServer::NAME,
                AdminServer::NAME,
            ],
        )
        .await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(aerobook_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc error details, so reflection clients can decode grpc-status-details-bin.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let call_limits = CallLimits::new(config.limits.request_timeout, config.limits.max_concurrent_calls);
        let router = Routes::new(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(flights)
            .add_service(auth)
            .add_service(booking_service)
            .add_service(payment_service)
            .add_service(airports)
            .add_service(waiting_room_service)
            .add_service(admin_service)
            .into_axum_router()
            .route("/healthz", get(readiness_probe).with_state(readiness.clone()))
            .merge(webhooks::router(payments.clone(), webhook_secrets, limiter.clone()))
            .layer(
                ServiceBuilder::new()
                    .layer(axum::middleware::from_fn(correlate))
                    .layer(axum::middleware::from_fn_with_state(
                        TrustedProxies::new(config.trusted_proxies.clone()),
                        resolve_client_address,
                    ))
                    .layer(axum::middleware::from_fn_with_state(call_limits, limit_calls))
                    .layer(axum::middleware::from_fn_with_state(
                        Arc::new(PolicyState { tokens, limiter }),
                        enforce_policy,
                    )),
            );

        let local_addr = listener.local_addr().map_err(StartupError::Listen)?;
        if let Some(simulated) = &simulated {
            simulated.deliver_to(format!("http://{local_addr}{}", webhooks::WEBHOOK_PATH));
        }
        Ok(Self {
            listener,
            local_addr,
            router,
            readiness,
            metrics_endpoint: None,
            store,
            redis,
            background: Background { bookings, payments, outbox, retention, simulated },
            clock,
            feed,
            config,
        })
    }

    /// The server's scheduled work (hold sweeps, outbox jobs, reconciliation), to run on demand.
    pub fn background(&self) -> Background {
        self.background.clone()
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves Prometheus `GET /metrics` from `registry` on `AEROBOOK_METRICS_ADDR` (when set), until the
    /// server stops.
    pub async fn serve_metrics(&mut self, registry: prometheus::Registry) -> Result<(), StartupError> {
        let Some(addr) = self.config.telemetry.metrics_addr else {
            return Ok(());
        };
        let listener = TcpListener::bind(addr).await.map_err(StartupError::Listen)?;
        let bound = listener.local_addr().map_err(StartupError::Listen)?;
        tracing::info!(%bound, "serving Prometheus metrics on /metrics");
        self.metrics_endpoint = Some(tokio::spawn(crate::api::metrics::serve(listener, registry)));
        Ok(())
    }

    /// Serves until `shutdown` resolves. Then health turns NOT_SERVING (for watchers and on open
    /// connections) and new calls are still taken for the drain delay, so load balancers stop sending first;
    /// then no new connections are accepted, and in-flight calls get the configured grace period to finish;
    /// after it, this returns without waiting for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Self {
            listener,
            local_addr,
            router,
            readiness,
            metrics_endpoint,
            store,
            redis,
            background: Background { bookings, payments, outbox, retention, .. },
            clock,
            feed,
            config,
        } = self;
        tracing::info!(%local_addr, "serving gRPC, gRPC-web and HTTP");
        let sweeping = tokio::spawn(sweeper::run(bookings, retention, clock.clone(), config.bookings.sweep_interval));
        let (stop_working, working_stops) = oneshot::channel::<()>();
        let mut working = tokio::spawn(jobs::outbox::run(outbox, working_stops));
        let reconciling = tokio::spawn(jobs::reconciler::run(payments, config.payments.reconcile_interval));
        let probing = tokio::spawn(readiness.clone().probe(store.clone(), config.transport.health_probe_interval));
        let sampling =
            config.telemetry.exports_metrics().then(|| tokio::spawn(gauges::run(store.clone(), clock.clone())));
        let relay = feed.listen().await;
        let (draining_tx, draining_rx) = oneshot::channel::<()>();
        let drain = config.limits.shutdown_drain;
        let signal = async move {
            shutdown.await;
            tracing::info!(
                drain_s = drain.as_secs(),
                "shutting down: NOT_SERVING, still taking calls for the drain delay"
            );
            readiness.drain().await;
            tokio::time::sleep(drain).await;
            tracing::info!("shutting down: listener closed, draining in-flight calls");
            let _ = draining_tx.send(());
        };
        let transport = &config.transport;
        let server = tonic::transport::Server::builder()
            .accept_http1(true)
            // Pings idle connections, so a client that vanished (its streams included) is closed.
            .http2_keepalive_interval(Some(transport.keepalive_interval))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            // Old connections are asked to go away, so clients rebalance onto new instances.
            .max_connection_age(transport.max_connection_age)
            .max_concurrent_streams(Some(transport.max_concurrent_streams))
            .layer(cors_layer(&config.cors_origins))
            .layer(GrpcWebOrPlainLayer)
            .add_routes(Routes::from(router))
            .serve_with_incoming_shutdown(connections(listener), signal);
        let grace = config.limits.shutdown_grace;
        let drain_deadline = async move {
            match draining_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        let drained = tokio::select! {
            result = server => {
                result?;
                true
            }
            () = drain_deadline => {
                // Connections run in tasks of their own: they end with the process (or the test's runtime).
                tracing::warn!(grace_s = grace.as_secs(), "calls still open after the grace period; no longer waiting");
                false
            }
        };
        probing.abort();
        if let Some(sampling) = sampling {
            sampling.abort();
        }
        if let Some(metrics_endpoint) = metrics_endpoint {
            metrics_endpoint.abort();
        }
        sweeping.abort();
        // Jobs already running get the grace period to finish (an email half sent is the one way to send it
        // twice); the rest wait in the database for the next instance.
        let _ = stop_working.send(());
        if tokio::time::timeout(grace, &mut working).await.is_err() {
            working.abort();
            tracing::warn!(
                grace_s = grace.as_secs(),
                "background jobs still running after the grace period; they run again after their lease"
            );
        }
        reconciling.abort();
        if let Some(relay) = relay {
            relay.stop();
        }
        if let Some(redis) = redis {
            redis.quit().await;
        }
        // Calls still running after the grace period keep their pool; a clean drain releases it.
        if drained && let Err(error) = store.close().await {
            tracing::warn!(%error, "closing the database pool");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a start waits before asking an unreachable database again, at first and at most.
const START_RETRY_FIRST: Duration = Duration::from_millis(250);
const START_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long the starting server gets to close its connections (health watchers) at the handover.
const HANDOVER_WAIT: Duration = Duration::from_secs(1);

/// What `aerobook-server` runs: serves on `listener` from the first moment. Until the database answers
/// and is migrated (and the demo data seeded), health says NOT_SERVING (`/healthz` 503) and every other call
/// is answered `SERVICE_UNAVAILABLE` (retryable); a start that fails on the database is retried. Then the
/// application takes over the same listener (no connection refused in between) and serves until
/// `shutdown` resolves.
pub async fn run_when_ready(
    config: Config,
    listener: TcpListener,
    metrics: Option<prometheus::Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let listener = Arc::new(listener);
    let mut shutdown = Box::pin(shutdown);
    let (handover, handed_over) = watch::channel(false);
    let mut starting = tokio::spawn(serve_starting(listener.clone(), config.clone(), handed_over));
    let mut retry = START_RETRY_FIRST;
    let mut application = loop {
        match Application::build_on(config.clone(), Clock::system(), listener.clone()).await {
            Ok(application) => break application,
            Err(StartupError::Store(error)) => {
                tracing::error!(%error, retry_in_ms = retry.as_millis() as u64, "database not ready: NOT_SERVING, retrying");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = &mut shutdown => {
                        tracing::info!("stopped before the database was ready");
                        starting.abort();
                        return Ok(());
                    }
                }
                retry = (retry * 2).min(START_RETRY_MAX);
            }
            Err(other) => {
                starting.abort();
                return Err(other);
            }
        }
    };
    let _ = handover.send(true);
    // Health watches end at the handover, so the starting server's connections close at once; should one
    // not, it is cut.
    if tokio::time::timeout(HANDOVER_WAIT, &mut starting).await.is_err() {
        starting.abort();
    }
    if let Some(registry) = metrics {
        application.serve_metrics(registry).await?;
    }
    application.run_until_stopped(shutdown).await
}

/// The server of a start waiting for its database: health (NOT_SERVING), `/healthz` (503), and
/// `SERVICE_UNAVAILABLE` with the error contract for everything else, until `handover` turns true.
async fn serve_starting(listener: Arc<TcpListener>, config: Config, handover: watch::Receiver<bool>) {
    let health = HealthServer::new(StartingHealth { handover: handover.clone() });
    let router = Routes::new(health)
        .into_axum_router()
        .route("/healthz", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "starting\n") }))
        .fallback(|request: axum::extract::Request| async move {
            reject(ApiError::unavailable(), &CorrelationId::of(request.extensions()))
        })
        .layer(axum::middleware::from_fn(correlate));
    let mut handed_over = handover;
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(cors_layer(&config.cors_origins))
        .layer(GrpcWebOrPlainLayer)
        .add_routes(Routes::from(router))
        .serve_with_incoming_shutdown(connections(listener), async move {
            let _ = handed_over.wait_for(|done| *done).await;
        })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "the starting server failed");
    }
}

/// The health service of a starting server: NOT_SERVING for every service; a watch reports it, then ends
/// at the handover (the watcher asks the application next).
struct StartingHealth {
    handover: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Health for StartingHealth {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse { status: ServingStatus::NotServing.into() }))
    }

    type WatchStream = futures::stream::BoxStream<'static, Result<HealthCheckResponse, tonic::Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        use futures::StreamExt as _;
        let mut handover = self.handover.clone();
        let not_serving =
            futures::stream::once(async { Ok(HealthCheckResponse { status: ServingStatus::NotServing.into() }) });
        let until_handover = futures::stream::once(async move {
            let _ = handover.wait_for(|done| *done).await;
        })
        .filter_map(|()| async { None });
        Ok(tonic::Response::new(not_serving.chain(until_handover).boxed()))
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off (small gRPC frames go out at once).
fn connections(listener: Arc<TcpListener>) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, _)| stream.set_nodelay(true).map(|()| stream));
        Some((accepted, listener))
    })
}

/// The configured signing keys, or a random key for development (tokens then die with the process).
/// The access-token issuer, and the waiting-room pass signer keyed from the same secrets (so that every
/// instance sharing the token key accepts every instance's passes).
fn signing(config: &Config) -> (AccessTokens, PassSigner) {
    let previous = config.auth.jwt_previous_secret.as_ref().map(|s| s.expose().as_bytes());
    let current = match &config.auth.jwt_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "AEROBOOK_JWT_SECRET is not set: signing tokens with a random key; they stop working at restart"
            );
            tokens::random_secret()
        }
    };
    (AccessTokens::new(&current, previous, config.auth.access_token_ttl), PassSigner::new(&current, previous))
}

/// The payment provider, the simulation behind it when there is one, and the webhook signing secrets.
struct PaymentSetup {
    provider: PaymentProvider,
    simulated: Option<Arc<SimulatedProvider>>,
    webhook_secrets: Vec<Secret>,
}

/// Stripe, or the simulated provider signing its webhook events with the configured secret or a random
/// one (configuration allows the simulation only on the embedded database or when asked for explicitly).
fn payment_provider(config: &Config, clock: &Clock) -> Result<PaymentSetup, StartupError> {
    let payments = &config.payments;
    if let PaymentMode::Stripe(key) = &payments.mode {
        let stripe = StripeProvider::new(key.expose(), payments.stripe_api_base.as_deref(), payments.provider_timeout)?;
        tracing::info!("payments: Stripe");
        return Ok(PaymentSetup {
            provider: PaymentProvider::Stripe(Arc::new(stripe)),
            simulated: None,
            webhook_secrets: payments.webhook_secrets.clone(),
        });
    }
    let secrets = match payments.webhook_secrets.is_empty() {
        true => vec![Secret::new(format!("whsec_sim_{}", uuid::Uuid::new_v4().simple()))],
        false => payments.webhook_secrets.clone(),
    };
    tracing::warn!("payments are simulated: every card succeeds and nothing is charged");
    let simulated = Arc::new(SimulatedProvider::new(secrets[0].clone(), payments.simulated_delay, clock.clone()));
    Ok(PaymentSetup {
        provider: PaymentProvider::Simulated(simulated.clone()),
        simulated: Some(simulated),
        webhook_secrets: secrets,
    })
}

/// Plain-HTTP readiness for load balancers and container health checks: 200 while serving, 503 while the
/// database does not answer or once draining.
async fn readiness_probe(State(readiness): State<Readiness>) -> (StatusCode, &'static str) {
    if readiness.is_serving() {
        (StatusCode::OK, "serving\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
    }
}
