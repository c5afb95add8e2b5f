//! [`Client`]: the connection, the session, and one typed accessor per service of the contract, generated
//! from the proto's catalogue (`aerobook_proto::for_each_service!`).

use std::{any::Any, sync::Arc, time::Duration};

use aerobook_proto::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{
    call::{Call, Response, ServerStream, correlation_id_of},
    error::ApiError,
    retry::RetryPolicy,
    session::{MemoryTokenStore, Renewal, Session, TokenStore, Tokens},
};

/// A client of one Aerobook deployment. Cloning is cheap and shares the connection and the session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Channel,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    session: Session,
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

    /// The client, connecting at its first call (and again after a connection is lost).
    pub fn build(self) -> Result<Client, BuildError> {
        let endpoint = self.endpoint()?;
        Ok(self.with_channel(endpoint.connect_lazy()))
    }

    /// The client, once a connection is open: fails at once when the server cannot be reached.
    pub async fn connect(self) -> Result<Client, BuildError> {
        let endpoint = self.endpoint()?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| BuildError::Connect { endpoint: endpoint.uri().to_string(), source })?;
        Ok(self.with_channel(channel))
    }

    fn endpoint(&self) -> Result<Endpoint, BuildError> {
        let invalid = |source| BuildError::InvalidEndpoint { endpoint: self.endpoint.clone(), source };
        let endpoint = Endpoint::from_shared(self.endpoint.clone())
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
        let inner =
            Inner { channel, timeout: self.timeout, retry: self.retry, session: Session::new(self.token_store) };
        Client { inner: Arc::new(inner) }
    }
}

impl Client {
    /// Settings for a client of the server at `endpoint` (`http://host:port`, or `https://` for TLS).
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
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
        self.inner.session.tokens()
    }

    /// Replaces the session's tokens (e.g. tokens obtained elsewhere), or signs out locally with `None`.
    pub fn set_tokens(&self, tokens: Option<Tokens>) {
        self.inner.session.save(tokens);
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

    pub(crate) fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The access token to send, renewed first when it is about to expire. When renewing fails for a passing
    /// reason, the current token goes out: it may still be valid, and if not the server says so.
    pub(crate) async fn access_token(&self) -> Result<Option<String>, ApiError> {
        Ok(match self.inner.session.access_token() {
            Some((token, true)) => match self.renew(&token).await {
                Ok(renewed) => Some(renewed.unwrap_or(token)),
                Err(error) if error.code == pb::ErrorCode::Unauthorized => return Err(error),
                Err(_) => Some(token),
            },
            Some((token, false)) => Some(token),
            None => None,
        })
    }

    /// Renews the session after the server refused `stale` as expired; fails with `expired` itself when
    /// nothing can renew it.
    pub(crate) async fn refresh_after(&self, stale: &str, expired: ApiError) -> Result<(), ApiError> {
        match self.renew(stale).await? {
            Some(_) => Ok(()),
            None => Err(expired),
        }
    }

    /// Replaces the access token `stale`, one refresh at a time: calls that wait here while another renews
    /// the same token use its result. `None` when there is no refresh token; a refused refresh ends the
    /// session.
    async fn renew(&self, stale: &str) -> Result<Option<String>, ApiError> {
        let session = &self.inner.session;
        let _turn = session.refreshing.lock().await;
        let refresh_token = match session.renewal(stale) {
            Renewal::Renewed(access_token) => return Ok(Some(access_token)),
            Renewal::Exchange(refresh_token) => refresh_token,
            Renewal::Impossible => return Ok(None),
        };
        match self.auth().refresh_token(pb::RefreshTokenRequest { refresh_token }).await {
            // `accept` has saved the new tokens.
            Ok(tokens) => Ok(Some(tokens.into_inner().access_token)),
            Err(error) => {
                if error.code == pb::ErrorCode::Unauthorized {
                    session.save(None);
                }
                Err(error)
            }
        }
    }

    /// Turns an answer into a [`Response`], keeping the session in step with authentication answers.
    pub(crate) fn accept<Out: Any>(&self, response: tonic::Response<Out>, correlation_id: String) -> Response<Out> {
        let (metadata, message, _) = response.into_parts();
        let answer: &dyn Any = &message;
        if let Some(tokens) = answer.downcast_ref::<pb::AuthTokens>() {
            self.inner.session.save(Some(Tokens::from(tokens)));
        } else if answer.is::<pb::LogoutResponse>() {
            self.inner.session.save(None);
        }
        Response::new(message, metadata, correlation_id)
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
                $service { client: self.clone() }
            }
        )*}

        $(
            $(#[$service_doc])*
            #[derive(Clone)]
            pub struct $service {
                client: Client,
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
            Call::new(self.client.clone(), $policy, request, |channel, request| {
                Box::pin(async move { $($grpc)::+::new(channel).$method(request).await })
            })
        }
    };
    (server_streaming $(#[$doc:meta])* $method:ident($request:ty) -> $response:ty = $policy:expr,
        $($grpc:ident)::+) => {
        $(#[$doc])*
        pub fn $method(&self, request: $request) -> Call<$request, ServerStream<$response>> {
            Call::new(self.client.clone(), $policy, request, |channel, request| {
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
