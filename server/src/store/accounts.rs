//! Account and refresh-token queries.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{refresh_token, user},
};
use crate::domain::auth::{Email, Role};

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub password_hash: String,
}

/// One sign-in: the family of refresh tokens rotated from it, and when it ends whatever the rotations.
#[derive(Debug, Clone, Copy)]
pub struct RefreshSession {
    pub family_id: Uuid,
    pub ends_at: DateTime<Utc>,
}

/// A refresh token's record, found by its hash.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub id: Uuid,
    pub session: RefreshSession,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Inserts an account; an existing email gives [`StoreError::Duplicate`].
#[tracing::instrument(name = "db accounts.insert_account", skip_all, fields(otel.kind = "client"))]
pub async fn insert_account(
    db: &impl ConnectionTrait,
    account: &Account,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    user::Entity::insert(user::ActiveModel {
        id: Set(account.id),
        email: Set(account.email.clone()),
        password_hash: Set(account.password_hash.clone()),
        full_name: Set(account.full_name.clone()),
        role: Set(account.role.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "db accounts.account_by_email", skip_all, fields(otel.kind = "client"))]
pub async fn account_by_email(db: &impl ConnectionTrait, email: &Email) -> Result<Option<Account>, StoreError> {
    user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(db).await?.map(to_account).transpose()
}

#[tracing::instrument(name = "db accounts.account", skip_all, fields(otel.kind = "client"))]
pub async fn account(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Account>, StoreError> {
    user::Entity::find_by_id(id).one(db).await?.map(to_account).transpose()
}

fn to_account(row: user::Model) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.id,
        role: row.role.parse().map_err(StoreError::Corrupt)?,
        email: row.email,
        full_name: row.full_name,
        password_hash: row.password_hash,
    })
}

#[tracing::instrument(name = "db accounts.insert_refresh_token", skip_all, fields(otel.kind = "client"))]
pub async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    session: RefreshSession,
    user_id: Uuid,
    token_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        family_id: Set(session.family_id),
        user_id: Set(user_id),
        token_hash: Set(token_hash),
        created_at: Set(now),
        expires_at: Set(expires_at),
        session_ends_at: Set(session.ends_at),
        used_at: Set(None),
        revoked_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "db accounts.refresh_token_by_hash", skip_all, fields(otel.kind = "client"))]
pub async fn refresh_token_by_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<RefreshRecord>, StoreError> {
    let row = refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(token_hash)).one(db).await?;
    Ok(row.map(|row| RefreshRecord {
        id: row.id,
        session: RefreshSession { family_id: row.family_id, ends_at: row.session_ends_at },
        user_id: row.user_id,
        expires_at: row.expires_at,
        revoked: row.revoked_at.is_some(),
    }))
}

/// Marks a token exchanged. `false` when it already was: a concurrent exchange won, which counts as reuse.
#[tracing::instrument(name = "db accounts.mark_refresh_token_used", skip_all, fields(otel.kind = "client"))]
pub async fn mark_refresh_token_used(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Revokes every token of a sign-in.
#[tracing::instrument(name = "db accounts.revoke_family", skip_all, fields(otel.kind = "client"))]
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
