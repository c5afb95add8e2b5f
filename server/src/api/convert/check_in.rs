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

/// `CheckInRequest`: ids and passenger indexes checked here; the documents are only read, since their
/// faults are the use case's DOCUMENTS_REQUIRED, not a VALIDATION_ERROR.
pub fn check_in_request(request: pb::CheckInRequest) -> Result<CheckInRequest, ValidationError> {
    let mut v = Violations::new();
    let booking_id = v.check("booking_id", uuid(&request.booking_id));
    let flight_id = v.check("flight_id", uuid(&request.flight_id));
    let passenger_indexes: Vec<usize> = request
        .passenger_indexes
        .iter()
        .enumerate()
        .filter_map(|(i, &index)| {
            v.check(
                format!("passenger_indexes[{i}]"),
                usize::try_from(index).map_err(|_| "must not be negative".into()),
            )
        })
        .collect();
    let documents = request.documents.into_iter().map(document_fields).collect();
    v.finish_with(|| {
        Some(CheckInRequest { booking_id: booking_id?, flight_id: flight_id?, passenger_indexes, documents })
    })
}

fn document_fields(document: pb::TravelDocument) -> DocumentFields {
    let kind = match document.r#type() {
        pb::TravelDocumentType::Passport => Some(DocumentType::Passport),
        pb::TravelDocumentType::NationalId => Some(DocumentType::NationalId),
        pb::TravelDocumentType::Unspecified => None,
    };
    DocumentFields {
        kind,
        number: document.number,
        issuing_country: document.issuing_country,
        nationality: document.nationality,
        expires_on: document.expires_on,
    }
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
