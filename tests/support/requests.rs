//! Request builders: metadata, idempotency keys, and valid requests tests vary one field of.

use aerobook_proto::v1 as pb;
use tonic::metadata::{MetadataMap, MetadataValue};

/// A request with metadata headers attached.
pub fn request<T>(message: T, headers: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata: &mut MetadataMap = request.metadata_mut();
    for (name, value) in headers {
        metadata.insert(*name, MetadataValue::try_from(*value).expect("ASCII header"));
    }
    request
}

/// A fresh, valid idempotency key.
pub fn idempotency_key() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

/// Local date at Riyadh (UTC+3, no DST) `days` from now, as `YYYY-MM-DD`: the seeded domestic schedule's dates.
pub fn riyadh_date(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(3) + chrono::Duration::days(days)).format("%Y-%m-%d").to_string()
}

pub fn search_request(origin: &str, destination: &str, date: &str) -> pb::SearchFlightsRequest {
    pb::SearchFlightsRequest {
        origin: origin.into(),
        destination: destination.into(),
        departure_date: date.into(),
        passengers: 1,
        cabin: pb::CabinClass::Economy.into(),
        page_size: 0,
        page_token: String::new(),
    }
}

/// A valid `CreateFlight` request departing `days_ahead` days from now at a unique minute.
pub fn create_flight_request(
    number: &str,
    origin: &str,
    destination: &str,
    days_ahead: i64,
) -> pb::CreateFlightRequest {
    let departs = chrono::Utc::now() + chrono::Duration::days(days_ahead);
    let departs = departs - chrono::Duration::seconds(departs.timestamp() % 60);
    let ts = |at: chrono::DateTime<chrono::Utc>| prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 };
    pb::CreateFlightRequest {
        flight_number: number.into(),
        origin: origin.into(),
        destination: destination.into(),
        departs_at: Some(ts(departs)),
        arrives_at: Some(ts(departs + chrono::Duration::minutes(95))),
        cabins: vec![
            pb::CabinConfig {
                cabin: pb::CabinClass::Business.into(),
                first_row: 1,
                rows: 2,
                seat_letters: "AC".into(),
                price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: 150_000 }),
                change_fee: None,
            },
            pb::CabinConfig {
                cabin: pb::CabinClass::Economy.into(),
                first_row: 10,
                rows: 3,
                seat_letters: "ABC".into(),
                price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: 40_000 }),
                change_fee: None,
            },
        ],
    }
}
