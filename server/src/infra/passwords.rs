//! Password hashing with Argon2id. Hashing is deliberately slow (and takes 19 MiB per hash), so it runs on
//! the blocking pool, never on the threads that serve calls, and behind a bound: at most
//! [`PasswordLimits::at_once`] hashes run and [`PasswordLimits::queued`] more wait; past that a call is
//! refused at once ([`PasswordError::Busy`]). A burst of sign-ins thus costs bounded memory and threads,
//! and a caller told to come back is better served than one left waiting behind thousands.

use std::sync::{Arc, OnceLock};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password checks at once")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// How much password work runs and waits at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordLimits {
    pub at_once: usize,
    pub queued: usize,
}

impl PasswordLimits {
    /// For a command that checks one password (the admin command).
    pub const ONE_AT_A_TIME: Self = Self { at_once: 1, queued: 0 };
}

/// Hashes and checks passwords within [`PasswordLimits`]; clones share the bound.
#[derive(Clone)]
pub struct Passwords {
    running: Arc<Semaphore>,
    /// Permits for the running and the waiting together: a call that finds none is refused.
    admitted: Arc<Semaphore>,
}

impl Passwords {
    pub fn new(limits: PasswordLimits) -> Self {
        let at_once = limits.at_once.max(1);
        Self { running: Arc::new(Semaphore::new(at_once)), admitted: Arc::new(Semaphore::new(at_once + limits.queued)) }
    }

    /// The PHC string of a new password (Argon2id, default parameters, random salt).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| PasswordError::Failed(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown account) a dummy hash is checked
    /// anyway, so the answer takes as long either way and timing does not reveal which accounts exist.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        self.run(move || {
            let dummy = stored.is_none();
            let phc = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let ok = PasswordHash::new(&phc)
                .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
            ok && !dummy
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        let admitted = self.admit()?;
        // The semaphore is never closed, so acquiring only waits.
        let running = self.running.clone().acquire_owned().await.map_err(|_| PasswordError::Busy)?;
        let done = tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            work()
        })
        .await;
        done.map_err(|e| PasswordError::Failed(e.to_string()))
    }

    fn admit(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        self.admitted.clone().try_acquire_owned().map_err(|_| PasswordError::Busy)
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = super::tokens::new_refresh_token();
        Argon2::default().hash_password(secret.as_bytes()).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let passwords = Passwords::new(PasswordLimits::ONE_AT_A_TIME);
        let stored = passwords.hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(passwords.verify("correct horse battery".into(), Some(stored.clone())).await.unwrap());
        assert!(!passwords.verify("wrong horse battery".into(), Some(stored)).await.unwrap());
        assert!(!passwords.verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn past_the_running_and_the_queued_a_call_is_refused_at_once() {
        let passwords = Passwords::new(PasswordLimits { at_once: 1, queued: 2 });
        let taken: Vec<_> = (0..3).map(|_| passwords.admit().expect("three admitted")).collect();
        assert!(matches!(passwords.verify("p".into(), None).await, Err(PasswordError::Busy)));
        assert!(matches!(passwords.hash("p".into()).await, Err(PasswordError::Busy)));
        drop(taken);
        assert!(!passwords.verify("p".into(), None).await.unwrap());
        // Every permit came back: the full bound is free again.
        assert_eq!(passwords.admitted.available_permits(), 3);
        assert_eq!(passwords.running.available_permits(), 1);
    }
}
