//! `aerobook.v1.AirportService`, with its conversions.

use aerobook_proto::v1::{self as pb, airport_service_server::AirportService};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::CallContext;
use crate::{
    app::airports::{AirportDirectory, AirportPage},
    domain::{
        airport::{Airport, AirportFields, search_query},
        flight::AirportCode,
        pagination::{KeyCursor, page_size},
        validation::{ValidationError, Violations},
    },
};

pub struct AirportApi {
    directory: AirportDirectory,
}

impl AirportApi {
    pub fn new(directory: AirportDirectory) -> Self {
        Self { directory }
    }
}

#[tonic::async_trait]
impl AirportService for AirportApi {
    async fn list_airports(
        &self,
        request: Request<pb::ListAirportsRequest>,
    ) -> Result<Response<pb::ListAirportsResponse>, Status> {
        let call = CallContext::of(&request);
        let (query, after, size) = list_query(request.get_ref()).map_err(|e| call.fail(e))?;
        let page = self.directory.list(query, after, size).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(page_to_proto(page)))
    }

    async fn get_airport(&self, request: Request<pb::GetAirportRequest>) -> Result<Response<pb::Airport>, Status> {
        let call = CallContext::of(&request);
        let code = AirportCode::parse(&request.get_ref().code)
            .map_err(|description| call.fail(ValidationError::single("code", description)))?;
        let airport = self.directory.get(code).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(airport_to_proto(&airport)))
    }

    async fn upsert_airport(
        &self,
        request: Request<pb::UpsertAirportRequest>,
    ) -> Result<Response<pb::Airport>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let airport = new_airport(request.get_ref()).map_err(|e| call.fail(e))?;
        let encode = |airport: &Airport| airport_to_proto(airport).encode_to_vec();
        let outcome = self.directory.upsert(&keyed, airport, encode).await;
        call.keyed_response(outcome, airport_to_proto)
    }
}

pub(super) fn list_query(
    request: &pb::ListAirportsRequest,
) -> Result<(Option<String>, Option<AirportCode>, u32), ValidationError> {
    let mut v = Violations::new();
    let query = v.check("query", search_query(&request.query));
    let size = v.check("page_size", page_size(request.page_size));
    let after = v.check("page_token", KeyCursor::decode_key(&request.page_token, AirportCode::parse));
    v.finish_with(|| Some((query?, after?, size?)))
}

pub(super) fn new_airport(request: &pb::UpsertAirportRequest) -> Result<Airport, ValidationError> {
    let airport = request.airport.as_ref().ok_or_else(|| ValidationError::single("airport", "is required"))?;
    let fields = AirportFields {
        code: &airport.code,
        name: &airport.name,
        city: &airport.city,
        country_code: &airport.country_code,
        time_zone: &airport.time_zone,
    };
    Airport::parse(fields, "airport")
}

pub fn airport_to_proto(airport: &Airport) -> pb::Airport {
    pb::Airport {
        code: airport.code.to_string(),
        name: airport.name.clone(),
        city: airport.city.clone(),
        country_code: airport.country.to_string(),
        time_zone: airport.time_zone.name().to_owned(),
    }
}

fn page_to_proto(page: AirportPage) -> pb::ListAirportsResponse {
    pb::ListAirportsResponse {
        airports: page.airports.iter().map(airport_to_proto).collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
    }
}
