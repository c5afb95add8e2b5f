//! `aerobook.v1.FlightService`.

use std::pin::Pin;

use aerobook_proto::v1::{self as pb, flight_service_server::FlightService};
use futures::{Stream, StreamExt as _};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{app::flights::FlightCatalog, infra::clock::Clock};

pub struct FlightApi {
    catalog: FlightCatalog,
    /// Dates and times in requests are checked against the use cases' clock.
    clock: Clock,
}

impl FlightApi {
    pub fn new(catalog: FlightCatalog, clock: Clock) -> Self {
        Self { catalog, clock }
    }
}

#[tonic::async_trait]
impl FlightService for FlightApi {
    async fn search_flights(
        &self,
        request: Request<pb::SearchFlightsRequest>,
    ) -> Result<Response<pb::SearchFlightsResponse>, Status> {
        let call = CallContext::of(&request);
        let search =
            convert::flight_search(request.into_inner(), self.clock.now().date_naive()).map_err(|e| call.fail(e))?;
        let page = self.catalog.search(search).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::flight_page_to_proto(&page)))
    }

    async fn search_trips(
        &self,
        request: Request<pb::SearchTripsRequest>,
    ) -> Result<Response<pb::SearchTripsResponse>, Status> {
        let call = CallContext::of(&request);
        let legs =
            convert::trip_search(request.into_inner(), self.clock.now().date_naive()).map_err(|e| call.fail(e))?;
        let pages = self.catalog.search_trip(legs).await.map_err(|e| call.fail(e))?;
        let legs = pages
            .iter()
            .map(|page| pb::LegFlights { flights: page.flights.iter().map(convert::flight_to_proto).collect() });
        Ok(Response::new(pb::SearchTripsResponse { legs: legs.collect() }))
    }

    async fn get_flight(&self, request: Request<pb::GetFlightRequest>) -> Result<Response<pb::Flight>, Status> {
        let call = CallContext::of(&request);
        let id = convert::parse_id("flight_id", &request.get_ref().flight_id).map_err(|e| call.fail(e))?;
        let flight = self.catalog.get_flight(id).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::flight_to_proto(&flight)))
    }

    async fn get_seat_map(&self, request: Request<pb::GetSeatMapRequest>) -> Result<Response<pb::SeatMap>, Status> {
        let call = CallContext::of(&request);
        let (id, cabin) = convert::seat_map_query(request.get_ref()).map_err(|e| call.fail(e))?;
        let (flight, seats) = self.catalog.seat_map(id, cabin).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(convert::seat_map_to_proto(&flight, &seats)))
    }

    type WatchAvailabilityStream = Pin<Box<dyn Stream<Item = Result<pb::AvailabilityUpdate, Status>> + Send>>;

    async fn watch_availability(
        &self,
        request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        let call = CallContext::of(&request);
        let id = convert::parse_id("flight_id", &request.get_ref().flight_id).map_err(|e| call.fail(e))?;
        let watcher = match call.caller {
            Some(caller) => format!("user:{}", caller.user_id),
            None => call.client.principal(),
        };
        let updates = self.catalog.watch_availability(id, watcher).await.map_err(|e| call.fail(e))?;
        let flight_id = id.to_string();
        let stream = updates.map(move |update| match update {
            Ok(cabins) => {
                Ok(pb::AvailabilityUpdate { flight_id: flight_id.clone(), cabins: convert::cabins_to_proto(&cabins) })
            }
            Err(error) => Err(call.fail(error)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create_flight(&self, request: Request<pb::CreateFlightRequest>) -> Result<Response<pb::Flight>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let new = convert::new_flight(request.into_inner(), self.clock.now()).map_err(|e| call.fail(e))?;
        let encode = |flight: &_| convert::flight_to_proto(flight).encode_to_vec();
        let outcome = self.catalog.create_flight(&keyed, new, encode).await;
        call.keyed_response(outcome, convert::flight_to_proto)
    }
}
