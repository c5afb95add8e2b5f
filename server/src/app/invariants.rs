//! The invariant checker: what Aerobook promises, read back from the database after the fact, whatever
//! happened on the way (retries through any instance, crashes, faults). Run after every reliability
//! scenario and by operators (`aerobook-server admin check`). It only reads, in one snapshot, so it can run
//! beside live traffic.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use super::{AppError, outbox::LEASE, retention::DONE_JOB_RETENTION};
use crate::store::{Store, StoreError, invariants as q};

/// A running job whose lease passed this long ago has been left behind: a live worker takes over a lapsed
/// job at its next poll.
const STUCK_AFTER: TimeDelta = TimeDelta::minutes(5);
/// Violations listed per check; the count is always whole.
const LISTED: usize = 20;

/// One promise and what the database says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// What must hold, in words.
    pub promise: &'static str,
    /// How many things were looked at (cabins, bookings...).
    pub checked: u64,
    pub violations: u64,
    /// The first violations, described.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantReport {
    pub checks: Vec<Check>,
}

impl InvariantReport {
    pub fn violations(&self) -> u64 {
        self.checks.iter().map(|check| check.violations).sum()
    }

    pub fn holds(&self) -> bool {
        self.violations() == 0
    }
}

impl fmt::Display for InvariantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            let verdict = if check.violations == 0 { "ok  " } else { "FAIL" };
            writeln!(f, "{verdict} {} ({} checked): {}", check.name, check.checked, check.promise)?;
            for example in &check.examples {
                writeln!(f, "       {example}")?;
            }
            if check.violations > check.examples.len() as u64 {
                writeln!(f, "       ... {} violations in all", check.violations)?;
            }
        }
        writeln!(f, "{} checks, {} violations", self.checks.len(), self.violations())
    }
}

/// Checks every invariant at `now`, in one read-only snapshot of the database.
pub async fn check_invariants(store: &Store, now: DateTime<Utc>) -> Result<InvariantReport, AppError> {
    let txn = store.begin_snapshot().await?;
    let mut checks = Vec::new();

    let (cabins, broken) = q::cabin_counts(&txn).await?;
    checks.push(check(
        "seats_add_up",
        "per cabin, seats available + held + sold = seats in all",
        cabins,
        broken,
        |c| {
            format!(
                "flight {} {}: {} available + {} assigned != {} in all",
                c.flight_id, c.cabin, c.seats_available, c.seats_assigned, c.seats_total
            )
        },
    ));
    let (marked_cabins, mismatched) = q::cabins_marked_off_their_assignments(&txn).await?;
    checks.push(check(
        "taken_seats_match_assignments",
        "per cabin, the seats its row marks taken are the seats assigned",
        marked_cabins,
        mismatched,
        |(flight, cabin, differs)| format!("flight {flight} {cabin}: {differs}"),
    ));
    let released = q::seats_of_released_bookings(&txn).await?;
    checks.push(check(
        "released_seats_are_free",
        "no seat stays with a cancelled, expired or refunded booking",
        cabins,
        released,
        |(flight, seat, status)| format!("flight {flight} seat {seat} is still with a {status:?} booking"),
    ));
    let (live, unseated) = q::live_bookings_without_their_seats(&txn).await?;
    checks.push(check(
        "live_bookings_hold_their_seats",
        "every held or sold booking has exactly its passengers' seats on each of its flights",
        live,
        unseated,
        |(booking, flight, seated, assigned)| {
            format!("booking {booking} on flight {flight}: {seated} seats listed, {assigned} seats assigned")
        },
    ));
    let strays = q::seats_off_their_bookings(&txn).await?;
    checks.push(check(
        "seats_on_booked_flights",
        "a live booking's seats are on its flights, or on the flight of the change it waits on",
        cabins,
        strays,
        |(booking, flight, seat)| {
            format!("booking {booking} holds seat {seat} on flight {flight}, not one of its flights")
        },
    ));
    let doubled = q::seats_in_two_live_bookings(&txn).await?;
    checks.push(check("no_seat_sold_twice", "no seat in two live bookings", live, doubled, |(flight, seat, n)| {
        format!("flight {flight} seat {seat} is in {n} live bookings")
    }));
    let (callers, overbooked) = q::bookings_per_key(&txn, now).await?;
    checks.push(check(
        "one_booking_per_key",
        "one booking per (caller, idempotency key)",
        callers,
        overbooked,
        |(caller, keys, booked)| format!("caller {caller}: {booked} bookings from {keys} keys"),
    ));
    let (confirmed, unpaid) = q::confirmed_without_payment(&txn).await?;
    checks.push(check(
        "confirmed_bookings_are_paid",
        "every confirmed booking has a succeeded payment or an operator's confirmation",
        confirmed,
        unpaid,
        |booking| format!("booking {booking} is confirmed without a payment"),
    ));
    let (payments, overrefunded) = q::refunds_beyond_charges(&txn).await?;
    checks.push(check(
        "refunds_within_charges",
        "no payment is refunded more than it received",
        payments,
        overrefunded,
        |(payment, received, refunded)| format!("payment {payment}: {refunded} refunded of {received} received"),
    ));
    let (events, jobs) = q::emailed_events_and_their_jobs(&txn, now - DONE_JOB_RETENTION).await?;
    let without_job: Vec<_> = events.iter().filter(|event| !jobs.contains(event)).collect();
    checks.push(check(
        "every_event_has_its_email_job",
        "every emailed booking event (of the last 7 days) has its SEND_EMAIL job",
        events.len() as u64,
        without_job,
        |event| format!("event {event} has no email job"),
    ));
    let (sent, strays) = q::emails_without_their_event(&txn).await?;
    checks.push(check(
        "one_email_per_event",
        "an email is sent once, and only for an event customers are emailed about",
        sent,
        strays,
        |event| format!("an email was sent for {event}, which is not an emailed event"),
    ));
    let running = q::running_jobs(&txn).await?;
    let left_behind = now - LEASE - STUCK_AFTER;
    let stuck: Vec<_> = running.iter().filter(|(_, _, until)| until.is_none_or(|until| until < left_behind)).collect();
    checks.push(check(
        "no_job_left_running",
        "no job stays running long past its lease",
        running.len() as u64,
        stuck,
        |(job, kind, _)| format!("job {job} ({kind}) is running past its lease"),
    ));
    txn.rollback().await.map_err(StoreError::from)?;
    Ok(InvariantReport { checks })
}

fn check<T>(
    name: &'static str,
    promise: &'static str,
    checked: u64,
    violations: Vec<T>,
    describe: impl Fn(&T) -> String,
) -> Check {
    Check {
        name,
        promise,
        checked,
        violations: violations.len() as u64,
        examples: violations.iter().take(LISTED).map(describe).collect(),
    }
}
