//! One logical call: its headers, deadline, token refresh and retries, decided from the RPC's row of
//! `aerobook_proto::RPC_POLICIES` (its options in the proto), whatever the RPC. A call holds the client's
//! [`Connection`], not the client: renewing the session's access token is itself a call (`RefreshToken`),
//! so it lives here too.

use std::{
    any::Any,
    future::{Future, IntoFuture},
    ops::Deref,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use aerobook_proto::{RpcPolicy, v1 as pb};
use futures_core::Stream;
use tokio::time::Instant;
use tonic::{
    Status,
    metadata::{MetadataMap, MetadataValue},
    transport::Channel,
};

use crate::{
    connection::Connection,
    error::{ApiError, CORRELATION_HEADER, ErrorCode},
    retry::RetryPolicy,
    session::Renewal,
};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Sends one attempt of an RPC through a generated tonic client.
pub(crate) type Invoke<Req, Out> = fn(Channel, tonic::Request<Req>) -> BoxFuture<Result<tonic::Response<Out>, Status>>;

const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// A call ready to send: `.await` it, or first set what differs from the client's defaults.
///
/// ```no_run
/// # async fn example(client: aerobook_sdk::Client, request: aerobook_sdk::proto::CreateBookingRequest)
/// #     -> Result<(), aerobook_sdk::ApiError> {
/// use std::time::Duration;
/// let booking = client
///     .booking()
///     .create_booking(request)
///     .idempotency_key("checkout-7f9c2e41-5b7d-4a1e")
///     .correlation_id("support-case-1234")
///     .timeout(Duration::from_secs(5))
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<Req, Out> {
    connection: Connection,
    policy: &'static RpcPolicy,
    request: Req,
    options: CallOptions,
    invoke: Invoke<Req, Out>,
}

#[derive(Default)]
struct CallOptions {
    correlation_id: Option<String>,
    idempotency_key: Option<String>,
    timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
}

impl<Req, Out> Call<Req, Out> {
    pub(crate) fn new(
        connection: Connection,
        policy: &'static RpcPolicy,
        request: Req,
        invoke: Invoke<Req, Out>,
    ) -> Self {
        Self { connection, policy, request, options: CallOptions::default(), invoke }
    }

    /// Sends this correlation id (1..=128 of `[A-Za-z0-9._:-]`) instead of a new UUIDv7.
    pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.options.correlation_id = Some(correlation_id.into());
        self
    }

    /// Uses this idempotency key (16..=255 visible ASCII) instead of a generated one: pass the same key when
    /// the same intent is submitted again, e.g. after the app restarted.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.options.idempotency_key = Some(key.into());
        self
    }

    /// Bounds the whole call, repeats and waits included. Streams have no deadline unless one is set here.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Repeats this call under another policy, e.g. [`RetryPolicy::never`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }
}

impl<Req, Out> IntoFuture for Call<Req, Out>
where
    Req: Clone + Send + Sync + 'static,
    Out: Send + 'static,
{
    type Output = Result<Response<Out>, ApiError>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<Req, Out> Call<Req, Out>
where
    Req: Clone + Send + Sync + 'static,
    Out: Send + 'static,
{
    async fn run(self) -> Result<Response<Out>, ApiError> {
        let Self { connection, policy, request, options, invoke } = self;
        let correlation_id = options.correlation_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        // Fixed once per logical call, so every repeat below carries the same correlation id and key.
        let idempotency_key = options
            .idempotency_key
            .or_else(|| policy.idempotency_key_required.then(|| format!("sdk-{}", uuid::Uuid::new_v4())));
        let mut call_headers = MetadataMap::new();
        insert(&mut call_headers, CORRELATION_HEADER, &correlation_id, &correlation_id)?;
        if let Some(key) = &idempotency_key {
            insert(&mut call_headers, IDEMPOTENCY_HEADER, key, &correlation_id)?;
        }
        let timeout = options.timeout.or(if policy.server_streaming { None } else { connection.default_timeout() });
        let deadline = timeout.map(|timeout| (Instant::now() + timeout, timeout));
        let retry = options.retry.unwrap_or_else(|| connection.retry_policy());

        let mut failures = 0;
        let mut refreshed = false;
        loop {
            let access_token = if policy.public { None } else { access_token(&connection).await? };
            let mut attempt = tonic::Request::from_parts(call_headers.clone(), Default::default(), request.clone());
            if let Some(token) = &access_token {
                insert(attempt.metadata_mut(), "authorization", &format!("Bearer {token}"), &correlation_id)?;
            }
            let sent = match deadline {
                None => invoke(connection.channel(), attempt).await,
                Some((at, _)) => {
                    attempt.set_timeout(at.saturating_duration_since(Instant::now()));
                    // On expiry tonic's own timer, set from `grpc-timeout`, may end the attempt first: the
                    // check below reports both the same way.
                    tokio::time::timeout_at(at, invoke(connection.channel(), attempt))
                        .await
                        .unwrap_or_else(|_| Err(Status::deadline_exceeded("")))
                }
            };
            let error = match sent {
                Ok(response) => return Ok(accept(&connection, response, correlation_id)),
                Err(status) => ApiError::from_call(&status, &correlation_id),
            };
            let time_left = deadline.map(|(at, _)| at.saturating_duration_since(Instant::now()));
            if let Some((_, timeout)) = deadline
                && time_left.is_some_and(|left| left.is_zero())
            {
                return Err(ApiError::deadline_exceeded(&correlation_id, timeout));
            }
            if let (ErrorCode::TokenExpired, Some(stale), false) = (error.code, &access_token, refreshed) {
                // Renewing is part of signing in, not a repeat: it does not count against the retry policy.
                refreshed = true;
                refresh_after(&connection, stale, error).await?;
                continue;
            }
            failures += 1;
            let Some(wait) = retry.delay_after(failures, &error, policy.safe_to_repeat(), time_left, rand::random())
            else {
                return Err(error);
            };
            tracing::debug!(path = policy.path, %correlation_id, reason = error.reason(), attempt = failures, ?wait, "repeating call");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Turns an answer into a [`Response`], keeping the session in step with authentication answers.
fn accept<Out: Any>(connection: &Connection, response: tonic::Response<Out>, correlation_id: String) -> Response<Out> {
    let (metadata, message, _) = response.into_parts();
    connection.session().observe(&message);
    Response::new(message, metadata, correlation_id)
}

/// The access token to send, renewed first when it is about to expire. When renewing fails for a passing
/// reason, the current token goes out: it may still be valid, and if not the server says so.
async fn access_token(connection: &Connection) -> Result<Option<String>, ApiError> {
    Ok(match connection.session().access_token() {
        Some((token, true)) => match renew(connection, &token).await {
            Ok(renewed) => Some(renewed.unwrap_or(token)),
            Err(error) if error.code == ErrorCode::Unauthorized => return Err(error),
            Err(_) => Some(token),
        },
        Some((token, false)) => Some(token),
        None => None,
    })
}

/// Renews the session after the server refused `stale` as expired; fails with `expired` itself when nothing
/// can renew it.
async fn refresh_after(connection: &Connection, stale: &str, expired: ApiError) -> Result<(), ApiError> {
    match renew(connection, stale).await? {
        Some(_) => Ok(()),
        None => Err(expired),
    }
}

/// The RPC that renews an access token.
const REFRESH_TOKEN_PATH: &str = "/aerobook.v1.AuthService/RefreshToken";

/// Replaces the access token `stale`, one refresh at a time: calls that wait here while another renews the
/// same token use its result. `None` when there is no refresh token; a refused refresh ends the session.
async fn renew(connection: &Connection, stale: &str) -> Result<Option<String>, ApiError> {
    let session = connection.session();
    let _turn = session.refreshing.lock().await;
    let refresh_token = match session.renewal(stale) {
        Renewal::Renewed(access_token) => return Ok(Some(access_token)),
        Renewal::Exchange(refresh_token) => refresh_token,
        Renewal::Impossible => return Ok(None),
    };
    let policy = aerobook_proto::rpc_policy(REFRESH_TOKEN_PATH).expect("the contract declares RefreshToken");
    let request = pb::RefreshTokenRequest { refresh_token };
    let refresh = Call::new(connection.clone(), policy, request, |channel, request| {
        Box::pin(async move { pb::auth_service_client::AuthServiceClient::new(channel).refresh_token(request).await })
    });
    match refresh.await {
        // `accept` has saved the new tokens.
        Ok(tokens) => Ok(Some(tokens.into_inner().access_token)),
        Err(error) => {
            if error.code == ErrorCode::Unauthorized {
                session.save(None);
            }
            Err(error)
        }
    }
}

fn insert(headers: &mut MetadataMap, name: &'static str, value: &str, correlation_id: &str) -> Result<(), ApiError> {
    let value: MetadataValue<_> = value.parse().map_err(|_| ApiError::invalid_header(name, correlation_id))?;
    headers.insert(name, value);
    Ok(())
}

/// A successful answer, with what the server said about the call.
#[derive(Debug)]
pub struct Response<T> {
    message: T,
    correlation_id: String,
    replayed: bool,
    metadata: MetadataMap,
}

impl<T> Response<T> {
    pub(crate) fn new(message: T, metadata: MetadataMap, sent_correlation_id: String) -> Self {
        let header = |name: &str| metadata.get(name).and_then(|value| value.to_str().ok());
        let correlation_id = header(CORRELATION_HEADER).map_or(sent_correlation_id, str::to_owned);
        let replayed = header(REPLAYED_HEADER) == Some("true");
        Self { message, correlation_id, replayed, metadata }
    }

    pub fn into_inner(self) -> T {
        self.message
    }

    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The id the server logged the call under.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// Whether this is the stored answer of an earlier call with the same idempotency key.
    pub fn replayed(&self) -> bool {
        self.replayed
    }

    /// All response headers.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }
}

impl<T> Deref for Response<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.message
    }
}

/// The messages of a server stream, with failures as [`ApiError`]s. Dropping it cancels the stream.
pub struct ServerStream<T> {
    inner: tonic::Streaming<T>,
    correlation_id: String,
}

impl<T> ServerStream<T> {
    pub(crate) fn new(inner: tonic::Streaming<T>, correlation_id: String) -> Self {
        Self { inner, correlation_id }
    }

    /// The next message, `None` once the server ends the stream.
    pub async fn message(&mut self) -> Result<Option<T>, ApiError> {
        self.inner.message().await.map_err(|status| ApiError::from_call(&status, &self.correlation_id))
    }
}

impl<T> Stream for ServerStream<T> {
    type Item = Result<T, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(|status| ApiError::from_call(&status, &this.correlation_id))))
    }
}

/// The correlation id an attempt carries, for errors that arrive later on its stream.
pub(crate) fn correlation_id_of<T>(request: &tonic::Request<T>) -> String {
    request.metadata().get(CORRELATION_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renewal_call_is_declared_and_needs_no_access_token() {
        let policy = aerobook_proto::rpc_policy(REFRESH_TOKEN_PATH).expect("declared");
        assert!(policy.public, "a renewal that needed a token would renew first, without end");
        assert!(!policy.server_streaming);
    }
}
