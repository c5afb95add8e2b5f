//! `aerobook.v1.AuthService`.

use aerobook_proto::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{
    app::accounts::{Accounts, Profile, Session},
    domain::auth::{Email, Password, full_name},
    domain::validation::Violations,
    layers::auth::proto_role,
};

pub struct AuthApi {
    accounts: Accounts,
}

impl AuthApi {
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::AuthTokens>, Status> {
        let call = CallContext::of(&request);
        let message = request.into_inner();
        let mut v = Violations::new();
        let email = v.check("email", Email::parse(&message.email));
        let password = v.check("password", Password::new(&message.password));
        let name = v.check("full_name", full_name(&message.full_name));
        let (email, password, name) = v.finish_with(|| Some((email?, password?, name?))).map_err(|e| call.fail(e))?;
        let session = self.accounts.register(email, password, name).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(tokens_to_proto(session)))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::AuthTokens>, Status> {
        let call = CallContext::of(&request);
        let message = request.into_inner();
        let mut v = Violations::new();
        let email = v.check("email", Email::parse(&message.email));
        let password = v.check("password", not_blank(&message.password, 1024));
        let (email, password) = v.finish_with(|| Some((email?, password?))).map_err(|e| call.fail(e))?;
        let session = self.accounts.login(email, password, &call.client.principal()).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(tokens_to_proto(session)))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::AuthTokens>, Status> {
        let call = CallContext::of(&request);
        let token = refresh_token_field(&request.get_ref().refresh_token).map_err(|e| call.fail(e))?;
        let session = self.accounts.refresh(&token).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(tokens_to_proto(session)))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let call = CallContext::of(&request);
        let token = refresh_token_field(&request.get_ref().refresh_token).map_err(|e| call.fail(e))?;
        self.accounts.logout(&token).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::User>, Status> {
        let call = CallContext::of(&request);
        let caller = call.signed_in()?;
        let profile = self.accounts.me(caller).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(user_to_proto(&profile)))
    }
}

/// Present and at most `max` characters; its content is checked by whoever consumes it.
fn not_blank(text: &str, max: usize) -> Result<String, String> {
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(format!("is required, at most {max} characters, without control characters"));
    }
    Ok(text.to_owned())
}

pub(super) fn refresh_token_field(token: &str) -> Result<String, crate::domain::validation::ValidationError> {
    not_blank(token, 256).map_err(|e| crate::domain::validation::ValidationError::single("refresh_token", e))
}

fn tokens_to_proto(session: Session) -> pb::AuthTokens {
    pb::AuthTokens {
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        access_token_expires_at: Some(convert::timestamp(session.access_token_expires_at)),
        user: Some(user_to_proto(&session.user)),
    }
}

fn user_to_proto(profile: &Profile) -> pb::User {
    pb::User {
        id: profile.id.to_string(),
        email: profile.email.clone(),
        full_name: profile.full_name.clone(),
        role: proto_role(profile.role).into(),
    }
}
