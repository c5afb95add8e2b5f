//! [`Client`]: the connection, the session, and one typed accessor per service of the contract, generated
//! from the proto's catalogue (`aerobook_proto::for_each_service!`).

use std::{sync::Arc, time::Duration};

use aerobook_proto::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{
    call::{Call, ServerStream, correlation_id_of},
    connection::Connection,
    error::ApiError,
    retry::RetryPolicy,
    session::{MemoryTokenStore, Session, TokenStore, Tokens},
};

/// A client of one Aerobook deployment. Cloning is cheap and shares the connection and the session.
#[derive(Clone)]
pub struct Client {
    connection: Connection,
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid endpoint {endpoint:?}: use http://host:port or https://host:port")]
    InvalidEndpoint { endpoint: String, source: tonic::transport::Error },
    #[error("invalid TLS settings")]
    Tls(#[source] tonic::transport::Error),
    #[error("could not connect to {endpoint}")]
    Connect { endpoint: String, source: tonic::transport::Error },
}

/// Settings of a [`Client`]; start with [`Client::builder`].
#[must_use]
pub struct ClientBuilder {
    endpoint: String,
    /// Further instances of the same deployment, balanced with `endpoint`.
    also: Vec<String>,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    retry: RetryPolicy,
    token_store: Arc<dyn TokenStore>,
    ca_certificate: Option<Vec<u8>>,
    tls_domain: Option<String>,
}

/// Default bound of a unary call, repeats included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound of opening a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientBuilder {
    /// Unary calls end with `DEADLINE_EXCEEDED` after `timeout`, repeats included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Calls wait as long as the server takes (the server still applies its own deadline).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Gives up opening a connection after `timeout` (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keeps the session's tokens there instead of in memory.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = store;
        self
    }

    /// For `https://` endpoints: also trust this CA (PEM), for a private PKI. Public CAs are always trusted.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// For `https://` endpoints: the name the server's certificate must carry, when it is not the endpoint's
    /// host (e.g. connecting by IP address).
    pub fn tls_domain(mut self, domain: impl Into<String>) -> Self {
        self.tls_domain = Some(domain.into());
        self
    }

    /// Also sends calls to `endpoint`, another instance of the same deployment, for clients that balance
    /// across instances themselves (no load balancer in front): each call, and each repeat of it, goes to
    /// the least busy of two instances drawn at random. Every instance must share the deployment's database,
    /// Redis and signing key, so a repeat on another instance is the same call (its idempotency key holds).
    pub fn also(mut self, endpoint: impl Into<String>) -> Self {
        self.also.push(endpoint.into());
        self
    }

    /// The client, connecting at its first call (and again after a connection is lost).
    pub fn build(self) -> Result<Client, BuildError> {
        if !self.also.is_empty() {
            let endpoints = std::iter::once(&self.endpoint)
                .chain(&self.also)
                .map(|endpoint| self.endpoint_of(endpoint))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(self.with_channel(Channel::balance_list(endpoints.into_iter())));
        }
        let endpoint = self.endpoint_of(&self.endpoint)?;
        Ok(self.with_channel(endpoint.connect_lazy()))
    }

    /// The client, once a connection is open: fails at once when the server cannot be reached (with
    /// [`Self::also`], instances are connected as calls need them, as [`Self::build`] does).
    pub async fn connect(self) -> Result<Client, BuildError> {
        if !self.also.is_empty() {
            return self.build();
        }
        let endpoint = self.endpoint_of(&self.endpoint)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| BuildError::Connect { endpoint: endpoint.uri().to_string(), source })?;
        Ok(self.with_channel(channel))
    }

    fn endpoint_of(&self, address: &str) -> Result<Endpoint, BuildError> {
        let invalid = |source| BuildError::InvalidEndpoint { endpoint: address.to_owned(), source };
        let endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(invalid)?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            // Finds dead connections (a phone changing networks) before a call waits on one.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .user_agent(concat!("aerobook-sdk-rust/", env!("CARGO_PKG_VERSION")))
            .map_err(invalid)?;
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(pem) = &self.ca_certificate {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(domain) = &self.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint.tls_config(tls).map_err(BuildError::Tls)
    }

    fn with_channel(self, channel: Channel) -> Client {
        Client { connection: Connection::new(channel, self.timeout, self.retry, Session::new(self.token_store)) }
    }
}

impl Client {
    /// Settings for a client of the server at `endpoint` (`http://host:port`, or `https://` for TLS).
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            also: Vec::new(),
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            token_store: Arc::new(MemoryTokenStore::default()),
            ca_certificate: None,
            tls_domain: None,
        }
    }

    /// The session's tokens, if signed in.
    pub fn tokens(&self) -> Option<Tokens> {
        self.connection.session().tokens()
    }

    /// Replaces the session's tokens (e.g. tokens obtained elsewhere), or signs out locally with `None`.
    pub fn set_tokens(&self, tokens: Option<Tokens>) {
        self.connection.session().save(tokens);
    }

    /// Ends the session: the store is cleared, and the server revokes the refresh token. The local session
    /// ends even when the server cannot be told (the error says so).
    pub async fn sign_out(&self) -> Result<(), ApiError> {
        let refresh_token = self.tokens().and_then(|tokens| tokens.refresh_token);
        self.set_tokens(None);
        match refresh_token {
            Some(refresh_token) => self.auth().logout(pb::LogoutRequest { refresh_token }).await.map(drop),
            None => Ok(()),
        }
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.connection.retry_policy()
    }
}

/// Generates, for each service of the catalogue, an accessor on [`Client`] and a struct with one method per
/// RPC that returns a [`Call`].
macro_rules! typed_services {
    ($($(#[$service_doc:meta])* $service:ident($module:ident::$grpc_client:ident) as $accessor:ident {
        $($(#[$method_doc:meta])* $kind:ident $method:ident($request:ty) -> $response:ty
            = $path:literal, $policy:expr;)*
    })*) => {
        impl Client {$(
            $(#[$service_doc])*
            pub fn $accessor(&self) -> $service {
                $service { connection: self.connection.clone() }
            }
        )*}

        $(
            $(#[$service_doc])*
            #[derive(Clone)]
            pub struct $service {
                connection: Connection,
            }

            impl $service {$(
                typed_method!($kind $(#[$method_doc])* $method($request) -> $response = $policy,
                    aerobook_proto::v1::$module::$grpc_client);
            )*}
        )*
    };
}

macro_rules! typed_method {
    (unary $(#[$doc:meta])* $method:ident($request:ty) -> $response:ty = $policy:expr, $($grpc:ident)::+) => {
        $(#[$doc])*
        pub fn $method(&self, request: $request) -> Call<$request, $response> {
            Call::new(self.connection.clone(), $policy, request, |channel, request| {
                Box::pin(async move { $($grpc)::+::new(channel).$method(request).await })
            })
        }
    };
    (server_streaming $(#[$doc:meta])* $method:ident($request:ty) -> $response:ty = $policy:expr,
        $($grpc:ident)::+) => {
        $(#[$doc])*
        pub fn $method(&self, request: $request) -> Call<$request, ServerStream<$response>> {
            Call::new(self.connection.clone(), $policy, request, |channel, request| {
                Box::pin(async move {
                    let correlation_id = correlation_id_of(&request);
                    let response = $($grpc)::+::new(channel).$method(request).await?;
                    Ok(response.map(|stream| ServerStream::new(stream, correlation_id)))
                })
            })
        }
    };
}

aerobook_proto::for_each_service!(typed_services);
