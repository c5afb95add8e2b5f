//! The queries of the invariant checker: each reads what one promise says must hold across the whole
//! database, and returns the rows that break it (none on a healthy database). Read-only, portable SQL; ids
//! are read as typed columns and described by the caller, since the two backends store them differently.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{
    flight::{CabinLayout, SeatNumber},
    notification::BookingEvent,
    taken_seats::TakenSeats,
};

/// Booking statuses whose seats are given back.
const RELEASED: &str = "('CANCELLED', 'EXPIRED', 'REFUNDED')";
/// Booking events a customer is emailed about, as an SQL list: `('CONFIRMED', ...)`.
fn emailed_events() -> String {
    let names: Vec<String> = BookingEvent::ALL
        .iter()
        .filter(|event| event.is_emailed())
        .map(|event| format!("'{}'", event.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// A cabin whose count does not match its assigned seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinMismatch {
    pub flight_id: Uuid,
    pub cabin: String,
    pub seats_total: i64,
    pub seats_available: i64,
    pub seats_assigned: i64,
}

/// Per cabin: `seats_available` + seats held or sold (assigned to live bookings) = `seats_total`. Returns
/// the number of cabins read and those that do not add up.
pub async fn cabin_counts(db: &impl ConnectionTrait) -> Result<(u64, Vec<CabinMismatch>), StoreError> {
    let rows = query(
        db,
        "SELECT c.flight_id, c.cabin, c.seats_total, c.seats_available, \
         (SELECT COUNT(*) FROM seat_assignments s WHERE s.flight_id = c.flight_id AND s.cabin = c.cabin) AS assigned \
         FROM flight_cabins c",
        [],
    )
    .await?;
    let cabins = rows.len() as u64;
    let mut broken = Vec::new();
    for row in rows {
        let total: i64 = get::<i32>(&row, "seats_total")?.into();
        let available: i64 = get::<i32>(&row, "seats_available")?.into();
        let assigned: i64 = get(&row, "assigned")?;
        if available + assigned != total {
            broken.push(CabinMismatch {
                flight_id: get(&row, "flight_id")?,
                cabin: get(&row, "cabin")?,
                seats_total: total,
                seats_available: available,
                seats_assigned: assigned,
            });
        }
    }
    Ok((cabins, broken))
}

/// Cabins whose taken seats (the marks in their row) are not their assigned seats: (flight, cabin, what
/// differs). Returns the number of cabins read too.
pub async fn cabins_marked_off_their_assignments(
    db: &impl ConnectionTrait,
) -> Result<(u64, Vec<(Uuid, String, String)>), StoreError> {
    let cabins =
        query(db, "SELECT flight_id, cabin, first_row, row_count, seat_letters, taken_seats FROM flight_cabins", [])
            .await?;
    let mut assigned: HashMap<(Uuid, String), Vec<SeatNumber>> = HashMap::new();
    for row in query(db, "SELECT flight_id, cabin, seat_number FROM seat_assignments", []).await? {
        let seat = SeatNumber::parse(&get::<String>(&row, "seat_number")?).map_err(StoreError::Corrupt)?;
        assigned.entry((get(&row, "flight_id")?, get(&row, "cabin")?)).or_default().push(seat);
    }
    let mut broken = Vec::new();
    for row in &cabins {
        let (flight_id, cabin): (Uuid, String) = (get(row, "flight_id")?, get(row, "cabin")?);
        let letters: String = get(row, "seat_letters")?;
        let layout = CabinLayout::new(get(row, "first_row")?, get(row, "row_count")?, &letters)
            .map_err(|(field, e)| StoreError::Corrupt(format!("cabin {field}: {e}")))?;
        let seats = assigned.remove(&(flight_id, cabin.clone())).unwrap_or_default();
        let marked = TakenSeats::from_bits(layout.clone(), &get::<Vec<u8>>(row, "taken_seats")?);
        let should = TakenSeats::from_seats(layout, seats);
        let differs = match (marked, should) {
            (Ok(marked), Ok(should)) if marked == should => continue,
            (Ok(marked), Ok(should)) => {
                let only = |a: &TakenSeats, b: &TakenSeats| {
                    a.iter().filter(|&seat| !b.contains(seat)).map(|seat| seat.to_string()).collect::<Vec<_>>()
                };
                format!(
                    "marked, not assigned: {:?}; assigned, not marked: {:?}",
                    only(&marked, &should),
                    only(&should, &marked)
                )
            }
            (Err(error), _) | (_, Err(error)) => error,
        };
        broken.push((flight_id, cabin, differs));
    }
    Ok((cabins.len() as u64, broken))
}

/// Seats assigned to a booking that gave its seats back (or no longer exists): (flight, seat, status).
pub async fn seats_of_released_bookings(
    db: &impl ConnectionTrait,
) -> Result<Vec<(Uuid, String, Option<String>)>, StoreError> {
    let sql = format!(
        "SELECT s.flight_id, s.seat_number, b.status FROM seat_assignments s \
         LEFT JOIN bookings b ON b.id = s.booking_id WHERE b.id IS NULL OR b.status IN {RELEASED}"
    );
    let rows = query(db, &sql, []).await?;
    rows.iter().map(|row| Ok((get(row, "flight_id")?, get(row, "seat_number")?, get(row, "status")?))).collect()
}

/// Seats of live bookings on a flight that is neither one of their segments' nor that of the change they
/// wait on: (booking, flight, seat).
pub async fn seats_off_their_bookings(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, Uuid, String)>, StoreError> {
    let sql = format!(
        "SELECT a.booking_id, a.flight_id, a.seat_number FROM seat_assignments a \
         JOIN bookings b ON b.id = a.booking_id WHERE b.status NOT IN {RELEASED} \
         AND NOT EXISTS (SELECT 1 FROM booking_segments s WHERE s.booking_id = a.booking_id \
                         AND s.flight_id = a.flight_id) \
         AND NOT EXISTS (SELECT 1 FROM pending_changes p WHERE p.quote_id = b.pending_change_id \
                         AND p.new_flight_id = a.flight_id AND p.state = 'PENDING')"
    );
    let rows = query(db, &sql, []).await?;
    rows.iter().map(|row| Ok((get(row, "booking_id")?, get(row, "flight_id")?, get(row, "seat_number")?))).collect()
}

/// Segments of live bookings, each with its listed seats and the number of seats assigned to its
/// booking on its flight.
async fn live_segments(db: &impl ConnectionTrait) -> Result<Vec<LiveSegment>, StoreError> {
    let sql = format!(
        "SELECT s.booking_id, s.flight_id, s.seat_numbers, \
         (SELECT COUNT(*) FROM seat_assignments a WHERE a.booking_id = s.booking_id AND a.flight_id = s.flight_id) \
           AS assigned \
         FROM booking_segments s JOIN bookings b ON b.id = s.booking_id WHERE b.status NOT IN {RELEASED}"
    );
    let rows = query(db, &sql, []).await?;
    rows.iter()
        .map(|row| {
            Ok(LiveSegment {
                booking_id: get(row, "booking_id")?,
                flight_id: get(row, "flight_id")?,
                seats: super::segments::parse_seat_list(&get::<String>(row, "seat_numbers")?)?,
                assigned: get(row, "assigned")?,
            })
        })
        .collect()
}

struct LiveSegment {
    booking_id: Uuid,
    flight_id: Uuid,
    seats: Vec<SeatNumber>,
    assigned: i64,
}

/// Segments of live bookings whose listed seats and the seats assigned to the booking on the segment's
/// flight differ in number: (booking, flight, seats listed, seats assigned). Returns the number of live
/// segments read too.
pub async fn live_bookings_without_their_seats(
    db: &impl ConnectionTrait,
) -> Result<(u64, Vec<(Uuid, Uuid, usize, i64)>), StoreError> {
    let segments = live_segments(db).await?;
    let broken = segments
        .iter()
        .filter(|segment| segment.seats.len() as i64 != segment.assigned)
        .map(|segment| (segment.booking_id, segment.flight_id, segment.seats.len(), segment.assigned))
        .collect();
    Ok((segments.len() as u64, broken))
}

/// A seat of a flight listed by two or more live bookings' segments: (flight, seat, how many).
pub async fn seats_in_two_live_bookings(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, String, i64)>, StoreError> {
    let mut holders: HashMap<(Uuid, SeatNumber), i64> = HashMap::new();
    for segment in live_segments(db).await? {
        for seat in segment.seats {
            *holders.entry((segment.flight_id, seat)).or_default() += 1;
        }
    }
    Ok(holders.into_iter().filter(|&(_, n)| n > 1).map(|((flight, seat), n)| (flight, seat.to_string(), n)).collect())
}

/// Per caller, bookings created since the caller's oldest live `CreateBooking` key that answered with a
/// booking, against the number of such keys: more bookings than keys means a key booked twice. (Keys live
/// a fixed time, so every booking made since the oldest one's creation still has its key.) Returns the
/// number of callers read and (caller, keys, bookings) where bookings outnumber keys.
pub async fn bookings_per_key(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<(Uuid, i64, i64)>), StoreError> {
    let rows = query(
        db,
        "SELECT k.caller_id, k.key_count, \
         (SELECT COUNT(*) FROM bookings b WHERE b.user_id = k.caller_id AND b.created_at >= k.first_at) AS booked \
         FROM (SELECT caller_id, COUNT(*) AS key_count, MIN(created_at) AS first_at FROM idempotency_keys \
               WHERE method LIKE '%/CreateBooking' AND outcome = 'RESPONSE' AND expires_at > $1 \
               GROUP BY caller_id) k",
        [now.into()],
    )
    .await?;
    let callers = rows.len() as u64;
    let mut broken = Vec::new();
    for row in rows {
        let (keys, booked): (i64, i64) = (get(&row, "key_count")?, get(&row, "booked")?);
        if booked > keys {
            broken.push((get(&row, "caller_id")?, keys, booked));
        }
    }
    Ok((callers, broken))
}

/// CONFIRMED bookings with neither a succeeded payment nor an operator's confirmation in their history.
/// Returns the number of confirmed bookings read and those.
pub async fn confirmed_without_payment(db: &impl ConnectionTrait) -> Result<(u64, Vec<Uuid>), StoreError> {
    let rows = query(
        db,
        "SELECT b.id, \
         (SELECT COUNT(*) FROM payments p WHERE p.booking_id = b.id AND p.status IN ('SUCCEEDED', 'REFUND_PENDING')) \
           AS paid, \
         (SELECT COUNT(*) FROM booking_history h WHERE h.booking_id = b.id AND h.cause = 'CONFIRM') AS confirmed \
         FROM bookings b WHERE b.status = 'CONFIRMED'",
        [],
    )
    .await?;
    let confirmed = rows.len() as u64;
    let mut broken = Vec::new();
    for row in rows {
        let (paid, by_operator): (i64, i64) = (get(&row, "paid")?, get(&row, "confirmed")?);
        if paid == 0 && by_operator == 0 {
            broken.push(get(&row, "id")?);
        }
    }
    Ok((confirmed, broken))
}

/// Payments refunded more than they received (their own total, or the provider's refunds recorded for
/// them): (payment, received, refunded). Returns the number of payments read too.
pub async fn refunds_beyond_charges(db: &impl ConnectionTrait) -> Result<(u64, Vec<(Uuid, i64, i64)>), StoreError> {
    let rows = query(
        db,
        "SELECT p.id, p.amount_received_minor, p.amount_refunded_minor, \
         (SELECT CAST(COALESCE(SUM(r.amount_minor), 0) AS BIGINT) FROM payment_refunds r WHERE r.payment_id = p.id) \
           AS recorded \
         FROM payments p",
        [],
    )
    .await?;
    let payments = rows.len() as u64;
    let mut broken = Vec::new();
    for row in rows {
        let received: i64 = get(&row, "amount_received_minor")?;
        let refunded: i64 = get(&row, "amount_refunded_minor")?;
        let recorded: i64 = get(&row, "recorded")?;
        if refunded.max(recorded) > received {
            broken.push((get(&row, "id")?, received, refunded.max(recorded)));
        }
    }
    Ok((payments, broken))
}

/// Emailed booking events recorded since `since` (jobs done before are deleted by retention), and the
/// events the `SEND_EMAIL` jobs name.
pub async fn emailed_events_and_their_jobs(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<(Vec<Uuid>, HashSet<Uuid>), StoreError> {
    let sql = format!("SELECT id FROM booking_history WHERE event IN {} AND at >= $1", emailed_events());
    let events = query(db, &sql, [since.into()]).await?.iter().map(|row| get(row, "id")).collect::<Result<_, _>>()?;
    let payloads = query(db, "SELECT payload FROM outbox_jobs WHERE kind = 'SEND_EMAIL'", []).await?;
    let mut named = HashSet::new();
    for row in payloads {
        let payload: String = get(&row, "payload")?;
        let job: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?;
        if let Some(id) = job.get("event_id").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()) {
            named.insert(id);
        }
    }
    Ok((events, named))
}

/// Sent emails whose event is not one customers are emailed about (or no longer exists).
pub async fn emails_without_their_event(db: &impl ConnectionTrait) -> Result<(u64, Vec<Uuid>), StoreError> {
    let sql = "SELECT m.event_id, h.event FROM sent_emails m LEFT JOIN booking_history h ON h.id = m.event_id";
    let rows = query(db, sql, []).await?;
    let sent = rows.len() as u64;
    let mut broken = Vec::new();
    for row in rows {
        let event: Option<String> = get(&row, "event")?;
        let emailed = event.and_then(|event| event.parse::<BookingEvent>().ok()).is_some_and(BookingEvent::is_emailed);
        if !emailed {
            broken.push(get(&row, "event_id")?);
        }
    }
    Ok((sent, broken))
}

/// Jobs marked running: (job, kind, lease end). One whose lease passed long ago was left behind.
pub async fn running_jobs(db: &impl ConnectionTrait) -> Result<Vec<(Uuid, String, Option<DateTime<Utc>>)>, StoreError> {
    let rows = query(db, "SELECT id, kind, locked_until FROM outbox_jobs WHERE state = 'running'", []).await?;
    rows.iter().map(|row| Ok((get(row, "id")?, get(row, "kind")?, get(row, "locked_until")?))).collect()
}

/// Runs `sql` (with `$1`... placeholders, as PostgreSQL spells them) on either backend.
async fn query<const N: usize>(
    db: &impl ConnectionTrait,
    sql: &str,
    values: [Value; N],
) -> Result<Vec<QueryResult>, StoreError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => (1..=N).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?")),
        _ => sql.to_owned(),
    };
    Ok(db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?)
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, column: &str) -> Result<T, StoreError> {
    Ok(row.try_get("", column)?)
}
