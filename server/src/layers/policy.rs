//! Enforces each RPC's `(aerobook.v1.policy)` option before the call reaches its service, in this order:
//! authentication (a valid token where the RPC is not public), the role list, the rate-limit class, and
//! the idempotency-key rule (presence and format; what a key means is the idempotency store's business).
//! The authenticated [`Caller`] and the validated [`MethodKey`] travel on to the service in the request
//! extensions.

use std::sync::Arc;

use aerobook_proto::{RpcPolicy, v1::RateLimitClass};
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use http::HeaderMap;

use super::{
    auth::{authenticate, proto_role},
    client_address::ClientAddress,
    correlation::CorrelationId,
    errors::ApiError,
    idempotency::{IdempotencyKey, MethodKey},
    reject,
};
use crate::{
    domain::auth::Caller,
    infra::{rate_limit::RateLimiter, tokens::AccessTokens},
};

pub struct PolicyState {
    pub tokens: AccessTokens,
    pub limiter: RateLimiter,
}

/// The rate-limit bucket of a class, as named in the configuration.
pub fn bucket(class: RateLimitClass) -> &'static str {
    match class {
        RateLimitClass::Auth => "auth",
        RateLimitClass::Search => "search",
        RateLimitClass::Read => "read",
        RateLimitClass::Mutation | RateLimitClass::Unspecified => "mutation",
    }
}

pub async fn enforce_policy(State(state): State<Arc<PolicyState>>, mut request: Request, next: Next) -> Response {
    let Some(policy) = aerobook_proto::rpc_policy(request.uri().path()) else {
        return next.run(request).await;
    };
    // The client address names anonymous callers for rate limiting.
    let address = ClientAddress::of(request.extensions());
    match admit(&state, policy, request.headers(), address).await {
        Ok((caller, key)) => {
            if let Some(caller) = caller {
                request.extensions_mut().insert(caller);
            }
            if let Some(key) = key {
                request.extensions_mut().insert(MethodKey { key, method: policy.path });
            }
            next.run(request).await
        }
        Err(error) => reject(error, &CorrelationId::of(request.extensions())),
    }
}

async fn admit(
    state: &PolicyState,
    policy: &RpcPolicy,
    headers: &HeaderMap,
    address: ClientAddress,
) -> Result<(Option<Caller>, Option<IdempotencyKey>), ApiError> {
    let caller = match authenticate(headers, &state.tokens) {
        Ok(caller) => caller,
        // A public RPC serves everyone: a stale token does not stand in the way of a search.
        Err(_) if policy.public => None,
        Err(error) => return Err(error),
    };
    if !policy.public {
        let caller = caller.ok_or_else(|| ApiError::unauthorized("sign in first: this call needs an access token"))?;
        if !policy.admits(proto_role(caller.role)) {
            return Err(ApiError::forbidden());
        }
    }
    let principal = match caller {
        Some(caller) => format!("user:{}", caller.user_id),
        None => address.principal(),
    };
    state.limiter.check(bucket(policy.rate_limit), &principal).await.map_err(ApiError::rate_limited)?;
    let key = if policy.idempotency_key_required {
        Some(IdempotencyKey::from_headers(headers).map_err(|violation| ApiError::validation(vec![violation]))?)
    } else {
        None
    };
    Ok((caller, key))
}
