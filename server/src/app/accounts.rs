//! Accounts and sessions: registration, sign-in, refresh-token rotation with reuse detection, sign-out,
//! and the administrative creation of operators and service accounts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AppError;
use crate::{
    domain::{
        auth::{Caller, Email, Password, Role, full_name},
        validation::ValidationError,
    },
    infra::{
        clock::Clock,
        passwords::Passwords,
        rate_limit::RateLimiter,
        tokens::{self, AccessTokens},
    },
    store::{
        Store, StoreError,
        accounts::{self, Account, RefreshSession},
    },
};

/// The rate-limit bucket of failed sign-ins, per email address and client address.
pub const LOGIN_FAILURES_BUCKET: &str = "login-failures";
const BAD_CREDENTIALS: &str = "invalid email or password";
const BAD_REFRESH_TOKEN: &str = "the refresh token is not valid; sign in again";

/// A signed-in session, as returned by Register, Login and RefreshToken.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub user: Profile,
}

/// An account as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
}

impl From<&Account> for Profile {
    fn from(account: &Account) -> Self {
        Self { id: account.id, email: account.email.clone(), full_name: account.full_name.clone(), role: account.role }
    }
}

/// What `create-service-account` prints: the credentials to sign in with (the secret is shown once).
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// How long refresh tokens live: each one, and the sign-in they are rotated from, whatever the rotations.
#[derive(Debug, Clone, Copy)]
pub struct RefreshLifetimes {
    pub token: Duration,
    pub session: Duration,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    tokens: AccessTokens,
    limiter: RateLimiter,
    passwords: Passwords,
    refresh: RefreshLifetimes,
    clock: Clock,
}

impl Accounts {
    pub fn new(
        store: Store,
        tokens: AccessTokens,
        limiter: RateLimiter,
        passwords: Passwords,
        refresh: RefreshLifetimes,
        clock: Clock,
    ) -> Self {
        Self { store, tokens, limiter, passwords, refresh, clock }
    }

    /// Creates a customer account and signs it in.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, email: Email, password: Password, name: String) -> Result<Session, AppError> {
        let account =
            create_account(&self.store, &self.passwords, email, password, name, Role::Customer, self.clock.now())
                .await?;
        self.start_session(&account).await
    }

    /// Signs in. A wrong password and an unknown email get the same answer in the same time. Failed
    /// attempts are counted per email address and client: once a client has failed too often for an email,
    /// it is refused before its password is checked, while the owner signing in from elsewhere is not (a
    /// stranger's guesses cannot lock them out). All calls are also limited per client by the rate-limit
    /// layer.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: Email, password: String, client: &str) -> Result<Session, AppError> {
        let attempts = format!("{client}|{}", email.as_str());
        self.limiter.peek(LOGIN_FAILURES_BUCKET, &attempts).await.map_err(AppError::RateLimited)?;
        let account = accounts::account_by_email(self.store.conn(), &email).await?;
        let matched = self.passwords.verify(password, account.as_ref().map(|a| a.password_hash.clone())).await?;
        match account {
            Some(account) if matched => self.start_session(&account).await,
            _ => {
                // Counted after the answer is known, so only failures spend the budget.
                if let Err(wait) = self.limiter.spend(LOGIN_FAILURES_BUCKET, &attempts).await {
                    tracing::debug!(?wait, "sign-in failures exhausted for this email and client");
                }
                Err(AppError::Unauthorized(BAD_CREDENTIALS))
            }
        }
    }

    /// Exchanges a refresh token for a new session of the same family. A token exchanged before is a
    /// sign of theft: the whole family is revoked, so the thief and the owner both have to sign in again.
    /// No rotation extends the sign-in past its absolute end ([`RefreshLifetimes::session`]).
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AppError> {
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let record = accounts::refresh_token_by_hash(&txn, &tokens::refresh_token_hash(refresh_token))
            .await?
            .ok_or(AppError::Unauthorized(BAD_REFRESH_TOKEN))?;
        if record.revoked || record.expires_at <= now {
            return Err(AppError::Unauthorized(BAD_REFRESH_TOKEN));
        }
        // Refused when the token was exchanged before, by this client or a concurrent one: both are reuse.
        if !accounts::mark_refresh_token_used(&txn, record.id, now).await? {
            tracing::warn!(family = %record.session.family_id, "refresh token reused: revoking its family");
            accounts::revoke_family(&txn, record.session.family_id, now).await?;
            txn.commit().await.map_err(StoreError::from)?;
            return Err(AppError::Unauthorized(BAD_REFRESH_TOKEN));
        }
        let account =
            accounts::account(&txn, record.user_id).await?.ok_or(AppError::Unauthorized(BAD_REFRESH_TOKEN))?;
        let session = self.issue(&txn, &account, record.session, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(session)
    }

    /// Revokes the refresh token's family. Unknown tokens are ignored: signing out twice is fine.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AppError> {
        let txn = self.store.begin_write().await?;
        if let Some(record) = accounts::refresh_token_by_hash(&txn, &tokens::refresh_token_hash(refresh_token)).await? {
            accounts::revoke_family(&txn, record.session.family_id, self.clock.now()).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user = %caller.user_id))]
    pub async fn me(&self, caller: Caller) -> Result<Profile, AppError> {
        let account =
            accounts::account(self.store.conn(), caller.user_id).await?.ok_or(AppError::NotFound("account"))?;
        Ok(Profile::from(&account))
    }

    async fn start_session(&self, account: &Account) -> Result<Session, AppError> {
        let now = self.clock.now();
        let signed_in = RefreshSession { family_id: Uuid::now_v7(), ends_at: now + self.refresh.session };
        let txn = self.store.begin_write().await?;
        let session = self.issue(&txn, account, signed_in, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(session)
    }

    async fn issue(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        account: &Account,
        signed_in: RefreshSession,
        now: DateTime<Utc>,
    ) -> Result<Session, AppError> {
        let refresh_token = tokens::new_refresh_token();
        let refresh_hash = tokens::refresh_token_hash(&refresh_token);
        let expires_at = (now + self.refresh.token).min(signed_in.ends_at);
        accounts::insert_refresh_token(db, signed_in, account.id, refresh_hash, now, expires_at).await?;
        let (access_token, access_token_expires_at) =
            self.tokens.issue(Caller { user_id: account.id, role: account.role }, now);
        Ok(Session { access_token, access_token_expires_at, refresh_token, user: Profile::from(account) })
    }
}

/// Creates an operator account (`aerobook-server admin create-operator`).
pub async fn create_operator(
    store: &Store,
    passwords: &Passwords,
    email: &str,
    password: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Profile, AppError> {
    let mut violations = crate::domain::validation::Violations::new();
    let email = violations.check("email", Email::parse(email));
    let password = violations.check("password", Password::new(password));
    let name = violations.check("full_name", full_name(name));
    let (email, password, name) = violations.finish_with(|| Some((email?, password?, name?)))?;
    let account = create_account(store, passwords, email, password, name, Role::Operator, now).await?;
    Ok(Profile::from(&account))
}

/// Creates a service account (`aerobook-server admin create-service-account`). It signs in like everyone
/// else, with the client id as email and the secret as password.
pub async fn create_service_account(
    store: &Store,
    passwords: &Passwords,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(Profile, ServiceCredentials), AppError> {
    let valid = (1..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(ValidationError::single("name", "must be 1 to 40 characters of a-z, 0-9 and -").into());
    }
    let suffix: String = tokens::new_refresh_token().chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let client_id = format!("{name}.{}@service.aerobook", suffix.to_lowercase());
    let client_secret = tokens::new_refresh_token();
    let email = Email::parse(&client_id).map_err(|e| ValidationError::single("name", e))?;
    let password = Password::new(&client_secret).map_err(|e| ValidationError::single("name", e))?;
    let account = create_account(store, passwords, email, password, name.to_owned(), Role::Service, now).await?;
    Ok((Profile::from(&account), ServiceCredentials { client_id, client_secret }))
}

async fn create_account(
    store: &Store,
    passwords: &Passwords,
    email: Email,
    password: Password,
    name: String,
    role: Role,
    now: DateTime<Utc>,
) -> Result<Account, AppError> {
    let password_hash = passwords.hash(password.expose().to_owned()).await?;
    let account =
        Account { id: Uuid::now_v7(), email: email.as_str().to_owned(), full_name: name, role, password_hash };
    match accounts::insert_account(store.conn(), &account, now).await {
        Ok(()) => Ok(account),
        Err(StoreError::Duplicate(_)) => {
            Err(ValidationError::single("email", "an account with this email exists").into())
        }
        Err(other) => Err(other.into()),
    }
}
