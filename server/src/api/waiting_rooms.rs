//! `aerobook.v1.WaitingRoomService`, with its conversions.

use std::pin::Pin;

use aerobook_proto::v1::{self as pb, waiting_room_service_server::WaitingRoomService};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{CallContext, convert};
use crate::{
    app::waiting_rooms::{RoomView, TicketStatus, WaitingRooms},
    domain::{
        validation::{ValidationError, Violations},
        waiting_room::{RoomSettings, check_admit_per_minute, check_opens_at, check_pass_ttl},
    },
    infra::clock::Clock,
};

pub struct WaitingRoomApi {
    rooms: WaitingRooms,
    clock: Clock,
}

impl WaitingRoomApi {
    pub fn new(rooms: WaitingRooms, clock: Clock) -> Self {
        Self { rooms, clock }
    }
}

#[tonic::async_trait]
impl WaitingRoomService for WaitingRoomApi {
    async fn join_waiting_room(
        &self,
        request: Request<pb::JoinWaitingRoomRequest>,
    ) -> Result<Response<pb::WaitingRoomTicket>, Status> {
        let call = CallContext::of(&request);
        let caller = call.signed_in()?;
        let flight_id = convert::parse_id("flight_id", &request.get_ref().flight_id).map_err(|e| call.fail(e))?;
        let ticket = self.rooms.join(caller, flight_id).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(pb::WaitingRoomTicket {
            ticket_id: ticket.ticket,
            flight_id: flight_id.to_string(),
            position: i64::try_from(ticket.position).unwrap_or(i64::MAX),
        }))
    }

    type WatchWaitingRoomStream = Pin<Box<dyn Stream<Item = Result<pb::WaitingRoomStatus, Status>> + Send>>;

    async fn watch_waiting_room(
        &self,
        request: Request<pb::WatchWaitingRoomRequest>,
    ) -> Result<Response<Self::WatchWaitingRoomStream>, Status> {
        let call = CallContext::of(&request);
        let caller = call.signed_in()?;
        let statuses = self.rooms.watch(caller, &request.get_ref().ticket_id).await.map_err(|e| call.fail(e))?;
        let stream = statuses.map(move |status| match status {
            Ok(status) => Ok(status_to_proto(&status)),
            Err(error) => Err(call.fail(error)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn configure_waiting_room(
        &self,
        request: Request<pb::ConfigureWaitingRoomRequest>,
    ) -> Result<Response<pb::WaitingRoom>, Status> {
        let call = CallContext::of(&request);
        let keyed = call.keyed(request.get_ref())?;
        let (flight_id, settings) = room_settings(request.get_ref(), self.clock.now()).map_err(|e| call.fail(e))?;
        let encode = |room: &RoomView| room_to_proto(room).encode_to_vec();
        let outcome = self.rooms.configure(&keyed, flight_id, settings, encode).await;
        call.keyed_response(outcome, room_to_proto)
    }

    async fn get_waiting_room(
        &self,
        request: Request<pb::GetWaitingRoomRequest>,
    ) -> Result<Response<pb::WaitingRoom>, Status> {
        let call = CallContext::of(&request);
        let flight_id = convert::parse_id("flight_id", &request.get_ref().flight_id).map_err(|e| call.fail(e))?;
        let room = self.rooms.get(flight_id).await.map_err(|e| call.fail(e))?;
        Ok(Response::new(room_to_proto(&room)))
    }
}

pub(super) fn room_settings(
    request: &pb::ConfigureWaitingRoomRequest,
    now: DateTime<Utc>,
) -> Result<(uuid::Uuid, RoomSettings), ValidationError> {
    let mut v = Violations::new();
    let flight_id = v.check("flight_id", convert::uuid(&request.flight_id));
    let admit_per_minute = v.check("admit_per_minute", check_admit_per_minute(request.admit_per_minute));
    let pass_ttl = v.check("pass_ttl_seconds", check_pass_ttl(request.pass_ttl_seconds));
    let opens_at = request.opens_at.as_ref().map(|at| convert::parse_timestamp(Some(at))).transpose();
    let opens_at = v.check("opens_at", opens_at.and_then(|at| check_opens_at(at, now)));
    v.finish_with(|| {
        Some((
            flight_id?,
            RoomSettings {
                enabled: request.enabled,
                admit_per_minute: admit_per_minute?,
                pass_ttl: pass_ttl?,
                opens_at: opens_at?,
            },
        ))
    })
}

fn room_to_proto(room: &RoomView) -> pb::WaitingRoom {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let settings = room.settings.as_ref();
    pb::WaitingRoom {
        flight_id: room.flight_id.to_string(),
        enabled: settings.is_some_and(|s| s.enabled),
        admit_per_minute: settings.map_or(0, |s| i32::try_from(s.admit_per_minute).unwrap_or(i32::MAX)),
        pass_ttl_seconds: settings.map_or(0, |s| i32::try_from(s.pass_ttl.num_seconds()).unwrap_or(i32::MAX)),
        opens_at: settings.map(|s| convert::timestamp(s.opens_at)),
        waiting: count(room.waiting),
        admitted: count(room.admitted),
    }
}

fn status_to_proto(status: &TicketStatus) -> pb::WaitingRoomStatus {
    pb::WaitingRoomStatus {
        position: i64::try_from(status.position).unwrap_or(i64::MAX),
        pass: status.pass.as_ref().map(|(pass, _)| pass.clone()).unwrap_or_default(),
        pass_expires_at: status.pass.as_ref().map(|(_, at)| convert::timestamp(*at)),
        sold_out: status.sold_out,
        estimated_wait: Some(convert::duration(status.estimated_wait)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_setting_is_named() {
        let now = Utc::now();
        let request = pb::ConfigureWaitingRoomRequest {
            flight_id: "nope".into(),
            enabled: true,
            admit_per_minute: 0,
            pass_ttl_seconds: 5,
            opens_at: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
        };
        let error = room_settings(&request, now).unwrap_err();
        let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["flight_id", "admit_per_minute", "pass_ttl_seconds", "opens_at"]);
    }

    #[test]
    fn an_unset_opening_means_now() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let request = pb::ConfigureWaitingRoomRequest {
            flight_id: uuid::Uuid::now_v7().to_string(),
            enabled: true,
            admit_per_minute: 600,
            pass_ttl_seconds: 300,
            opens_at: None,
        };
        let (_, settings) = room_settings(&request, now).unwrap();
        assert_eq!((settings.opens_at, settings.admit_per_minute, settings.pass_ttl.num_seconds()), (now, 600, 300));
    }
}
