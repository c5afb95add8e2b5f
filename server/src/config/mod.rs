//! Typed configuration, read in one place from the environment and an optional TOML file.
//!
//! The file (`--config PATH` or `AEROBOOK_CONFIG`) holds the same keys as the environment variables, e.g.
//! `AEROBOOK_LISTEN_ADDR = "0.0.0.0:50051"`; the environment wins over the file. Nothing else in the
//! server reads the environment. Secrets are wrapped in [`Secret`] so they never reach a log line.

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

mod mail;
mod payments;
mod read;
mod replicas;
mod source;
mod values;

pub(crate) use self::source::parse_file;
pub use self::{
    mail::MailConfig,
    payments::{PaymentConfig, PaymentMode},
    replicas::ReplicaConfig,
    source::Notice,
    values::{Cidr, MIN_SECRET_BYTES, OriginPattern, Quota},
};
use self::{
    mail::{mail_from, smtp_url},
    payments::payment_config,
    read::{invalid, parse, parse_in, quota, secret},
};

/// Upper bound of the search cache TTL: search results may be stale for at most this long.
pub const MAX_SEARCH_CACHE_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// May carry a password.
    pub url: Secret,
    /// PostgreSQL schema to use (created by the operator); `None` uses the server's default search path.
    pub schema: Option<String>,
    pub max_connections: u32,
    pub is_sqlite: bool,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: Secret,
    /// Prepended to every key, so several deployments (or test runs) can share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Server-side deadline of every call. A shorter client `grpc-timeout` is enforced by tonic before our
    /// layers and answers `CANCELLED` without our error details (the client has stopped listening by then).
    pub request_timeout: Duration,
    /// Calls executing at once across all connections; more wait for a slot within their deadline.
    pub max_concurrent_calls: usize,
    /// Calls that may wait for a slot at once; past it a call is shed: answered `SERVICE_UNAVAILABLE`
    /// (retryable) at once instead of waiting out its deadline, so a slow database never queues every call.
    pub max_waiting_calls: usize,
    /// Largest encoded request or response message.
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight calls and streams before closing connections.
    pub shutdown_grace: Duration,
    /// Between health turning NOT_SERVING and the listener closing at shutdown, so that load balancers stop
    /// sending new calls first.
    pub shutdown_drain: Duration,
    /// `WatchAvailability` streams open at once on this instance, and per caller (a signed-in user, or
    /// an anonymous client's address). Streams hold no call slot once open, so these bound them instead.
    pub max_watch_streams: usize,
    pub max_watch_streams_per_caller: usize,
}

/// HTTP/2 connection management and the readiness probe.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Idle connections are pinged this often (and closed when a ping is not answered in time).
    pub keepalive_interval: Duration,
    /// A connection is asked to go away (GOAWAY) after this long, so clients spread over new instances.
    pub max_connection_age: Duration,
    /// Streams (calls) one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// How often the database is probed for the health service.
    pub health_probe_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// Where traces and metrics go. The other standard `OTEL_*` variables are read by the OpenTelemetry SDK.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `None`: nothing is exported over OTLP.
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: OtlpProtocol,
    /// PEM file of the CA that signed the collector's certificate (`https://` endpoints), trusted besides
    /// the public roots.
    pub otlp_certificate: Option<PathBuf>,
    /// Operator address serving Prometheus `GET /metrics`; `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Which spans are exported (`EnvFilter` syntax), on their own: `RUST_LOG` filters only the log lines,
    /// so the usual production log level (`warn`) still exports every call's span and its children.
    pub trace_filter: String,
}

impl TelemetryConfig {
    /// Whether metrics go anywhere (OTLP or Prometheus); the gauge sampler runs only then.
    pub fn exports_metrics(&self) -> bool {
        self.otlp_endpoint.is_some() || self.metrics_addr.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Signs access tokens; `None` means a random key per start (development only).
    pub jwt_secret: Option<Secret>,
    /// The key before the last rotation: tokens it signed still verify until they expire.
    pub jwt_previous_secret: Option<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// A sign-in's absolute lifetime: refreshing never extends it.
    pub refresh_session_max: Duration,
    /// Argon2 hashes (sign-in, registration) running at once, and waiting beyond those; more are refused.
    pub password_checks_at_once: usize,
    pub password_checks_queued: usize,
}

/// Token buckets per caller (user, or client address when anonymous) and per RPC class, plus failed
/// sign-ins per email address and client, and webhook deliveries per client address.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub auth: Quota,
    pub search: Quota,
    pub read: Quota,
    pub mutation: Quota,
    pub login_failures: Quota,
    pub webhook: Quota,
}

/// The URL forms of `REDIS_URL` (fred's): one server, a cluster (`?node=host:port` for more seed nodes), or
/// a set watched by Sentinel (`redis-sentinel://host:port/0?sentinelServiceName=mymaster&node=...`); the
/// `rediss` forms use TLS.
const REDIS_SCHEMES: [&str; 6] =
    ["redis", "rediss", "redis-cluster", "rediss-cluster", "redis-sentinel", "rediss-sentinel"];

#[derive(Debug, Clone)]
pub struct BookingConfig {
    /// How long a hold keeps its seats (a span of the booking clock).
    pub hold_ttl: chrono::TimeDelta,
    /// Live holds one user may have on one flight.
    pub max_holds_per_user: u32,
    /// How often the sweeper expires due holds and forgets expired idempotency keys.
    pub sweep_interval: chrono::TimeDelta,
    /// The three digits every ticket number starts with.
    pub ticket_prefix: crate::domain::ticket::TicketPrefix,
    /// How long before departure online check-in opens (`AEROBOOK_CHECK_IN_OPENS_HOURS`).
    pub check_in_opens_before: chrono::TimeDelta,
}

/// The background job runner.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Jobs one instance runs at the same time.
    pub concurrency: usize,
    /// How often a worker looks for jobs it was not woken for (written by another instance, or due for a
    /// retry); jobs this instance writes wake it at once.
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub replicas: Option<ReplicaConfig>,
    pub redis: Option<RedisConfig>,
    pub seed_demo_data: bool,
    pub demo_days: u64,
    /// `None` disables the search cache.
    pub search_cache_ttl: Option<Duration>,
    pub cors_origins: Vec<OriginPattern>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers name the real client; empty believes none.
    pub trusted_proxies: Vec<Cidr>,
    pub limits: Limits,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub telemetry: TelemetryConfig,
    pub transport: TransportConfig,
    pub auth: AuthConfig,
    /// `None` when `AEROBOOK_RATE_LIMITS=disabled`.
    pub rate_limits: Option<RateLimits>,
    pub bookings: BookingConfig,
    pub payments: PaymentConfig,
    pub mail: MailConfig,
    pub jobs: JobConfig,
    /// Unknown and renamed names met while reading, for the server to warn about once logging is up.
    pub notices: Vec<Notice>,
}

impl Config {
    /// Reads the config file (if `file` or `AEROBOOK_CONFIG` names one), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = file.map(Path::to_path_buf).or_else(|| env.get("AEROBOOK_CONFIG").map(PathBuf::from));
        let file = match file {
            Some(path) => source::read_file(&path)?,
            None => BTreeMap::new(),
        };
        let (values, mut notices) = source::merge(file, env);
        let mut config = Self::from_source(&values)?;
        notices.append(&mut config.notices);
        config.notices = notices;
        Ok(config)
    }

    /// Builds the configuration from key/value pairs (the environment's names); absent keys take defaults.
    pub fn from_source(source: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let (source, notices) = source::resolve_renamed(source);
        let get = |key: &str| source.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let data_dir = PathBuf::from(get("AEROBOOK_DATA_DIR").unwrap_or("./data"));
        let mail_dir = data_dir.join("mail");
        let database_url = match get("DATABASE_URL") {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("aerobook.db").display()),
        };
        let is_sqlite = database_url.starts_with("sqlite:");
        if !is_sqlite && !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
            return Err(invalid("DATABASE_URL", "must start with postgres://, postgresql:// or sqlite:"));
        }
        let schema = get("AEROBOOK_DATABASE_SCHEMA").map(str::to_owned);
        if let Some(schema) = &schema {
            let valid = !is_sqlite
                && schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(invalid("AEROBOOK_DATABASE_SCHEMA", "PostgreSQL only; lower-case letters, digits and _"));
            }
        }
        let key_prefix = get("AEROBOOK_REDIS_KEY_PREFIX").unwrap_or("aerobook:");
        if key_prefix.contains(['{', '}']) {
            // A brace would become the hash tag of every key, putting them all in one cluster slot.
            return Err(invalid("AEROBOOK_REDIS_KEY_PREFIX", "must not contain { or }"));
        }
        let redis = get("REDIS_URL")
            .map(|url| -> Result<RedisConfig, ConfigError> {
                if !REDIS_SCHEMES.iter().any(|scheme| url.starts_with(&format!("{scheme}://"))) {
                    return Err(invalid(
                        "REDIS_URL",
                        "must start with redis://, redis-cluster:// or redis-sentinel:// (rediss... for TLS)",
                    ));
                }
                Ok(RedisConfig { url: Secret::new(url), key_prefix: key_prefix.to_owned() })
            })
            .transpose()?;
        let cache_ttl_seconds: u64 =
            parse_in(get, "AEROBOOK_SEARCH_CACHE_TTL_SECONDS", 30, 0..=MAX_SEARCH_CACHE_TTL.as_secs())?;
        let cors_origins = get("AEROBOOK_CORS_ORIGINS")
            .unwrap_or("http://localhost:*,http://127.0.0.1:*")
            .split(',')
            .map(|origin| {
                OriginPattern::parse(origin.trim()).map_err(|reason| invalid("AEROBOOK_CORS_ORIGINS", reason))
            })
            .collect::<Result<_, _>>()?;
        let trusted_proxies = get("AEROBOOK_TRUSTED_PROXIES")
            .into_iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|cidr| !cidr.is_empty())
            .map(|cidr| Cidr::parse(cidr).map_err(|reason| invalid("AEROBOOK_TRUSTED_PROXIES", reason)))
            .collect::<Result<_, _>>()?;
        let request_timeout =
            Duration::from_millis(parse_in(get, "AEROBOOK_REQUEST_TIMEOUT_MS", 10_000, 100..=120_000)?);
        let payments = payment_config(get, is_sqlite, request_timeout)?;
        let jwt_secret = secret(get, "AEROBOOK_JWT_SECRET")?;
        if jwt_secret.is_none() && (!is_sqlite || redis.is_some()) {
            // Each instance would sign with a key of its own: behind a load balancer a signed-in customer
            // is refused by every other instance, and every restart signs everyone out.
            return Err(invalid(
                "AEROBOOK_JWT_SECRET",
                "is required outside the embedded defaults (with PostgreSQL or Redis): every instance must sign \
                 and check tokens and waiting-room passes with the same key",
            ));
        }
        Ok(Self {
            listen_addr: parse(get, "AEROBOOK_LISTEN_ADDR", "127.0.0.1:50051".parse().expect("valid literal"))?,
            data_dir,
            database: DatabaseConfig {
                url: Secret::new(database_url),
                schema,
                max_connections: parse_in(get, "AEROBOOK_DATABASE_MAX_CONNECTIONS", 16, 1..=1000)?,
                is_sqlite,
            },
            replicas: replicas::replica_config(get, is_sqlite)?,
            redis,
            seed_demo_data: parse(get, "AEROBOOK_SEED_DEMO_DATA", is_sqlite)?,
            demo_days: parse_in(get, "AEROBOOK_DEMO_DAYS", 30, 1..=366)?,
            search_cache_ttl: (cache_ttl_seconds > 0).then(|| Duration::from_secs(cache_ttl_seconds)),
            cors_origins,
            trusted_proxies,
            limits: Limits {
                request_timeout,
                max_concurrent_calls: parse_in(get, "AEROBOOK_MAX_CONCURRENT_CALLS", 1024, 1..=100_000)?,
                max_waiting_calls: parse_in(get, "AEROBOOK_MAX_WAITING_CALLS", 4096, 0..=1_000_000)?,
                max_message_bytes: parse_in(get, "AEROBOOK_MAX_MESSAGE_BYTES", 1 << 20, 4096..=16 << 20)?,
                shutdown_grace: Duration::from_secs(parse_in(get, "AEROBOOK_SHUTDOWN_GRACE_SECONDS", 30, 0..=600)?),
                shutdown_drain: Duration::from_secs(parse_in(get, "AEROBOOK_SHUTDOWN_DRAIN_SECONDS", 5, 0..=300)?),
                max_watch_streams: parse_in(get, "AEROBOOK_MAX_WATCH_STREAMS", 20_000, 1..=1_000_000)?,
                max_watch_streams_per_caller: parse_in(get, "AEROBOOK_MAX_WATCH_STREAMS_PER_CALLER", 16, 1..=10_000)?,
            },
            log_format: match get("AEROBOOK_LOG_FORMAT").unwrap_or("text") {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(invalid("AEROBOOK_LOG_FORMAT", "must be text or json")),
            },
            log_filter: get("RUST_LOG").unwrap_or("info").to_owned(),
            telemetry: TelemetryConfig {
                otlp_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned),
                otlp_protocol: match get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or("grpc") {
                    "grpc" => OtlpProtocol::Grpc,
                    "http/protobuf" => OtlpProtocol::HttpProtobuf,
                    _ => return Err(invalid("OTEL_EXPORTER_OTLP_PROTOCOL", "must be grpc or http/protobuf")),
                },
                otlp_certificate: get("OTEL_EXPORTER_OTLP_CERTIFICATE").map(PathBuf::from),
                trace_filter: get("AEROBOOK_TRACE_FILTER").unwrap_or("info").to_owned(),
                metrics_addr: get("AEROBOOK_METRICS_ADDR")
                    .map(|addr| {
                        addr.parse()
                            .map_err(|e: std::net::AddrParseError| invalid("AEROBOOK_METRICS_ADDR", e.to_string()))
                    })
                    .transpose()?,
            },
            transport: TransportConfig {
                keepalive_interval: Duration::from_secs(parse_in(
                    get,
                    "AEROBOOK_HTTP2_KEEPALIVE_SECONDS",
                    30,
                    1..=3_600,
                )?),
                max_connection_age: Duration::from_secs(parse_in(
                    get,
                    "AEROBOOK_MAX_CONNECTION_AGE_SECONDS",
                    1_800,
                    10..=86_400,
                )?),
                max_concurrent_streams: parse_in(get, "AEROBOOK_MAX_CONCURRENT_STREAMS", 200, 1..=10_000)?,
                health_probe_interval: Duration::from_millis(parse_in(
                    get,
                    "AEROBOOK_HEALTH_PROBE_INTERVAL_MS",
                    2_000,
                    100..=60_000,
                )?),
            },
            auth: AuthConfig {
                jwt_secret,
                jwt_previous_secret: secret(get, "AEROBOOK_JWT_PREVIOUS_SECRET")?,
                access_token_ttl: Duration::from_secs(parse_in(
                    get,
                    "AEROBOOK_ACCESS_TOKEN_TTL_SECONDS",
                    900,
                    10..=86_400,
                )?),
                refresh_token_ttl: Duration::from_secs(parse_in(
                    get,
                    "AEROBOOK_REFRESH_TOKEN_TTL_SECONDS",
                    30 * 86_400,
                    60..=366 * 86_400,
                )?),
                refresh_session_max: Duration::from_secs(parse_in(
                    get,
                    "AEROBOOK_REFRESH_SESSION_MAX_SECONDS",
                    90 * 86_400,
                    60..=366 * 86_400,
                )?),
                password_checks_at_once: parse_in(
                    get,
                    "AEROBOOK_PASSWORD_CHECKS_AT_ONCE",
                    std::thread::available_parallelism().map_or(1, usize::from),
                    1..=256,
                )?,
                password_checks_queued: parse_in(get, "AEROBOOK_PASSWORD_CHECKS_QUEUED", 32, 0..=10_000)?,
            },
            rate_limits: match get("AEROBOOK_RATE_LIMITS").unwrap_or("enabled") {
                "enabled" => Some(RateLimits {
                    auth: quota(get, "AEROBOOK_RATE_LIMIT_AUTH", "20/60")?,
                    search: quota(get, "AEROBOOK_RATE_LIMIT_SEARCH", "600/60")?,
                    read: quota(get, "AEROBOOK_RATE_LIMIT_READ", "600/60")?,
                    mutation: quota(get, "AEROBOOK_RATE_LIMIT_MUTATION", "120/60")?,
                    login_failures: quota(get, "AEROBOOK_RATE_LIMIT_LOGIN_FAILURES", "5/300")?,
                    webhook: quota(get, "AEROBOOK_RATE_LIMIT_WEBHOOK", "1200/60")?,
                }),
                "disabled" => None,
                _ => return Err(invalid("AEROBOOK_RATE_LIMITS", "must be enabled or disabled")),
            },
            bookings: BookingConfig {
                hold_ttl: chrono::TimeDelta::seconds(parse_in(get, "AEROBOOK_HOLD_TTL_SECONDS", 600, 60..=86_400)?),
                max_holds_per_user: parse_in(get, "AEROBOOK_MAX_HOLDS_PER_USER", 4, 1..=100)?,
                sweep_interval: chrono::TimeDelta::seconds(parse_in(
                    get,
                    "AEROBOOK_SWEEP_INTERVAL_SECONDS",
                    5,
                    1..=3_600,
                )?),
                ticket_prefix: match get("AEROBOOK_TICKET_PREFIX") {
                    Some(text) => crate::domain::ticket::TicketPrefix::parse(text)
                        .map_err(|problem| invalid("AEROBOOK_TICKET_PREFIX", problem))?,
                    None => crate::domain::ticket::TicketPrefix::default(),
                },
                // At least two hours: check-in closes one hour before departure.
                check_in_opens_before: chrono::TimeDelta::hours(parse_in(
                    get,
                    "AEROBOOK_CHECK_IN_OPENS_HOURS",
                    24,
                    2..=168,
                )?),
            },
            payments,
            mail: MailConfig {
                smtp_url: smtp_url(get)?,
                from: mail_from(get)?,
                smtp_timeout: Duration::from_millis(parse_in(get, "AEROBOOK_SMTP_TIMEOUT_MS", 10_000, 100..=120_000)?),
                outbox_dir: mail_dir,
            },
            jobs: JobConfig {
                concurrency: parse_in(get, "AEROBOOK_JOB_CONCURRENCY", 8, 1..=256)?,
                poll_interval: Duration::from_millis(parse_in(
                    get,
                    "AEROBOOK_JOB_POLL_INTERVAL_MS",
                    1_000,
                    50..=600_000,
                )?),
            },
            notices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNING_KEY: (&str, &str) = ("AEROBOOK_JWT_SECRET", "a-signing-key-of-at-least-32-bytes-0123456789");

    fn source(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_development_setup() {
        let config = Config::from_source(&BTreeMap::new()).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:50051");
        assert!(config.database.is_sqlite && config.seed_demo_data && config.redis.is_none());
        assert_eq!(config.database.url.expose(), "sqlite://./data/aerobook.db?mode=rwc");
        assert_eq!(config.search_cache_ttl, Some(Duration::from_secs(30)));
        assert_eq!(config.cors_origins.len(), 2);
        assert!(config.telemetry.otlp_endpoint.is_none() && config.telemetry.metrics_addr.is_none());
        assert!(!config.telemetry.exports_metrics());
        assert_eq!(config.limits.shutdown_drain, Duration::from_secs(5));
        assert_eq!(config.transport.max_concurrent_streams, 200);
        assert_eq!(config.transport.max_connection_age, Duration::from_secs(1_800));
    }

    #[test]
    fn replicas_need_a_postgresql_primary_and_postgres_urls() {
        let primary = [("DATABASE_URL", "postgres://db/x"), ("AEROBOOK_PAYMENTS", "simulated"), SIGNING_KEY];
        let with = |extra: &[(&'static str, &'static str)]| {
            Config::from_source(&source(&[&primary[..], extra].concat())).map(|config| config.replicas)
        };
        let replicas = with(&[("AEROBOOK_DATABASE_READ_URL", "postgres://r1/x, postgres://r2/x")]).unwrap().unwrap();
        assert_eq!((replicas.urls.len(), replicas.max_lag), (2, Duration::from_millis(1_000)));
        assert!(with(&[]).unwrap().is_none());
        assert!(with(&[("AEROBOOK_DATABASE_READ_URL", "mysql://r1/x")]).is_err());
    }

    #[test]
    fn tls_cluster_and_sentinel_redis_urls_are_accepted() {
        for url in [
            "rediss://cache.internal:6380",
            "redis-cluster://10.0.0.1:6379?node=10.0.0.2:6379&node=10.0.0.3:6379",
            "rediss-cluster://cache.internal:6380",
            "redis-sentinel://10.0.0.1:26379?sentinelServiceName=mymaster&node=10.0.0.2:26379",
            "rediss-sentinel://cache.internal:26379/0?sentinelServiceName=mymaster",
        ] {
            let config = Config::from_source(&source(&[("REDIS_URL", url), SIGNING_KEY])).unwrap();
            assert_eq!(config.redis.unwrap().url.expose(), url);
        }
    }

    #[test]
    fn postgres_does_not_seed_unless_asked_and_secrets_do_not_print() {
        let config = Config::from_source(&source(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("AEROBOOK_PAYMENTS", "simulated"),
            SIGNING_KEY,
        ]))
        .unwrap();
        assert!(!config.database.is_sqlite && !config.seed_demo_data);
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn outside_the_embedded_defaults_the_signing_key_is_required() {
        let refused = |pairs: &[(&str, &str)]| match Config::from_source(&source(pairs)) {
            Err(ConfigError::Invalid { key, reason }) => {
                key == "AEROBOOK_JWT_SECRET" && reason.contains("every instance")
            }
            _ => false,
        };
        let postgres = [("DATABASE_URL", "postgres://db/x"), ("AEROBOOK_PAYMENTS", "simulated")];
        assert!(refused(&postgres));
        assert!(refused(&[("REDIS_URL", "redis://cache:6379")]));
        assert!(Config::from_source(&source(&[postgres[0], postgres[1], SIGNING_KEY])).is_ok());
        assert!(Config::from_source(&BTreeMap::new()).unwrap().auth.jwt_secret.is_none(), "embedded: a random key");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("AEROBOOK_LISTEN_ADDR", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("REDIS_URL", "http://x"),
            ("AEROBOOK_REDIS_KEY_PREFIX", "air{book}:"),
            ("AEROBOOK_DATABASE_READ_URL", "postgres://replica/x"),
            ("AEROBOOK_REPLICA_MAX_LAG_MS", "600001"),
            ("AEROBOOK_SEARCH_CACHE_TTL_SECONDS", "121"),
            ("AEROBOOK_SHUTDOWN_DRAIN_SECONDS", "301"),
            ("AEROBOOK_HEALTH_PROBE_INTERVAL_MS", "50"),
            ("AEROBOOK_MAX_CONNECTION_AGE_SECONDS", "5"),
            ("AEROBOOK_MAX_CONCURRENT_STREAMS", "0"),
            ("AEROBOOK_HTTP2_KEEPALIVE_SECONDS", "0"),
            ("AEROBOOK_METRICS_ADDR", "localhost"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("AEROBOOK_MAX_MESSAGE_BYTES", "10"),
            ("AEROBOOK_SEED_DEMO_DATA", "maybe"),
            ("AEROBOOK_CORS_ORIGINS", "*"),
            ("AEROBOOK_LOG_FORMAT", "xml"),
            ("AEROBOOK_DATABASE_SCHEMA", "Bad-Name"),
            ("AEROBOOK_JWT_SECRET", "too short"),
            ("AEROBOOK_ACCESS_TOKEN_TTL_SECONDS", "5"),
            ("AEROBOOK_RATE_LIMITS", "sometimes"),
            ("AEROBOOK_RATE_LIMIT_SEARCH", "lots"),
            ("AEROBOOK_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("AEROBOOK_TRUSTED_PROXIES", "proxy.internal"),
            ("AEROBOOK_PAYMENTS", "free"),
            ("AEROBOOK_PAYMENT_TIMEOUT_MS", "9000"),
        ] {
            match Config::from_source(&source(&[(key, value)])) {
                Err(ConfigError::Invalid { key: named, .. }) => assert_eq!(named, key),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn trusted_proxies_are_networks() {
        let config =
            Config::from_source(&source(&[("AEROBOOK_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.7")])).unwrap();
        let trusted = |ip: &str| config.trusted_proxies.iter().any(|c| c.contains(ip.parse().unwrap()));
        assert!(trusted("10.1.2.3") && trusted("::ffff:10.9.9.9") && trusted("fd12::1") && trusted("192.0.2.7"));
        assert!(!trusted("11.0.0.1") && !trusted("192.0.2.8") && !trusted("fe80::1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn the_file_uses_the_environment_names_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("aerobook-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        let text = "AEROBOOK_LISTEN_ADDR = \"0.0.0.0:6000\"\nAEROBOOK_DEMO_DAYS = 3\nAEROBOOK_HOLD_TTL_SECONDS = 600\n";
        std::fs::write(&good, text).unwrap();
        let values = source::read_file(&good).unwrap();
        let config = Config::from_source(&values).unwrap();
        assert_eq!((config.listen_addr.port(), config.demo_days), (6000, 3));
        let (merged, _) = source::merge(values, source(&[("AEROBOOK_DEMO_DAYS", "5"), ("HOME", "/root")]));
        assert_eq!(merged["AEROBOOK_DEMO_DAYS"], "5", "the environment wins");
        assert!(!merged.contains_key("HOME"), "unrelated variables are not configuration");
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "AEROBOOK_LISTEN_ADRR = \"x\"\n").unwrap();
        assert!(matches!(source::read_file(&bad), Err(ConfigError::File { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
