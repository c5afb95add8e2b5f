//! The request-conversion fuzz target's entry: arbitrary bytes decoded as one of the requests whose fields
//! the API checks (the first byte picks which), then converted as its handler converts it. Whatever the
//! bytes, this returns: a conversion answers with a value or a `ValidationError`, never a panic.

use chrono::{DateTime, Utc};
use prost::Message;

use aerobook_proto::v1 as pb;

use super::{admin, airports, auth, convert, waiting_rooms};

/// Converts `bytes[1..]` as the request `bytes[0]` picks; bytes that are not that message are the
/// transport's to refuse, and end here.
pub fn convert_request(bytes: &[u8]) {
    let Some((&pick, body)) = bytes.split_first() else { return };
    // A fixed "now": conversions compare dates with it, and a run must be repeatable.
    let now = DateTime::<Utc>::from_timestamp(1_798_761_600, 0).unwrap_or_default();
    let today = now.date_naive();
    match pick % 10 {
        0 => convert_as(body, |mut request: pb::CreateBookingRequest| {
            let pass = std::mem::take(&mut request.waiting_room_pass);
            let passes = std::mem::take(&mut request.waiting_room_passes);
            convert::booking_request(request, (&pass, &passes), today).is_ok()
        }),
        1 => convert_as(body, |request: pb::ListBookingsRequest| convert::list_bookings_query(&request).is_ok()),
        2 => convert_as(body, |request: pb::GetSeatMapRequest| convert::seat_map_query(&request).is_ok()),
        3 => convert_as(body, |request: pb::SearchFlightsRequest| convert::flight_search(request, today).is_ok()),
        4 => convert_as(body, |request: pb::CreateFlightRequest| convert::new_flight(request, now).is_ok()),
        5 => convert_as(body, |request: pb::UpsertAirportRequest| airports::new_airport(&request).is_ok()),
        6 => convert_as(body, |request: pb::ListAirportsRequest| airports::list_query(&request).is_ok()),
        7 => convert_as(body, |request: pb::ListJobsRequest| admin::list_query(&request).is_ok()),
        8 => convert_as(body, |request: pb::RetryJobsRequest| admin::bulk_query(&request).is_ok()),
        _ => {
            convert_as(body, |request: pb::ConfigureWaitingRoomRequest| {
                waiting_rooms::room_settings(&request, now).is_ok()
            });
            convert_as(body, |request: pb::RefreshTokenRequest| {
                auth::refresh_token_field(&request.refresh_token).is_ok()
            });
        }
    }
}

fn convert_as<M: Message + Default>(body: &[u8], convert: impl FnOnce(M) -> bool) {
    if let Ok(request) = M::decode(body) {
        // Accepted or refused: both are answers.
        let _answered = convert(request);
    }
}
