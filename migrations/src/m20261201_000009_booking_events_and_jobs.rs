//! Booking events and the job queue they feed.
//!
//! - `booking_history` rows become the booking's events: each names what happened (`HELD`, `CONFIRMED`,
//!   ... or NULL for a note that changes nothing) and carries the trace of the call that caused it. Jobs
//!   derived from an event (its email) are written in the same transaction.
//! - `outbox_jobs` get an explicit state (queued, running, failed, dead, done) and the correlation id of
//!   what queued them, for operators (`AdminService`).
//! - `sent_emails` records each email sent, by the event it tells about: a job that runs again after the
//!   send does not send it twice.
//!
//! SQLite alters one column per statement, hence one `alter_table` per column.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let add = |table: DynIden, column: ColumnDef| Table::alter().table(table).add_column(column).to_owned();
        for column in [string_len_null(BookingHistory::Event, 32), string_len_null(BookingHistory::TraceParent, 55)] {
            manager.alter_table(add(BookingHistory::Table.into_iden(), column)).await?;
        }
        for column in [
            string_len(OutboxJobs::State, 16).default("queued").to_owned(),
            string_len_null(OutboxJobs::CorrelationId, 128),
        ] {
            manager.alter_table(add(OutboxJobs::Table.into_iden(), column)).await?;
        }
        // Jobs queued before states existed: done, failed at least once, or waiting.
        let backfill = [
            ("done", Expr::col(OutboxJobs::DoneAt).is_not_null()),
            ("failed", Expr::col(OutboxJobs::DoneAt).is_null().and(Expr::col(OutboxJobs::LastError).is_not_null())),
        ];
        for (state, condition) in backfill {
            manager
                .exec_stmt(
                    Query::update()
                        .table(OutboxJobs::Table)
                        .value(OutboxJobs::State, state)
                        .and_where(condition)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_jobs_state")
                    .table(OutboxJobs::Table)
                    .col(OutboxJobs::State)
                    .col(OutboxJobs::AvailableAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SentEmails::Table)
                    // The booking event the email tells about: one email per event.
                    .col(uuid(SentEmails::EventId).primary_key())
                    .col(string_len(SentEmails::MessageId, 255))
                    .col(string_len(SentEmails::Recipient, 254))
                    .col(timestamp_with_time_zone(SentEmails::SentAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SentEmails::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("ix_outbox_jobs_state").table(OutboxJobs::Table).to_owned()).await?;
        for column in [OutboxJobs::State, OutboxJobs::CorrelationId] {
            manager.alter_table(Table::alter().table(OutboxJobs::Table).drop_column(column).to_owned()).await?;
        }
        for column in [BookingHistory::Event, BookingHistory::TraceParent] {
            manager.alter_table(Table::alter().table(BookingHistory::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum BookingHistory {
    Table,
    Event,
    TraceParent,
}

#[derive(DeriveIden)]
enum OutboxJobs {
    Table,
    State,
    CorrelationId,
    DoneAt,
    LastError,
    AvailableAt,
}

#[derive(DeriveIden)]
enum SentEmails {
    Table,
    EventId,
    MessageId,
    Recipient,
    SentAt,
}
