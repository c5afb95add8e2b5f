//! Payments, the provider events already received, and the transactional outbox.
//!
//! Payments: one row per booking, created before the provider is called, so every retry (after a timeout
//! or a crash) sends the provider the same idempotency key and parameters and gets the same PaymentIntent.
//!
//! Provider events: one row per event id, inserted before anything else is done with the event, so a
//! redelivered event is recognised and acknowledged without effect.
//!
//! Outbox: jobs written in the transaction of the change that needs them (apply a provider event, send a
//! refund), run later by any instance under a lease, and marked done in the transaction of their effects.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUSES: [&str; 7] =
    ["REQUIRES_PAYMENT_METHOD", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELED", "REFUND_PENDING", "REFUNDED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(uuid(Payments::Id).primary_key())
                    .col(uuid(Payments::BookingId))
                    .col(uuid(Payments::UserId))
                    .col(string_len(Payments::CurrencyCode, 3))
                    .col(big_integer(Payments::AmountMinor))
                    .col(string_len(Payments::Status, 32))
                    // The PaymentIntent; NULL until the provider has answered the first create.
                    .col(string_len_null(Payments::ProviderReference, 255))
                    .col(text_null(Payments::ClientSecret))
                    // Correlation id of the call that started the payment, sent unchanged on every retry.
                    .col(string_len(Payments::CorrelationId, 128))
                    // Bumped when a canceled PaymentIntent is replaced by a new one.
                    .col(integer(Payments::Attempt))
                    .col(big_integer(Payments::AmountReceivedMinor))
                    .col(big_integer(Payments::AmountRefundedMinor))
                    .col(string_len_null(Payments::DeclineCode, 64))
                    .col(text_null(Payments::FailureMessage))
                    .col(string_len_null(Payments::RefundReference, 255))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payments_booking")
                            .from(Payments::Table, Payments::BookingId)
                            .to(Bookings::Table, Bookings::Id),
                    )
                    .check(Expr::col(Payments::Status).is_in(STATUSES))
                    .check(Expr::col(Payments::AmountMinor).gt(0))
                    // Refunds never exceed what was captured, and nothing is captured beyond the amount.
                    .check(Expr::cust("0 <= amount_refunded_minor AND amount_refunded_minor <= amount_received_minor"))
                    .check(Expr::cust("amount_received_minor <= amount_minor"))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ux_payments_booking", Payments::BookingId),
            ("ux_payments_provider_reference", Payments::ProviderReference),
        ] {
            manager
                .create_index(Index::create().name(name).table(Payments::Table).col(column).unique().to_owned())
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ProviderEvents::Table)
                    .col(string_len(ProviderEvents::Id, 255).primary_key())
                    .col(string_len(ProviderEvents::EventType, 128))
                    .col(timestamp_with_time_zone(ProviderEvents::ReceivedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboxJobs::Table)
                    .col(uuid(OutboxJobs::Id).primary_key())
                    .col(string_len(OutboxJobs::Kind, 64))
                    // The job as JSON.
                    .col(text(OutboxJobs::Payload))
                    .col(timestamp_with_time_zone(OutboxJobs::AvailableAt))
                    .col(integer(OutboxJobs::Attempts))
                    // A worker's lease; another worker may take the job once it has passed.
                    .col(timestamp_with_time_zone_null(OutboxJobs::LockedUntil))
                    .col(text_null(OutboxJobs::LastError))
                    .col(timestamp_with_time_zone_null(OutboxJobs::DoneAt))
                    .col(timestamp_with_time_zone(OutboxJobs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_jobs_due")
                    .table(OutboxJobs::Table)
                    .col(OutboxJobs::DoneAt)
                    .col(OutboxJobs::AvailableAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [OutboxJobs::Table.into_iden(), ProviderEvents::Table.into_iden(), Payments::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    BookingId,
    UserId,
    CurrencyCode,
    AmountMinor,
    Status,
    ProviderReference,
    ClientSecret,
    CorrelationId,
    Attempt,
    AmountReceivedMinor,
    AmountRefundedMinor,
    DeclineCode,
    FailureMessage,
    RefundReference,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ProviderEvents {
    Table,
    Id,
    EventType,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum OutboxJobs {
    Table,
    Id,
    Kind,
    Payload,
    AvailableAt,
    Attempts,
    LockedUntil,
    LastError,
    DoneAt,
    CreatedAt,
}
