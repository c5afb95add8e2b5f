//! The composition root: connects, migrates and seeds, then wires every use case, service and layer.

use std::sync::Arc;

use aerobook_proto::v1::{
    RateLimitClass, admin_service_server::AdminServiceServer, airport_service_server::AirportServiceServer,
    auth_service_server::AuthServiceServer, booking_service_server::BookingServiceServer,
    check_in_service_server::CheckInServiceServer, flight_service_server::FlightServiceServer,
    payment_service_server::PaymentServiceServer, waiting_room_service_server::WaitingRoomServiceServer,
};
use axum::{extract::State, http::StatusCode, routing::get};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::{codec::CompressionEncoding, server::NamedService as _};
use tower::ServiceBuilder;

use super::{
    Application, StartupError, migrate,
    providers::{PaymentSetup, payment_provider, signing},
};
use crate::{
    api::{
        admin::AdminApi, airports::AirportApi, auth::AuthApi, bookings::BookingApi, check_in::CheckInApi,
        flights::FlightApi, payments::PaymentApi, waiting_rooms::WaitingRoomApi, webhooks,
    },
    app::{
        accounts::{Accounts, LOGIN_FAILURES_BUCKET, RefreshLifetimes},
        admin::JobQueue,
        airports::AirportDirectory,
        bookings::Bookings,
        check_in::CheckIns,
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
    config::Config,
    infra::{
        availability::AvailabilityFeed,
        cache::{LocalCache, SearchCache},
        clock::Clock,
        mail::Mailer,
        passwords::{PasswordLimits, Passwords},
        rate_limit::RateLimiter,
        redis::Redis,
        waiting_room::Queues,
    },
    jobs::{Background, health::Readiness},
    layers::{
        client_address::{TrustedProxies, resolve_client_address},
        correlation::correlate,
        limits::{CallLimits, limit_calls},
        policy::{PolicyState, bucket, enforce_policy},
    },
    store::{Store, seed},
};

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
type CheckInServer = CheckInServiceServer<CheckInApi>;

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
    /// may be accepting on meanwhile: see [`super::run_when_ready`]).
    pub(super) async fn build_on(
        config: Config,
        clock: Clock,
        listener: Arc<TcpListener>,
    ) -> Result<Self, StartupError> {
        migrate(&config).await?;
        let mut store = Store::connect(&config.database).await?;
        if let Some(replicas) = &config.replicas {
            store = store.with_replicas(&config.database, replicas).await?;
            tracing::info!(replicas = replicas.urls.len(), max_lag = ?replicas.max_lag, "read replicas for search");
        }
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
        let refresh =
            RefreshLifetimes { token: config.auth.refresh_token_ttl, session: config.auth.refresh_session_max };
        let passwords = Passwords::new(PasswordLimits {
            at_once: config.auth.password_checks_at_once,
            queued: config.auth.password_checks_queued,
        });
        let accounts = Accounts::new(store.clone(), tokens.clone(), limiter.clone(), passwords, refresh, clock.clone());

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
        // Wakes this instance's outbox worker when a use case commits a job.
        let signal = OutboxSignal::default();
        let bookings = Bookings::new(
            store.clone(),
            idempotency.clone(),
            clock.clone(),
            feed.clone(),
            rooms.clone(),
            config.bookings.clone(),
            signal.clone(),
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
        let check_ins = CheckIns::new(
            store.clone(),
            idempotency.clone(),
            clock.clone(),
            config.bookings.check_in_opens_before,
            signal.clone(),
        );
        let check_in_service = configured!(CheckInServiceServer::new(CheckInApi::new(check_ins)), max_message);

        let PaymentSetup { provider, simulated, webhook_secrets } = payment_provider(&config, &clock)?;
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
            (key_lease, config.bookings.ticket_prefix.clone()),
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
                CheckInServer::NAME,
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
        let call_limits = CallLimits::new(
            config.limits.request_timeout,
            config.limits.max_concurrent_calls,
            config.limits.max_waiting_calls,
        );
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
            .add_service(check_in_service)
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
