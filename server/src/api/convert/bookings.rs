//! `BookingService` conversions: holds, passengers, seat numbers, and bookings as the API shows them.

use super::*;
use crate::domain::travel_document::{DocumentType, TravelDocument};

/// What a `CreateBookingRequest` asks for: a hold on one flight, or a trip.
#[derive(Debug)]
pub enum BookingRequest {
    Flight(HoldRequest),
    Trip(TripRequest),
}

/// `CreateBookingRequest` (without its waiting-room passes, taken out as credentials), checked field by
/// field and, through the domain's rules, as a whole. Rules that need the flights are the domain's
/// ([`Hold::place`](crate::domain::hold::Hold::place), [`price_trip`](crate::domain::trip::price_trip)),
/// run by the use case. The passes come back as one list, the single one first, empty ones left out.
pub fn booking_request(
    request: pb::CreateBookingRequest,
    (pass, passes): (&str, &[String]),
    today: NaiveDate,
) -> Result<(BookingRequest, Vec<String>), ValidationError> {
    let mut v = Violations::new();
    let passes = waiting_room_passes(pass, passes, &mut v);
    let single = request.segments.is_empty();
    let (flight_id, cabin) = if single {
        (v.check("flight_id", uuid(&request.flight_id)), v.check("cabin", cabin(request.cabin)))
    } else {
        let listed_twice = "must be empty when segments are listed: a trip names its flights in segments";
        for (field, set) in [
            ("flight_id", !request.flight_id.is_empty()),
            ("cabin", request.cabin != 0),
            ("seat_numbers", !request.seat_numbers.is_empty()),
        ] {
            if set {
                v.add(field, listed_twice);
            }
        }
        (None, None)
    };
    let contact_email = v.check("contact_email", Email::parse(&request.contact_email));
    let passengers = party(&request.passengers, today, &mut v);
    if single {
        let seats = hold_seats("seat_numbers", &request.seat_numbers, request.passengers.len(), &mut v);
        return v.finish_with(|| {
            let hold = HoldRequest {
                flight_id: flight_id?,
                cabin: cabin?,
                passengers: passengers?,
                seats: seats?,
                contact_email: contact_email?,
            };
            Some((BookingRequest::Flight(hold), passes))
        });
    }
    let segments = trip_segments(&request.segments, request.passengers.len(), &mut v);
    v.finish_with(|| {
        let trip = TripRequest { segments: segments?, passengers: passengers?, contact_email: contact_email? };
        Some((BookingRequest::Trip(trip), passes))
    })
}

/// A booking's waiting-room passes (the single one and a trip's), checked for their shape only.
fn waiting_room_passes(pass: &str, passes: &[String], v: &mut Violations) -> Vec<String> {
    v.check("waiting_room_pass", check_pass_shape(pass));
    if passes.len() > MAX_TRIP_SEGMENTS {
        v.add("waiting_room_passes", format!("must list at most {MAX_TRIP_SEGMENTS} passes, one per flight"));
        return Vec::new();
    }
    for (i, pass) in passes.iter().enumerate() {
        v.check(format!("waiting_room_passes[{i}]"), check_pass_shape(pass));
    }
    std::iter::once(pass)
        .chain(passes.iter().map(String::as_str))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A trip's segments, each checked as a single flight's fields are, under `segments[i]`; no flight twice.
fn trip_segments(listed: &[pb::SegmentRequest], party: usize, v: &mut Violations) -> Option<Vec<SegmentRequest>> {
    if let Err(count) = check_segment_count(listed.len()) {
        v.add("segments", count);
        return None;
    }
    let mut segments = Vec::with_capacity(listed.len());
    for (i, segment) in listed.iter().enumerate() {
        let flight_id = v.check(format!("segments[{i}].flight_id"), uuid(&segment.flight_id));
        if let Some(flight_id) = flight_id
            && segments.iter().any(|s: &SegmentRequest| s.flight_id == flight_id)
        {
            v.add(format!("segments[{i}].flight_id"), "is listed twice: a trip takes each flight once");
        }
        let cabin = v.check(format!("segments[{i}].cabin"), cabin(segment.cabin));
        let seats = hold_seats(&format!("segments[{i}].seat_numbers"), &segment.seat_numbers, party, v);
        if let (Some(flight_id), Some(cabin), Some(seats)) = (flight_id, cabin, seats) {
            segments.push(SegmentRequest { flight_id, cabin, seats });
        }
    }
    (segments.len() == listed.len()).then_some(segments)
}

/// The passengers, each field checked, and the party as a whole.
fn party(listed: &[pb::Passenger], today: NaiveDate, v: &mut Violations) -> Option<Vec<Passenger>> {
    if listed.len() > MAX_PASSENGERS {
        // Too many to read: said without reading them.
        v.check("passengers", check_party_size(listed.len()));
        return None;
    }
    let mut passengers = Vec::with_capacity(listed.len());
    for (i, passenger) in listed.iter().enumerate() {
        let given_name = v.check(format!("passengers[{i}].given_name"), person_name(&passenger.given_name));
        let family_name = v.check(format!("passengers[{i}].family_name"), person_name(&passenger.family_name));
        let born = v.check(format!("passengers[{i}].date_of_birth"), date_of_birth(&passenger.date_of_birth, today));
        let kind = v.check(format!("passengers[{i}].type"), passenger_type(passenger.r#type));
        if passenger.document.is_some() {
            v.add(
                format!("passengers[{i}].document"),
                "must be empty: travel documents are given at check-in (CheckIn)",
            );
        }
        if let (Some(given_name), Some(family_name), Some(date_of_birth), Some(passenger_type)) =
            (given_name, family_name, born, kind)
        {
            passengers.push(Passenger { given_name, family_name, date_of_birth, passenger_type });
        }
    }
    if passengers.len() != listed.len() {
        return None;
    }
    check_party(&passengers, v);
    Some(passengers)
}

/// A hold's seats under `field`: none (the server places the party) or one valid seat per passenger.
fn hold_seats(field: &str, texts: &[String], party: usize, v: &mut Violations) -> Option<Vec<SeatNumber>> {
    if texts.is_empty() {
        return Some(Vec::new());
    }
    v.check(field, check_hold_seats(party, texts.len()));
    seat_numbers(field, texts, v)
}

/// Seat numbers listed under `field`, each valid and none twice; at most one per possible passenger.
pub fn seat_numbers(field: &str, texts: &[String], v: &mut Violations) -> Option<Vec<SeatNumber>> {
    if texts.len() > MAX_PASSENGERS {
        v.add(field, format!("must list at most {MAX_PASSENGERS} seats"));
        return None;
    }
    let mut seats = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        if let Some(seat) = v.check(format!("{field}[{i}]"), SeatNumber::parse(text)) {
            if seats.contains(&seat) {
                v.add(format!("{field}[{i}]"), format!("{seat} is listed twice"));
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

pub(super) fn passenger_type_to_proto(kind: PassengerType) -> pb::PassengerType {
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
                document: None,
            })
            .collect(),
        seat_numbers: booking.first_seats().iter().map(ToString::to_string).collect(),
        total_price: Some(money_to_proto(booking.total_price)),
        hold_expires_at: booking.hold_expires_at.map(timestamp),
        created_at: Some(timestamp(booking.created_at)),
        updated_at: Some(timestamp(booking.updated_at)),
        version: booking.version,
        segments: booking.segments.iter().map(segment_to_proto).collect(),
        pending_change: booking.pending_change.as_deref().map(pending_change_to_proto),
        tickets: booking.tickets.iter().map(ticket_to_proto).collect(),
    }
}

/// The booking as `GetBooking` and `ListBookings` show it: with the travel documents on file. Answers of
/// keyed calls leave them out, since those are stored under their key for a day, and documents are kept no
/// longer than travel needs them.
pub fn booking_with_documents_to_proto(booking: &Booking) -> pb::Booking {
    let mut shown = booking_to_proto(booking);
    for (index, passenger) in shown.passengers.iter_mut().enumerate() {
        passenger.document = booking.documents.get(&index).map(document_to_proto);
    }
    shown
}

fn ticket_to_proto(ticket: &Ticket) -> pb::Ticket {
    let status = match ticket.status {
        TicketStatus::Open => pb::TicketStatus::Open,
        TicketStatus::CheckedIn => pb::TicketStatus::CheckedIn,
        TicketStatus::Boarded => pb::TicketStatus::Boarded,
        TicketStatus::Void => pb::TicketStatus::Void,
    };
    pb::Ticket {
        ticket_number: ticket.ticket_number.clone(),
        passenger_index: i32::try_from(ticket.passenger_index).unwrap_or(i32::MAX),
        flight_id: ticket.flight_id.to_string(),
        status: status.into(),
    }
}

fn pending_change_to_proto(change: &PendingChange) -> pb::PendingChange {
    pb::PendingChange {
        quote_id: change.quote_id.to_string(),
        flight_id: change.flight_id.to_string(),
        new_flight_id: change.new_flight_id.to_string(),
        new_cabin: cabin_to_proto(change.new_cabin).into(),
        amount_due: Some(money_to_proto(change.amount_due)),
        expires_at: Some(timestamp(change.expires_at)),
        seat_numbers: change.seats.iter().map(ToString::to_string).collect(),
    }
}

pub fn change_quote_to_proto(quote: &ChangeQuote) -> pb::ChangeQuote {
    pb::ChangeQuote {
        quote_id: quote.id.to_string(),
        fare_difference: Some(money_to_proto(quote.fare_difference)),
        change_fee: Some(money_to_proto(quote.change_fee)),
        amount_due: Some(money_to_proto(quote.amount_due)),
        expires_at: Some(timestamp(quote.expires_at)),
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

fn document_to_proto(document: &TravelDocument) -> pb::TravelDocument {
    let kind = match document.kind {
        DocumentType::Passport => pb::TravelDocumentType::Passport,
        DocumentType::NationalId => pb::TravelDocumentType::NationalId,
    };
    pb::TravelDocument {
        r#type: kind.into(),
        number: document.number.clone(),
        issuing_country: document.issuing_country.as_str().to_owned(),
        nationality: document.nationality.as_str().to_owned(),
        expires_on: document.expires_on.format("%Y-%m-%d").to_string(),
    }
}
