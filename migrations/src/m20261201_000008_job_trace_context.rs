//! Outbox jobs remember the trace of the call that queued them (a W3C `traceparent`), so the job's span
//! links to that call: an operator follows a booking from the request to the work done after it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxJobs::Table)
                    .add_column(string_len_null(OutboxJobs::TraceParent, 55))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(OutboxJobs::Table).drop_column(OutboxJobs::TraceParent).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OutboxJobs {
    Table,
    TraceParent,
}
