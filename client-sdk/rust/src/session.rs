//! The signed-in session: tokens in a pluggable [`TokenStore`], and one refresh at a time.

use std::{
    any::Any,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use aerobook_proto::v1 as pb;

/// An access token (sent as `authorization: Bearer ...`) and what renews it. `Debug` hides both tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// Without it (a service handed only an access token) an expired token cannot be renewed, and calls fail
    /// with `TOKEN_EXPIRED`.
    pub refresh_token: Option<String>,
    pub access_token_expires_at: Option<SystemTime>,
}

impl Tokens {
    /// Whether the access token expires within `margin` and can be renewed: it is then renewed before it is
    /// sent.
    fn due_for_renewal(&self, margin: Duration) -> bool {
        self.refresh_token.is_some()
            && self.access_token_expires_at.is_some_and(|expires_at| expires_at <= SystemTime::now() + margin)
    }
}

impl From<&pb::AuthTokens> for Tokens {
    fn from(tokens: &pb::AuthTokens) -> Self {
        Self {
            access_token: tokens.access_token.clone(),
            refresh_token: Some(tokens.refresh_token.clone()).filter(|token| !token.is_empty()),
            access_token_expires_at: tokens
                .access_token_expires_at
                .and_then(|timestamp| SystemTime::try_from(timestamp).ok()),
        }
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish()
    }
}

/// Where the session's tokens live: memory by default, the platform's keychain in a mobile app. The client
/// saves tokens it receives (`Register`, `Login`, `RefreshToken`) and clears them on `Logout` or when a
/// refresh is refused.
pub trait TokenStore: Send + Sync {
    fn load(&self) -> Option<Tokens>;
    fn save(&self, tokens: Option<Tokens>);
}

/// Keeps the tokens in memory, for the life of the process.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<Option<Tokens>>,
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> Option<Tokens> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn save(&self, tokens: Option<Tokens>) {
        *self.tokens.lock().unwrap_or_else(PoisonError::into_inner) = tokens;
    }
}

/// Renew an access token this long before it expires, so clock skew and the call's own travel do not make
/// the server see it expired.
const EARLY_REFRESH: Duration = Duration::from_secs(30);

/// What a refresh should do, decided under the refresh lock.
pub(crate) enum Renewal {
    /// Another call renewed the token meanwhile: use this one.
    Renewed(String),
    /// Exchange this refresh token.
    Exchange(String),
    /// Nothing can renew the token.
    Impossible,
}

pub(crate) struct Session {
    store: Arc<dyn TokenStore>,
    /// Held while a refresh runs: concurrent calls with the same stale token wait for that refresh instead of
    /// starting their own (the server treats a refresh token used twice as stolen and ends the session).
    pub(crate) refreshing: tokio::sync::Mutex<()>,
}

impl Session {
    pub(crate) fn new(store: Arc<dyn TokenStore>) -> Self {
        Self { store, refreshing: tokio::sync::Mutex::new(()) }
    }

    pub(crate) fn tokens(&self) -> Option<Tokens> {
        self.store.load()
    }

    pub(crate) fn save(&self, tokens: Option<Tokens>) {
        self.store.save(tokens);
    }

    /// Keeps the session in step with an answer: `AuthTokens` (from `Register`, `Login`, `RefreshToken`)
    /// become the session, `LogoutResponse` ends it, other answers leave it alone.
    pub(crate) fn observe(&self, answer: &dyn Any) {
        if let Some(tokens) = answer.downcast_ref::<pb::AuthTokens>() {
            self.save(Some(Tokens::from(tokens)));
        } else if answer.is::<pb::LogoutResponse>() {
            self.save(None);
        }
    }

    /// The access token to send, and whether it should be renewed first.
    pub(crate) fn access_token(&self) -> Option<(String, bool)> {
        self.store.load().map(|tokens| {
            let stale = tokens.due_for_renewal(EARLY_REFRESH);
            (tokens.access_token, stale)
        })
    }

    /// Decides, holding the refresh lock, how to replace the access token `stale`.
    pub(crate) fn renewal(&self, stale: &str) -> Renewal {
        match self.store.load() {
            Some(tokens) if tokens.access_token != stale => Renewal::Renewed(tokens.access_token),
            Some(Tokens { refresh_token: Some(refresh_token), .. }) => Renewal::Exchange(refresh_token),
            _ => Renewal::Impossible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_tokens() {
        let tokens = Tokens {
            access_token: "secret-access".into(),
            refresh_token: Some("secret-refresh".into()),
            access_token_expires_at: None,
        };
        let printed = format!("{tokens:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn only_renewable_tokens_near_expiry_are_renewed_early() {
        let soon = Some(SystemTime::now() + Duration::from_secs(5));
        let later = Some(SystemTime::now() + Duration::from_secs(600));
        let tokens = |refresh: Option<&str>, expires_at| Tokens {
            access_token: "a".into(),
            refresh_token: refresh.map(str::to_owned),
            access_token_expires_at: expires_at,
        };
        assert!(tokens(Some("r"), soon).due_for_renewal(EARLY_REFRESH));
        assert!(!tokens(Some("r"), later).due_for_renewal(EARLY_REFRESH));
        assert!(!tokens(None, soon).due_for_renewal(EARLY_REFRESH), "nothing to renew it with");
    }

    #[test]
    fn renewal_uses_a_token_renewed_meanwhile() {
        let session = Session::new(Arc::new(MemoryTokenStore::default()));
        assert!(matches!(session.renewal("a"), Renewal::Impossible));
        session.save(Some(Tokens {
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            access_token_expires_at: None,
        }));
        assert!(matches!(session.renewal("a"), Renewal::Exchange(refresh) if refresh == "r"));
        assert!(matches!(session.renewal("old"), Renewal::Renewed(access) if access == "a"));
    }

    #[test]
    fn authentication_answers_start_and_end_the_session() {
        let session = Session::new(Arc::new(MemoryTokenStore::default()));
        session.observe(&pb::User::default());
        assert_eq!(session.tokens(), None, "other answers leave the session alone");
        session.observe(&pb::AuthTokens { access_token: "a".into(), refresh_token: "r".into(), ..Default::default() });
        assert_eq!(session.tokens().and_then(|tokens| tokens.refresh_token).as_deref(), Some("r"));
        session.observe(&pb::LogoutResponse {});
        assert_eq!(session.tokens(), None);
    }
}
