//! Access tokens signed with the test servers' key, and forged or expired ones.

use std::time::Duration;

use aerobook_server::{AccessTokens, Caller, Role};

/// The signing secret test servers use, so tests can mint tokens (and forge bad ones).
pub const JWT_SECRET: &str = "test-signing-secret-0123456789abcdef";

/// `Bearer <token>` for a new user id with `role`, signed with `secret` and issued at `issued_at`.
pub fn bearer_signed_with(secret: &str, role: Role, issued_at: chrono::DateTime<chrono::Utc>) -> String {
    bearer_for(secret, uuid::Uuid::now_v7(), role, issued_at)
}

pub(crate) fn bearer_for(
    secret: &str,
    user_id: uuid::Uuid,
    role: Role,
    issued_at: chrono::DateTime<chrono::Utc>,
) -> String {
    format!("Bearer {}", access_token(secret, user_id, role, issued_at))
}

fn access_token(secret: &str, user_id: uuid::Uuid, role: Role, issued_at: chrono::DateTime<chrono::Utc>) -> String {
    let tokens = AccessTokens::new(secret.as_bytes(), None, Duration::from_secs(900));
    tokens.issue(Caller { user_id, role }, issued_at).0
}

/// An access token for `user_id` that expired an hour ago (without the `Bearer ` prefix).
pub fn expired_access_token(user_id: uuid::Uuid, role: Role) -> String {
    access_token(JWT_SECRET, user_id, role, chrono::Utc::now() - chrono::Duration::hours(2))
}
