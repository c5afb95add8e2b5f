//! The flash sale through waiting rooms (`flash-sale --waiting-room`, reported as `flash-sale-waiting-room`):
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
//! live booking in the tables must belong to a waiter given a pass. `--watchers` availability streams may be
//! open on the flights meanwhile (the `watch` scenario), and the server's memory is sampled.
//!
//! With `--addr-b`, a second instance sharing the first one's database and Redis, waiters alternate between
//! the two. Each joins on both (joining again must give the same ticket), watches its ticket on both (one
//! queue admits it once: both streams carry the same pass expiry) and books on its own.

use std::{
    collections::{BTreeMap, HashSet},
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
use serde::Serialize;
use tokio::sync::Semaphore;
use tonic::{Streaming, transport::Channel};

use crate::{
    Error,
    args::{Args, Scenario},
    flash_sale::Invariants,
    invariants::{self, DatabaseChecks, SaleFlight},
    rss::RssSampler,
    stats::{Answer, Latencies, Recorder, Summary},
    target::{self, SEATS_PER_ROW, STREAMS_PER_CONNECTION, Target, Tokens},
    watch::{WatchReport, Watchers},
};

/// The report's key.
pub const NAME: &str = "flash-sale-waiting-room";

const SEATS_UNAVAILABLE: &str = "SEATS_UNAVAILABLE";
const WAITING_ROOM_REQUIRED: &str = "WAITING_ROOM_REQUIRED";
/// From configuring the rooms to their opening: the first waiters join before it and are drawn at random.
const OPENS_AFTER: Duration = Duration::from_secs(2);
/// How far from the rooms' pace a second of admissions may be and still count as steady.
const STEADY_TOLERANCE: f64 = 0.1;
/// Beyond twice the time the rooms need to admit every waiter, waiters still without an answer give up.
const DEADLINE_MARGIN: Duration = Duration::from_secs(60);
/// How long the watchers get, after the sale, to show the final seat counts.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The report's `scenarios.flash-sale-waiting-room`.
#[derive(Debug, Serialize)]
pub struct WaitingRoomReport {
    /// The admitted waiters' `CreateBooking` calls (with their pass): calls/s, latency, errors; sold out is
    /// `expected`.
    #[serde(flatten)]
    pub calls: Summary,
    pub flights: usize,
    pub seats: u64,
    pub waiters: u64,
    /// Server instances the waiters alternate between (`--addr-b`: 2).
    pub instances: usize,
    pub admit_per_minute: i32,
    pub pass_ttl_seconds: i32,
    /// Every `JoinWaitingRoom` call (with two instances, both of each waiter's).
    pub join_p50_ms: f64,
    pub join_p99_ms: f64,
    /// `JoinWaitingRoom` failures, by error code.
    pub join_errors: BTreeMap<String, u64>,
    /// `WatchWaitingRoom` streams refused or broken (by error code), ended without a pass or a sold-out
    /// notice, or still waiting at the deadline.
    pub watch_errors: BTreeMap<String, u64>,
    /// Most `WatchWaitingRoom` streams open at once.
    pub streams_open_peak: usize,
    /// Messages between each stream's first and its last: position changes.
    pub position_updates: u64,
    /// Waiters given a pass, and told sold out by their stream.
    pub admitted: u64,
    pub told_sold_out: u64,
    /// Holds placed with a pass, and passes whose hold was refused for want of seats.
    pub holds: u64,
    pub refused_with_pass: u64,
    pub admitted_per_s: AdmittedPerSecond,
    /// Passes by the whole second the server issued them (their expiry less the TTL), from the first such
    /// second to the last: the server's pace without this tool's delays in receiving; for information.
    pub passes_by_issue_second: Vec<u64>,
    /// From a flight's sell-out (this tool's receipt of the hold that filled it) to its last waiter told it
    /// is sold out, the longest over the flights; `null` if no flight sold out with waiters left.
    pub sold_out_notice_ms: Option<f64>,
    /// With two instances (each waiter joins and watches on both): waiters given two tickets, or two passes
    /// (expiries) for one ticket. `null` with one.
    pub double_admissions: Option<u64>,
    /// With two instances: tickets one instance admitted and the other told sold out (each reads the
    /// sell-out on its own tick); for information. `null` with one.
    pub split_at_sell_out: Option<u64>,
    /// `GetWaitingRoom` after the sale, summed over the flights (the counters go on admitting over the
    /// waiters told sold out).
    pub rooms_waiting: i64,
    pub rooms_admitted: i64,
    pub oversold: i64,
    /// What `CreateBooking` without a pass was answered while the rooms were enabled (`OK`: it booked).
    pub passless_probe: String,
    /// Live bookings on the flights of customers never given a pass, in the tables; `null` without them.
    pub passless_holds: Option<i64>,
    /// Peak resident set of the server while the sale ran (this process's when embedded), MiB.
    pub peak_rss_mb: Option<f64>,
    pub invariants: Invariants,
    pub violations: Vec<String>,
}

/// Passes received per whole second, from the end of the first second after the first pass to the first
/// flight's sell-out (or the last pass, where a flight's queue ran dry first): the span in which every room
/// admits at its full pace.
#[derive(Debug, PartialEq, Serialize)]
pub struct AdmittedPerSecond {
    /// `admit_per_minute / 60`, summed over the flights.
    pub target: f64,
    /// Whole seconds measured.
    pub seconds: usize,
    pub mean: Option<f64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Every second measured within 10 % of `target` (false when none was).
    pub steady: bool,
    /// The passes of each second measured.
    pub per_second: Vec<u64>,
}

/// One waiter: a new customer queueing for one flight.
struct Waiter {
    flight: usize,
    user: uuid::Uuid,
    bearer: String,
}

/// How a waiter's queueing ended, and its hold.
#[derive(Default)]
struct Outcome {
    /// How the stream on the waiter's first instance ended.
    told: Told,
    /// How the streams on the other instances (`--addr-b`) ended.
    told_elsewhere: Vec<Told>,
    booked: Option<Booked>,
    /// Joining on another instance gave another ticket.
    second_ticket: bool,
    position_updates: u64,
    /// A stream went on after its pass or sold-out notice.
    went_on: bool,
}

#[derive(Default)]
enum Told {
    #[default]
    Nothing,
    Pass {
        at: Instant,
        pass: String,
        expires_at: Option<prost_types::Timestamp>,
    },
    SoldOut(Instant),
}

enum Booked {
    Hold { id: String, at: Instant },
    SoldOut,
    Failed,
}

/// What every waiter adds to.
struct Shared {
    bookings: Recorder,
    joins: Mutex<Latencies>,
    join_errors: Mutex<BTreeMap<String, u64>>,
    watch_errors: Mutex<BTreeMap<String, u64>>,
    open: AtomicUsize,
    open_peak: AtomicUsize,
}

/// A flight's receipts, for the sell-out and the span of full-pace admission.
#[derive(Default)]
struct FlightTimes {
    passes: Vec<Instant>,
    holds: Vec<Instant>,
    last_told_sold_out: Option<Instant>,
}

impl FlightTimes {
    /// When every seat was held: the receipt of the last of them.
    fn sold_out_at(&self, seats: usize) -> Option<Instant> {
        if self.holds.len() >= seats { self.holds.iter().max().copied() } else { None }
    }
}

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
    let mut instances = vec![target::connect(&target.addr, connections).await?];
    if let Some(addr_b) = &args.addr_b {
        target::wait_until_serving(addr_b).await?;
        instances.push(target::connect(addr_b, connections).await?);
    }
    let watchers = match args.runs(Scenario::Watch) && args.watchers > 0 {
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
    progress.set_prefix(NAME);
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

/// The waiters' outcomes, summed up and by flight.
struct Tally {
    sale: Vec<SaleFlight>,
    times: Vec<FlightTimes>,
    /// By flight: the customers given a pass.
    passholders: Vec<HashSet<uuid::Uuid>>,
    /// The passes' expiries, whole seconds since the epoch.
    expiries: Vec<i64>,
    admitted: u64,
    told_sold_out: u64,
    holds: u64,
    refused_with_pass: u64,
    /// Waiters without an answer or a hold: their errors are counted by code.
    failed: u64,
    position_updates: u64,
    went_on: u64,
    double_admissions: u64,
    split_at_sell_out: u64,
    violations: Vec<String>,
}

impl Tally {
    fn of(waiters: &[Waiter], outcomes: &[Outcome], flight_ids: &[String]) -> Self {
        let mut tally = Self {
            sale: flight_ids.iter().map(|id| SaleFlight { id: id.clone(), ..Default::default() }).collect(),
            times: flight_ids.iter().map(|_| FlightTimes::default()).collect(),
            passholders: flight_ids.iter().map(|_| HashSet::new()).collect(),
            expiries: Vec::new(),
            admitted: 0,
            told_sold_out: 0,
            holds: 0,
            refused_with_pass: 0,
            failed: 0,
            position_updates: 0,
            went_on: 0,
            double_admissions: 0,
            split_at_sell_out: 0,
            violations: Vec::new(),
        };
        for (who, outcome) in waiters.iter().zip(outcomes) {
            let (flight, times) = (&mut tally.sale[who.flight], &mut tally.times[who.flight]);
            flight.buyers += 1;
            tally.position_updates += outcome.position_updates;
            tally.went_on += u64::from(outcome.went_on);
            match &outcome.told {
                Told::Pass { at, expires_at, .. } => {
                    tally.admitted += 1;
                    times.passes.push(*at);
                    tally.passholders[who.flight].insert(who.user);
                    tally.expiries.extend(expires_at.as_ref().map(|expiry| expiry.seconds));
                }
                Told::SoldOut(at) => {
                    tally.told_sold_out += 1;
                    flight.sold_out += 1;
                    times.last_told_sold_out = times.last_told_sold_out.max(Some(*at));
                }
                Told::Nothing => tally.failed += 1,
            }
            match &outcome.booked {
                Some(Booked::Hold { id, at }) => {
                    tally.holds += 1;
                    times.holds.push(*at);
                    if !flight.bookings.insert(id.clone()) {
                        tally.violations.push(format!("booking {id} was given to two waiters"));
                    }
                }
                Some(Booked::SoldOut) => {
                    tally.refused_with_pass += 1;
                    flight.sold_out += 1;
                }
                Some(Booked::Failed) => tally.failed += 1,
                None => {}
            }
            let (double, split) = compare(&outcome.told, &outcome.told_elsewhere);
            tally.double_admissions += u64::from(outcome.second_ticket || double);
            tally.split_at_sell_out += u64::from(split);
        }
        tally
    }
}

/// Whether the other instances' streams of one ticket admitted it again (a pass with another expiry),
/// and whether one told it sold out while another admitted it: each instance reads the sell-out on its
/// own tick, so a ticket admitted on one may hear of the sell-out first on the other.
fn compare(told: &Told, elsewhere: &[Told]) -> (bool, bool) {
    let mut double = false;
    let mut split = false;
    for other in elsewhere {
        match (told, other) {
            (Told::Pass { expires_at: here, .. }, Told::Pass { expires_at: there, .. }) => double |= here != there,
            (Told::Pass { .. }, Told::SoldOut(_)) | (Told::SoldOut(_), Told::Pass { .. }) => split = true,
            _ => {}
        }
    }
    (double, split)
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

/// One waiter, on its instances (its own first): joins on each (the same ticket every time), watches the
/// ticket on each until the pass or the sold-out notice, books with its own instance's pass, then reads its
/// streams to their end. `opening` bounds the waiters joining and opening streams at once; the streams are
/// read until `deadline` at most.
async fn queue_and_book(
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

/// Where every room stopped admitting at its full pace: the first flight to sell out, or to run out of
/// waiters (its last pass); `None` before any pass.
fn admission_end(flights: &[FlightTimes], seats: usize) -> Option<Instant> {
    flights.iter().filter_map(|flight| flight.sold_out_at(seats).or_else(|| flight.passes.iter().max().copied())).min()
}

/// Passes per whole second from the first pass on, leaving out the first second (it starts at an arbitrary
/// point of the rooms' pace) and any second not over by `end`.
fn admission_rate(passes: &[Instant], end: Option<Instant>, target: f64) -> AdmittedPerSecond {
    let mut per_second = Vec::new();
    if let (Some(first), Some(end)) = (passes.iter().min(), end) {
        per_second = vec![0_u64; end.saturating_duration_since(*first).as_secs() as usize];
        for pass in passes {
            if let Some(second) = per_second.get_mut(pass.saturating_duration_since(*first).as_secs() as usize) {
                *second += 1;
            }
        }
    }
    let measured = per_second.get(1..).unwrap_or_default();
    let mean = (!measured.is_empty()).then(|| measured.iter().sum::<u64>() as f64 / measured.len() as f64);
    AdmittedPerSecond {
        target,
        seconds: measured.len(),
        mean,
        min: measured.iter().min().copied(),
        max: measured.iter().max().copied(),
        steady: !measured.is_empty()
            && measured.iter().all(|&n| (n as f64 - target).abs() <= STEADY_TOLERANCE * target),
        per_second: measured.to_vec(),
    }
}

/// Passes per whole second of their expiry (issue time plus the TTL), from the first second to the last.
fn per_expiry_second(expiries: &[i64]) -> Vec<u64> {
    let (Some(first), Some(last)) = (expiries.iter().min(), expiries.iter().max()) else { return Vec::new() };
    let mut per_second = vec![0; usize::try_from(last - first).unwrap_or(0) + 1];
    for expiry in expiries {
        per_second[usize::try_from(expiry - first).unwrap_or(0)] += 1;
    }
    per_second
}

/// The longest wait, over the flights that sold out with waiters left, from the sell-out to the last of
/// them told so. A notice may overtake the answer to the last hold: that counts as no wait.
fn sold_out_notice(flights: &[FlightTimes], seats: usize) -> Option<Duration> {
    flights
        .iter()
        .filter_map(|flight| Some(flight.last_told_sold_out?.saturating_duration_since(flight.sold_out_at(seats)?)))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, millis: &[u64]) -> Vec<Instant> {
        millis.iter().map(|&ms| start + Duration::from_millis(ms)).collect()
    }

    /// `per_second[i]` passes spread evenly over second `i` from `start`.
    fn paced(start: Instant, per_second: &[u64]) -> Vec<Instant> {
        let mut passes = Vec::new();
        for (second, &n) in per_second.iter().enumerate() {
            passes.extend((0..n).map(|i| start + Duration::from_millis(second as u64 * 1000 + i * 1000 / n)));
        }
        passes
    }

    #[test]
    fn the_first_second_and_a_part_second_at_the_end_are_left_out() {
        let start = Instant::now();
        // A burst in the first second, then 50, 48, 53 a second, then a part second of 10 before the end.
        let mut passes = paced(start, &[120, 50, 48, 53, 10]);
        passes.retain(|pass| *pass < start + Duration::from_millis(4300));
        let rate = admission_rate(&passes, Some(start + Duration::from_millis(4300)), 50.0);
        assert_eq!((rate.seconds, &rate.per_second[..]), (3, &[50, 48, 53][..]));
        assert_eq!((rate.min, rate.max), (Some(48), Some(53)));
        assert!((rate.mean.unwrap() - 151.0 / 3.0).abs() < 1e-9 && rate.steady, "{rate:?}");
    }

    #[test]
    fn one_second_off_by_more_than_a_tenth_is_not_steady() {
        let start = Instant::now();
        let passes = paced(start, &[50, 50, 44, 50, 50]);
        let rate = admission_rate(&passes, Some(start + Duration::from_secs(5)), 50.0);
        assert_eq!((rate.seconds, rate.min, rate.steady), (4, Some(44), false));
        let passes = paced(start, &[50, 50, 45, 55, 50]);
        assert!(admission_rate(&passes, Some(start + Duration::from_secs(5)), 50.0).steady);
    }

    #[test]
    fn no_whole_second_measured_is_not_steady() {
        let start = Instant::now();
        let rate = admission_rate(&at(start, &[0, 300, 1200]), Some(start + Duration::from_millis(1900)), 2.0);
        assert_eq!(
            rate,
            AdmittedPerSecond {
                target: 2.0,
                seconds: 0,
                mean: None,
                min: None,
                max: None,
                steady: false,
                per_second: Vec::new()
            }
        );
        assert_eq!(admission_rate(&[], None, 2.0).seconds, 0);
    }

    #[test]
    fn passes_are_counted_by_the_second_they_expire_gaps_included() {
        assert_eq!(per_expiry_second(&[1_000_302, 1_000_300, 1_000_300, 1_000_302]), vec![2, 0, 2]);
        assert_eq!(per_expiry_second(&[]), Vec::<u64>::new());
    }

    #[test]
    fn admission_ends_at_the_first_flight_sold_out_or_run_dry() {
        let start = Instant::now();
        let sold_out =
            FlightTimes { passes: at(start, &[0, 100, 200]), holds: at(start, &[150, 250]), ..Default::default() };
        let ran_dry = FlightTimes { passes: at(start, &[0, 400]), holds: at(start, &[50]), ..Default::default() };
        assert_eq!(admission_end(&[sold_out], 2), Some(start + Duration::from_millis(250)));
        let sold_out =
            FlightTimes { passes: at(start, &[0, 100, 200]), holds: at(start, &[150, 350]), ..Default::default() };
        assert_eq!(admission_end(&[sold_out, ran_dry], 2), Some(start + Duration::from_millis(350)));
        assert_eq!(admission_end(&[FlightTimes::default()], 2), None);
    }

    #[test]
    fn a_second_expiry_for_one_ticket_is_a_double_admission_a_sold_out_on_one_side_is_a_split() {
        let now = Instant::now();
        let pass = |seconds| Told::Pass {
            at: now,
            pass: "p".into(),
            expires_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        };
        assert_eq!(compare(&pass(100), &[pass(100)]), (false, false));
        assert_eq!(compare(&pass(100), &[pass(101)]), (true, false));
        assert_eq!(compare(&pass(100), &[Told::SoldOut(now)]), (false, true));
        assert_eq!(compare(&Told::SoldOut(now), &[pass(100)]), (false, true));
        assert_eq!(compare(&Told::SoldOut(now), &[Told::SoldOut(now)]), (false, false));
        assert_eq!(compare(&pass(100), &[]), (false, false));
    }

    #[test]
    fn the_tally_counts_each_waiter_once_by_flight() {
        let now = Instant::now();
        let waiter = |flight| Waiter { flight, user: uuid::Uuid::now_v7(), bearer: String::new() };
        let waiters = [waiter(0), waiter(1), waiter(0), waiter(1)];
        let pass = || Told::Pass { at: now, pass: "p".into(), expires_at: None };
        let outcomes = [
            Outcome { told: pass(), booked: Some(Booked::Hold { id: "b1".into(), at: now }), ..Default::default() },
            Outcome { told: pass(), booked: Some(Booked::SoldOut), position_updates: 3, ..Default::default() },
            Outcome { told: Told::SoldOut(now), ..Default::default() },
            Outcome { second_ticket: true, went_on: true, ..Default::default() },
        ];
        let tally = Tally::of(&waiters, &outcomes, &["f0".into(), "f1".into()]);
        assert_eq!((tally.admitted, tally.holds, tally.refused_with_pass, tally.told_sold_out), (2, 1, 1, 1));
        assert_eq!((tally.failed, tally.went_on, tally.double_admissions, tally.position_updates), (1, 1, 1, 3));
        assert_eq!((tally.sale[0].buyers, tally.sale[0].sold_out, tally.sale[1].sold_out), (2, 1, 1));
        assert!(tally.passholders[0].contains(&waiters[0].user) && !tally.passholders[0].contains(&waiters[2].user));
        assert_eq!((tally.times[0].passes.len(), tally.times[0].holds.len(), tally.times[1].holds.len()), (1, 1, 0));
    }

    #[test]
    fn the_sold_out_notice_is_the_longest_wait_after_a_flight_filled() {
        let start = Instant::now();
        let flight = |holds: &[u64], told: Option<u64>| FlightTimes {
            holds: at(start, holds),
            last_told_sold_out: told.map(|ms| start + Duration::from_millis(ms)),
            ..Default::default()
        };
        let flights = [
            flight(&[100, 900], Some(1500)),
            flight(&[100, 1000], Some(1300)),
            // Not filled: its refusals are the API checks' business, not a notice.
            flight(&[100], Some(5000)),
            // The notice overtook the last hold's answer.
            flight(&[100, 2000], Some(1990)),
        ];
        assert_eq!(sold_out_notice(&flights, 2), Some(Duration::from_millis(600)));
        assert_eq!(sold_out_notice(&flights[2..3], 2), None);
        assert_eq!(sold_out_notice(&[flight(&[1, 2], None)], 2), None);
    }
}
