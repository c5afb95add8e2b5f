//! Bearer tokens: who is calling. The policy layer decides what that caller may do.

use aerobook_proto::v1;
use http::{HeaderMap, header::AUTHORIZATION};

use super::errors::ApiError;
use crate::{
    domain::auth::{Caller, Role},
    infra::tokens::{AccessTokens, TokenError},
};

/// The caller named by the `authorization: Bearer <token>` header; `None` without the header. A header
/// that is present but not a valid, unexpired token is an error.
pub fn authenticate(headers: &HeaderMap, tokens: &AccessTokens) -> Result<Option<Caller>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the authorization header must be `Bearer <access token>`"))?;
    match tokens.verify(token) {
        Ok(caller) => Ok(Some(caller)),
        Err(TokenError::Expired) => Err(ApiError::token_expired()),
        Err(TokenError::Invalid(reason)) => {
            tracing::debug!(reason, "access token rejected");
            Err(ApiError::unauthorized("the access token is not valid"))
        }
    }
}

/// The proto's name for a role, as the `(aerobook.v1.policy)` role lists use it.
pub fn proto_role(role: Role) -> v1::Role {
    match role {
        Role::Customer => v1::Role::Customer,
        Role::Operator => v1::Role::Operator,
        Role::Service => v1::Role::Service,
    }
}
