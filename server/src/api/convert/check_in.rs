//! `CheckInService` conversions: check-in requests with their travel documents, boarding passes and
//! manifest entries.

use super::{bookings::passenger_type_to_proto, *};
use crate::{
    app::check_in::CheckInRequest,
    domain::{
        check_in::{BoardingPass, ManifestEntry},
        travel_document::{DocumentFields, DocumentType},
    },
};

/// Longest text a travel document's field may hold: past it, or with control characters, the request is
/// malformed (VALIDATION_ERROR), not a document to judge.
const MAX_DOCUMENT_FIELD_CHARS: usize = 32;

/// `CheckInRequest`: ids, passenger indexes and the shape of the documents checked here. Whether the
/// documents are valid for travel is the use case's DOCUMENTS_REQUIRED, not a VALIDATION_ERROR.
pub fn check_in_request(request: pb::CheckInRequest) -> Result<CheckInRequest, ValidationError> {
    let mut v = Violations::new();
    let booking_id = v.check("booking_id", uuid(&request.booking_id));
    let flight_id = v.check("flight_id", uuid(&request.flight_id));
    let lists = [("passenger_indexes", request.passenger_indexes.len()), ("documents", request.documents.len())];
    let too_many: Vec<&str> =
        lists.iter().filter(|(_, count)| *count > MAX_PASSENGERS).map(|(field, _)| *field).collect();
    if !too_many.is_empty() {
        // Too many to read: said without reading them.
        for field in too_many {
            v.add(field, format!("at most {MAX_PASSENGERS}, one per passenger"));
        }
        return v.finish_with(|| None);
    }
    let passenger_indexes: Vec<usize> = request
        .passenger_indexes
        .iter()
        .enumerate()
        .filter_map(|(i, &index)| v.check(format!("passenger_indexes[{i}]"), passenger_index(index)))
        .collect();
    let documents: Vec<DocumentFields> = request
        .documents
        .into_iter()
        .enumerate()
        .filter_map(|(i, document)| document_fields(document, &format!("documents[{i}]"), &mut v))
        .collect();
    v.finish_with(|| {
        Some(CheckInRequest { booking_id: booking_id?, flight_id: flight_id?, passenger_indexes, documents })
    })
}

/// A position in `Booking.passengers` as the wire gives it.
pub fn passenger_index(index: i32) -> Result<usize, String> {
    usize::try_from(index).map_err(|_| "must not be negative".to_owned())
}

/// A document as given, if well formed: a known type (UNSPECIFIED reads as none given), and short texts
/// without control characters. No message repeats what was typed.
fn document_fields(document: pb::TravelDocument, path: &str, v: &mut Violations) -> Option<DocumentFields> {
    let kind = match pb::TravelDocumentType::try_from(document.r#type) {
        Ok(pb::TravelDocumentType::Passport) => Some(Some(DocumentType::Passport)),
        Ok(pb::TravelDocumentType::NationalId) => Some(Some(DocumentType::NationalId)),
        Ok(pb::TravelDocumentType::Unspecified) => Some(None),
        Err(_) => {
            v.add(format!("{path}.type"), "must be PASSPORT or NATIONAL_ID");
            None
        }
    };
    let mut text = |name: &str, value: String| {
        let malformed = value.chars().count() > MAX_DOCUMENT_FIELD_CHARS || value.chars().any(char::is_control);
        if malformed {
            v.add(
                format!("{path}.{name}"),
                format!("must be at most {MAX_DOCUMENT_FIELD_CHARS} characters, without control characters"),
            );
        }
        (!malformed).then_some(value)
    };
    let number = text("number", document.number);
    let issuing_country = text("issuing_country", document.issuing_country);
    let nationality = text("nationality", document.nationality);
    let expires_on = text("expires_on", document.expires_on);
    Some(DocumentFields {
        kind: kind?,
        number: number?,
        issuing_country: issuing_country?,
        nationality: nationality?,
        expires_on: expires_on?,
    })
}

pub fn boarding_pass_to_proto(pass: &BoardingPass) -> pb::BoardingPass {
    pb::BoardingPass {
        ticket_number: pass.ticket_number.clone(),
        passenger_name: pass.passenger_name.clone(),
        flight_id: pass.flight_id.to_string(),
        flight_number: pass.flight_number.clone(),
        origin: pass.origin.clone(),
        destination: pass.destination.clone(),
        departs_at: Some(timestamp(pass.departs_at)),
        seat_number: pass.seat.to_string(),
        cabin: cabin_to_proto(pass.cabin).into(),
        sequence_number: i32::from(pass.sequence_number),
        boarding_time: Some(timestamp(pass.boarding_time)),
        bcbp: pass.bcbp.clone(),
    }
}

pub fn manifest_entry_to_proto(entry: &ManifestEntry) -> pb::ManifestEntry {
    pb::ManifestEntry {
        booking_id: entry.booking_id.to_string(),
        booking_reference: entry.booking_reference.clone(),
        passenger_index: i32::try_from(entry.passenger_index).unwrap_or(i32::MAX),
        passenger_name: entry.passenger_name.clone(),
        passenger_type: passenger_type_to_proto(entry.passenger_type).into(),
        seat_number: entry.seat.to_string(),
        cabin: cabin_to_proto(entry.cabin).into(),
        ticket_number: entry.ticket_number.clone(),
        checked_in: entry.checked_in,
        boarded: entry.boarded,
        documents_present: entry.documents_present,
        sequence_number: entry.sequence_number.map_or(0, i32::from),
    }
}
