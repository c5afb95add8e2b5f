//! `aerobook.v1.CheckInService`.

use aerobook_proto::v1::{self as pb, check_in_service_server::CheckInService};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{
    app::check_in::{CheckIns, CheckedIn},
    domain::{
        check_in::{MANIFEST_DEFAULT_PAGE_SIZE, MANIFEST_MAX_PAGE_SIZE},
        pagination::{KeyCursor, page_size_within},
        validation::Violations,
    },
};

pub struct CheckInApi {
    check_ins: CheckIns,
}

impl CheckInApi {
    pub fn new(check_ins: CheckIns) -> Self {
        Self { check_ins }
    }
}

fn check_in_response(done: &CheckedIn) -> pb::CheckInResponse {
    pb::CheckInResponse { boarding_passes: done.boarding_passes.iter().map(convert::boarding_pass_to_proto).collect() }
}

#[tonic::async_trait]
impl CheckInService for CheckInApi {
    async fn check_in(&self, request: Request<pb::CheckInRequest>) -> Result<Response<pb::CheckInResponse>, Status> {
        let call = CallContext::of(&request);
        let (actor, keyed) = (call.actor()?, call.keyed(request.get_ref())?);
        let check_in = convert::check_in_request(request.into_inner()).map_err(|e| call.fail(e))?;
        let outcome =
            self.check_ins.check_in(&actor, &keyed, check_in, |done| check_in_response(done).encode_to_vec()).await;
        call.keyed_response(outcome, check_in_response)
    }

    async fn get_boarding_pass(
        &self,
        request: Request<pb::GetBoardingPassRequest>,
    ) -> Result<Response<pb::BoardingPass>, Status> {
        let call = CallContext::of(&request);
        let actor = call.actor()?;
        let message = request.get_ref();
        let mut v = Violations::new();
        let booking_id = v.check("booking_id", convert::uuid(&message.booking_id));
        let flight_id = v.check("flight_id", convert::uuid(&message.flight_id));
        let index = v.check("passenger_index", convert::passenger_index(message.passenger_index));
        let (booking_id, flight_id, index) =
            v.finish_with(|| Some((booking_id?, flight_id?, index?))).map_err(|e| call.fail(e))?;
        let pass =
            self.check_ins.boarding_pass(&actor, booking_id, flight_id, index).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::boarding_pass_to_proto(&pass)))
    }

    async fn list_passengers(
        &self,
        request: Request<pb::ListPassengersRequest>,
    ) -> Result<Response<pb::ListPassengersResponse>, Status> {
        let call = CallContext::of(&request);
        let message = request.get_ref();
        let mut v = Violations::new();
        let flight_id = v.check("flight_id", convert::uuid(&message.flight_id));
        let page_size = v.check(
            "page_size",
            page_size_within(message.page_size, MANIFEST_DEFAULT_PAGE_SIZE, MANIFEST_MAX_PAGE_SIZE),
        );
        // Ticket numbers are digits: a key of any other shape came from another list.
        let after = v.check(
            "page_token",
            KeyCursor::decode_key(&message.page_token, |key| {
                if key.bytes().all(|b| b.is_ascii_digit()) { Ok(key.to_owned()) } else { Err(()) }
            }),
        );
        let (flight_id, page_size, after) =
            v.finish_with(|| Some((flight_id?, page_size?, after?))).map_err(|e| call.fail(e))?;
        let page = self.check_ins.manifest(flight_id, after, page_size).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(pb::ListPassengersResponse {
            passengers: page.passengers.iter().map(convert::manifest_entry_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn board_passenger(
        &self,
        request: Request<pb::BoardPassengerRequest>,
    ) -> Result<Response<pb::ManifestEntry>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let message = request.get_ref();
        let mut v = Violations::new();
        let flight_id = v.check("flight_id", convert::uuid(&message.flight_id));
        if message.bcbp.is_empty() {
            v.add("bcbp", "required: the scanned boarding pass");
        }
        let flight_id = v.finish_with(|| flight_id).map_err(|e| call.fail(e))?;
        let outcome = self
            .check_ins
            .board(&keyed, flight_id, &message.bcbp, |entry| convert::manifest_entry_to_proto(entry).encode_to_vec())
            .await;
        call.keyed_response(outcome, convert::manifest_entry_to_proto)
    }
}
