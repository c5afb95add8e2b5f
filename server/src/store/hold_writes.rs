//! Everything a batch of holds writes once its holds are decided: the seats off the cabin's count, the
//! bookings with their passengers, segments, seat assignments and history rows, and the callers' keys with their
//! outcomes. On PostgreSQL that is one statement of one shape whatever the batch's size (the rows travel as
//! JSON parameters), where it was eight round trips; elsewhere, one statement per table.
//!
//! A booking whose reference another booking has is not written, nor anything of it (its passengers, seats,
//! history row, key): the caller draws another reference and writes those bookings again, without the
//! count, which the first write took for every booking.

use chrono::{DateTime, SubsecRound as _, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    StoreError, bookings,
    entities::booking_segment,
    history::{self, Change, Recorded},
    idempotency::{self, KeyedCall, StoredOutcome},
    seats, segments,
};
use crate::domain::{booking::Booking, flight::CabinClass, taken_seats::TakenSeats};

/// One key to record, with the booking its outcome names (`None`: a refusal, which names none).
pub struct KeyedOutcome<'a> {
    pub call: KeyedCall<'a>,
    pub outcome: StoredOutcome,
    pub booking_id: Option<Uuid>,
}

/// What one write of a batch holds.
pub struct HoldWrite<'a> {
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    /// What the holds take off the cabin: on a first write with holds placed, not on a rewrite.
    pub seats: Option<SeatsTaken<'a>>,
    pub bookings: &'a [&'a Booking],
    /// One history row per booking.
    pub changes: &'a [Change<'a>],
    pub trace_parent: Option<&'a str>,
    pub keys: &'a [KeyedOutcome<'a>],
    /// The keys' scope (see [`idempotency::hold_scope`]), when and until when they are kept.
    pub scope: &'a str,
    pub now: DateTime<Utc>,
    pub keys_expire_at: DateTime<Utc>,
}

/// The seats a batch's holds take: off the cabin's count, and marked in its taken seats.
pub struct SeatsTaken<'a> {
    pub count: i32,
    /// The cabin's taken seats with the holds' seats.
    pub taken: &'a TakenSeats,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Written, but for the bookings listed, whose reference was in use; the history rows written, in
    /// order, for the bookings written.
    Rows { refused: Vec<Uuid>, recorded: Vec<Recorded> },
    /// A key was taken by another call since it was looked up: the transaction must roll back.
    KeyTaken,
}

/// Writes `write` in the caller's transaction, whose lock on the cabin chose the seats: on PostgreSQL
/// [`super::bookings::lock_cabin_for_holds`], which also bounded the wait of the keys' insert for a key
/// another call holds (then [`Written::KeyTaken`]).
#[tracing::instrument(name = "db bookings.write_holds", skip_all, fields(otel.kind = "client"))]
pub async fn write(db: &impl ConnectionTrait, write: &HoldWrite<'_>) -> Result<Written, StoreError> {
    if db.get_database_backend() == DbBackend::Postgres {
        in_one_statement(db, write).await
    } else {
        table_by_table(db, write).await
    }
}

async fn table_by_table(db: &impl ConnectionTrait, write: &HoldWrite<'_>) -> Result<Written, StoreError> {
    let counted = match &write.seats {
        Some(SeatsTaken { count, taken }) if *count > 0 => {
            seats::store_taken(db, write.flight_id, write.cabin, -count, taken).await?
        }
        _ => true,
    };
    let refused = bookings::insert_many(db, write.bookings).await?;
    let written: Vec<&Booking> = write.bookings.iter().filter(|b| !refused.contains(&b.id)).copied().collect();
    let seats: Vec<(Uuid, &[_])> = written.iter().map(|b| (b.id, b.first_seats())).collect();
    let assigned = seats::assign_free_seats(db, write.flight_id, write.cabin, &seats).await?;
    write.check_seats(&refused, counted, assigned)?;
    let changes: Vec<Change> = write.changes.iter().filter(|c| !refused.contains(&c.booking_id)).cloned().collect();
    let recorded = history::record_changes(db, &changes, write.trace_parent).await?;
    let keys: Vec<(KeyedCall, StoredOutcome)> =
        write.keys_kept(&refused).map(|key| (key.call.clone(), key.outcome.clone())).collect();
    match idempotency::insert_completed(db, &keys, Some(write.scope), write.now, write.keys_expire_at).await {
        Ok(true) => Ok(Written::Rows { refused, recorded }),
        Ok(false) | Err(StoreError::LockTimeout(_)) => Ok(Written::KeyTaken),
        Err(error) => Err(error),
    }
}

impl HoldWrite<'_> {
    fn seats_counted(&self) -> i32 {
        self.seats.as_ref().map_or(0, |seats| seats.count)
    }

    /// The count moved (when the write took seats off it), and every seat of the bookings written was
    /// assigned: anything else means the cabin's lock did not hold, and the transaction must not commit.
    fn check_seats(&self, refused: &[Uuid], counted: bool, assigned: u64) -> Result<(), StoreError> {
        if !counted {
            return Err(StoreError::Corrupt("the cabin's count moved while it was locked".into()));
        }
        let expected: usize =
            self.bookings.iter().filter(|b| !refused.contains(&b.id)).map(|b| b.first_seats().len()).sum();
        if assigned != expected as u64 {
            return Err(StoreError::Corrupt("a seat chosen under the cabin's lock was taken".into()));
        }
        Ok(())
    }

    /// The keys to record: a refusal's, and those of the bookings written.
    fn keys_kept<'k>(&'k self, refused: &'k [Uuid]) -> impl Iterator<Item = &'k KeyedOutcome<'k>> {
        self.keys.iter().filter(|key| key.booking_id.is_none_or(|id| !refused.contains(&id)))
    }
}

/// The rows travel as JSON, so the statement is prepared once per connection for every batch size. Each
/// dependent row joins the bookings the statement inserted, which drops those refused for their reference.
const WRITE_HOLDS: &str = "\
WITH new_bookings AS (
    INSERT INTO bookings (id, reference, user_id, flight_id, cabin, status, contact_email, currency_code,
                          total_amount_minor, hold_expires_at, created_at, updated_at, version)
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS b(id uuid, reference text, user_id uuid, flight_id uuid,
        cabin text, status text, contact_email text, currency_code text, total_amount_minor bigint,
        hold_expires_at timestamptz, created_at timestamptz, updated_at timestamptz, version bigint)
    ON CONFLICT (reference) DO NOTHING
    RETURNING id
), wanted_passengers AS (
    SELECT p.* FROM jsonb_to_recordset($2::jsonb) AS p(booking_id uuid, position smallint, given_name text,
        family_name text, date_of_birth date, passenger_type text, seat_number text)
    WHERE p.booking_id IN (SELECT id FROM new_bookings)
), new_passengers AS (
    INSERT INTO booking_passengers (booking_id, position, given_name, family_name, date_of_birth, passenger_type,
                                    seat_number)
    SELECT * FROM wanted_passengers
    RETURNING 1
), new_segments AS (
    INSERT INTO booking_segments (booking_id, position, user_id, flight_id, cabin, seat_numbers, currency_code,
                                  price_amount_minor)
    SELECT s.* FROM jsonb_to_recordset($12::jsonb) AS s(booking_id uuid, position smallint, user_id uuid,
        flight_id uuid, cabin text, seat_numbers text, currency_code text, price_amount_minor bigint)
    WHERE s.booking_id IN (SELECT id FROM new_bookings)
    RETURNING 1
), new_seats AS (
    INSERT INTO seat_assignments (flight_id, seat_number, cabin, booking_id)
    SELECT $3, seat_number, $4, booking_id FROM wanted_passengers
    ON CONFLICT (flight_id, seat_number) DO NOTHING
    RETURNING 1
), taken AS (
    UPDATE flight_cabins SET seats_available = seats_available - $5, taken_seats = $11
    WHERE $5 > 0 AND flight_id = $3 AND cabin = $4 AND seats_available >= $5
    RETURNING 1
), new_history AS (
    INSERT INTO booking_history (id, booking_id, from_status, to_status, cause, correlation_id, actor_id, note, at,
                                 event, trace_parent)
    SELECT h.* FROM jsonb_to_recordset($6::jsonb) AS h(id uuid, booking_id uuid, from_status text, to_status text,
        cause text, correlation_id text, actor_id uuid, note text, at timestamptz, event text, trace_parent text)
    WHERE h.booking_id IN (SELECT id FROM new_bookings)
    RETURNING id
), new_keys AS (
    INSERT INTO idempotency_keys (caller_id, key, method, fingerprint, outcome, stored, created_at, expires_at,
                                  scope)
    SELECT k.caller_id, k.key, k.method, k.fingerprint, k.outcome, decode(k.stored, 'base64'), $7, $8, $9
    FROM jsonb_to_recordset($10::jsonb) AS k(caller_id uuid, key text, method text, fingerprint text,
        outcome text, stored text, booking_id uuid)
    WHERE k.booking_id IS NULL OR k.booking_id IN (SELECT id FROM new_bookings)
    ON CONFLICT (caller_id, key) DO UPDATE SET method = excluded.method, fingerprint = excluded.fingerprint,
        outcome = excluded.outcome, stored = excluded.stored, created_at = excluded.created_at,
        expires_at = excluded.expires_at, scope = excluded.scope
    WHERE idempotency_keys.expires_at <= $7
    RETURNING 1
)
SELECT (SELECT coalesce(jsonb_agg(id), '[]'::jsonb) FROM new_bookings) AS written,
       (SELECT count(*) FROM new_seats) AS seats,
       (SELECT count(*) FROM taken) AS counted,
       (SELECT coalesce(jsonb_agg(id), '[]'::jsonb) FROM new_history) AS history,
       (SELECT count(*) FROM new_keys) AS keys";

async fn in_one_statement(db: &impl ConnectionTrait, write: &HoldWrite<'_>) -> Result<Written, StoreError> {
    let recorded: Vec<Recorded> = write.changes.iter().map(history::classify).collect();
    let values: Vec<sea_orm::Value> = vec![
        Value::from_iter(write.bookings.iter().map(|b| booking_row(b))).into(),
        Value::from_iter(write.bookings.iter().flat_map(|b| passenger_rows(b))).into(),
        write.flight_id.into(),
        write.cabin.as_str().into(),
        write.seats_counted().into(),
        Value::from_iter(write.changes.iter().zip(&recorded).map(|(c, r)| history_row(c, r, write.trace_parent)))
            .into(),
        write.now.into(),
        write.keys_expire_at.into(),
        write.scope.into(),
        Value::from_iter(write.keys.iter().map(key_row)).into(),
        write.seats.as_ref().map_or_else(Vec::new, |seats| seats.taken.bits().to_vec()).into(),
        Value::from_iter(write.bookings.iter().flat_map(|b| segments::rows(b)).map(segment_row)).into(),
    ];
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, WRITE_HOLDS, values);
    let row = match db.query_one_raw(statement).await.map_err(StoreError::from) {
        Ok(Some(row)) => row,
        Ok(None) => return Err(StoreError::Corrupt("the write of a batch of holds returned nothing".into())),
        Err(StoreError::LockTimeout(_)) => return Ok(Written::KeyTaken),
        Err(error) => return Err(error),
    };
    let ids = |column: &str| -> Result<Vec<Uuid>, StoreError> {
        let ids: Value = row.try_get("", column)?;
        serde_json::from_value(ids).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    };
    let count = |column: &str| -> Result<u64, StoreError> {
        let count: i64 = row.try_get("", column)?;
        Ok(u64::try_from(count).unwrap_or(0))
    };
    let written = ids("written")?;
    let refused: Vec<Uuid> = write.bookings.iter().map(|b| b.id).filter(|id| !written.contains(id)).collect();
    write.check_seats(&refused, write.seats_counted() == 0 || count("counted")? == 1, count("seats")?)?;
    if count("keys")? != write.keys_kept(&refused).count() as u64 {
        return Ok(Written::KeyTaken);
    }
    let history = ids("history")?;
    let recorded = recorded.into_iter().filter(|r| history.contains(&r.id)).collect();
    Ok(Written::Rows { refused, recorded })
}

/// PostgreSQL keeps microseconds: the JSON carries exactly what a bound parameter would store.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

fn booking_row(booking: &Booking) -> Value {
    json!({
        "id": booking.id,
        "reference": booking.reference.as_str(),
        "user_id": booking.user_id,
        "flight_id": booking.flight_id,
        "cabin": booking.cabin.as_str(),
        "status": booking.status.as_str(),
        "contact_email": booking.contact_email,
        "currency_code": booking.total_price.currency.as_str(),
        "total_amount_minor": booking.total_price.amount_minor,
        "hold_expires_at": booking.hold_expires_at.map(micros),
        "created_at": micros(booking.created_at),
        "updated_at": micros(booking.updated_at),
        "version": booking.version,
    })
}

fn passenger_rows(booking: &Booking) -> impl Iterator<Item = Value> + '_ {
    booking.passengers.iter().zip(booking.first_seats()).enumerate().map(|(position, (passenger, seat))| {
        json!({
            "booking_id": booking.id,
            "position": position,
            "given_name": passenger.given_name,
            "family_name": passenger.family_name,
            "date_of_birth": passenger.date_of_birth,
            "passenger_type": passenger.passenger_type.as_str(),
            "seat_number": seat.to_string(),
        })
    })
}

fn segment_row(row: booking_segment::Model) -> Value {
    json!({
        "booking_id": row.booking_id,
        "position": row.position,
        "user_id": row.user_id,
        "flight_id": row.flight_id,
        "cabin": row.cabin,
        "seat_numbers": row.seat_numbers,
        "currency_code": row.currency_code,
        "price_amount_minor": row.price_amount_minor,
    })
}

fn history_row(change: &Change, recorded: &Recorded, trace_parent: Option<&str>) -> Value {
    json!({
        "id": recorded.id,
        "booking_id": change.booking_id,
        "from_status": change.from.map(|s| s.as_str()),
        "to_status": change.to.as_str(),
        "cause": change.cause,
        "correlation_id": change.correlation_id,
        "actor_id": change.actor_id,
        "note": change.note,
        "at": micros(change.at),
        "event": recorded.event.map(|event| event.as_str()),
        "trace_parent": trace_parent,
    })
}

fn key_row(key: &KeyedOutcome) -> Value {
    use base64::Engine as _;
    let (outcome, bytes) = key.outcome.parts();
    json!({
        "caller_id": key.call.caller_id,
        "key": key.call.key,
        "method": key.call.method,
        "fingerprint": key.call.fingerprint,
        "outcome": outcome,
        "stored": base64::engine::general_purpose::STANDARD.encode(bytes),
        "booking_id": key.booking_id,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use sea_orm::EntityTrait as _;

    use super::*;
    use crate::{
        domain::{booking::BookingReference, booking::BookingStatus, flight::SeatNumber},
        store::{
            Store,
            entities::{booking, flight_cabin, idempotency_key},
            seed,
            test_support::{databases, drop_database, hold},
        },
    };

    fn key_of<'a>(booking: Option<&Booking>, caller_id: Uuid, key: &'a str) -> KeyedOutcome<'a> {
        KeyedOutcome {
            call: KeyedCall { caller_id, key, method: "CreateBooking", fingerprint: "f" },
            outcome: match booking {
                Some(_) => StoredOutcome::Response(vec![1, 2, 3]),
                None => StoredOutcome::Refusal(b"{}".to_vec()),
            },
            booking_id: booking.map(|b| b.id),
        }
    }

    /// A cabin of the seeded schedule to write holds on, each write in a transaction of its own.
    struct Cabin<'s> {
        store: &'s Store,
        flight_id: Uuid,
        cabin: CabinClass,
        now: DateTime<Utc>,
    }

    impl Cabin<'_> {
        async fn write(&self, bookings: &[&Booking], keys: &[KeyedOutcome<'_>], seats: i32) -> Written {
            let changes: Vec<Change> = bookings
                .iter()
                .map(|booking| Change {
                    booking_id: booking.id,
                    from: None,
                    to: BookingStatus::Held,
                    cause: "PLACE_HOLD",
                    correlation_id: "test",
                    actor_id: None,
                    note: None,
                    at: self.now,
                })
                .collect();
            let txn = self.store.begin_write().await.expect("a transaction");
            let mut locked = seats::lock_cabin(&txn, self.flight_id, self.cabin).await.expect("locked");
            for booking in bookings {
                booking
                    .first_seats()
                    .iter()
                    .for_each(|&seat| assert!(locked.taken.take(seat) || seats == 0, "{seat} free"));
            }
            let write = HoldWrite {
                flight_id: self.flight_id,
                cabin: self.cabin,
                seats: (seats > 0).then_some(SeatsTaken { count: seats, taken: &locked.taken }),
                bookings,
                changes: &changes,
                trace_parent: None,
                keys,
                scope: "hold:test",
                now: self.now,
                keys_expire_at: self.now + TimeDelta::hours(1),
            };
            let written = super::write(&txn, &write).await.expect("written");
            match written {
                Written::KeyTaken => txn.rollback().await.expect("rolled back"),
                Written::Rows { .. } => txn.commit().await.expect("committed"),
            }
            written
        }
    }

    /// A reference in use refuses its booking and everything of it (seats, history, key), never the others'
    /// rows nor the count; written again with another reference and no count, it lands; a key recorded
    /// already is reported taken. Both databases, since PostgreSQL writes it all in one statement.
    #[tokio::test]
    async fn a_booking_whose_reference_is_in_use_is_left_out_and_written_again() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for config in databases(&dir).await {
            Store::migrate(&config).await.expect("migrated");
            let store = Store::connect(&config).await.expect("connected");
            let now = Utc::now().trunc_subsecs(6);
            seed::seed_demo_data(&store, now, 2).await.expect("seeded");
            let cabin_row = flight_cabin::Entity::find().one(store.conn()).await.expect("read").expect("a cabin");
            let (flight_id, cabin) = (cabin_row.flight_id, cabin_row.cabin.parse::<CabinClass>().expect("a cabin"));
            let free = |n: i32| SeatNumber { row: cabin_row.first_row + n, letter: 'A' };
            let on = Cabin { store: &store, flight_id, cabin, now };
            let caller = Uuid::now_v7();

            let first = hold(flight_id, cabin, "AAAAAA", free(0), now);
            let written = on.write(&[&first], &[key_of(Some(&first), caller, "k1")], 1).await;
            assert!(
                matches!(&written, Written::Rows { refused, recorded } if refused.is_empty() && recorded.len() == 1)
            );

            let mut second = hold(flight_id, cabin, "AAAAAA", free(1), now);
            let written =
                on.write(&[&second], &[key_of(Some(&second), caller, "k2"), key_of(None, caller, "k3")], 1).await;
            assert_eq!(
                written,
                Written::Rows { refused: vec![second.id], recorded: Vec::new() },
                "{}",
                config.is_sqlite
            );
            let key = |key: &str| idempotency_key::Entity::find_by_id((caller, key.to_owned())).one(store.conn());
            assert!(key("k3").await.expect("read").is_some(), "the refusal's key is recorded");
            assert!(key("k2").await.expect("read").is_none(), "nothing of the refused booking is");
            assert!(booking::Entity::find_by_id(second.id).one(store.conn()).await.expect("read").is_none());
            assert_eq!(seats::taken_seats(store.conn(), flight_id, Some(cabin)).await.expect("read").len(), 1);

            second.reference = BookingReference::from_stored("BBBBBB".into());
            let written = on.write(&[&second], &[key_of(Some(&second), caller, "k2")], 0).await;
            assert!(
                matches!(&written, Written::Rows { refused, recorded } if refused.is_empty() && recorded.len() == 1)
            );
            assert!(key("k2").await.expect("read").is_some());
            assert_eq!(seats::taken_seats(store.conn(), flight_id, Some(cabin)).await.expect("read").len(), 2);
            let stored = seats::lock_cabin(store.conn(), flight_id, cabin).await.expect("read");
            assert_eq!(stored.seats_available, cabin_row.seats_available - 2, "each seat counted once");
            assert_eq!(stored.taken.iter().collect::<Vec<_>>(), [free(0), free(1)], "and marked taken once");

            let third = hold(flight_id, cabin, "CCCCCC", free(2), now);
            let written = on.write(&[&third], &[key_of(Some(&third), caller, "k1")], 1).await;
            assert_eq!(written, Written::KeyTaken, "{}", config.is_sqlite);
            let stored = seats::lock_cabin(store.conn(), flight_id, cabin).await.expect("read");
            assert_eq!(
                stored.seats_available,
                cabin_row.seats_available - 2,
                "nothing of a write with a taken key stays"
            );
            assert_eq!(stored.taken.iter().count(), 2);
            store.close().await.expect("closed");
            drop_database(&config).await;
        }
    }
}
