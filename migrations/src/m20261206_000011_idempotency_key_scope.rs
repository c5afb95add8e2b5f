//! A hold's idempotency key records the cabin it was for (`scope`), so the sold-out gate can read the keys
//! a cabin's holds recorded and refuse any other key without looking it up. Keys recorded before this
//! migration get the scope `legacy`, which every cabin's reading includes until they expire.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(string_len_null(IdempotencyKeys::Scope, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(Query::update().table(IdempotencyKeys::Table).value(IdempotencyKeys::Scope, "legacy").to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_scope")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::Scope)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_idempotency_keys_scope").table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(IdempotencyKeys::Table).drop_column(IdempotencyKeys::Scope).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
}
