//! Refunds counted per payment.
//!
//! `payments.refund_attempt` numbers the refunds Aerobook sends for a payment: the provider's idempotency
//! key is derived from it, so a refund that failed can be sent again as a new request, while a retry of
//! the same attempt (after a timeout or a crash) still names the refund the first try created.
//!
//! `payment_refunds` holds each refund the provider reported as succeeded, once per refund id, so the
//! amount refunded is the sum of distinct refunds however often their events arrive; a refund smaller than
//! what was received (made in the provider's dashboard) is recorded without refunding the booking.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .add_column(integer(Payments::RefundAttempt).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PaymentRefunds::Table)
                    .col(string_len(PaymentRefunds::RefundId, 255).primary_key())
                    .col(uuid(PaymentRefunds::PaymentId))
                    .col(big_integer(PaymentRefunds::AmountMinor))
                    .col(timestamp_with_time_zone(PaymentRefunds::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payment_refunds_payment")
                            .from(PaymentRefunds::Table, PaymentRefunds::PaymentId)
                            .to(Payments::Table, Payments::Id),
                    )
                    .check(Expr::col(PaymentRefunds::AmountMinor).gte(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_payment_refunds_payment")
                    .table(PaymentRefunds::Table)
                    .col(PaymentRefunds::PaymentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PaymentRefunds::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Payments::Table).drop_column(Payments::RefundAttempt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    Id,
    RefundAttempt,
}

#[derive(DeriveIden)]
enum PaymentRefunds {
    Table,
    RefundId,
    PaymentId,
    AmountMinor,
    RecordedAt,
}
