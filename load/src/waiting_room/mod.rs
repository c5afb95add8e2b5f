//! The flash sale through waiting rooms (`flash-sale-waiting-room`):
//! `--flights` new flights of one `--rows` x 10 cabin, each with its waiting room enabled (admitting
//! `--admit-per-minute`, opening a few seconds after configuration so that the first joiners are placed in
//! random order), and `--waiters` new customers spread over them. Each waiter joins its flight's queue,
//! watches its ticket until it is given a pass or told the flight is sold out, and with a pass books one
//! seat (one call, one key).
//!
//! Measured: join latency; passes received per second against the rooms' pace (steady when every whole
//! second is within 10 % of it); how long after each flight sold out its last waiter heard so. Checked as in
//! `flash_sale` (nothing oversold, through the API and, given the database, in the tables), plus that
//! nothing is booked without a pass: a probe without one must be told `WAITING_ROOM_REQUIRED`, and every
//! live booking in the tables must belong to a waiter given a pass. When it is the run's only sale,
//! `--watchers` availability streams may be open on the flights meanwhile (the `watch` scenario); the
//! server's memory is sampled.
//!
//! With several `--addr` instances sharing one database and Redis, waiters alternate between them. Each
//! joins on every one (joining again must give the same ticket), watches its ticket on every one (one queue
//! admits it once: all streams carry the same pass expiry) and books on its own.
//!
//! Here: setting the rooms up, running the waiters, checking. One waiter's queueing is `journey`, the sums
//! over the waiters `tally`, the figures written `report`.

mod journey;
mod report;
mod tally;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, waiting_room_service_client::WaitingRoomServiceClient,
};
use aerobook_server::Role;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

pub use self::report::WaitingRoomReport;
use self::{
    journey::{Shared, Waiter, queue_and_book},
    tally::{Tally, admission_end, admission_rate, per_expiry_second, sold_out_notice},
};
use crate::{
    Error,
    args::{Args, Scenario},
    flash_sale::Invariants,
    invariants::{self, DatabaseChecks},
    rss::RssSampler,
    stats::Recorder,
    target::{self, SEATS_PER_ROW, STREAMS_PER_CONNECTION, Target, Tokens},
    watch::{WatchReport, Watchers},
};

const WAITING_ROOM_REQUIRED: &str = "WAITING_ROOM_REQUIRED";
/// From configuring the rooms to their opening: the first waiters join before it and are drawn at random.
const OPENS_AFTER: Duration = Duration::from_secs(2);
/// Beyond twice the time the rooms need to admit every waiter, waiters still without an answer give up.
const DEADLINE_MARGIN: Duration = Duration::from_secs(60);
/// How long the watchers get, after the sale, to show the final seat counts.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(
    target: &Target,
    args: &Args,
    db: Option<&DatabaseConnection>,
) -> Result<(WaitingRoomReport, Option<WatchReport>), Error> {
    let tokens = target.tokens()?;
    let flight_ids = target.create_flights(args.flights.max(1), args.rows).await?;
    let seats_per_flight = args.rows as usize * SEATS_PER_ROW;
    let waiter_count = args.waiters.max(1);
    // Tokens are minted before the sale, so the clock measures the server, not the signing.
    let waiters: Arc<[Waiter]> = (0..waiter_count)
        .map(|waiter| {
            let (user, bearer) = tokens.user(Role::Customer);
            Waiter { flight: waiter % flight_ids.len(), user, bearer }
        })
        .collect();
    // Each waiter keeps a stream open on every instance: on each, a connection serves at most
    // STREAMS_PER_CONNECTION waiters.
    let connections = waiter_count.div_ceil(STREAMS_PER_CONNECTION).max(args.connections);
    let mut instances = Vec::with_capacity(target.addrs.len());
    for addr in &target.addrs {
        instances.push(target::connect(addr, connections).await?);
    }
    let watchers = match args.watched_sale() == Some(Scenario::FlashSaleWaitingRoom) {
        true => Some(Watchers::open(target, &tokens, &flight_ids, args.watchers).await?),
        false => None,
    };

    configure(target, &tokens, &flight_ids, args).await?;
    let probe = probe_without_pass(target, &tokens, &flight_ids[0]).await;
    let rss = target.pid.map(RssSampler::start);
    let started = Instant::now();
    let per_flight = waiter_count.div_ceil(flight_ids.len()) as f64;
    let admission = Duration::from_secs_f64(per_flight * 60.0 / f64::from(args.admit_per_minute));
    let deadline = started + OPENS_AFTER + 2 * admission + DEADLINE_MARGIN;
    let shared = Arc::new(Shared {
        bookings: Recorder::new(started),
        joins: Mutex::default(),
        join_errors: Mutex::default(),
        watch_errors: Mutex::default(),
        open: AtomicUsize::new(0),
        open_peak: AtomicUsize::new(0),
    });
    let opening = Arc::new(Semaphore::new(args.sale_concurrency.max(1)));
    let flights: Arc<[String]> = flight_ids.clone().into();
    let progress = ProgressBar::new(waiter_count as u64);
    progress.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} waiters {elapsed}")
            .expect("a valid template"),
    );
    progress.set_prefix(Scenario::FlashSaleWaitingRoom.name());
    let tasks: Vec<_> = (0..waiter_count)
        .map(|waiter| {
            let (waiters, flights, shared, opening, progress) =
                (waiters.clone(), flights.clone(), shared.clone(), opening.clone(), progress.clone());
            // Waiters alternate between the instances: each joins, watches and books on its own first.
            let mut channels: Vec<Channel> =
                instances.iter().map(|channels| channels[waiter / STREAMS_PER_CONNECTION].clone()).collect();
            channels.rotate_left(waiter % instances.len());
            tokio::spawn(async move {
                let who = &waiters[waiter];
                let outcome = queue_and_book(who, &flights[who.flight], &channels, &shared, &opening, deadline).await;
                progress.inc(1);
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(waiter_count);
    for task in tasks {
        outcomes.push(task.await.expect("a waiter does not panic"));
    }
    let ended = Instant::now();
    progress.finish_and_clear();
    let peak_rss_mb = match rss {
        Some(rss) => rss.stop().await,
        None => None,
    };

    let mut tally = Tally::of(&waiters, &outcomes, &flight_ids);
    if tally.went_on > 0 {
        tally
            .violations
            .push(format!("{} waiters' streams went on after their pass or sold-out notice", tally.went_on));
    }
    if tally.double_admissions > 0 {
        tally.violations.push(format!(
            "{} waiters were given two tickets, or a ticket two passes, by the two instances",
            tally.double_admissions
        ));
    }
    match &probe {
        Ok(booking) => {
            tally
                .violations
                .push(format!("CreateBooking without a pass booked {booking} instead of {WAITING_ROOM_REQUIRED}"));
            // Its seat is taken like the waiters' ones: the seat counts below must include it.
            tally.sale[0].buyers += 1;
            tally.sale[0].bookings.insert(booking.clone());
        }
        Err(code) if code == WAITING_ROOM_REQUIRED => {}
        Err(code) => {
            tally.violations.push(format!("CreateBooking without a pass: {code}, not {WAITING_ROOM_REQUIRED}"))
        }
    }
    if tally.failed == 0 {
        // With every waiter answered, each flight must have sold exactly its seats (or all its waiters).
        for flight in &tally.sale {
            let expected = flight.buyers.min(seats_per_flight as u64);
            if flight.bookings.len() as u64 != expected {
                tally.violations.push(format!(
                    "flight {}: {} holds for {expected} seats wanted",
                    flight.id,
                    flight.bookings.len()
                ));
            }
        }
    }
    let rooms = rooms(target, &tokens, &flight_ids).await?;

    let mut violations = tally.violations;
    let (api, final_seats) = invariants::through_api(target, &tally.sale, &mut violations).await?;
    let (database, passless_holds) = match db {
        Some(db) => {
            let checks = invariants::in_database(db, &tally.sale, &mut violations).await?;
            let mut passless = 0;
            for (flight, passholders) in tally.sale.iter().zip(&tally.passholders) {
                let users = invariants::live_booking_users(db, &flight.id).await?;
                passless += users.iter().filter(|user| !passholders.contains(user)).count() as i64;
            }
            if passless > 0 {
                violations.push(format!("{passless} live bookings in the database belong to customers without a pass"));
            }
            (checks, Some(passless))
        }
        None => (DatabaseChecks::skipped("no --database-url (the embedded server's SQLite file is not checked)"), None),
    };
    let watch = match watchers {
        Some(watchers) => {
            watchers.settle(&final_seats, SETTLE_TIMEOUT).await;
            Some(watchers.close(&final_seats, ended - started))
        }
        None => None,
    };
    let target_rate = f64::from(args.admit_per_minute) / 60.0 * flight_ids.len() as f64;
    let passes: Vec<Instant> = tally.times.iter().flat_map(|flight| flight.passes.iter().copied()).collect();
    let oversold = api.oversold.max(database.counts.as_ref().map_or(0, |counts| counts.oversold));
    let two_instances = instances.len() > 1;
    let joins = shared.joins.lock().expect("no panics under this lock");
    let report = WaitingRoomReport {
        calls: shared.bookings.summary(ended - started),
        flights: flight_ids.len(),
        seats: (flight_ids.len() * seats_per_flight) as u64,
        waiters: waiter_count as u64,
        instances: instances.len(),
        admit_per_minute: args.admit_per_minute,
        pass_ttl_seconds: args.pass_ttl_seconds,
        join_p50_ms: joins.quantile_ms(0.5),
        join_p99_ms: joins.quantile_ms(0.99),
        join_errors: shared.join_errors.lock().expect("no panics under this lock").clone(),
        watch_errors: shared.watch_errors.lock().expect("no panics under this lock").clone(),
        streams_open_peak: shared.open_peak.load(Ordering::Relaxed),
        position_updates: tally.position_updates,
        admitted: tally.admitted,
        told_sold_out: tally.told_sold_out,
        holds: tally.holds,
        refused_with_pass: tally.refused_with_pass,
        admitted_per_s: admission_rate(&passes, admission_end(&tally.times, seats_per_flight), target_rate),
        passes_by_issue_second: per_expiry_second(&tally.expiries),
        sold_out_notice_ms: sold_out_notice(&tally.times, seats_per_flight).map(|notice| notice.as_secs_f64() * 1000.0),
        double_admissions: two_instances.then_some(tally.double_admissions),
        split_at_sell_out: two_instances.then_some(tally.split_at_sell_out),
        rooms_waiting: rooms.iter().map(|room| room.waiting).sum(),
        rooms_admitted: rooms.iter().map(|room| room.admitted).sum(),
        oversold,
        passless_probe: probe.map_or_else(|code| code, |_| "OK".into()),
        passless_holds,
        peak_rss_mb,
        invariants: Invariants { api, database },
        violations,
    };
    Ok((report, watch))
}

/// Enables every flight's room, opening `OPENS_AFTER` from now.
async fn configure(target: &Target, tokens: &Tokens, flights: &[String], args: &Args) -> Result<(), Error> {
    let operator = tokens.bearer(Role::Operator);
    let opens_at = chrono::Utc::now() + OPENS_AFTER;
    let mut client = WaitingRoomServiceClient::new(target.channels[0].clone());
    for flight_id in flights {
        let request = pb::ConfigureWaitingRoomRequest {
            flight_id: flight_id.clone(),
            enabled: true,
            admit_per_minute: args.admit_per_minute,
            pass_ttl_seconds: args.pass_ttl_seconds,
            opens_at: Some(prost_types::Timestamp {
                seconds: opens_at.timestamp(),
                nanos: opens_at.timestamp_subsec_nanos() as i32,
            }),
        };
        let room = client.configure_waiting_room(target::keyed(request, &operator, &target::new_key())).await?;
        if !room.get_ref().enabled {
            return Err(format!("flight {flight_id}: ConfigureWaitingRoom answered a disabled room").into());
        }
    }
    Ok(())
}

/// A new customer's `CreateBooking` without a pass while the rooms are enabled: the booking's id if it
/// booked, else the error code (`WAITING_ROOM_REQUIRED`, as it should).
async fn probe_without_pass(target: &Target, tokens: &Tokens, flight_id: &str) -> Result<String, String> {
    let request = target::keyed(target::hold_request(flight_id), &tokens.customer(), &target::new_key());
    match BookingServiceClient::new(target.channels[0].clone()).create_booking(request).await {
        Ok(booking) => Ok(booking.into_inner().id),
        Err(status) => Err(target::error_code(&status)),
    }
}

/// Every flight's room as `GetWaitingRoom` shows it.
async fn rooms(target: &Target, tokens: &Tokens, flights: &[String]) -> Result<Vec<pb::WaitingRoom>, Error> {
    let operator = tokens.bearer(Role::Operator);
    let mut client = WaitingRoomServiceClient::new(target.channels[0].clone());
    let mut rooms = Vec::with_capacity(flights.len());
    for flight_id in flights {
        let request = target::signed_in(pb::GetWaitingRoomRequest { flight_id: flight_id.clone() }, &operator);
        rooms.push(client.get_waiting_room(request).await?.into_inner());
    }
    Ok(rooms)
}
