//! Waiting rooms: one row per flight whose room an operator configured. The queue itself is not here (it
//! lives in Redis, or in process): only the settings, which must survive restarts and be the same on
//! every instance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WaitingRooms::Table)
                    .col(uuid(WaitingRooms::FlightId).primary_key())
                    .col(boolean(WaitingRooms::Enabled))
                    .col(integer(WaitingRooms::AdmitPerMinute))
                    .col(integer(WaitingRooms::PassTtlSeconds))
                    .col(timestamp_with_time_zone(WaitingRooms::OpensAt))
                    .col(timestamp_with_time_zone(WaitingRooms::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_waiting_rooms_flight")
                            .from(WaitingRooms::Table, WaitingRooms::FlightId)
                            .to(Flights::Table, Flights::Id),
                    )
                    .check(Expr::col(WaitingRooms::AdmitPerMinute).gt(0))
                    .check(Expr::col(WaitingRooms::PassTtlSeconds).gt(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WaitingRooms::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Flights {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WaitingRooms {
    Table,
    FlightId,
    Enabled,
    AdmitPerMinute,
    PassTtlSeconds,
    OpensAt,
    UpdatedAt,
}
