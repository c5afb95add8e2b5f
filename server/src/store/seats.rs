//! Seat inventory: a cabin's count, its taken seats and the seat assignments. Inventory only moves under
//! the cabin's row lock and through conditional writes decided by the database: a cabin's count is
//! decremented only where enough seats remain, and a seat is assigned only where no live booking holds it
//! (the primary key of `seat_assignments`, the truth the cabin's taken seats are kept in step with).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, ConnectionTrait, DbBackend, EntityTrait as _, ExprTrait as _, QueryFilter as _,
    QueryResult, QuerySelect as _, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    StoreError,
    entities::{booking_segment, seat_assignment},
};
use crate::domain::{
    flight::{CabinClass, CabinLayout, SeatNumber},
    taken_seats::TakenSeats,
};

/// A cabin's row locked until the transaction ends (PostgreSQL; SQLite's single writer already serialises
/// every write): its free seats and its taken seats, which no other transaction changes until then.
#[derive(Debug, Clone)]
pub struct LockedSeats {
    pub flight_id: Uuid,
    pub cabin: CabinClass,
    pub seats_available: i32,
    pub taken: TakenSeats,
}

/// What [`LockedSeats::from_row`] reads of a cabin's row.
pub(super) const LOCKED_COLUMNS: &str = "seats_available, first_row, row_count, seat_letters, taken_seats";

/// Locks the cabin's row, as every change to its seats does, and reads its seats.
#[tracing::instrument(name = "db bookings.lock_cabin", skip_all, fields(otel.kind = "client"))]
pub async fn lock_cabin(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
) -> Result<LockedSeats, StoreError> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {LOCKED_COLUMNS} FROM flight_cabins WHERE flight_id = $1 AND cabin = $2{lock}");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [flight_id.into(), cabin.as_str().into()]))
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no cabin {} on flight {flight_id}", cabin.as_str())))?;
    LockedSeats::from_row(&row, flight_id, cabin)
}

impl LockedSeats {
    /// A cabin's row as [`LOCKED_COLUMNS`] names its columns.
    pub(super) fn from_row(row: &QueryResult, flight_id: Uuid, cabin: CabinClass) -> Result<Self, StoreError> {
        let letters: String = row.try_get("", "seat_letters")?;
        let layout = CabinLayout::new(row.try_get("", "first_row")?, row.try_get("", "row_count")?, &letters)
            .map_err(|(field, e)| StoreError::Corrupt(format!("cabin {field}: {e}")))?;
        let bits: Vec<u8> = row.try_get("", "taken_seats")?;
        let taken = TakenSeats::from_bits(layout, &bits).map_err(StoreError::Corrupt)?;
        Ok(Self { flight_id, cabin, seats_available: row.try_get("", "seats_available")?, taken })
    }

    /// Frees the booking's seats of this cabin and gives them back to its count; returns how many it held.
    #[tracing::instrument(name = "db bookings.release_seats", skip_all, fields(otel.kind = "client"))]
    pub async fn release(&mut self, db: &impl ConnectionTrait, booking_id: Uuid) -> Result<u64, StoreError> {
        let of_booking = || {
            seat_assignment::Column::BookingId
                .eq(booking_id)
                .and(seat_assignment::Column::FlightId.eq(self.flight_id))
                .and(seat_assignment::Column::Cabin.eq(self.cabin.as_str()))
        };
        // Read, then deleted: the cabin's lock keeps them as read (SQLite's DELETE has no RETURNING here).
        let freed: Vec<String> = seat_assignment::Entity::find()
            .select_only()
            .column(seat_assignment::Column::SeatNumber)
            .filter(of_booking())
            .into_tuple()
            .all(db)
            .await?;
        if freed.is_empty() {
            return Ok(0);
        }
        seat_assignment::Entity::delete_many().filter(of_booking()).exec(db).await?;
        let mut taken = self.taken.clone();
        for seat in &freed {
            // A seat assigned but not marked (written by a version before the cabin kept its taken seats)
            // is free all the same once its assignment is gone.
            taken.free(SeatNumber::parse(seat).map_err(StoreError::Corrupt)?);
        }
        self.store(db, seat_count(freed.len())?, taken).await?;
        Ok(freed.len() as u64)
    }

    /// Takes `seats` for the booking, all or none: `Err` lists those assigned to other bookings, and is
    /// empty when the cabin's count has too few free seats; nothing is written then. The seats are looked
    /// up one by one, so a claim costs the same however full the cabin.
    #[tracing::instrument(name = "db bookings.claim_seats", skip_all, fields(otel.kind = "client"))]
    pub async fn claim(
        &mut self,
        db: &impl ConnectionTrait,
        booking_id: Uuid,
        seats: &[SeatNumber],
    ) -> Result<Result<(), Vec<SeatNumber>>, StoreError> {
        let assigned: Vec<String> = seat_assignment::Entity::find()
            .select_only()
            .column(seat_assignment::Column::SeatNumber)
            .filter(seat_assignment::Column::FlightId.eq(self.flight_id))
            .filter(seat_assignment::Column::SeatNumber.is_in(seats.iter().map(ToString::to_string)))
            .into_tuple()
            .all(db)
            .await?;
        let mut taken: Vec<SeatNumber> = assigned
            .iter()
            .map(|seat| SeatNumber::parse(seat).map_err(StoreError::Corrupt))
            .collect::<Result<_, _>>()?;
        taken.sort();
        let count = seat_count(seats.len())?;
        if !taken.is_empty() || self.seats_available < count {
            return Ok(Err(taken));
        }
        let mut after = self.taken.clone();
        for &seat in seats {
            // A seat marked but not assigned (freed by a version before the cabin kept its taken seats) is
            // free: its assignment is the truth.
            if !after.take(seat) && !after.contains(seat) {
                return Err(StoreError::Corrupt(format!("{seat} is not a seat of the cabin")));
            }
        }
        if assign_free_seats(db, self.flight_id, self.cabin, &[(booking_id, seats)]).await? != seats.len() as u64 {
            return Err(StoreError::Corrupt("a seat found free under the cabin's lock was taken".into()));
        }
        self.store(db, -count, after).await?;
        Ok(Ok(()))
    }

    /// Moves the cabin's count by `change` and stores `taken` as its taken seats.
    async fn store(&mut self, db: &impl ConnectionTrait, change: i32, taken: TakenSeats) -> Result<(), StoreError> {
        if !store_taken(db, self.flight_id, self.cabin, change, &taken).await? {
            return Err(StoreError::Corrupt("the cabin's count moved while it was locked".into()));
        }
        self.seats_available += change;
        self.taken = taken;
        Ok(())
    }
}

/// Frees every seat of the bookings, on each of their segments' cabins and the cabin of a change they wait on
/// (which lapses), each cabin locked once and in (flight, cabin) order, as every transaction taking several
/// cabins locks them. Returns the flights whose seats were given back.
#[tracing::instrument(name = "db bookings.release_bookings", skip_all, fields(otel.kind = "client"))]
pub async fn release_bookings(db: &impl ConnectionTrait, booking_ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    if booking_ids.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<(Uuid, String, Uuid)> = booking_segment::Entity::find()
        .select_only()
        .columns([
            booking_segment::Column::FlightId,
            booking_segment::Column::Cabin,
            booking_segment::Column::BookingId,
        ])
        .filter(booking_segment::Column::BookingId.is_in(booking_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    // Keyed by the cabin itself, so the map's order is the (flight, cabin) order every transaction locks in.
    let mut by_cabin: BTreeMap<(Uuid, CabinClass), Vec<Uuid>> = BTreeMap::new();
    for (flight_id, cabin, booking_id) in segments {
        by_cabin.entry((flight_id, cabin.parse().map_err(StoreError::Corrupt)?)).or_default().push(booking_id);
    }
    // The seats a change waiting for its payment holds go back with the rest.
    for (booking_id, flight_id, cabin) in super::pending_changes::lapse_of_bookings(db, booking_ids).await? {
        by_cabin.entry((flight_id, cabin)).or_default().push(booking_id);
    }
    let mut released = Vec::new();
    for ((flight_id, cabin), bookings) in by_cabin {
        let mut locked = lock_cabin(db, flight_id, cabin).await?;
        let mut freed = 0;
        for booking_id in bookings {
            freed += locked.release(db, booking_id).await?;
        }
        if freed > 0 && released.last() != Some(&flight_id) {
            released.push(flight_id);
        }
    }
    Ok(released)
}

/// Moves the cabin's count by `change` (negative: seats taken) where it stays at 0 or above (the CHECK
/// keeps it within the total), and stores `taken` as its taken seats; `false` changes nothing. The caller
/// holds the cabin's lock and decided `taken` under it.
#[tracing::instrument(name = "db bookings.store_taken_seats", skip_all, fields(otel.kind = "client"))]
pub async fn store_taken(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
    change: i32,
    taken: &TakenSeats,
) -> Result<bool, StoreError> {
    let sql = "UPDATE flight_cabins SET seats_available = seats_available + $1, taken_seats = $2 \
               WHERE flight_id = $3 AND cabin = $4 AND seats_available + $1 >= 0";
    let values: [sea_orm::Value; 4] =
        [change.into(), taken.bits().to_vec().into(), flight_id.into(), cabin.as_str().into()];
    let updated = db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await?;
    Ok(updated.rows_affected() == 1)
}

/// Makes the cabin's taken seats its seat assignments again, under the cabin's lock; `true` when they
/// differed (a write of a version before the cabin kept them, or a hand-made change).
#[tracing::instrument(name = "db bookings.rebuild_taken_seats", skip_all, fields(otel.kind = "client"))]
pub async fn rebuild_taken(db: &impl ConnectionTrait, flight_id: Uuid, cabin: CabinClass) -> Result<bool, StoreError> {
    let locked = lock_cabin(db, flight_id, cabin).await?;
    let assigned = taken_seats(db, flight_id, Some(cabin)).await?;
    let rebuilt = TakenSeats::from_seats(locked.taken.layout().clone(), assigned).map_err(StoreError::Corrupt)?;
    if rebuilt == locked.taken {
        return Ok(false);
    }
    store_taken(db, flight_id, cabin, 0, &rebuilt).await?;
    Ok(true)
}

fn seat_count(seats: usize) -> Result<i32, StoreError> {
    i32::try_from(seats).map_err(|_| StoreError::Corrupt(format!("{seats} seats in one booking")))
}

/// Seats of the flight (or of one cabin) held or sold.
#[tracing::instrument(name = "db bookings.taken_seats", skip_all, fields(otel.kind = "client"))]
pub async fn taken_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: Option<CabinClass>,
) -> Result<BTreeSet<SeatNumber>, StoreError> {
    let mut query = seat_assignment::Entity::find()
        .select_only()
        .column(seat_assignment::Column::SeatNumber)
        .filter(seat_assignment::Column::FlightId.eq(flight_id));
    if let Some(cabin) = cabin {
        query = query.filter(seat_assignment::Column::Cabin.eq(cabin.as_str()));
    }
    let seats: Vec<String> = query.into_tuple().all(db).await?;
    seats.iter().map(|seat| SeatNumber::parse(seat).map_err(StoreError::Corrupt)).collect()
}

/// Assigns each booking its seats where they are free, in one statement; returns how many were assigned.
#[tracing::instrument(name = "db bookings.assign_free_seats", skip_all, fields(otel.kind = "client"))]
pub async fn assign_free_seats(
    db: &impl ConnectionTrait,
    flight_id: Uuid,
    cabin: CabinClass,
    bookings: &[(Uuid, &[SeatNumber])],
) -> Result<u64, StoreError> {
    let rows = bookings.iter().flat_map(|&(booking_id, seats)| {
        seats.iter().map(move |seat| seat_assignment::ActiveModel {
            flight_id: Set(flight_id),
            seat_number: Set(seat.to_string()),
            cabin: Set(cabin.as_str().to_owned()),
            booking_id: Set(booking_id),
        })
    });
    Ok(seat_assignment::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([seat_assignment::Column::FlightId, seat_assignment::Column::SeatNumber])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use aerobook_migrations::{Migrator, MigratorTrait as _};
    use chrono::Utc;
    use sea_orm::EntityTrait as _;

    use super::*;
    use crate::store::{
        Store, bookings,
        entities::flight_cabin,
        invariants, seed,
        test_support::{databases, drop_database, hold, insert_early_flight, insert_without_segments},
    };

    /// The seeded economy cabin of some flight: two rows of three seats at least.
    async fn economy(store: &Store) -> (Uuid, CabinClass, i32) {
        let economy = CabinClass::Economy;
        let cabin = flight_cabin::Entity::find()
            .filter(flight_cabin::Column::Cabin.eq(economy.as_str()))
            .one(store.conn())
            .await
            .expect("read")
            .expect("an economy cabin");
        assert!(cabin.row_count >= 2 && cabin.seat_letters.starts_with("ABC"), "{cabin:?}");
        (cabin.flight_id, economy, cabin.first_row)
    }

    /// Seats assigned before cabins kept their taken seats are marked by the migration that added them;
    /// cabins without any keep the default, every seat free.
    #[tokio::test]
    async fn the_migration_marks_the_seats_assigned_before_it() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for config in databases(&dir).await {
            let store = Store::connect(&config).await.expect("connected");
            Migrator::up(store.conn(), Some(11)).await.expect("migrated to the version before");
            let now = Utc::now();
            let (flight_id, cabin, first_row) = insert_early_flight(store.conn(), "XY1", now).await;
            insert_early_flight(store.conn(), "XY2", now).await;
            let seats = [SeatNumber { row: first_row + 1, letter: 'B' }, SeatNumber { row: first_row, letter: 'C' }];
            let booking = hold(flight_id, cabin, "AAAAAA", seats[0], now);
            insert_without_segments(store.conn(), &booking).await;
            assign_free_seats(store.conn(), flight_id, cabin, &[(booking.id, &seats)]).await.expect("assigned");

            Migrator::up(store.conn(), None).await.expect("migrated");
            let locked = lock_cabin(store.conn(), flight_id, cabin).await.expect("read");
            assert_eq!(locked.taken.iter().collect::<Vec<_>>(), [seats[1], seats[0]], "front to back");
            let (cabins, broken) =
                invariants::cabins_marked_off_their_assignments(store.conn()).await.expect("checked");
            assert!(cabins == 2 && broken.is_empty(), "{broken:?}");
            store.close().await.expect("closed");
            drop_database(&config).await;
        }
    }

    /// A claim takes its seats all or none, marked and counted; a release gives them back the same way.
    #[tokio::test]
    async fn claims_and_releases_keep_the_marks_the_count_and_the_assignments_together() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for config in databases(&dir).await {
            Store::migrate(&config).await.expect("migrated");
            let store = Store::connect(&config).await.expect("connected");
            let now = Utc::now();
            seed::seed_demo_data(&store, now, 2).await.expect("seeded");
            let (flight_id, cabin, first_row) = economy(&store).await;
            let seat = |n: i32, letter: char| SeatNumber { row: first_row + n, letter };
            let (sara, omar) = (
                hold(flight_id, cabin, "AAAAAA", seat(0, 'A'), now),
                hold(flight_id, cabin, "BBBBBB", seat(0, 'B'), now),
            );
            bookings::insert_many(store.conn(), &[&sara, &omar]).await.expect("bookings");
            let db = store.conn();
            let mut locked = lock_cabin(db, flight_id, cabin).await.expect("locked");
            let free = locked.seats_available;
            locked.claim(db, sara.id, &[seat(0, 'A'), seat(1, 'A')]).await.expect("claimed").expect("free");
            let refused = locked.claim(db, omar.id, &[seat(0, 'B'), seat(1, 'A')]).await.expect("claimed");
            assert_eq!(refused, Err(vec![seat(1, 'A')]), "all or none");
            let stored = lock_cabin(db, flight_id, cabin).await.expect("read");
            assert_eq!((stored.seats_available, stored.taken.iter().count()), (free - 2, 2));
            assert_eq!(taken_seats(db, flight_id, Some(cabin)).await.expect("read"), stored.taken.iter().collect());
            assert_eq!(locked.release(db, sara.id).await.expect("released"), 2);
            let stored = lock_cabin(db, flight_id, cabin).await.expect("read");
            assert_eq!((stored.seats_available, stored.taken.iter().count()), (free, 0));
            assert!(taken_seats(db, flight_id, Some(cabin)).await.expect("read").is_empty());
            store.close().await.expect("closed");
            drop_database(&config).await;
        }
    }
}
