//! `aerobook.v1.BookingService`.

use aerobook_proto::v1::{self as pb, booking_service_server::BookingService};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{
    app::bookings::Bookings,
    domain::{booking::BookingAction, validation::Violations},
    infra::clock::Clock,
};

pub struct BookingApi {
    bookings: Bookings,
    /// Dates of birth are checked against the use cases' clock.
    clock: Clock,
}

impl BookingApi {
    pub fn new(bookings: Bookings, clock: Clock) -> Self {
        Self { bookings, clock }
    }

    /// `CancelBooking` and `ConfirmBooking`: a booking id, a free-text field (the reason or the note), and
    /// the action to apply.
    async fn change_status<M: prost::Message>(
        &self,
        request: &Request<M>,
        booking_id: &str,
        (text_field, text): (&'static str, &str),
        action: BookingAction,
    ) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let mut v = Violations::new();
        let id = v.check("booking_id", convert::uuid(booking_id));
        let note = v.check(text_field, convert::note(text));
        let (id, note) = v.finish_with(|| Some((id?, note?))).map_err(|e| call.fail(e))?;
        let outcome = self.bookings.change_status(&actor, &keyed, id, action, note, encode).await;
        call.keyed_response(outcome, convert::booking_to_proto)
    }
}

fn encode(booking: &crate::domain::booking::Booking) -> Vec<u8> {
    convert::booking_to_proto(booking).encode_to_vec()
}

#[tonic::async_trait]
impl BookingService for BookingApi {
    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(&request);
        let mut message = request.into_inner();
        // Passes are credentials, like the access token: a retry with fresher passes is the same request.
        let pass = std::mem::take(&mut message.waiting_room_pass);
        let passes = std::mem::take(&mut message.waiting_room_passes);
        let (actor, keyed) = (call.actor()?, call.keyed(&message)?);
        let today = self.clock.now().date_naive();
        let (request, passes) = convert::booking_request(message, (&pass, &passes), today).map_err(|e| call.fail(e))?;
        let outcome = match request {
            convert::BookingRequest::Flight(hold) => {
                self.bookings.place_hold(&actor, &keyed, hold, &passes, encode).await
            }
            convert::BookingRequest::Trip(trip) => {
                self.bookings.place_trip(&actor, &keyed, trip, &passes, encode).await
            }
        };
        call.keyed_response(outcome, convert::booking_to_proto)
    }

    async fn get_booking(&self, request: Request<pb::GetBookingRequest>) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(&request);
        let actor = call.actor()?;
        let id = convert::parse_id("booking_id", &request.get_ref().booking_id).map_err(|e| call.fail(e))?;
        let booking = self.bookings.get(&actor, id).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::booking_with_documents_to_proto(&booking)))
    }

    async fn list_bookings(
        &self,
        request: Request<pb::ListBookingsRequest>,
    ) -> Result<Response<pb::ListBookingsResponse>, Status> {
        let call = CallContext::of(&request);
        let actor = call.actor()?;
        let (flight_id, after, page_size) =
            convert::list_bookings_query(request.get_ref()).map_err(|e| call.fail(e))?;
        let page = self.bookings.list(&actor, flight_id, after, page_size).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(pb::ListBookingsResponse {
            bookings: page.bookings.iter().map(convert::booking_with_documents_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let message = request.get_ref();
        self.change_status(&request, &message.booking_id, ("reason", &message.reason), BookingAction::Cancel).await
    }

    async fn change_seats(&self, request: Request<pb::ChangeSeatsRequest>) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(&request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let message = request.get_ref();
        let mut v = Violations::new();
        let id = v.check("booking_id", convert::uuid(&message.booking_id));
        if message.seat_numbers.is_empty() {
            v.add("seat_numbers", "must list one seat per passenger, in passenger order");
        }
        let seats = convert::seat_numbers("seat_numbers", &message.seat_numbers, &mut v);
        let flight_id = if message.flight_id.is_empty() {
            Some(None)
        } else {
            v.check("flight_id", convert::uuid(&message.flight_id).map(Some))
        };
        let (id, seats, flight_id) = v.finish_with(|| Some((id?, seats?, flight_id?))).map_err(|e| call.fail(e))?;
        let outcome = self.bookings.change_seats(&actor, &keyed, id, flight_id, seats, encode).await;
        call.keyed_response(outcome, convert::booking_to_proto)
    }

    async fn quote_change(
        &self,
        request: Request<pb::QuoteChangeRequest>,
    ) -> Result<Response<pb::ChangeQuote>, Status> {
        let call = CallContext::of(&request);
        let actor = call.actor()?;
        let message = request.get_ref();
        let mut v = Violations::new();
        let booking_id = v.check("booking_id", convert::uuid(&message.booking_id));
        let flight_id = v.check("flight_id", convert::uuid(&message.flight_id));
        let new_flight_id = v.check("new_flight_id", convert::uuid(&message.new_flight_id));
        let new_cabin = v.check("new_cabin", convert::cabin(message.new_cabin));
        let (booking_id, flight_id, new_flight) = v
            .finish_with(|| Some((booking_id?, flight_id?, (new_flight_id?, new_cabin?))))
            .map_err(|e| call.fail(e))?;
        let quote =
            self.bookings.quote_change(&actor, booking_id, flight_id, new_flight).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::change_quote_to_proto(&quote)))
    }

    async fn change_flight(&self, request: Request<pb::ChangeFlightRequest>) -> Result<Response<pb::Booking>, Status> {
        let call = CallContext::of(&request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let message = request.get_ref();
        let mut v = Violations::new();
        let booking_id = v.check("booking_id", convert::uuid(&message.booking_id));
        let quote_id = v.check("quote_id", convert::uuid(&message.quote_id));
        let (booking_id, quote_id) = v.finish_with(|| Some((booking_id?, quote_id?))).map_err(|e| call.fail(e))?;
        let outcome = self.bookings.change_flight(&actor, &keyed, booking_id, quote_id, encode).await;
        call.keyed_response(outcome, convert::booking_to_proto)
    }

    async fn confirm_booking(
        &self,
        request: Request<pb::ConfirmBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let message = request.get_ref();
        self.change_status(&request, &message.booking_id, ("note", &message.note), BookingAction::Confirm).await
    }
}
