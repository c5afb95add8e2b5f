//! A sign-in's refresh tokens rotate, each living `AEROBOOK_REFRESH_TOKEN_TTL_SECONDS`; without a bound of
//! its own the session could be kept alive forever by refreshing in time. Every token now carries its
//! session's absolute end, set at sign-in and copied on each rotation. Tokens issued before this
//! migration end their session at their own expiry.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(timestamp_with_time_zone_null(RefreshTokens::SessionEndsAt))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(RefreshTokens::Table)
                    .value(RefreshTokens::SessionEndsAt, Expr::col(RefreshTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        // SQLite cannot add a NOT NULL constraint to an existing column; there the code alone keeps it set.
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE refresh_tokens ALTER COLUMN session_ends_at SET NOT NULL")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(RefreshTokens::Table).drop_column(RefreshTokens::SessionEndsAt).to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ExpiresAt,
    SessionEndsAt,
}
