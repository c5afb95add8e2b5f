//! Access tokens: HS256 JWTs carrying the user id and role, with a key id (`kid`) so the signing key can
//! rotate (the current key signs, the previous one still verifies). Refresh tokens: opaque random strings,
//! stored only as SHA-256 hashes.

use std::{sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::digest::sha256_hex;
use crate::domain::auth::{Caller, Role};

const ISSUER: &str = "aerobook";
const AUDIENCE: &str = "aerobook-api";
/// Clock skew tolerated between server instances.
const LEEWAY_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token expired")]
    Expired,
    #[error("the access token is not valid: {0}")]
    Invalid(&'static str),
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    fn new(secret: &[u8]) -> Self {
        // The key id names the key without revealing it.
        let kid = sha256_hex(&[secret])[..16].to_owned();
        Self { kid, encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
}

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct AccessTokens {
    current: Arc<SigningKey>,
    previous: Option<Arc<SigningKey>>,
    ttl: Duration,
}

impl AccessTokens {
    pub fn new(current_secret: &[u8], previous_secret: Option<&[u8]>, ttl: Duration) -> Self {
        Self {
            current: Arc::new(SigningKey::new(current_secret)),
            previous: previous_secret.map(|secret| Arc::new(SigningKey::new(secret))),
            ttl,
        }
    }

    /// A token for `caller` valid from `now` for the configured lifetime, and when it expires.
    pub fn issue(&self, caller: Caller, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: caller.user_id,
            role: caller.role.as_str().to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        // HS256 over serialisable claims cannot fail.
        let token = jsonwebtoken::encode(&header, &claims, &self.current.encoding).unwrap_or_default();
        (token, expires_at)
    }

    /// The caller a token speaks for, if it is signed by a known key, unexpired and well-formed.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("malformed"))?;
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| header.kid.as_deref() == Some(key.kid.as_str()))
            .ok_or(TokenError::Invalid("unknown key id"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidSignature => TokenError::Invalid("bad signature"),
            _ => TokenError::Invalid("rejected"),
        })?;
        let role = claims.claims.role.parse::<Role>().map_err(|_| TokenError::Invalid("unknown role"))?;
        Ok(Caller { user_id: claims.claims.sub, role })
    }
}

/// A new refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What is stored for a refresh token: its SHA-256, in hex. A fast hash suffices: the token is random.
pub fn refresh_token_hash(token: &str) -> String {
    sha256_hex(&[token.as_bytes()])
}

/// A random secret for development, when none is configured.
pub fn random_secret() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn caller() -> Caller {
        Caller { user_id: Uuid::now_v7(), role: Role::Operator }
    }

    #[test]
    fn issued_tokens_verify_to_their_caller() {
        let tokens = AccessTokens::new(SECRET, None, Duration::from_secs(900));
        let who = caller();
        let (token, expires_at) = tokens.issue(who, Utc::now());
        assert_eq!(tokens.verify(&token), Ok(who));
        assert!(expires_at > Utc::now() + chrono::Duration::seconds(890));
    }

    #[test]
    fn expired_tokens_are_told_apart_from_invalid_ones() {
        let tokens = AccessTokens::new(SECRET, None, Duration::from_secs(60));
        let (token, _) = tokens.issue(caller(), Utc::now() - chrono::Duration::minutes(10));
        assert_eq!(tokens.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn the_previous_key_still_verifies_and_unknown_keys_do_not() {
        let old = AccessTokens::new(SECRET, None, Duration::from_secs(60));
        let rotated = AccessTokens::new(b"another secret of at least 32 bytes!", Some(SECRET), Duration::from_secs(60));
        let stranger = AccessTokens::new(b"a third secret, unknown to the server", None, Duration::from_secs(60));
        let (token, _) = old.issue(caller(), Utc::now());
        assert!(rotated.verify(&token).is_ok());
        let (foreign, _) = stranger.issue(caller(), Utc::now());
        assert_eq!(rotated.verify(&foreign), Err(TokenError::Invalid("unknown key id")));
    }

    #[test]
    fn tampering_and_alg_none_are_rejected() {
        let tokens = AccessTokens::new(SECRET, None, Duration::from_secs(60));
        let (token, _) = tokens.issue(caller(), Utc::now());
        let (head, rest) = token.split_once('.').unwrap();
        let (payload, _signature) = rest.split_once('.').unwrap();
        let forged_signature = format!("{head}.{payload}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert_eq!(tokens.verify(&forged_signature), Err(TokenError::Invalid("bad signature")));
        let kid = &tokens.current.kid;
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
        assert!(tokens.verify(&format!("{none_header}.{payload}.")).is_err());
        assert!(tokens.verify("garbage").is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(refresh_token_hash(&a).len(), 64);
        assert_eq!(refresh_token_hash(&a), refresh_token_hash(&a));
    }
}
