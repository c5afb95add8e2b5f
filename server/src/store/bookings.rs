//! Booking queries: inserting holds with their passengers, status changes, reading and listing, and the
//! sweeper's claim on due holds. Seats are `super::seats`, the history `super::history`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait as _, ConnectionTrait, DbBackend, EntityTrait as _, ExprTrait as _, JoinType, QueryFilter as _,
    QueryOrder as _, QuerySelect as _, Statement,
    sea_query::{Expr, LockBehavior, LockType, OnConflict},
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{booking, booking_passenger, booking_segment},
    idempotency::CLAIM_WAIT_MS,
    seats::{LOCKED_COLUMNS, LockedSeats},
};
use crate::domain::{
    booking::{Booking, BookingReference, BookingStatus, Passenger, Segment},
    flight::{CabinClass, SeatNumber},
    money::{CurrencyCode, Money},
    pagination::Cursor,
};

/// The cause recorded for the history row of a new hold (every later change records its action).
pub const HOLD_PLACED: &str = "PLACE_HOLD";

/// Locks the cabin for a batch of holds until the transaction ends and reads its seats, as
/// [`super::seats::lock_cabin`] does. On PostgreSQL it first serialises hold placement per (user, flight)
/// for all of `users`, so the count of a user's live holds cannot be raced past the limit by parallel calls
/// on other cabins, all in one statement. Every transaction takes these locks in one order (the advisory
/// locks by lock id, then the cabin's row), so two batches sharing users cannot deadlock. The wait for
/// them is as long as the call's deadline allows; once they are held, the same statement bounds the
/// transaction's later lock waits (its keys' insert waiting for a key another call holds) as a claim's
/// are, by [`CLAIM_WAIT_MS`]. SQLite's single writer already serialises every write transaction.
#[tracing::instrument(name = "db bookings.lock_cabin_for_holds", skip_all, fields(otel.kind = "client"))]
pub async fn lock_cabin_for_holds(
    db: &impl ConnectionTrait,
    users: &[Uuid],
    flight_id: Uuid,
    cabin: CabinClass,
) -> Result<LockedSeats, StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return super::seats::lock_cabin(db, flight_id, cabin).await;
    }
    let flight = flight_id.as_u64_pair();
    let mut lock_ids: Vec<i64> = users
        .iter()
        .map(|user_id| {
            let user = user_id.as_u64_pair();
            (user.0 ^ user.1 ^ flight.0.rotate_left(17) ^ flight.1.rotate_left(31)) as i64
        })
        .collect();
    lock_ids.sort_unstable();
    lock_ids.dedup();
    // A bigint[] literal of integers this function computed.
    let lock_ids = format!("{{{}}}", lock_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let values: [sea_orm::Value; 4] =
        [flight_id.into(), cabin.as_str().into(), lock_ids.into(), CLAIM_WAIT_MS.to_string().into()];
    let statement = format!(
        "SELECT locked.*, set_config('lock_timeout', $4, true) AS later_lock_timeout \
         FROM (SELECT {LOCKED_COLUMNS} FROM flight_cabins c {CABIN_LOCKED_FOR_HOLDS}) AS locked"
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, statement, values))
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no cabin {} on flight {flight_id}", cabin.as_str())))?;
    LockedSeats::from_row(&row, flight_id, cabin)
}

/// Locks `user`'s several cabins as [`lock_cabin_for_holds`] locks one, in (flight, cabin) order, the order
/// every transaction that takes several cabins uses (a batch takes one, after its users' locks), so no
/// cycle of waits can form; the cabins come back in the order asked.
pub async fn lock_cabins_for_holds(
    db: &impl ConnectionTrait,
    user: Uuid,
    cabins: &[(Uuid, CabinClass)],
) -> Result<Vec<LockedSeats>, StoreError> {
    let mut order: Vec<usize> = (0..cabins.len()).collect();
    order.sort_by_key(|&i| cabins[i]);
    let mut locked: Vec<(usize, LockedSeats)> = Vec::with_capacity(cabins.len());
    for i in order {
        let (flight_id, cabin) = cabins[i];
        locked.push((i, lock_cabin_for_holds(db, &[user], flight_id, cabin).await?));
    }
    locked.sort_by_key(|&(i, _)| i);
    Ok(locked.into_iter().map(|(_, seats)| seats).collect())
}

/// The advisory locks are an uncorrelated condition: PostgreSQL evaluates it once, before the scan below
/// the row lock (`EXPLAIN` shows it as the scan's one-time filter), and `unnest` keeps the ids' order. The
/// outer query's columns are computed from the row the inner one has locked (its latest version, read
/// once the lock is held), so the timeout is set after the waits for the locks, not before. This is the
/// inner query's condition and lock.
const CABIN_LOCKED_FOR_HOLDS: &str = "\
WHERE c.flight_id = $1 AND c.cabin = $2
  AND (SELECT count(pg_advisory_xact_lock(id)) FROM unnest($3::bigint[]) AS locks(id)) >= 0
FOR UPDATE OF c";

/// What a batch of holds reads under its cabin's lock (and its users' advisory locks): each of `users`'
/// live holds at `now` on the flight (users without any are absent).
///
/// A booking counts on every flight it has a segment on, so the count goes through the segments' (user,
/// flight) index and each one's booking by its key. On PostgreSQL whatever the statistics say: left to the
/// planner, a table not yet analyzed had it scan every live hold of every flight (the status and expiry
/// index) at each batch, so the status and the expiry are tested inside an expression no index can serve
/// (`tests::the_live_holds_are_counted_through_the_user_index`).
#[tracing::instrument(name = "db bookings.live_holds", skip_all, fields(otel.kind = "client"))]
pub async fn live_holds(
    db: &impl ConnectionTrait,
    users: &[Uuid],
    flight_id: Uuid,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, u64>, StoreError> {
    if db.get_database_backend() == DbBackend::Postgres {
        // A uuid[] literal: uuids hold only hex digits and dashes.
        let users = format!("{{{}}}", users.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
        let values: [sea_orm::Value; 4] =
            [users.into(), flight_id.into(), BookingStatus::Held.as_str().into(), now.into()];
        let row = db
            .query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, LIVE_HOLDS, values))
            .await?
            .ok_or_else(|| StoreError::Corrupt("the read of a locked cabin returned nothing".into()))?;
        let live_holds: serde_json::Value = row.try_get("", "live_holds")?;
        let live_holds: HashMap<Uuid, u64> = serde_json::from_value(live_holds)
            .map_err(|e| StoreError::Corrupt(format!("a locked cabin's live holds: {e}")))?;
        return Ok(live_holds);
    }
    let booking_of_segment = booking_segment::Entity::belongs_to(booking::Entity)
        .from(booking_segment::Column::BookingId)
        .to(booking::Column::Id);
    let counts: Vec<(Uuid, i64)> = booking_segment::Entity::find()
        .select_only()
        .column(booking_segment::Column::UserId)
        .column_as(Expr::col(booking_segment::Column::BookingId).count(), "holds")
        .join(JoinType::InnerJoin, booking_of_segment.into())
        .filter(booking_segment::Column::UserId.is_in(users.iter().copied()))
        .filter(booking_segment::Column::FlightId.eq(flight_id))
        .filter(booking::Column::Status.eq(BookingStatus::Held.as_str()))
        .filter(booking::Column::HoldExpiresAt.gt(now))
        .group_by(booking_segment::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(counts.into_iter().map(|(user_id, holds)| (user_id, u64::try_from(holds).unwrap_or(0))).collect())
}

const LIVE_HOLDS: &str = "\
SELECT (SELECT coalesce(jsonb_object_agg(wanted.user_id, held.holds), '{}'::jsonb)
        FROM unnest($1::uuid[]) AS wanted(user_id)
        CROSS JOIN LATERAL (SELECT count(*) AS holds FROM booking_segments s JOIN bookings b ON b.id = s.booking_id
                            WHERE s.user_id = wanted.user_id AND s.flight_id = $2
                              AND coalesce(b.status = $3 AND b.hold_expires_at > $4, false)) held
        WHERE held.holds > 0) AS live_holds";

/// Inserts new bookings with their passengers and segments, three statements in all. Returns the ids of the bookings
/// whose reference was in use already: those were not written (draw others and insert them again).
#[tracing::instrument(name = "db bookings.insert_many", skip_all, fields(otel.kind = "client"))]
pub async fn insert_many(db: &impl ConnectionTrait, bookings: &[&Booking]) -> Result<Vec<Uuid>, StoreError> {
    if bookings.is_empty() {
        return Ok(Vec::new());
    }
    let rows = bookings.iter().map(|booking| booking::ActiveModel {
        id: Set(booking.id),
        reference: Set(booking.reference.as_str().to_owned()),
        user_id: Set(booking.user_id),
        flight_id: Set(booking.flight_id),
        cabin: Set(booking.cabin.as_str().to_owned()),
        status: Set(booking.status.as_str().to_owned()),
        contact_email: Set(booking.contact_email.clone()),
        currency_code: Set(booking.total_price.currency.as_str().to_owned()),
        total_amount_minor: Set(booking.total_price.amount_minor),
        hold_expires_at: Set(booking.hold_expires_at),
        created_at: Set(booking.created_at),
        updated_at: Set(booking.updated_at),
        version: Set(booking.version),
        pending_change_id: Set(None),
    });
    let inserted = booking::Entity::insert_many(rows)
        .on_conflict(OnConflict::column(booking::Column::Reference).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    let refused: Vec<Uuid> = if inserted == bookings.len() as u64 {
        Vec::new()
    } else {
        let written: Vec<Uuid> = booking::Entity::find()
            .select_only()
            .column(booking::Column::Id)
            .filter(booking::Column::Id.is_in(bookings.iter().map(|b| b.id)))
            .into_tuple()
            .all(db)
            .await?;
        bookings.iter().map(|b| b.id).filter(|id| !written.contains(id)).collect()
    };
    let written: Vec<&Booking> = bookings.iter().filter(|booking| !refused.contains(&booking.id)).copied().collect();
    let passengers = written.iter().flat_map(|booking| {
        booking.passengers.iter().zip(booking.first_seats()).enumerate().map(|(position, (p, seat))| {
            booking_passenger::ActiveModel {
                booking_id: Set(booking.id),
                position: Set(position as i16),
                given_name: Set(p.given_name.clone()),
                family_name: Set(p.family_name.clone()),
                date_of_birth: Set(p.date_of_birth),
                passenger_type: Set(p.passenger_type.as_str().to_owned()),
                seat_number: Set(seat.to_string()),
            }
        })
    });
    booking_passenger::Entity::insert_many(passengers).exec_without_returning(db).await?;
    super::segments::insert_many(db, &written).await?;
    Ok(refused)
}

/// Moves the booking to `to` if it is still at `expected_version` (and so still in the status it was
/// read in); `false` means someone else changed it first. Leaving HELD clears the hold's expiry.
#[tracing::instrument(name = "db bookings.set_status", skip_all, fields(otel.kind = "client"))]
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected_version: i64,
    to: BookingStatus,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut update = booking::Entity::update_many()
        .col_expr(booking::Column::Status, to.as_str().into())
        .col_expr(booking::Column::Version, booking::Column::Version.into_expr().add(1))
        .col_expr(booking::Column::UpdatedAt, now.into());
    if to != BookingStatus::Held {
        update = update.col_expr(booking::Column::HoldExpiresAt, Expr::value(Option::<DateTime<Utc>>::None));
    }
    let updated = update
        .filter(booking::Column::Id.eq(id))
        .filter(booking::Column::Version.eq(expected_version))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Locks the booking's row until the transaction ends (PostgreSQL; SQLite's single writer already
/// serialises writes), so decisions about the booking as a whole (is this its last refund?) are taken one
/// at a time.
#[tracing::instrument(name = "db bookings.lock_row", skip_all, fields(otel.kind = "client"))]
pub async fn lock_row(db: &impl ConnectionTrait, id: Uuid) -> Result<(), StoreError> {
    booking::Entity::find_by_id(id)
        .select_only()
        .column(booking::Column::Id)
        .lock(LockType::Update)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    Ok(())
}

/// Records the passengers' new seats (in passenger order).
#[tracing::instrument(name = "db bookings.set_passenger_seats", skip_all, fields(otel.kind = "client"))]
pub async fn set_passenger_seats(
    db: &impl ConnectionTrait,
    booking_id: Uuid,
    seats: &[SeatNumber],
) -> Result<(), StoreError> {
    for (position, seat) in seats.iter().enumerate() {
        booking_passenger::Entity::update_many()
            .col_expr(booking_passenger::Column::SeatNumber, seat.to_string().into())
            .filter(booking_passenger::Column::BookingId.eq(booking_id))
            .filter(booking_passenger::Column::Position.eq(position as i16))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Records a changed booking's total and, when its first segment changed, the flight and cabin the
/// booking names (its first segment's).
#[tracing::instrument(name = "db bookings.set_total", skip_all, fields(otel.kind = "client"))]
pub async fn set_total_and_first_flight(
    db: &impl ConnectionTrait,
    id: Uuid,
    total: Money,
    first: Option<(Uuid, CabinClass)>,
) -> Result<(), StoreError> {
    let mut update =
        booking::Entity::update_many().col_expr(booking::Column::TotalAmountMinor, total.amount_minor.into());
    if let Some((flight_id, cabin)) = first {
        update = update
            .col_expr(booking::Column::FlightId, flight_id.into())
            .col_expr(booking::Column::Cabin, cabin.as_str().into());
    }
    update.filter(booking::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

#[tracing::instrument(name = "db bookings.get", skip_all, fields(otel.kind = "client"))]
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Booking>, StoreError> {
    let Some(row) = booking::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    Ok(with_passengers(db, vec![row]).await?.pop())
}

/// The bookings with these ids (those that exist), in no particular order.
#[tracing::instrument(name = "db bookings.get_many", skip_all, fields(otel.kind = "client"))]
pub async fn get_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Vec<Booking>, StoreError> {
    let rows = booking::Entity::find().filter(booking::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    with_passengers(db, rows).await
}

/// Which bookings a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter {
    pub user_id: Option<Uuid>,
    pub flight_id: Option<Uuid>,
}

/// Newest first; `after` is the last booking of the previous page.
#[tracing::instrument(name = "db bookings.list", skip_all, fields(otel.kind = "client"))]
pub async fn list(
    db: &impl ConnectionTrait,
    filter: ListFilter,
    after: Option<Cursor>,
    page_size: u32,
) -> Result<(Vec<Booking>, Option<Cursor>), StoreError> {
    let mut query = booking::Entity::find();
    if let Some(user_id) = filter.user_id {
        query = query.filter(booking::Column::UserId.eq(user_id));
    }
    if let Some(flight_id) = filter.flight_id {
        query = query.filter(booking::Column::FlightId.eq(flight_id));
    }
    if let Some(after) = after {
        query = query.filter(
            booking::Column::CreatedAt
                .lt(after.at)
                .or(booking::Column::CreatedAt.eq(after.at).and(booking::Column::Id.lt(after.id))),
        );
    }
    let mut rows = query
        .order_by_desc(booking::Column::CreatedAt)
        .order_by_desc(booking::Column::Id)
        .limit(u64::from(page_size) + 1)
        .all(db)
        .await?;
    let next = if rows.len() > page_size as usize {
        rows.truncate(page_size as usize);
        rows.last().map(|last| Cursor { at: last.created_at, id: last.id })
    } else {
        None
    };
    Ok((with_passengers(db, rows).await?, next))
}

/// A hold past its expiry, claimed by the sweeper.
#[derive(Debug, Clone)]
pub struct DueHold {
    pub id: Uuid,
    pub version: i64,
}

/// Up to `limit` holds due at `now`. On PostgreSQL the rows stay locked until the transaction ends and
/// rows locked by another instance's sweeper are skipped, so instances share the work without waiting.
// Polled by background loops: traced only at debug level, so idle polling exports nothing.
#[tracing::instrument(level = "debug", name = "db bookings.claim_due_holds", skip_all, fields(otel.kind = "client"))]
pub async fn claim_due_holds(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<DueHold>, StoreError> {
    let rows: Vec<(Uuid, i64)> = booking::Entity::find()
        .select_only()
        .columns([booking::Column::Id, booking::Column::Version])
        .filter(booking::Column::Status.eq(BookingStatus::Held.as_str()))
        .filter(booking::Column::HoldExpiresAt.lte(now))
        .order_by_asc(booking::Column::HoldExpiresAt)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(id, version)| DueHold { id, version }).collect())
}

/// Whether a booking in `status` (as stored) was confirmed, and so may hold tickets.
fn may_hold_tickets(status: &str) -> bool {
    [BookingStatus::Confirmed, BookingStatus::RefundPending, BookingStatus::Refunded]
        .iter()
        .any(|ticketed| ticketed.as_str() == status)
}

/// Loads the passengers and the segments of `rows` (a query each), the changes some wait on and the tickets
/// of those confirmed (one more query each, only then), and assembles domain bookings in the same order.
async fn with_passengers(db: &impl ConnectionTrait, rows: Vec<booking::Model>) -> Result<Vec<Booking>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let passengers = booking_passenger::Entity::find()
        .filter(booking_passenger::Column::BookingId.is_in(rows.iter().map(|r| r.id)))
        .order_by_asc(booking_passenger::Column::Position)
        .all(db)
        .await?;
    let mut by_booking: HashMap<Uuid, Vec<booking_passenger::Model>> = HashMap::new();
    for passenger in passengers {
        by_booking.entry(passenger.booking_id).or_default().push(passenger);
    }
    let mut segments = super::segments::of_bookings(db, rows.iter().map(|r| r.id)).await?;
    let waiting: Vec<Uuid> = rows.iter().filter_map(|r| r.pending_change_id).collect();
    let mut changes =
        if waiting.is_empty() { HashMap::new() } else { super::pending_changes::of_bookings(db, waiting).await? };
    // Only bookings that were confirmed hold tickets.
    let ticketed: Vec<Uuid> = rows.iter().filter(|r| may_hold_tickets(&r.status)).map(|r| r.id).collect();
    let mut tickets =
        if ticketed.is_empty() { HashMap::new() } else { super::tickets::of_bookings(db, ticketed).await? };
    // Documents are given at check-in, so only bookings with a ticket checked in may have some on file.
    let checked_in: Vec<Uuid> = tickets
        .iter()
        .filter(|(_, tickets)| tickets.iter().any(|ticket| ticket.sequence_number.is_some()))
        .map(|(&id, _)| id)
        .collect();
    let mut documents = if checked_in.is_empty() {
        HashMap::new()
    } else {
        super::travel_documents::of_bookings(db, checked_in).await?
    };
    rows.into_iter()
        .map(|row| {
            let passengers = by_booking.remove(&row.id).unwrap_or_default();
            let segments = segments.remove(&row.id).unwrap_or_default();
            let pending_change = changes.remove(&row.id).map(Box::new);
            let tickets = tickets.remove(&row.id).unwrap_or_default();
            let documents = documents.remove(&row.id).unwrap_or_default();
            to_booking(row, passengers, segments).map(|booking| Booking {
                pending_change,
                tickets,
                documents,
                ..booking
            })
        })
        .collect()
}

fn to_booking(
    row: booking::Model,
    passengers: Vec<booking_passenger::Model>,
    segments: Vec<Segment>,
) -> Result<Booking, StoreError> {
    let corrupt = StoreError::Corrupt;
    if segments.first().is_none_or(|first| first.flight_id != row.flight_id) {
        return Err(StoreError::Corrupt(format!("booking {} without its first segment", row.id)));
    }
    let mut people = Vec::with_capacity(passengers.len());
    for p in passengers {
        people.push(Passenger {
            given_name: p.given_name,
            family_name: p.family_name,
            date_of_birth: p.date_of_birth,
            passenger_type: p.passenger_type.parse().map_err(corrupt)?,
        });
    }
    Ok(Booking {
        id: row.id,
        reference: BookingReference::from_stored(row.reference),
        user_id: row.user_id,
        flight_id: row.flight_id,
        cabin: row.cabin.parse().map_err(corrupt)?,
        status: row.status.parse().map_err(corrupt)?,
        passengers: people,
        segments,
        total_price: Money {
            currency: CurrencyCode::parse(&row.currency_code).map_err(corrupt)?,
            amount_minor: row.total_amount_minor,
        },
        contact_email: row.contact_email,
        hold_expires_at: row.hold_expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
        pending_change: None,
        tickets: Vec::new(),
        documents: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use aerobook_migrations::{Migrator, MigratorTrait as _};
    use sea_orm::{ConnectionTrait as _, Database, TransactionTrait as _};

    use super::*;
    use crate::{
        config::{DatabaseConfig, Secret},
        store::{
            Store,
            test_support::{databases, drop_database, hold, insert_early_flight, insert_without_segments},
        },
    };

    /// On a fresh PostgreSQL schema (no statistics yet) with the plan PostgreSQL settles on for a prepared
    /// statement run many times (the generic plan), a batch's read of the live holds goes through the
    /// segments' (user, flight) index, not through every live hold of every flight.
    #[tokio::test]
    async fn the_live_holds_are_counted_through_the_user_index() {
        let Ok(url) = std::env::var("DATABASE_URL") else { return };
        let schema = format!("live_holds_plan_{}", Uuid::new_v4().simple());
        let admin = Database::connect(url.as_str()).await.expect("PostgreSQL");
        admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("a schema");
        let config = DatabaseConfig {
            url: Secret::new(url),
            schema: Some(schema.clone()),
            max_connections: 1,
            is_sqlite: false,
        };
        Store::migrate(&config).await.expect("migrated");
        let store = Store::connect(&config).await.expect("connected");
        let txn = store.conn().begin().await.expect("a transaction");
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan").await.expect("set");
        let prepare = format!("PREPARE live_holds(text, uuid, text, timestamptz) AS {LIVE_HOLDS}");
        txn.execute_unprepared(&prepare).await.expect("prepared");
        let explain = "EXPLAIN EXECUTE live_holds('{00000000-0000-0000-0000-000000000001}', \
                       '00000000-0000-0000-0000-000000000002', 'HELD', now())";
        let plan: Vec<String> = txn
            .query_all_raw(Statement::from_string(DbBackend::Postgres, explain))
            .await
            .expect("explained")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("a line"))
            .collect();
        let plan = plan.join("\n");
        txn.execute_unprepared("DEALLOCATE live_holds").await.expect("deallocated");
        txn.rollback().await.expect("rolled back");
        admin.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE")).await.expect("dropped");
        assert!(plan.contains("ix_booking_segments_user_flight"), "{plan}");
        assert!(!plan.contains("ix_bookings_status_expiry"), "{plan}");
    }

    /// Bookings written before segments existed get one each: their flight, cabin and total, and their
    /// passengers' seats in passenger order.
    #[tokio::test]
    async fn the_migration_gives_every_earlier_booking_its_one_segment() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for config in databases(&dir).await {
            let store = Store::connect(&config).await.expect("connected");
            Migrator::up(store.conn(), Some(12)).await.expect("migrated to the version before");
            let now = Utc::now();
            let (flight_id, cabin, first_row) = insert_early_flight(store.conn(), "XY1", now).await;
            let first = SeatNumber { row: first_row, letter: 'B' };
            let mut earlier = hold(flight_id, cabin, "AAAAAA", first, now);
            earlier.passengers.push(earlier.passengers[0].clone());
            earlier.segments[0].seats.push(SeatNumber { row: first_row, letter: 'A' });
            insert_without_segments(store.conn(), &earlier).await;

            Migrator::up(store.conn(), None).await.expect("migrated");
            let read = get(store.conn(), earlier.id).await.expect("read").expect("the booking");
            let segment = &read.segments[..];
            assert_eq!(segment.len(), 1);
            assert_eq!((segment[0].flight_id, segment[0].cabin), (flight_id, cabin));
            assert_eq!(segment[0].seats, earlier.segments[0].seats, "in passenger order");
            assert_eq!(segment[0].price, earlier.total_price);
            store.close().await.expect("closed");
            drop_database(&config).await;
        }
    }
}
