//! What every call of a [`Client`](crate::Client) shares: the channel, the defaults the client was built
//! with, and the session. Calls hold this, not the client, so `call` needs nothing from `client`.

use std::{sync::Arc, time::Duration};

use tonic::transport::Channel;

use crate::{retry::RetryPolicy, session::Session};

/// Cloning is cheap and shares the connection and the session.
#[derive(Clone)]
pub(crate) struct Connection {
    inner: Arc<Shared>,
}

struct Shared {
    channel: Channel,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    session: Session,
}

impl Connection {
    pub(crate) fn new(channel: Channel, timeout: Option<Duration>, retry: RetryPolicy, session: Session) -> Self {
        Self { inner: Arc::new(Shared { channel, timeout, retry, session }) }
    }

    pub(crate) fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// The bound of a unary call that sets none of its own.
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// How a call that sets no policy of its own is repeated.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    pub(crate) fn session(&self) -> &Session {
        &self.inner.session
    }
}
