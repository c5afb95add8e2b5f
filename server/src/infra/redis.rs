//! The shared Redis client (fred): short command timeouts and endless reconnection, so a Redis outage costs
//! speed, never availability.

use std::time::Duration;

use fred::prelude::{Builder, ClientLike as _, Config, ReconnectPolicy};

use crate::config::RedisConfig;

/// Longest a Redis command may take before the caller carries on without it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// How long start-up waits for the first connection before carrying on without Redis.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Redis {
    client: fred::clients::Client,
    /// Builds further connections with the same settings (pub/sub needs its own).
    builder: std::sync::Arc<Builder>,
    prefix: String,
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
        Ok(Self { client, builder: std::sync::Arc::new(builder), prefix: config.key_prefix.clone() })
    }

    /// The client, or `None` while disconnected, so callers skip Redis at once instead of waiting for
    /// commands to time out.
    pub fn available(&self) -> Option<&fred::clients::Client> {
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
