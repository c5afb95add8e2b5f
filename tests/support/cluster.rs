//! Several instances of one deployment on one database (and Redis), and a client that balances across them
//! as a load balancer would: each call, and each repeat of it, may reach any instance.

use aerobook_sdk::{Client, RetryPolicy, Tokens};

use crate::{Backend, Role, TestApp};

/// Instances a cluster test starts unless it asks for another number.
pub const INSTANCES: usize = 3;

pub struct Cluster {
    /// The first started the database schema and Redis prefix; the others share them.
    pub instances: Vec<TestApp>,
}

impl Cluster {
    /// `size` instances on `backend` (on the embedded backend they share one SQLite file); `None` where
    /// `TestApp::spawn` skips the backend.
    pub async fn start(backend: Backend, size: usize) -> Option<Self> {
        Self::start_with(backend, size, &[]).await
    }

    /// As [`Self::start`], every instance with extra `settings` (a database or Redis behind a switch, say).
    pub async fn start_with(backend: Backend, size: usize, settings: &[(&str, &str)]) -> Option<Self> {
        let first = TestApp::spawn(backend, settings).await?;
        let mut instances = Vec::with_capacity(size);
        for _ in 1..size {
            instances.push(first.another_instance().await);
        }
        instances.insert(0, first);
        Some(Self { instances })
    }

    /// The instance tests use for set-ups and checks (any would do: they share the database).
    pub fn first(&self) -> &TestApp {
        &self.instances[0]
    }

    /// A Rust SDK client with its default retries, balancing over every instance; a session of its own.
    pub fn client(&self) -> Client {
        self.client_retrying(RetryPolicy::default())
    }

    /// A balancing client repeating failed calls by `policy`.
    pub fn client_retrying(&self, policy: RetryPolicy) -> Client {
        let mut addresses = self.instances.iter().map(|app| format!("http://{}", app.addr));
        let first = addresses.next().expect("at least one instance");
        let builder = addresses.fold(Client::builder(first), |builder, address| builder.also(address));
        builder.retry(policy).build().expect("client")
    }

    /// A balancing client signed in as `role`: a new user, with a token signed by the deployment's key.
    pub fn signed_in(&self, role: Role) -> Client {
        self.signed_in_retrying(role, RetryPolicy::default())
    }

    /// [`Self::signed_in`], repeating failed calls by `policy`.
    pub fn signed_in_retrying(&self, role: Role, policy: RetryPolicy) -> Client {
        let client = self.client_retrying(policy);
        let bearer = self.first().bearer_for(uuid::Uuid::now_v7(), role);
        let access_token = bearer.trim_start_matches("Bearer ").to_owned();
        client.set_tokens(Some(Tokens { access_token, refresh_token: None, access_token_expires_at: None }));
        client
    }
}
