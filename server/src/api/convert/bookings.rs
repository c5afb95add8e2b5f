//! `BookingService` conversions: holds, passengers, seat numbers, and bookings as the API shows them.

use super::*;

/// `CreateBookingRequest`, checked field by field and, through the domain's rules, as a whole. Rules that
/// need the flight are the domain's [`Hold::place`](crate::domain::hold::Hold::place), run by the use case.
/// The waiting-room pass (taken out of the request, as a credential) is checked for its shape only.
pub fn hold_request(
    request: pb::CreateBookingRequest,
    pass: &str,
    today: NaiveDate,
) -> Result<HoldRequest, ValidationError> {
    let mut v = Violations::new();
    v.check("waiting_room_pass", check_pass_shape(pass));
    let flight_id = v.check("flight_id", uuid(&request.flight_id));
    let cabin = v.check("cabin", cabin(request.cabin));
    let contact_email = v.check("contact_email", Email::parse(&request.contact_email));
    let mut passengers = Vec::with_capacity(request.passengers.len().min(MAX_PASSENGERS));
    if request.passengers.len() > MAX_PASSENGERS {
        // Too many to read: said without reading them.
        v.check("passengers", check_party_size(request.passengers.len()));
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
        v.check("seat_numbers", check_hold_seats(request.passengers.len(), request.seat_numbers.len()));
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
        seat_numbers: booking.first_seats().iter().map(ToString::to_string).collect(),
        total_price: Some(money_to_proto(booking.total_price)),
        hold_expires_at: booking.hold_expires_at.map(timestamp),
        created_at: Some(timestamp(booking.created_at)),
        updated_at: Some(timestamp(booking.updated_at)),
        version: booking.version,
        segments: booking.segments.iter().map(segment_to_proto).collect(),
    }
}

fn segment_to_proto(segment: &Segment) -> pb::Segment {
    pb::Segment {
        flight_id: segment.flight_id.to_string(),
        cabin: cabin_to_proto(segment.cabin).into(),
        seat_numbers: segment.seats.iter().map(ToString::to_string).collect(),
        price: Some(money_to_proto(segment.price)),
        origin: segment.origin.to_string(),
        destination: segment.destination.to_string(),
        departs_at: Some(timestamp(segment.departs_at)),
        arrives_at: Some(timestamp(segment.arrives_at)),
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
