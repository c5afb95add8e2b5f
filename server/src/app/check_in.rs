//! Online check-in and boarding passes. A check-in is a keyed call on a confirmed booking: inside the
//! window of its flight, with travel documents where the flight crosses a border, it numbers the
//! passengers' tickets in check-in order (the flight's sequence, shared by every instance through the
//! database) and queues the boarding-pass email, all in one transaction taken on the booking's row.

mod gate;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    AppError,
    bookings::{Actor, record_history},
    idempotency::{Idempotency, KeyedRequest, Outcome},
    job::OutboxSignal,
};
use crate::{
    domain::{
        booking::{Booking, BookingAction, BookingStatus, Refusal, status_as_of},
        check_in::{BoardingPass, check_window},
        flight::Flight,
        ticket::{Ticket, TicketStatus},
        travel_document::{DocumentFields, TravelDocument, kept_until},
        validation::{ValidationError, Violations},
    },
    infra::{clock::Clock, metrics::metrics},
    store::{Store, StoreError, airports, bookings, check_in, flights, history::Change, travel_documents},
};

/// The highest sequence number a boarding pass can carry (four digits).
const MAX_SEQUENCE_NUMBER: i32 = 9_999;

/// A check-in as asked.
#[derive(Debug, Clone)]
pub struct CheckInRequest {
    pub booking_id: Uuid,
    pub flight_id: Uuid,
    /// Empty: every passenger.
    pub passenger_indexes: Vec<usize>,
    /// Empty, or one per passenger checked in, in that order.
    pub documents: Vec<DocumentFields>,
}

/// What a check-in did: the passes asked for, and how many passengers it checked in now.
#[derive(Debug, Clone)]
pub struct CheckedIn {
    pub boarding_passes: Vec<BoardingPass>,
    pub newly_checked_in: usize,
}

#[derive(Clone)]
pub struct CheckIns {
    store: Store,
    idempotency: Idempotency,
    clock: Clock,
    opens_before: TimeDelta,
    /// Woken after a check-in queued its boarding-pass email.
    signal: OutboxSignal,
}

impl CheckIns {
    pub fn new(
        store: Store,
        idempotency: Idempotency,
        clock: Clock,
        opens_before: TimeDelta,
        signal: OutboxSignal,
    ) -> Self {
        Self { store, idempotency, clock, opens_before, signal }
    }

    /// Checks in passengers of a confirmed booking for one of its flights.
    #[tracing::instrument(skip_all, fields(booking_id = %request.booking_id, flight_id = %request.flight_id))]
    pub async fn check_in(
        &self,
        actor: &Actor,
        keyed: &KeyedRequest,
        request: CheckInRequest,
        encode: impl FnOnce(&CheckedIn) -> Vec<u8>,
    ) -> Result<Outcome<CheckedIn>, AppError> {
        let now = self.clock.now();
        let outcome = self
            .idempotency
            .run(keyed, now, encode, async |txn| self.check_in_in(txn, actor, &request, now).await)
            .await?;
        if let Outcome::Executed(done) = &outcome
            && done.newly_checked_in > 0
        {
            self.signal.wake();
            let flight = [opentelemetry::KeyValue::new("flight_id", request.flight_id.to_string())];
            metrics().check_ins.add(done.newly_checked_in as u64, &flight);
        }
        Ok(outcome)
    }

    async fn check_in_in(
        &self,
        txn: &impl ConnectionTrait,
        actor: &Actor,
        request: &CheckInRequest,
        now: DateTime<Utc>,
    ) -> Result<CheckedIn, AppError> {
        // One check-in of a booking at a time: each sees the tickets the other numbered.
        bookings::lock_row(txn, request.booking_id).await?;
        let mut booking = bookings::get(txn, request.booking_id)
            .await?
            .filter(|booking| actor.may_see(booking))
            .ok_or(AppError::NotFound("booking"))?;
        status_as_of(booking.status, booking.hold_expires_at, now)
            .apply(BookingAction::CheckIn)
            .map_err(Refusal::from)?;
        booking.segment_on(Some(request.flight_id))?;
        let flight = flights::get(txn, request.flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        if !flight.status.is_bookable() {
            return Err(Refusal::CheckInClosed.into());
        }
        check_window(flight.departs_at, self.opens_before, now)?;
        let indexes = chosen_passengers(&request.passenger_indexes, booking.passengers.len())?;
        if !request.documents.is_empty() && request.documents.len() != indexes.len() {
            return Err(ValidationError::single(
                "documents",
                format!("give one per passenger checked in ({}), in the same order, or none", indexes.len()),
            )
            .into());
        }
        let given = self.documents(txn, &booking, &flight, &indexes, &request.documents).await?;
        let keep_until = kept_until(last_arrival(&booking));
        let given: Vec<(usize, &TravelDocument)> = given.iter().map(|(index, document)| (*index, document)).collect();
        travel_documents::save(txn, booking.id, &given, keep_until).await?;

        let tickets: Vec<Ticket> = indexes
            .iter()
            .map(|&index| {
                booking
                    .tickets
                    .iter()
                    .find(|t| t.flight_id == flight.id && t.passenger_index == index && t.status != TicketStatus::Void)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("booking {} lacks a ticket", booking.id)))
            })
            .collect::<Result<_, _>>()?;
        let open = tickets.iter().filter(|ticket| ticket.status == TicketStatus::Open);
        let newly = self.number(txn, actor, &booking, &flight, open, now).await?;
        // Numbered tickets or new documents change the booking: its version moves, so a writer that read it
        // before (a change, a refund) fails its update instead of voiding what it did not see.
        if (!newly.is_empty() || !given.is_empty())
            && !bookings::set_status(txn, booking.id, booking.version, BookingStatus::Confirmed, now).await?
        {
            return Err(AppError::Conflict);
        }
        for ticket in &mut booking.tickets {
            if let Some(&(_, sequence)) = newly.iter().find(|(number, _)| *number == ticket.ticket_number) {
                ticket.status = TicketStatus::CheckedIn;
                ticket.sequence_number = Some(sequence);
            }
        }
        let boarding_passes = tickets
            .iter()
            .map(|ticket| {
                let ticket = booking.tickets.iter().find(|t| t.ticket_number == ticket.ticket_number).unwrap_or(ticket);
                BoardingPass::of(&booking, &flight, ticket).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(CheckedIn { boarding_passes, newly_checked_in: newly.len() })
    }

    /// Checks the documents given, and that every passenger has one when the flight crosses a border;
    /// returns those given, by passenger index.
    async fn documents(
        &self,
        txn: &impl ConnectionTrait,
        booking: &Booking,
        flight: &Flight,
        indexes: &[usize],
        given: &[DocumentFields],
    ) -> Result<Vec<(usize, TravelDocument)>, AppError> {
        let arrives_on = flight.arrives_at.with_timezone(&flight.destination_time_zone).date_naive();
        let mut v = Violations::new();
        let checked: Vec<(usize, TravelDocument)> = indexes
            .iter()
            .zip(given)
            .enumerate()
            .filter_map(|(i, (&index, fields))| {
                Some((index, fields.check(&format!("documents[{i}]"), arrives_on, &mut v)?))
            })
            .collect();
        if given.is_empty() && crosses_border(txn, flight).await? {
            for (i, index) in indexes.iter().enumerate() {
                match booking.documents.get(index) {
                    Some(on_file) if on_file.expires_on >= arrives_on => {}
                    Some(_) => v.add(
                        format!("documents[{i}].expires_on"),
                        "the document on file expires before the flight arrives: give a valid one",
                    ),
                    None => v.add(
                        format!("documents[{i}]"),
                        format!(
                            "required: {} {} flies between two countries",
                            flight.flight_number.as_str(),
                            flight.origin.as_str()
                        ),
                    ),
                }
            }
        }
        v.finish().map_err(AppError::DocumentsRequired)?;
        Ok(checked)
    }

    /// Gives the OPEN tickets the flight's next sequence numbers, in the order given, and records the
    /// check-in (its event queues the boarding-pass email). Returns each ticket numbered.
    async fn number<'t>(
        &self,
        txn: &impl ConnectionTrait,
        actor: &Actor,
        booking: &Booking,
        flight: &Flight,
        open: impl Iterator<Item = &'t Ticket>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u16)>, AppError> {
        let open: Vec<&Ticket> = open.collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let count = u16::try_from(open.len()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let first = check_in::take_sequence_numbers(txn, flight.id, count).await?;
        if first + i32::from(count) - 1 > MAX_SEQUENCE_NUMBER {
            return Err(
                StoreError::Corrupt(format!("flight {} ran out of check-in sequence numbers", flight.id)).into()
            );
        }
        let numbered: Vec<(String, u16)> = open
            .iter()
            .zip(first..)
            .map(|(ticket, sequence)| Ok((ticket.ticket_number.clone(), u16::try_from(sequence)?)))
            .collect::<Result<_, std::num::TryFromIntError>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pairs: Vec<(&str, u16)> = numbered.iter().map(|(number, sequence)| (number.as_str(), *sequence)).collect();
        if check_in::check_in(txn, &pairs, now).await? != pairs.len() as u64 {
            return Err(AppError::Conflict);
        }
        record_history(
            txn,
            &[Change {
                booking_id: booking.id,
                from: Some(BookingStatus::Confirmed),
                to: BookingStatus::Confirmed,
                cause: BookingAction::CheckIn.as_str(),
                correlation_id: &actor.correlation_id,
                actor_id: Some(actor.caller.user_id),
                note: None,
                at: now,
            }],
        )
        .await?;
        Ok(numbered)
    }

    /// A checked-in passenger's boarding pass.
    #[tracing::instrument(skip_all, fields(booking_id = %booking_id, flight_id = %flight_id))]
    pub async fn boarding_pass(
        &self,
        actor: &Actor,
        booking_id: Uuid,
        flight_id: Uuid,
        passenger_index: usize,
    ) -> Result<BoardingPass, AppError> {
        let txn = self.store.begin_snapshot().await?;
        let booking = bookings::get(&txn, booking_id)
            .await?
            .filter(|booking| actor.may_see(booking))
            .ok_or(AppError::NotFound("booking"))?;
        booking.segment_on(Some(flight_id))?;
        let ticket = booking
            .tickets
            .iter()
            .find(|t| {
                t.flight_id == flight_id && t.passenger_index == passenger_index && t.status != TicketStatus::Void
            })
            .filter(|ticket| ticket.sequence_number.is_some())
            .ok_or(AppError::NotFound("boarding pass"))?;
        let flight = flights::get(&txn, flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        txn.rollback().await.map_err(StoreError::from)?;
        BoardingPass::of(&booking, &flight, ticket).map_err(|e| StoreError::Corrupt(e.to_string()).into())
    }
}

/// The passengers a check-in is for: each index once, within the party; every passenger when none given.
fn chosen_passengers(asked: &[usize], party: usize) -> Result<Vec<usize>, ValidationError> {
    if asked.is_empty() {
        return Ok((0..party).collect());
    }
    let mut v = Violations::new();
    for (i, &index) in asked.iter().enumerate() {
        if index >= party {
            v.add(format!("passenger_indexes[{i}]"), format!("must be below {party}, the number of passengers"));
        } else if asked[..i].contains(&index) {
            v.add(format!("passenger_indexes[{i}]"), "names a passenger already listed");
        }
    }
    v.finish()?;
    Ok(asked.to_vec())
}

/// Whether the flight's two airports are in different countries.
async fn crosses_border(txn: &impl ConnectionTrait, flight: &Flight) -> Result<bool, AppError> {
    let origin = airports::get(txn, flight.origin).await?;
    let destination = airports::get(txn, flight.destination).await?;
    match (origin, destination) {
        (Some(origin), Some(destination)) => Ok(origin.country != destination.country),
        _ => Err(StoreError::Corrupt(format!("flight {} has an airport not on file", flight.id)).into()),
    }
}

/// When the booking's last flight arrives.
fn last_arrival(booking: &Booking) -> DateTime<Utc> {
    booking.segments.iter().map(|segment| segment.arrives_at).max().unwrap_or(booking.updated_at)
}
