//! Conversions between proto messages and domain values. Converting a request validates it: every
//! problem is recorded under its proto field path, so the caller learns everything wrong at once.

use aerobook_proto::v1 as pb;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    app::payments::ReconciliationReport,
    domain::{
        auth::Email,
        booking::{
            Booking, BookingStatus, HoldRequest, MAX_NOTE_CHARS, MAX_PASSENGERS, Passenger, PassengerType, check_party,
            date_of_birth, person_name,
        },
        flight::{
            AirportCode, CabinAvailability, CabinClass, CabinConfig, CabinLayout, Flight, FlightNumber, FlightStatus,
            MAX_CABINS, NewFlight, NewFlightParts, SeatNumber, SeatState,
        },
        money::Money,
        pagination::{Cursor, page_size},
        payment::{Payment, PaymentStatus},
        search::{self, FlightPage, FlightSearch, Route},
        validation::{ValidationError, Violations},
    },
};

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

/// A schedule time, kept to the second: finer parts would make page tokens (microseconds) ambiguous.
fn parse_timestamp(at: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, String> {
    let at = at.ok_or("is required")?;
    if !(0..1_000_000_000).contains(&at.nanos) {
        return Err("is not a valid timestamp".to_owned());
    }
    DateTime::from_timestamp(at.seconds, 0).ok_or_else(|| "is not a valid timestamp".to_owned())
}

/// A UUID in its canonical hyphenated form.
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

/// `GetSeatMapRequest`: the flight and, optionally, one cabin.
pub fn seat_map_query(request: &pb::GetSeatMapRequest) -> Result<(Uuid, Option<CabinClass>), ValidationError> {
    let mut v = Violations::new();
    let id = v.check("flight_id", uuid(&request.flight_id));
    let cabin = v.check("cabin", optional_cabin(request.cabin));
    v.finish_with(|| Some((id?, cabin?)))
}

/// A required cabin: unspecified and unknown values are rejected.
fn cabin(value: i32) -> Result<CabinClass, String> {
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

fn status_to_proto(status: FlightStatus) -> pb::FlightStatus {
    match status {
        FlightStatus::Scheduled => pb::FlightStatus::Scheduled,
        FlightStatus::Delayed => pb::FlightStatus::Delayed,
        FlightStatus::Cancelled => pb::FlightStatus::Cancelled,
        FlightStatus::Departed => pb::FlightStatus::Departed,
        FlightStatus::Arrived => pb::FlightStatus::Arrived,
    }
}

pub fn cabins_to_proto(cabins: &[CabinAvailability]) -> Vec<pb::CabinAvailability> {
    cabins.iter().map(cabin_availability_to_proto).collect()
}

fn money_to_proto(money: Money) -> pb::Money {
    pb::Money { currency_code: money.currency.as_str().to_owned(), amount_minor: money.amount_minor }
}

fn cabin_availability_to_proto(cabin: &CabinAvailability) -> pb::CabinAvailability {
    pb::CabinAvailability {
        cabin: cabin_to_proto(cabin.cabin).into(),
        seats_total: cabin.seats_total,
        seats_available: cabin.seats_available,
        price: Some(money_to_proto(cabin.price)),
    }
}

pub fn flight_to_proto(flight: &Flight) -> pb::Flight {
    pb::Flight {
        id: flight.id.to_string(),
        flight_number: flight.flight_number.as_str().to_owned(),
        origin: flight.origin.to_string(),
        destination: flight.destination.to_string(),
        departs_at: Some(timestamp(flight.departs_at)),
        arrives_at: Some(timestamp(flight.arrives_at)),
        status: status_to_proto(flight.status).into(),
        cabins: cabins_to_proto(&flight.cabins),
        origin_time_zone: flight.origin_time_zone.name().to_owned(),
        destination_time_zone: flight.destination_time_zone.name().to_owned(),
    }
}

pub fn flight_page_to_proto(page: &FlightPage) -> pb::SearchFlightsResponse {
    pb::SearchFlightsResponse {
        flights: page.flights.iter().map(flight_to_proto).collect(),
        next_page_token: page.next_page_token.clone().unwrap_or_default(),
    }
}

pub fn seat_map_to_proto(flight: &Flight, seats: &[SeatState]) -> pb::SeatMap {
    pb::SeatMap {
        flight_id: flight.id.to_string(),
        seats: seats
            .iter()
            .map(|s| pb::Seat {
                seat_number: s.seat.to_string(),
                cabin: cabin_to_proto(s.cabin).into(),
                available: s.available,
            })
            .collect(),
    }
}

/// `today` is the server's current UTC date, against which the departure date is bounded.
pub fn flight_search(request: pb::SearchFlightsRequest, today: NaiveDate) -> Result<FlightSearch, ValidationError> {
    let mut v = Violations::new();
    let origin = v.check("origin", AirportCode::parse(&request.origin));
    let destination = v.check("destination", AirportCode::parse(&request.destination));
    if let (Some(o), Some(d)) = (origin, destination)
        && o == d
    {
        v.add("destination", "must differ from origin");
    }
    let departure_date = v.check("departure_date", search::departure_date(&request.departure_date, today));
    let passengers = v.check("passengers", search::passengers(request.passengers));
    let cabin = v.check("cabin", optional_cabin(request.cabin));
    let page_size = v.check("page_size", page_size(request.page_size));
    let after = v.check("page_token", Cursor::decode(&request.page_token));
    v.finish_with(|| {
        Some(FlightSearch {
            route: Route { origin: origin?, destination: destination? },
            departure_date: departure_date?,
            passengers: passengers?,
            cabin: cabin?,
            page_size: page_size?,
            after: after?,
        })
    })
}

pub fn new_flight(request: pb::CreateFlightRequest, now: DateTime<Utc>) -> Result<NewFlight, ValidationError> {
    let mut v = Violations::new();
    let mut cabins = Vec::new();
    // Over the limit, no cabin is parsed and `NewFlight::assemble` reports the count: thousands of cabins
    // would be work (and violations) spent on a request that is rejected anyway.
    let listed = if request.cabins.len() > MAX_CABINS { &[][..] } else { &request.cabins[..] };
    for (i, config) in listed.iter().enumerate() {
        let class = v.check(format!("cabins[{i}].cabin"), cabin(config.cabin));
        let layout = CabinLayout::new(config.first_row, config.rows, &config.seat_letters)
            .map_err(|(field, e)| v.add(format!("cabins[{i}].{field}"), e))
            .ok();
        let price = match &config.price {
            None => {
                v.add(format!("cabins[{i}].price"), "is required");
                None
            }
            Some(price) => Money::seat_price(&price.currency_code, price.amount_minor)
                .map_err(|(field, e)| v.add(format!("cabins[{i}].price.{field}"), e))
                .ok(),
        };
        cabins.push(match (class, layout, price) {
            (Some(cabin), Some(layout), Some(price)) => Some(CabinConfig { cabin, layout, price }),
            _ => None,
        });
    }
    let parts = NewFlightParts {
        flight_number: v.check("flight_number", FlightNumber::parse(&request.flight_number)),
        origin: v.check("origin", AirportCode::parse(&request.origin)),
        destination: v.check("destination", AirportCode::parse(&request.destination)),
        departs_at: v.check("departs_at", parse_timestamp(request.departs_at.as_ref())),
        arrives_at: v.check("arrives_at", parse_timestamp(request.arrives_at.as_ref())),
        cabins,
    };
    NewFlight::assemble(parts, v, now)
}

/// `CreateBookingRequest`, checked field by field and for the party as a whole. Rules that need the
/// flight (its cabins, the passengers' ages on the day of travel) are checked by the use case.
pub fn hold_request(request: pb::CreateBookingRequest, today: NaiveDate) -> Result<HoldRequest, ValidationError> {
    let mut v = Violations::new();
    let flight_id = v.check("flight_id", uuid(&request.flight_id));
    let cabin = v.check("cabin", cabin(request.cabin));
    let contact_email = v.check("contact_email", Email::parse(&request.contact_email));
    let mut passengers = Vec::with_capacity(request.passengers.len().min(MAX_PASSENGERS));
    if request.passengers.len() > MAX_PASSENGERS {
        v.add("passengers", format!("must list 1 to {MAX_PASSENGERS} passengers"));
    } else {
        for (i, passenger) in request.passengers.iter().enumerate() {
            let given_name = v.check(format!("passengers[{i}].given_name"), person_name(&passenger.given_name));
            let family_name = v.check(format!("passengers[{i}].family_name"), person_name(&passenger.family_name));
            let born =
                v.check(format!("passengers[{i}].date_of_birth"), date_of_birth(&passenger.date_of_birth, today));
            let kind = v.check(format!("passengers[{i}].type"), passenger_type(passenger.r#type));
            if let (Some(given_name), Some(family_name), Some(date_of_birth), Some(passenger_type)) =
                (given_name, family_name, born, kind)
            {
                passengers.push(Passenger { given_name, family_name, date_of_birth, passenger_type });
            }
        }
    }
    if passengers.len() == request.passengers.len() {
        check_party(&passengers, &mut v);
    }
    let seats = if request.seat_numbers.is_empty() {
        Some(Vec::new())
    } else {
        if request.seat_numbers.len() != request.passengers.len() {
            v.add("seat_numbers", "must be empty, or list one seat per passenger in passenger order");
        }
        seat_numbers(&request.seat_numbers, &mut v)
    };
    v.finish_with(|| {
        Some(HoldRequest {
            flight_id: flight_id?,
            cabin: cabin?,
            passengers,
            seats: seats?,
            contact_email: contact_email?,
        })
    })
}

/// Seat numbers of `seat_numbers`, each valid and none twice; at most one per possible passenger.
pub fn seat_numbers(texts: &[String], v: &mut Violations) -> Option<Vec<SeatNumber>> {
    if texts.len() > MAX_PASSENGERS {
        v.add("seat_numbers", format!("must list at most {MAX_PASSENGERS} seats"));
        return None;
    }
    let mut seats = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        if let Some(seat) = v.check(format!("seat_numbers[{i}]"), SeatNumber::parse(text)) {
            if seats.contains(&seat) {
                v.add(format!("seat_numbers[{i}]"), format!("{seat} is listed twice"));
            }
            seats.push(seat);
        }
    }
    (seats.len() == texts.len()).then_some(seats)
}

/// A free-text reason or note: at most [`MAX_NOTE_CHARS`] characters; blank means none.
pub fn note(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("must be at most {MAX_NOTE_CHARS} characters"));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn passenger_type(value: i32) -> Result<PassengerType, String> {
    match pb::PassengerType::try_from(value) {
        Ok(pb::PassengerType::Adult) => Ok(PassengerType::Adult),
        Ok(pb::PassengerType::Child) => Ok(PassengerType::Child),
        Ok(pb::PassengerType::Infant) => Ok(PassengerType::Infant),
        Ok(pb::PassengerType::Unspecified) => Err("must be set to ADULT, CHILD or INFANT".to_owned()),
        Err(_) => Err(format!("{value} is not a passenger type")),
    }
}

fn passenger_type_to_proto(kind: PassengerType) -> pb::PassengerType {
    match kind {
        PassengerType::Adult => pb::PassengerType::Adult,
        PassengerType::Child => pb::PassengerType::Child,
        PassengerType::Infant => pb::PassengerType::Infant,
    }
}

fn booking_status_to_proto(status: BookingStatus) -> pb::BookingStatus {
    match status {
        BookingStatus::Held => pb::BookingStatus::Held,
        BookingStatus::Confirmed => pb::BookingStatus::Confirmed,
        BookingStatus::Cancelled => pb::BookingStatus::Cancelled,
        BookingStatus::Expired => pb::BookingStatus::Expired,
        BookingStatus::RefundPending => pb::BookingStatus::RefundPending,
        BookingStatus::Refunded => pb::BookingStatus::Refunded,
    }
}

pub fn payment_to_proto(payment: &Payment) -> pb::Payment {
    let money = |amount_minor| Some(money_to_proto(Money { amount_minor, ..payment.amount }));
    pb::Payment {
        id: payment.id.to_string(),
        booking_id: payment.booking_id.to_string(),
        provider_reference: payment.provider_reference.clone().unwrap_or_default(),
        client_secret: payment.client_secret.clone().unwrap_or_default(),
        amount: Some(money_to_proto(payment.amount)),
        status: payment_status_to_proto(payment.status) as i32,
        decline_code: payment.decline_code.clone().unwrap_or_default(),
        failure_message: payment.failure_message.clone().unwrap_or_default(),
        amount_received: money(payment.amount_received_minor),
        amount_refunded: money(payment.amount_refunded_minor),
    }
}

fn payment_status_to_proto(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::RequiresPaymentMethod => pb::PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::Processing => pb::PaymentStatus::Processing,
        PaymentStatus::Succeeded => pb::PaymentStatus::Succeeded,
        PaymentStatus::Failed => pb::PaymentStatus::Failed,
        PaymentStatus::Canceled => pb::PaymentStatus::Canceled,
        PaymentStatus::RefundPending => pb::PaymentStatus::RefundPending,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
    }
}

pub fn reconciliation_to_proto(report: &ReconciliationReport) -> pb::ReconcilePaymentsResponse {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    pb::ReconcilePaymentsResponse {
        intents_checked: count(report.intents_checked),
        refunds_checked: count(report.refunds_checked),
        fixed: count(report.fixed),
        mismatches: report
            .mismatches
            .iter()
            .map(|m| pb::PaymentMismatch {
                payment_id: m.payment_id.map(|id| id.to_string()).unwrap_or_default(),
                provider_reference: m.provider_reference.clone(),
                problem: m.problem.clone(),
            })
            .collect(),
    }
}

pub fn booking_to_proto(booking: &Booking) -> pb::Booking {
    pb::Booking {
        id: booking.id.to_string(),
        reference: booking.reference.as_str().to_owned(),
        flight_id: booking.flight_id.to_string(),
        cabin: cabin_to_proto(booking.cabin).into(),
        status: booking_status_to_proto(booking.status).into(),
        passengers: booking
            .passengers
            .iter()
            .map(|p| pb::Passenger {
                given_name: p.given_name.clone(),
                family_name: p.family_name.clone(),
                date_of_birth: p.date_of_birth.format("%Y-%m-%d").to_string(),
                r#type: passenger_type_to_proto(p.passenger_type).into(),
            })
            .collect(),
        seat_numbers: booking.seats.iter().map(ToString::to_string).collect(),
        total_price: Some(money_to_proto(booking.total_price)),
        hold_expires_at: booking.hold_expires_at.map(timestamp),
        created_at: Some(timestamp(booking.created_at)),
        updated_at: Some(timestamp(booking.updated_at)),
        version: booking.version,
    }
}

/// `ListBookingsRequest`: the flight filter, where the page starts, and its size.
pub fn list_bookings_query(
    request: &pb::ListBookingsRequest,
) -> Result<(Option<Uuid>, Option<Cursor>, u32), ValidationError> {
    let mut v = Violations::new();
    let flight_id = if request.flight_id.is_empty() {
        Some(None)
    } else {
        v.check("flight_id", uuid(&request.flight_id).map(Some))
    };
    let after = v.check("page_token", Cursor::decode(&request.page_token));
    let size = v.check("page_size", page_size(request.page_size));
    v.finish_with(|| Some((flight_id?, after?, size?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: ValidationError) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_search_reports_every_bad_field() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let request = pb::SearchFlightsRequest {
            origin: "ruh".into(),
            destination: "JEDD".into(),
            departure_date: "tomorrow".into(),
            passengers: 0,
            cabin: 99,
            page_size: 101,
            page_token: "nope".into(),
        };
        assert_eq!(
            fields(flight_search(request, today).unwrap_err()),
            ["origin", "destination", "departure_date", "passengers", "cabin", "page_size", "page_token"]
        );
        let any_cabin = pb::SearchFlightsRequest {
            origin: "RUH".into(),
            destination: "JED".into(),
            departure_date: "2026-11-22".into(),
            passengers: 2,
            ..Default::default()
        };
        assert_eq!(flight_search(any_cabin, today).unwrap().cabin, None, "unspecified means any cabin");
    }

    #[test]
    fn unknown_enum_numbers_are_rejected() {
        assert!(optional_cabin(99).is_err());
        assert_eq!(optional_cabin(0), Ok(None));
        assert_eq!(cabin(3), Ok(CabinClass::Business));
    }

    #[test]
    fn create_flight_paths_name_nested_fields() {
        let request = pb::CreateFlightRequest {
            flight_number: "AB1".into(),
            origin: "RUH".into(),
            destination: "JED".into(),
            departs_at: None,
            arrives_at: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
            cabins: vec![pb::CabinConfig {
                cabin: 1,
                first_row: 0,
                rows: 1,
                seat_letters: "AB".into(),
                price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: -5 }),
            }],
        };
        assert_eq!(
            fields(new_flight(request, Utc::now()).unwrap_err()),
            ["cabins[0].first_row", "cabins[0].price.amount_minor", "departs_at", "arrives_at"]
        );
    }

    #[test]
    fn too_many_cabins_are_reported_once_without_parsing_them() {
        let cabin = pb::CabinConfig { cabin: 0, first_row: -1, rows: 0, seat_letters: String::new(), price: None };
        let request = pb::CreateFlightRequest {
            flight_number: "AB1".into(),
            origin: "RUH".into(),
            destination: "JED".into(),
            departs_at: Some(timestamp(Utc::now() + chrono::Duration::days(1))),
            arrives_at: Some(timestamp(Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1))),
            cabins: vec![cabin; 10_000],
        };
        assert_eq!(fields(new_flight(request, Utc::now()).unwrap_err()), ["cabins"]);
    }

    #[test]
    fn schedule_times_are_kept_to_the_second() {
        let at = prost_types::Timestamp { seconds: 1_900_000_000, nanos: 123_456_789 };
        assert_eq!(parse_timestamp(Some(&at)).unwrap().timestamp_subsec_nanos(), 0);
        assert!(parse_timestamp(Some(&prost_types::Timestamp { seconds: 0, nanos: 1_000_000_000 })).is_err());
        assert!(parse_timestamp(None).is_err());
    }

    #[test]
    fn ids_must_be_canonical_uuids() {
        assert!(parse_id("flight_id", "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f").is_ok());
        for bad in ["", "123", "0192f3c45b6a7c8d9e0f1a2b3c4d5e6f", "{0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f}"] {
            assert_eq!(fields(parse_id("flight_id", bad).unwrap_err()), ["flight_id"]);
        }
    }
}
