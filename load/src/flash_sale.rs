//! The flash sale: every seat of `--flights` new flights offered at once to `--buyers-per-seat` times as many
//! buyers, at most `--sale-concurrency` of them at a time. Each buyer is a new customer asking for one
//! seat, and sends the request twice at once with the same key (a double tap): the server must execute it
//! once and give both taps that one answer (or tell one of them the other is still in progress).
//!
//! Phases, by each buyer's final answer: selling (from the start to the last hold) and sold out (from
//! then on, when the remaining buyers only hear `SEATS_UNAVAILABLE`). Then the invariants are checked
//! through the API and, given the database, in the tables; while it runs, `--watchers` availability streams
//! may be open on the flights (the `watch` scenario), and the server's memory is sampled.
//!
//! Paced (the open-loop phase), buyers arrive on a fixed schedule instead, at most `--max-in-flight` at once,
//! and each tap's latency runs from when its buyer was due: a server that falls behind cannot slow the
//! arrivals down and hide its queueing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aerobook_proto::v1::booking_service_client::BookingServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tonic::{Status, transport::Channel};
use tonic_types::StatusExt;

use crate::{
    Error,
    args::Args,
    cpu::{self, CpuMeter},
    invariants::{self, ApiChecks, DatabaseChecks, SaleFlight},
    rss::RssSampler,
    stats::{Answer, Recorder, Summary},
    target::{self, SEATS_PER_ROW, STREAMS_PER_CONNECTION, Target},
    watch::{WatchReport, Watchers},
};

const SEATS_UNAVAILABLE: &str = "SEATS_UNAVAILABLE";
const IN_PROGRESS: &str = "IDEMPOTENCY_IN_PROGRESS";
/// A buyer whose taps are both told "in progress" asks again, at most this often, as a client would.
const MAX_RETRIES: usize = 100;
/// How long the watchers get, after the sale, to show the final seat counts.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The report's `scenarios.flash-sale`.
#[derive(Debug, Serialize)]
pub struct SaleReport {
    /// Every tap (and retry): calls/s, latency, errors; sold out and in progress are `expected`.
    #[serde(flatten)]
    pub calls: Summary,
    pub flights: usize,
    pub seats: u64,
    pub buyers: u64,
    pub concurrency: usize,
    /// Buyers who got a booking, told sold out, or neither (an error).
    pub holds: u64,
    pub sold_out: u64,
    pub failed: u64,
    /// Holds per second, from the start to the last hold.
    pub holds_per_s: f64,
    /// `SEATS_UNAVAILABLE` answers (calls) per second after the last hold; `null` if nothing came after it.
    pub sold_out_per_s: Option<f64>,
    /// Buyers' final answers per second over the whole sale.
    pub decisions_per_s: f64,
    pub selling_s: f64,
    pub sold_out_s: f64,
    pub oversold: i64,
    /// Buyers with a booking on one tap and `SEATS_UNAVAILABLE` on the other (the gate refused the second
    /// tap before seeing the first's answer): reported, not a violation, as neither tap took a second seat.
    pub split_answers: u64,
    /// The server's CPU time over the sale per buyer's answer (`null` when embedded: it would include
    /// the buyers'), PostgreSQL's and Redis's per hold (`null` with none on this machine).
    pub server_cpu_us_per_decision: Option<f64>,
    pub postgres_cpu_us_per_hold: Option<f64>,
    pub redis_cpu_us_per_hold: Option<f64>,
    /// Peak resident set of the server while the sale ran (this process's when embedded), MiB.
    pub peak_rss_mb: Option<f64>,
    pub invariants: Invariants,
    /// flash-sale-trips: the trips among the holds and the refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trips: Option<TripFigures>,
    pub violations: Vec<String>,
    /// The open-loop sale only: buyers per second scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The open-loop phase's sale, on new flights (`null` when not run).
    pub open_loop: Option<Box<SaleReport>>,
}

#[derive(Debug, Serialize)]
pub struct TripFigures {
    pub held: u64,
    pub refused: u64,
}

#[derive(Debug, Serialize)]
pub struct Invariants {
    pub api: ApiChecks,
    pub database: DatabaseChecks,
}

/// One buyer: a new customer, one key, and the sale flights of its request (one, or a trip's two).
struct Buyer {
    flights: Vec<usize>,
    request: usize,
    bearer: String,
    key: String,
}

/// What a sale offers: its flights, the requests buyers send (a seat on each flight, then the trips),
/// and which buyer sends which.
struct Offer {
    flight_ids: Vec<String>,
    requests: Vec<aerobook_proto::v1::CreateBookingRequest>,
    /// With trips: as many outbound flights as returns, trip `i` being outbound `i` and return `i`.
    trips: bool,
}

impl Offer {
    async fn new(target: &Target, args: &Args, trips: bool) -> Result<Self, Error> {
        let count = args.flights.max(1);
        let mut flight_ids = target.create_flights(count, args.rows).await?;
        if trips {
            flight_ids.extend(target.create_flights_on(count, args.rows, target::Leg::Back).await?);
        }
        let mut requests: Vec<_> = flight_ids.iter().map(|id| target::hold_request(id)).collect();
        if trips {
            requests.extend((0..count).map(|i| target::trip_request(&[&flight_ids[i], &flight_ids[count + i]])));
        }
        Ok(Self { flight_ids, requests, trips })
    }

    /// Buyer `n`'s flights and request: with trips, every tenth buyer books a trip; the others, in turn,
    /// one seat on each flight (outbound and return alike).
    fn of_buyer(&self, n: usize) -> (Vec<usize>, usize) {
        let flights = self.flight_ids.len();
        if !self.trips {
            return (vec![n % flights], n % flights);
        }
        if n % TRIP_EVERY == TRIP_EVERY - 1 {
            let pairs = flights / 2;
            let trip = (n / TRIP_EVERY) % pairs;
            return (vec![trip, pairs + trip], flights + trip);
        }
        let single = (n - n / TRIP_EVERY) % flights;
        (vec![single], single)
    }
}

/// With trips, one buyer in this many books a return trip.
const TRIP_EVERY: usize = 10;

/// A buyer's final answer, when it came.
struct Decision {
    buyer: usize,
    at: Instant,
    answer: Final,
    /// Both taps got a booking, with different ids: one key, two bookings.
    two_bookings: bool,
    split: bool,
}

enum Final {
    Hold(String),
    SoldOut,
    Failed,
}

/// What one tap was told.
enum Tap {
    Booking(String),
    SoldOut,
    InProgress(Duration),
    Failed(String),
}

/// Runs a sale: as fast as `--sale-concurrency` buyers at a time go, or with buyers arriving at `pace` per
/// second (the open-loop sale, without watchers). With `trips`, every tenth buyer books a return trip.
pub async fn run(
    target: &Target,
    args: &Args,
    db: Option<&DatabaseConnection>,
    (pace, trips): (Option<f64>, bool),
) -> Result<(SaleReport, Option<WatchReport>), Error> {
    let tokens = target.tokens()?;
    let offer = Offer::new(target, args, trips).await?;
    let flight_ids = &offer.flight_ids;
    let seats_per_flight = args.rows as usize * SEATS_PER_ROW;
    let buyer_count = flight_ids.len() * seats_per_flight * args.buyers_per_seat;
    // Tokens are minted before the sale, so the clock measures the server, not the signing.
    let buyers: Arc<[Buyer]> = (0..buyer_count)
        .map(|buyer| {
            let (flights, request) = offer.of_buyer(buyer);
            Buyer { flights, request, bearer: tokens.customer(), key: target::new_key() }
        })
        .collect();
    let requests: Arc<[_]> = offer.requests.clone().into();
    let concurrency = match pace {
        None => args.sale_concurrency.max(1),
        Some(_) => args.max_in_flight.clamp(1, buyer_count.max(1)),
    };
    let connections = (2 * concurrency).div_ceil(STREAMS_PER_CONNECTION).max(args.connections * target.addrs.len());
    let channels = target::connect_spread(&target.addrs, connections).await?;
    let watchers = match pace.is_none() && !trips && args.watched_sale() == Some(crate::args::Scenario::FlashSale) {
        true => Some(Watchers::open(target, &tokens, flight_ids, args.watchers).await?),
        false => None,
    };
    let rss = target.pid.map(RssSampler::start);
    let meter = CpuMeter::start(&target.external_pids);

    let started = Instant::now();
    let recorder = Arc::new(Recorder::new(started));
    let progress = ProgressBar::new(buyer_count as u64);
    progress.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} buyers {elapsed}").expect("a valid template"),
    );
    progress.set_prefix(if trips { "flash-sale-trips" } else { "flash-sale" });
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (buyers, requests, recorder, next, progress) =
                (buyers.clone(), requests.clone(), recorder.clone(), next.clone(), progress.clone());
            // A buyer's two taps go to one instance (a client's connection is to one instance), on two
            // connections when there are more connections than instances; buyers take the instances in turn.
            let instances = target.addrs.len();
            let taps =
                (channels[worker % channels.len()].clone(), channels[(worker + instances) % channels.len()].clone());
            tokio::spawn(async move {
                let (mut decisions, mut sold_out_calls) = (Vec::new(), Vec::new());
                loop {
                    let buyer = next.fetch_add(1, Ordering::Relaxed);
                    let Some(who) = buyers.get(buyer) else { break };
                    let request = &requests[who.request];
                    let due = match pace {
                        Some(rate) => {
                            let due = started + Duration::from_secs_f64(buyer as f64 / rate);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    decisions.push(buy(buyer, who, request, due, &taps, &recorder, &mut sold_out_calls).await);
                    progress.inc(1);
                }
                (decisions, sold_out_calls)
            })
        })
        .collect();
    let (mut decisions, mut sold_out_calls) = (Vec::with_capacity(buyer_count), Vec::new());
    for worker in workers {
        let (worker_decisions, worker_sold_out) = worker.await.expect("a buyer does not panic");
        decisions.extend(worker_decisions);
        sold_out_calls.extend(worker_sold_out);
    }
    let spent = meter.stop();
    progress.finish_and_clear();
    let ended = decisions.iter().map(|d| d.at).max().unwrap_or(started);
    let peak_rss_mb = match rss {
        Some(rss) => rss.stop().await,
        None => None,
    };

    // Figures by phase.
    let last_hold = decisions.iter().filter(|d| matches!(d.answer, Final::Hold(_))).map(|d| d.at).max();
    let selling = last_hold.unwrap_or(ended) - started;
    let sold_out_phase = ended - last_hold.unwrap_or(ended);
    let mut flights: Vec<SaleFlight> =
        flight_ids.iter().map(|id| SaleFlight { id: id.clone(), ..Default::default() }).collect();
    let (mut holds, mut sold_out, mut failed, mut split_answers) = (0, 0, 0, 0);
    let mut violations = Vec::new();
    let (mut trip_holds, mut trips_refused) = (0, 0);
    for decision in &decisions {
        let bought = &buyers[decision.buyer].flights;
        let trip = bought.len() > 1;
        split_answers += u64::from(decision.split);
        if decision.two_bookings {
            violations.push(format!("buyer {} got two bookings for one key", decision.buyer));
        }
        for &flight in bought {
            let flight = &mut flights[flight];
            flight.buyers += 1;
            match &decision.answer {
                Final::Hold(id) if !flight.bookings.insert(id.clone()) => {
                    violations.push(format!("booking {id} was given to two buyers"));
                }
                // A trip refused was short on one of its flights, not necessarily this one.
                Final::SoldOut if !trip => flight.sold_out += 1,
                _ => {}
            }
        }
        match &decision.answer {
            Final::Hold(_) => {
                holds += 1;
                trip_holds += u64::from(trip);
            }
            Final::SoldOut => {
                sold_out += 1;
                trips_refused += u64::from(trip);
            }
            Final::Failed => failed += 1,
        }
    }
    let sold_out_after_last_hold = last_hold.map_or(0, |last| sold_out_calls.iter().filter(|&&at| at > last).count());
    if failed == 0 && !trips {
        // With every buyer answered, each flight must have sold exactly its seats (or all its buyers).
        for flight in &flights {
            let expected = flight.buyers.min(seats_per_flight as u64);
            if flight.bookings.len() as u64 != expected {
                violations.push(format!(
                    "flight {}: {} holds for {expected} seats wanted",
                    flight.id,
                    flight.bookings.len()
                ));
            }
        }
    }

    let (api, final_seats) = invariants::through_api(target, &flights, &mut violations).await?;
    let database = match db {
        Some(db) => invariants::in_database(db, &flights, &mut violations).await?,
        None => DatabaseChecks::skipped("no --database-url (the embedded server's SQLite file is not checked)"),
    };
    let watch = match watchers {
        Some(watchers) => {
            watchers.settle(&final_seats, SETTLE_TIMEOUT).await;
            Some(watchers.close(&final_seats, ended - started))
        }
        None => None,
    };
    let oversold = api.oversold.max(database.counts.as_ref().map_or(0, |counts| counts.oversold));
    let report = SaleReport {
        calls: recorder.summary(ended - started),
        flights: flight_ids.len(),
        seats: (flight_ids.len() * seats_per_flight) as u64,
        buyers: buyer_count as u64,
        concurrency,
        holds,
        sold_out,
        failed,
        holds_per_s: holds as f64 / selling.as_secs_f64().max(1e-9),
        sold_out_per_s: (sold_out_after_last_hold > 0 && !sold_out_phase.is_zero())
            .then(|| sold_out_after_last_hold as f64 / sold_out_phase.as_secs_f64()),
        decisions_per_s: decisions.len() as f64 / (ended - started).as_secs_f64().max(1e-9),
        selling_s: selling.as_secs_f64(),
        sold_out_s: sold_out_phase.as_secs_f64(),
        oversold,
        split_answers,
        server_cpu_us_per_decision: cpu::per(spent.server_us, decisions.len() as u64),
        postgres_cpu_us_per_hold: cpu::per(spent.postgres_us, holds),
        redis_cpu_us_per_hold: cpu::per(spent.redis_us, holds),
        peak_rss_mb,
        invariants: Invariants { api, database },
        trips: trips.then_some(TripFigures { held: trip_holds, refused: trips_refused }),
        violations,
        rate: pace,
        open_loop: None,
    };
    Ok((report, watch))
}

/// One buyer's double tap, due at `due` (the taps' latency runs from then), and retries while both taps
/// are told the other is in progress.
async fn buy(
    buyer: usize,
    who: &Buyer,
    request: &aerobook_proto::v1::CreateBookingRequest,
    due: Instant,
    (first, second): &(Channel, Channel),
    recorder: &Recorder,
    sold_out_calls: &mut Vec<Instant>,
) -> Decision {
    let tap = |channel: &Channel| {
        let mut client = BookingServiceClient::new(channel.clone());
        let request = target::keyed(request.clone(), &who.bearer, &who.key);
        async move {
            let sent = Instant::now();
            let result = client.create_booking(request).await;
            (sent, Instant::now(), result.map(|answer| answer.into_inner().id))
        }
    };
    let mut record = |(sent, answered, result): (Instant, Instant, Result<String, Status>)| {
        let tap = classify(result);
        let answer = match &tap {
            Tap::Booking(_) => Answer::Ok,
            Tap::SoldOut => {
                sold_out_calls.push(answered);
                Answer::Expected(SEATS_UNAVAILABLE.into())
            }
            Tap::InProgress(_) => Answer::Expected(IN_PROGRESS.into()),
            Tap::Failed(code) => Answer::Error(code.clone()),
        };
        recorder.record(answered, answered - sent, answer);
        (answered, tap)
    };
    let (a, b) = tokio::join!(tap(first), tap(second));
    let since_due = |(sent, answered, result): (Instant, Instant, _)| (due.min(sent), answered, result);
    let mut taps = vec![record(since_due(a)), record(since_due(b))];
    for _ in 0..MAX_RETRIES {
        let Some(delay) = taps
            .iter()
            .map(|(_, tap)| if let Tap::InProgress(delay) = tap { Some(*delay) } else { None })
            .collect::<Option<Vec<_>>>()
        else {
            break;
        };
        tokio::time::sleep(delay.into_iter().min().unwrap_or_default()).await;
        taps.push(record(tap(first).await));
    }
    decide(buyer, &taps)
}

/// The buyer's final answer: a booking if any tap got one, else sold out, else the failure; the last tap
/// to answer decides when.
fn decide(buyer: usize, taps: &[(Instant, Tap)]) -> Decision {
    let at = taps.iter().map(|(at, _)| *at).max().expect("a buyer taps at least once");
    let bookings: Vec<&String> =
        taps.iter().filter_map(|(_, tap)| if let Tap::Booking(id) = tap { Some(id) } else { None }).collect();
    let told_sold_out = taps.iter().any(|(_, tap)| matches!(tap, Tap::SoldOut));
    // A buyer with neither a booking nor a refusal failed: by an error its taps recorded, or by being told
    // "in progress" on every one of its retries.
    let answer = match bookings.first() {
        Some(id) => Final::Hold((*id).clone()),
        None if told_sold_out => Final::SoldOut,
        None => Final::Failed,
    };
    Decision {
        buyer,
        at,
        two_bookings: bookings.windows(2).any(|pair| pair[0] != pair[1]),
        split: !bookings.is_empty() && told_sold_out,
        answer,
    }
}

fn classify(result: Result<String, Status>) -> Tap {
    match result {
        Ok(id) => Tap::Booking(id),
        Err(status) => match target::error_code(&status).as_str() {
            SEATS_UNAVAILABLE => Tap::SoldOut,
            IN_PROGRESS => Tap::InProgress(
                status
                    .get_details_retry_info()
                    .and_then(|info| info.retry_delay)
                    .unwrap_or(Duration::from_millis(10))
                    .clamp(Duration::from_millis(1), Duration::from_millis(200)),
            ),
            code => Tap::Failed(code.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(taps: Vec<Tap>) -> Decision {
        let now = Instant::now();
        decide(7, &taps.into_iter().map(|tap| (now, tap)).collect::<Vec<_>>())
    }

    /// With trips, one buyer in ten books outbound `i` with return `i`, and the others spread evenly over
    /// every flight, so each flight has as many single buyers as the others.
    #[test]
    fn trip_buyers_pair_flights_and_single_buyers_cover_every_flight() {
        let offer = Offer { flight_ids: (0..4).map(|i| i.to_string()).collect(), requests: Vec::new(), trips: true };
        let mut singles = [0; 4];
        for n in 0..400 {
            match offer.of_buyer(n) {
                (flights, request) if flights.len() == 2 => {
                    assert_eq!(n % TRIP_EVERY, TRIP_EVERY - 1);
                    assert_eq!((flights[1] - flights[0], request), (2, 4 + flights[0]));
                }
                (flights, request) => {
                    assert_eq!(flights, [request]);
                    singles[request] += 1;
                }
            }
        }
        assert_eq!(singles, [90; 4]);
    }

    #[test]
    fn a_booking_on_either_tap_is_the_buyer_s_answer() {
        let both = decided(vec![Tap::Booking("b1".into()), Tap::Booking("b1".into())]);
        assert!(matches!(&both.answer, Final::Hold(id) if id == "b1") && !both.two_bookings && !both.split);
        let one = decided(vec![Tap::InProgress(Duration::ZERO), Tap::Booking("b1".into())]);
        assert!(matches!(one.answer, Final::Hold(_)) && !one.split);
    }

    #[test]
    fn two_bookings_for_one_key_and_split_answers_are_told_apart() {
        assert!(decided(vec![Tap::Booking("b1".into()), Tap::Booking("b2".into())]).two_bookings);
        let split = decided(vec![Tap::Booking("b1".into()), Tap::SoldOut]);
        assert!(split.split && matches!(split.answer, Final::Hold(_)));
    }

    #[test]
    fn without_a_booking_sold_out_wins_over_a_failure() {
        assert!(matches!(decided(vec![Tap::InProgress(Duration::ZERO), Tap::SoldOut]).answer, Final::SoldOut));
        assert!(matches!(decided(vec![Tap::Failed("INTERNAL_ERROR".into()), Tap::SoldOut]).answer, Final::SoldOut));
        assert!(matches!(
            decided(vec![Tap::InProgress(Duration::ZERO), Tap::Failed("X".into())]).answer,
            Final::Failed
        ));
        assert!(matches!(decided((0..3).map(|_| Tap::InProgress(Duration::ZERO)).collect()).answer, Final::Failed));
    }
}
