//! One waiter's journey: join the queue on each instance, watch the ticket until a pass or the sold-out
//! notice, book with the pass, then read the streams to their end; how it ended is its `Outcome`.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, waiting_room_service_client::WaitingRoomServiceClient,
};
use tokio::sync::Semaphore;
use tonic::{Streaming, transport::Channel};

use crate::{
    stats::{Answer, Latencies, Recorder},
    target,
};

const SEATS_UNAVAILABLE: &str = "SEATS_UNAVAILABLE";

/// One waiter: a new customer queueing for one flight.
pub(super) struct Waiter {
    pub(super) flight: usize,
    pub(super) user: uuid::Uuid,
    pub(super) bearer: String,
}

/// How a waiter's queueing ended, and its hold.
#[derive(Default)]
pub(super) struct Outcome {
    /// How the stream on the waiter's first instance ended.
    pub(super) told: Told,
    /// How the streams on the other instances (`--addr`) ended.
    pub(super) told_elsewhere: Vec<Told>,
    pub(super) booked: Option<Booked>,
    /// Joining on another instance gave another ticket.
    pub(super) second_ticket: bool,
    pub(super) position_updates: u64,
    /// A stream went on after its pass or sold-out notice.
    pub(super) went_on: bool,
}

#[derive(Default)]
pub(super) enum Told {
    #[default]
    Nothing,
    Pass {
        at: Instant,
        pass: String,
        expires_at: Option<prost_types::Timestamp>,
    },
    SoldOut(Instant),
}

pub(super) enum Booked {
    Hold { id: String, at: Instant },
    SoldOut,
    Failed,
}

/// What every waiter adds to.
pub(super) struct Shared {
    pub(super) bookings: Recorder,
    pub(super) joins: Mutex<Latencies>,
    pub(super) join_errors: Mutex<BTreeMap<String, u64>>,
    pub(super) watch_errors: Mutex<BTreeMap<String, u64>>,
    pub(super) open: AtomicUsize,
    pub(super) open_peak: AtomicUsize,
}

/// One waiter, on its instances (its own first): joins on each (the same ticket every time), watches the
/// ticket on each until the pass or the sold-out notice, books with its own instance's pass, then reads its
/// streams to their end. `opening` bounds the waiters joining and opening streams at once; the streams are
/// read until `deadline` at most.
pub(super) async fn queue_and_book(
    who: &Waiter,
    flight_id: &str,
    instances: &[Channel],
    shared: &Shared,
    opening: &Semaphore,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    let permit = opening.acquire().await.expect("the semaphore is never closed");
    let mut ticket: Option<String> = None;
    for channel in instances {
        let request = target::signed_in(pb::JoinWaitingRoomRequest { flight_id: flight_id.into() }, &who.bearer);
        let sent = Instant::now();
        let joined = match WaitingRoomServiceClient::new(channel.clone()).join_waiting_room(request).await {
            Ok(joined) => joined.into_inner().ticket_id,
            Err(status) => {
                count(&shared.join_errors, target::error_code(&status));
                return outcome;
            }
        };
        shared.joins.lock().expect("no panics under this lock").record(sent.elapsed());
        match &ticket {
            Some(first) => outcome.second_ticket |= *first != joined,
            None => ticket = Some(joined),
        }
    }
    let ticket_id = ticket.expect("at least one instance");
    let mut streams = Vec::with_capacity(instances.len());
    for channel in instances {
        let request = target::signed_in(pb::WatchWaitingRoomRequest { ticket_id: ticket_id.clone() }, &who.bearer);
        match WaitingRoomServiceClient::new(channel.clone()).watch_waiting_room(request).await {
            Ok(stream) => streams.push(stream.into_inner()),
            Err(status) => {
                count(&shared.watch_errors, target::error_code(&status));
                return outcome;
            }
        }
    }
    drop(permit);
    let open = shared.open.fetch_add(streams.len(), Ordering::Relaxed) + streams.len();
    shared.open_peak.fetch_max(open, Ordering::Relaxed);

    let (own, others) = streams.split_first_mut().expect("at least one instance");
    let queueing = async {
        let (told, updates) = follow(own, shared, deadline).await;
        let booked = match &told {
            Told::Pass { pass, .. } => Some(book(who, flight_id, pass, &instances[0], shared).await),
            Told::SoldOut(_) | Told::Nothing => None,
        };
        (told, updates, booked)
    };
    let elsewhere = futures::future::join_all(others.iter_mut().map(|stream| follow(stream, shared, deadline)));
    let ((told, updates, booked), elsewhere) = tokio::join!(queueing, elsewhere);
    outcome.told = told;
    outcome.booked = booked;
    outcome.position_updates = updates + elsewhere.iter().map(|(_, updates)| updates).sum::<u64>();
    outcome.told_elsewhere = elsewhere.into_iter().map(|(told, _)| told).collect();
    for stream in &mut streams {
        outcome.went_on |= goes_on(stream, shared, deadline).await;
    }
    shared.open.fetch_sub(streams.len(), Ordering::Relaxed);
    outcome
}

/// Reads a ticket's stream until its pass or sold-out notice; also the position changes seen before it.
/// A stream that breaks, ends without either or is still waiting at `deadline` is counted as an error.
async fn follow(stream: &mut Streaming<pb::WaitingRoomStatus>, shared: &Shared, deadline: Instant) -> (Told, u64) {
    let mut statuses: u64 = 0;
    // The first message is the current status; the ones after it, changes of position.
    let updates = |statuses: u64| statuses.saturating_sub(1);
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline.into(), stream.message()).await else {
            count(&shared.watch_errors, "NO_ANSWER_BY_DEADLINE".into());
            return (Told::Nothing, updates(statuses));
        };
        match message {
            Ok(Some(status)) if !status.pass.is_empty() => {
                let told = Told::Pass { at: Instant::now(), pass: status.pass, expires_at: status.pass_expires_at };
                return (told, updates(statuses));
            }
            Ok(Some(status)) if status.sold_out => return (Told::SoldOut(Instant::now()), updates(statuses)),
            Ok(Some(_)) => statuses += 1,
            Ok(None) => {
                count(&shared.watch_errors, "ENDED_WITHOUT_PASS_OR_SOLD_OUT".into());
                return (Told::Nothing, updates(statuses));
            }
            Err(status) => {
                count(&shared.watch_errors, target::error_code(&status));
                return (Told::Nothing, updates(statuses));
            }
        }
    }
}

/// Whether the stream sends anything after its final message (it must end there); an error or no end by
/// `deadline` is counted as an error.
async fn goes_on(stream: &mut Streaming<pb::WaitingRoomStatus>, shared: &Shared, deadline: Instant) -> bool {
    let mut went_on = false;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.message()).await {
            Ok(Ok(Some(_))) => went_on = true,
            Ok(Ok(None)) => return went_on,
            Ok(Err(status)) => {
                count(&shared.watch_errors, target::error_code(&status));
                return went_on;
            }
            Err(_) => {
                count(&shared.watch_errors, "NOT_ENDED_BY_DEADLINE".into());
                return went_on;
            }
        }
    }
}

/// The admitted waiter's hold of one seat with its pass: one call with a new key.
async fn book(who: &Waiter, flight_id: &str, pass: &str, channel: &Channel, shared: &Shared) -> Booked {
    let request = pb::CreateBookingRequest { waiting_room_pass: pass.into(), ..target::hold_request(flight_id) };
    let request = target::keyed(request, &who.bearer, &target::new_key());
    let sent = Instant::now();
    let result = BookingServiceClient::new(channel.clone()).create_booking(request).await;
    let answered = Instant::now();
    let (booked, answer) = match result {
        Ok(booking) => (Booked::Hold { id: booking.into_inner().id, at: answered }, Answer::Ok),
        Err(status) => match target::error_code(&status) {
            code if code == SEATS_UNAVAILABLE => (Booked::SoldOut, Answer::Expected(code)),
            code => (Booked::Failed, Answer::Error(code)),
        },
    };
    shared.bookings.record(answered, answered - sent, answer);
    booked
}

fn count(map: &Mutex<BTreeMap<String, u64>>, code: String) {
    *map.lock().expect("no panics under this lock").entry(code).or_default() += 1;
}
