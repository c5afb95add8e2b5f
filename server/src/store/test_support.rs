//! What the store's own tests share: the databases they run on, and a hold to write.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, ConnectionTrait, Database, EntityTrait as _};
use uuid::Uuid;

use super::entities::{booking, booking_passenger, flight, flight_cabin};
use crate::{
    config::{DatabaseConfig, Secret},
    domain::{
        booking::{Booking, BookingReference, BookingStatus, Passenger, PassengerType, Segment},
        flight::{AirportCode, CabinClass, SeatNumber},
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
    let price = Money::seat_price("SAR", 40_000).expect("a price");
    Booking {
        id: Uuid::now_v7(),
        reference: BookingReference::from_stored(reference.to_owned()),
        user_id: Uuid::now_v7(),
        flight_id,
        cabin,
        status: BookingStatus::Held,
        total_price: price,
        passengers: vec![Passenger {
            given_name: "Sara".into(),
            family_name: "O'Neil".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 1, 1).expect("a date"),
            passenger_type: PassengerType::Adult,
        }],
        segments: vec![Segment {
            flight_id,
            cabin,
            seats: vec![seat],
            price,
            origin: AirportCode::parse("RUH").expect("a code"),
            destination: AirportCode::parse("JED").expect("a code"),
            departs_at: now,
            arrives_at: now,
        }],
        contact_email: "sara@example.com".into(),
        hold_expires_at: Some(now + TimeDelta::minutes(10)),
        created_at: now,
        updated_at: now,
        version: 1,
        pending_change: None,
        tickets: Vec::new(),
        documents: Default::default(),
    }
}

/// Flight `number` in two days from RUH to JED with an economy cabin of rows 10 to 12, seats A to C,
/// written with only the columns the first schema has, for the tests of the migrations since: its id,
/// cabin and first row.
pub async fn insert_early_flight(
    db: &impl ConnectionTrait,
    number: &str,
    now: DateTime<Utc>,
) -> (Uuid, CabinClass, i32) {
    let (id, departs_at) = (Uuid::now_v7(), now + TimeDelta::days(2));
    let flight = flight::ActiveModel {
        id: Set(id),
        flight_number: Set(number.into()),
        origin: Set("RUH".into()),
        destination: Set("JED".into()),
        departs_at: Set(departs_at),
        arrives_at: Set(departs_at + TimeDelta::hours(2)),
        departure_date: Set(departs_at.date_naive()),
        status: Set("SCHEDULED".into()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    flight::Entity::insert(flight).exec_without_returning(db).await.expect("a flight");
    let cabin = flight_cabin::ActiveModel {
        flight_id: Set(id),
        cabin: Set(CabinClass::Economy.as_str().into()),
        first_row: Set(10),
        row_count: Set(3),
        seat_letters: Set("ABC".into()),
        seats_total: Set(9),
        seats_available: Set(9),
        currency_code: Set("SAR".into()),
        price_amount_minor: Set(40_000),
        ..Default::default()
    };
    flight_cabin::Entity::insert(cabin).exec_without_returning(db).await.expect("a cabin");
    (id, CabinClass::Economy, 10)
}

/// Writes `booking` and its passengers as a version before segments did (the first segment's seats on the
/// passengers), for the tests of the migrations since.
pub async fn insert_without_segments(db: &impl ConnectionTrait, booking: &Booking) {
    // Only the columns of that version: the booking's later ones are left unset.
    let row = booking::ActiveModel {
        id: Set(booking.id),
        reference: Set(booking.reference.as_str().to_owned()),
        user_id: Set(booking.user_id),
        flight_id: Set(booking.flight_id),
        cabin: Set(booking.cabin.as_str().to_owned()),
        status: Set(booking.status.as_str().to_owned()),
        contact_email: Set(booking.contact_email.clone()),
        currency_code: Set(booking.total_price.currency.as_str().to_owned()),
        total_amount_minor: Set(booking.total_price.amount_minor),
        hold_expires_at: Set(booking.hold_expires_at),
        created_at: Set(booking.created_at),
        updated_at: Set(booking.updated_at),
        version: Set(booking.version),
        ..Default::default()
    };
    booking::Entity::insert(row).exec_without_returning(db).await.expect("a booking");
    for (position, (passenger, seat)) in booking.passengers.iter().zip(booking.first_seats()).enumerate() {
        let row = booking_passenger::Model {
            booking_id: booking.id,
            position: position as i16,
            given_name: passenger.given_name.clone(),
            family_name: passenger.family_name.clone(),
            date_of_birth: passenger.date_of_birth,
            passenger_type: passenger.passenger_type.as_str().to_owned(),
            seat_number: seat.to_string(),
        };
        booking_passenger::ActiveModel::from(row).insert(db).await.expect("a passenger");
    }
}
