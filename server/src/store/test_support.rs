//! What the store's own tests share: the databases they run on, and a hold to write.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sea_orm::{ConnectionTrait as _, Database};
use uuid::Uuid;

use crate::{
    config::{DatabaseConfig, Secret},
    domain::{
        booking::{Booking, BookingReference, BookingStatus, Passenger, PassengerType},
        flight::{CabinClass, SeatNumber},
        money::Money,
    },
};

/// A fresh SQLite file in `dir`, and PostgreSQL in a schema of its own when `DATABASE_URL` is set; neither
/// migrated. [`drop_database`] removes the PostgreSQL schema.
pub async fn databases(dir: &tempfile::TempDir) -> Vec<DatabaseConfig> {
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let mut configs =
        vec![DatabaseConfig { url: Secret::new(sqlite), schema: None, max_connections: 2, is_sqlite: true }];
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let schema = format!("store_test_{}", Uuid::new_v4().simple());
        let admin = Database::connect(url.as_str()).await.expect("PostgreSQL");
        admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("a schema");
        configs.push(DatabaseConfig {
            url: Secret::new(url),
            schema: Some(schema),
            max_connections: 2,
            is_sqlite: false,
        });
    }
    configs
}

pub async fn drop_database(config: &DatabaseConfig) {
    if let Some(schema) = &config.schema {
        let admin = Database::connect(config.url.expose()).await.expect("PostgreSQL");
        admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("dropped");
    }
}

/// A hold of one adult on `seat`, for a caller of its own.
pub fn hold(flight_id: Uuid, cabin: CabinClass, reference: &str, seat: SeatNumber, now: DateTime<Utc>) -> Booking {
    Booking {
        id: Uuid::now_v7(),
        reference: BookingReference::from_stored(reference.to_owned()),
        user_id: Uuid::now_v7(),
        flight_id,
        cabin,
        status: BookingStatus::Held,
        total_price: Money::seat_price("SAR", 40_000).expect("a price"),
        passengers: vec![Passenger {
            given_name: "Sara".into(),
            family_name: "O'Neil".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 1, 1).expect("a date"),
            passenger_type: PassengerType::Adult,
        }],
        seats: vec![seat],
        contact_email: "sara@example.com".into(),
        hold_expires_at: Some(now + TimeDelta::minutes(10)),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}
