//! Departure control: the flight's manifest, and boarding by the scanned pass.

use aerobook_proto::bcbp::Bcbp;
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{super::AppError, CheckIns};
use crate::{
    app::idempotency::{KeyedRequest, Outcome},
    domain::{
        booking::Refusal,
        check_in::{ManifestEntry, check_scan_is_for},
        pagination::KeyCursor,
        ticket::TicketStatus,
        validation::ValidationError,
    },
    infra::metrics::metrics,
    store::{StoreError, bookings, check_in, flights},
};

/// A page of a flight's manifest, by ticket number.
#[derive(Debug, Clone)]
pub struct ManifestPage {
    pub passengers: Vec<ManifestEntry>,
    pub next_page_token: Option<String>,
}

impl CheckIns {
    /// The flight's passengers holding a live ticket, by ticket number, after the page token's ticket.
    #[tracing::instrument(skip_all, fields(flight_id = %flight_id))]
    pub async fn manifest(
        &self,
        flight_id: Uuid,
        after: Option<String>,
        page_size: u32,
    ) -> Result<ManifestPage, AppError> {
        let txn = self.store.begin_snapshot().await?;
        flights::get(&txn, flight_id).await?.ok_or(AppError::NotFound("flight"))?;
        let mut tickets = check_in::flight_tickets(&txn, flight_id, after.as_deref(), u64::from(page_size) + 1).await?;
        let next_page_token = if tickets.len() > page_size as usize {
            tickets.truncate(page_size as usize);
            tickets.last().map(|(_, ticket)| KeyCursor(ticket.ticket_number.clone()).encode())
        } else {
            None
        };
        let mut ids: Vec<Uuid> = tickets.iter().map(|(booking_id, _)| *booking_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let bookings = bookings::get_many(&txn, &ids).await?;
        txn.rollback().await.map_err(StoreError::from)?;
        let passengers = tickets
            .iter()
            .map(|(booking_id, ticket)| {
                bookings
                    .iter()
                    .find(|booking| booking.id == *booking_id)
                    .and_then(|booking| ManifestEntry::of(booking, ticket))
                    .ok_or_else(|| StoreError::Corrupt(format!("ticket {} has no seat", ticket.ticket_number)))
            })
            .collect::<Result<_, _>>()?;
        Ok(ManifestPage { passengers, next_page_token })
    }

    /// Boards the passenger of a scanned pass onto `flight_id`.
    #[tracing::instrument(skip_all, fields(flight_id = %flight_id))]
    pub async fn board(
        &self,
        keyed: &KeyedRequest,
        flight_id: Uuid,
        scanned: &str,
        encode: impl FnOnce(&ManifestEntry) -> Vec<u8>,
    ) -> Result<Outcome<ManifestEntry>, AppError> {
        let now = self.clock.now();
        let outcome =
            self.idempotency.run(keyed, now, encode, async |txn| board_in(txn, flight_id, scanned, now).await).await?;
        if matches!(outcome, Outcome::Executed(_)) {
            metrics().boardings.add(1, &[opentelemetry::KeyValue::new("flight_id", flight_id.to_string())]);
        }
        Ok(outcome)
    }
}

/// The scan, checked against the flight and the ticket it names, then the ticket BOARDED.
async fn board_in(
    txn: &impl ConnectionTrait,
    flight_id: Uuid,
    scanned: &str,
    now: DateTime<Utc>,
) -> Result<ManifestEntry, AppError> {
    let invalid = |problem: String| AppError::Invalid(ValidationError::single("bcbp", problem));
    let pass = Bcbp::decode(scanned).map_err(|e| invalid(format!("is not a boarding pass: {e}")))?;
    let flight = flights::get(txn, flight_id).await?.ok_or(AppError::NotFound("flight"))?;
    check_scan_is_for(&pass, &flight).map_err(invalid)?;
    let number = pass.ticket_number.as_deref().ok_or_else(|| invalid("the pass carries no ticket number".into()))?;
    let (booking_id, _) = check_in::ticket(txn, number)
        .await?
        .filter(|(_, ticket)| ticket.flight_id == flight_id)
        .ok_or_else(|| invalid("its ticket is not one of this flight's".into()))?;
    // The booking's row first, as every writer of a booking takes it: a refund or change racing the scan
    // then sees the boarding, or the scan sees the ticket they voided.
    bookings::lock_row(txn, booking_id).await?;
    let mut booking = bookings::get(txn, booking_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("ticket {number} without its booking")))?;
    let ticket = booking
        .tickets
        .iter_mut()
        .find(|ticket| ticket.ticket_number == number)
        .ok_or_else(|| StoreError::Corrupt(format!("booking {booking_id} lost ticket {number}")))?;
    match ticket.status {
        TicketStatus::Boarded => return Err(Refusal::AlreadyBoarded.into()),
        TicketStatus::Open => return Err(invalid("its passenger is not checked in".into())),
        TicketStatus::Void => return Err(invalid("its ticket is void".into())),
        TicketStatus::CheckedIn => {}
    }
    if booking.reference.as_str() != pass.booking_reference || ticket.sequence_number != Some(pass.sequence_number) {
        return Err(invalid("it does not match its ticket: the pass was reissued or altered".into()));
    }
    ticket.status = TicketStatus::Boarded;
    let ticket = ticket.clone();
    // Boarding changes the booking: its version moves, so a writer that read it before fails its update.
    if !bookings::set_status(txn, booking_id, booking.version, booking.status, now).await?
        || !check_in::board(txn, number, now).await?
    {
        return Err(AppError::Conflict);
    }
    ManifestEntry::of(&booking, &ticket)
        .ok_or_else(|| StoreError::Corrupt(format!("ticket {number} has no seat")).into())
}
