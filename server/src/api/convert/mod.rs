//! Conversions between proto messages and domain values. Converting a request validates it: every
//! problem is recorded under its proto field path, so the caller learns everything wrong at once.
//!
//! Shared pieces (ids, timestamps, cabins, money, notes) are here; each service's messages have a file.

mod bookings;
mod check_in;
mod flights;
mod payments;

pub use bookings::{
    BookingRequest, booking_request, booking_to_proto, booking_with_documents_to_proto, change_quote_to_proto,
    list_bookings_query, seat_numbers,
};
pub use check_in::{boarding_pass_to_proto, check_in_request, manifest_entry_to_proto, passenger_index};
pub use flights::{
    cabins_to_proto, flight_page_to_proto, flight_search, flight_to_proto, new_flight, seat_map_query,
    seat_map_to_proto, trip_search,
};
pub use payments::{payment_to_proto, reconciliation_to_proto};

use aerobook_proto::v1 as pb;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    app::payments::ReconciliationReport,
    domain::{
        auth::Email,
        booking::{
            Booking, BookingStatus, MAX_NOTE_CHARS, MAX_PASSENGERS, Passenger, PassengerType, Segment, check_party,
            check_party_size, date_of_birth, person_name,
        },
        change::ChangeQuote,
        flight::{
            AirportCode, CabinAvailability, CabinClass, CabinConfig, CabinLayout, Flight, FlightNumber, FlightStatus,
            MAX_CABINS, NewFlight, NewFlightParts, SeatNumber, SeatState,
        },
        hold::{HoldRequest, check_hold_seats},
        money::{MAX_SEAT_PRICE_MINOR, Money},
        pagination::{Cursor, DEFAULT_PAGE_SIZE, page_size},
        payment::{Payment, PaymentStatus},
        pending_change::PendingChange,
        search::{self, FlightPage, FlightSearch, MAX_TRIP_LEGS, Route},
        ticket::{Ticket, TicketStatus},
        trip::{MAX_TRIP_SEGMENTS, SegmentRequest, TripRequest, check_segment_count},
        validation::{ValidationError, Violations},
        waiting_room::check_pass_shape,
    },
};

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

/// A schedule time, kept to the second: finer parts would make page tokens (microseconds) ambiguous.
pub fn parse_timestamp(at: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, String> {
    let at = at.ok_or("is required")?;
    if !(0..1_000_000_000).contains(&at.nanos) {
        return Err("is not a valid timestamp".to_owned());
    }
    DateTime::from_timestamp(at.seconds, 0).ok_or_else(|| "is not a valid timestamp".to_owned())
}

/// A UUID in its canonical hyphenated form.
/// A span of time as protobuf has it; negative spans read as zero.
pub fn duration(span: chrono::TimeDelta) -> prost_types::Duration {
    let span = span.max(chrono::TimeDelta::zero());
    prost_types::Duration { seconds: span.num_seconds(), nanos: span.subsec_nanos() }
}

pub fn uuid(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text)
        .ok()
        .filter(|_| text.len() == 36)
        .ok_or_else(|| "must be a UUID, e.g. 0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f".to_owned())
}

/// The id of the one object a request is about.
pub fn parse_id(field: &'static str, text: &str) -> Result<Uuid, ValidationError> {
    uuid(text).map_err(|description| ValidationError::single(field, description))
}

/// A required cabin: unspecified and unknown values are rejected.
pub fn cabin(value: i32) -> Result<CabinClass, String> {
    optional_cabin(value)?.ok_or_else(|| "must be set to a cabin class".to_owned())
}

/// `None` for unspecified; unknown values are rejected.
pub fn optional_cabin(value: i32) -> Result<Option<CabinClass>, String> {
    match pb::CabinClass::try_from(value) {
        Ok(pb::CabinClass::Unspecified) => Ok(None),
        Ok(pb::CabinClass::Economy) => Ok(Some(CabinClass::Economy)),
        Ok(pb::CabinClass::PremiumEconomy) => Ok(Some(CabinClass::PremiumEconomy)),
        Ok(pb::CabinClass::Business) => Ok(Some(CabinClass::Business)),
        Ok(pb::CabinClass::First) => Ok(Some(CabinClass::First)),
        Err(_) => Err(format!("{value} is not a cabin class")),
    }
}

pub fn cabin_to_proto(cabin: CabinClass) -> pb::CabinClass {
    match cabin {
        CabinClass::Economy => pb::CabinClass::Economy,
        CabinClass::PremiumEconomy => pb::CabinClass::PremiumEconomy,
        CabinClass::Business => pb::CabinClass::Business,
        CabinClass::First => pb::CabinClass::First,
    }
}

fn money_to_proto(money: Money) -> pb::Money {
    pb::Money { currency_code: money.currency.as_str().to_owned(), amount_minor: money.amount_minor }
}

/// A free-text reason or note: at most [`MAX_NOTE_CHARS`] characters; blank means none.
pub fn note(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    // Lines and tabs are a note's own; other control characters (escape sequences) are not.
    let stray_control = text.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    if text.chars().count() > MAX_NOTE_CHARS || stray_control {
        return Err(format!("must be at most {MAX_NOTE_CHARS} characters, without control characters"));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: ValidationError) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn unknown_enum_numbers_are_rejected() {
        assert!(optional_cabin(99).is_err());
        assert_eq!(optional_cabin(0), Ok(None));
        assert_eq!(cabin(3), Ok(CabinClass::Business));
    }

    #[test]
    fn ids_must_be_canonical_uuids() {
        assert!(parse_id("flight_id", "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f").is_ok());
        for bad in ["", "123", "0192f3c45b6a7c8d9e0f1a2b3c4d5e6f", "{0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f}"] {
            assert_eq!(fields(parse_id("flight_id", bad).unwrap_err()), ["flight_id"]);
        }
    }
}
