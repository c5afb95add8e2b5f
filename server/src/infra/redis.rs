//! The shared Redis client (fred): short command timeouts and endless reconnection, so a Redis outage costs
//! speed, never availability.
//!
//! A Redis that is connected but does not answer (black-holed by a network fault, or stalled) would cost
//! every call a command timeout. A circuit breaker stops that: a probe pings Redis every
//! [`PROBE_EVERY`]; after [`OPEN_AFTER`] unanswered pings in a row the breaker opens and
//! [`Redis::available`] says no (callers skip Redis at once, as while disconnected), and the first answered
//! ping (the half-open probe) closes it again.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use fred::prelude::{Builder, ClientLike as _, Config, ReconnectPolicy};

use crate::config::RedisConfig;

/// Longest a Redis command may take before the caller carries on without it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long start-up waits for the first connection before carrying on without Redis.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(2);
/// How often the breaker's probe pings Redis, and how long it waits for each answer.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// Unanswered pings in a row that open the breaker.
const OPEN_AFTER: u32 = 3;

#[derive(Clone)]
pub struct Redis {
    client: fred::clients::Client,
    /// Builds further connections with the same settings (pub/sub needs its own).
    builder: Arc<Builder>,
    prefix: String,
    breaker: Arc<Breaker>,
}

/// Whether Redis answers, as the probe last found; the probe ends with the last clone of the client.
struct Breaker {
    open: AtomicBool,
    probe: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
}

impl Drop for Breaker {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.get() {
            probe.abort();
        }
    }
}

impl Redis {
    /// Starts connecting. An unreachable Redis is logged and retried in the background; it is not an error.
    pub async fn connect(config: &RedisConfig) -> Result<Self, fred::error::Error> {
        let mut fred_config = Config::from_url(config.url.expose())?;
        // Keep retrying after a failed first connection instead of giving up.
        fred_config.fail_fast = false;
        let mut builder = Builder::from_config(fred_config);
        builder
            .with_performance_config(|performance| performance.default_command_timeout = COMMAND_TIMEOUT)
            .with_connection_config(|connection| {
                connection.connection_timeout = Duration::from_secs(2);
                connection.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        let client = builder.build()?;
        client.connect();
        match tokio::time::timeout(FIRST_CONNECT_WAIT, client.wait_for_connect()).await {
            Ok(Ok(())) => tracing::info!("connected to Redis"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "Redis unreachable; carrying on without it and reconnecting")
            }
            Err(_) => tracing::warn!("Redis did not answer in time; carrying on without it and reconnecting"),
        }
        let breaker = Arc::new(Breaker { open: AtomicBool::new(false), probe: std::sync::OnceLock::new() });
        let probe = tokio::spawn(probe(client.clone(), Arc::downgrade(&breaker)));
        let _ = breaker.probe.set(probe);
        Ok(Self { client, builder: Arc::new(builder), prefix: config.key_prefix.clone(), breaker })
    }

    /// The client, or `None` while disconnected or not answering (the breaker open), so callers skip
    /// Redis at once instead of waiting for commands to time out.
    pub fn available(&self) -> Option<&fred::clients::Client> {
        (self.client.is_connected() && !self.breaker.open.load(Ordering::Acquire)).then_some(&self.client)
    }

    /// The client whenever it is connected, breaker or not: for callers whose only alternative to Redis
    /// would split shared state (a waiting-room join goes to this instance's own queue only while
    /// disconnected; a Redis that does not answer fails the join instead).
    pub fn connected(&self) -> Option<&fred::clients::Client> {
        self.client.is_connected().then_some(&self.client)
    }

    /// A separate connection for subscriptions, which re-subscribes by itself after reconnecting.
    pub fn subscriber(&self) -> Result<fred::clients::SubscriberClient, fred::error::Error> {
        self.builder.build_subscriber_client()
    }

    /// A key under this deployment's prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    pub async fn quit(&self) {
        if let Err(error) = self.client.quit().await {
            tracing::debug!(%error, "closing Redis");
        }
    }
}

/// Pings Redis every [`PROBE_EVERY`] while the client lives, opening the breaker after [`OPEN_AFTER`]
/// unanswered pings in a row and closing it at the first answer. A disconnected client is left to its
/// reconnection (`available` already says no).
async fn probe(client: fred::clients::Client, breaker: std::sync::Weak<Breaker>) {
    let mut unanswered = 0;
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(breaker) = breaker.upgrade() else { return };
        if !client.is_connected() {
            // Reconnection starts afresh: a stale count must not open the breaker on the first slow ping.
            unanswered = 0;
            continue;
        }
        let answered =
            matches!(tokio::time::timeout(PROBE_EVERY, client.ping::<fred::types::Value>(None)).await, Ok(Ok(_)));
        unanswered = if answered { 0 } else { unanswered + 1 };
        let open = unanswered >= OPEN_AFTER;
        if breaker.open.swap(open, Ordering::AcqRel) != open {
            if open {
                tracing::warn!("Redis does not answer: carrying on without it until it does (circuit breaker open)");
            } else {
                tracing::info!("Redis answers again (circuit breaker closed)");
            }
        }
    }
}

/// The Redis at `REDIS_URL` under a fresh key prefix, for unit tests that need a real one; `None` (test
/// skipped) when it is not set outside CI.
#[cfg(test)]
pub async fn for_unit_test() -> Option<Redis> {
    let Some(url) = std::env::var("REDIS_URL").ok() else {
        assert!(std::env::var_os("CI").is_none(), "CI must set REDIS_URL");
        eprintln!("skipped: REDIS_URL is not set");
        return None;
    };
    let config = crate::config::RedisConfig {
        url: crate::config::Secret::new(url),
        key_prefix: format!("aerobook-unit:{}:", uuid::Uuid::new_v4().simple()),
    };
    Some(Redis::connect(&config).await.expect("Redis reachable at REDIS_URL"))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// The first bytes a client sends to a fresh listener at `scheme://`.
    async fn opening_bytes(scheme: &str) -> [u8; 2] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("{scheme}://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let config = crate::config::RedisConfig { url: crate::config::Secret::new(url), key_prefix: "t:".into() };
        let connecting = tokio::spawn(async move { Redis::connect(&config).await.map(|_| ()) });
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 2];
        socket.read_exact(&mut first).await.unwrap();
        drop(socket);
        connecting.abort();
        first
    }

    #[tokio::test]
    async fn a_rediss_url_opens_with_a_tls_handshake() {
        // A TLS handshake record (0x16, version 3.x); plain RESP starts with an array or inline command.
        assert_eq!(opening_bytes("rediss").await, [0x16, 0x03]);
        assert_ne!(opening_bytes("redis").await[0], 0x16);
    }
}
