//! The call-per-call scenarios: what one call of each is, and what has to exist before the first one.
//!
//! Preparation runs again before every run of a scenario (closed loop, open loop), so that each run starts
//! from the same state: fresh flights for holds (a run never fills them), fresh completed calls to replay.

use std::{future::Future, sync::Arc};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
};
use futures::{StreamExt, TryStreamExt, stream};
use tonic::{Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    Error,
    args::{Args, Scenario},
    runner::CallFn,
    stats::Answer,
    target::{self, SEATS_PER_ROW, Target},
};

/// Largest cabin the tool creates: 99 rows of 10.
const MAX_ROWS: i32 = 99;

/// What the read scenarios read: a route and date of the demo schedule, and one of its flights.
#[derive(Clone)]
pub struct Fixtures {
    search: pb::SearchFlightsRequest,
    flight_id: String,
}

impl Fixtures {
    /// Finds a demo flight tomorrow on RUH-JED; the target needs the demo schedule.
    pub async fn find(target: &Target) -> Result<Self, Error> {
        let date = (chrono::Utc::now() + chrono::Duration::hours(3) + chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string();
        let search = pb::SearchFlightsRequest {
            origin: "RUH".into(),
            destination: "JED".into(),
            departure_date: date,
            passengers: 2,
            cabin: pb::CabinClass::Economy.into(),
            ..Default::default()
        };
        let flights = FlightServiceClient::new(target.channels[0].clone())
            .search_flights(search.clone())
            .await?
            .into_inner()
            .flights;
        let flight = flights.first().ok_or("no demo flight found: the target needs the demo schedule")?;
        Ok(Self { flight_id: flight.id.clone(), search })
    }
}

/// One call of `scenario`, after whatever it needs exists.
pub async fn prepare(
    scenario: Scenario,
    target: &Target,
    fixtures: Option<&Fixtures>,
    args: &Args,
) -> Result<CallFn, Error> {
    let fixtures = || fixtures.cloned().ok_or("the read scenarios need the demo schedule");
    Ok(match scenario {
        Scenario::Ping => call_fn(|channel, _| async move {
            answer(HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await)
        }),
        Scenario::Search => search(fixtures()?),
        Scenario::GetFlight => get_flight(fixtures()?),
        Scenario::SeatMap => seat_map(fixtures()?),
        Scenario::Replay => replay(target, args.concurrency).await?,
        Scenario::HoldSpread => hold_spread(target, args.spread_flights).await?,
        Scenario::Mixed => {
            let fixtures = fixtures()?;
            // Out of every 10 calls: 6 searches, 2 flights, 1 seat map, 1 hold.
            let mix: [CallFn; 10] = {
                let (s, f, m, h) = (
                    search(fixtures.clone()),
                    get_flight(fixtures.clone()),
                    seat_map(fixtures),
                    hold_spread(target, args.spread_flights).await?,
                );
                [s.clone(), s.clone(), s.clone(), s.clone(), s.clone(), s, f.clone(), f, m, h]
            };
            Arc::new(move |channel, index| mix[(spread(index) % 10) as usize](channel, index))
        }
        Scenario::HoldSpreadFilling
        | Scenario::FlashSale
        | Scenario::FlashSaleTrips
        | Scenario::Watch
        | Scenario::FlashSaleWaitingRoom => {
            return Err(format!("{scenario} is not a call-per-call scenario").into());
        }
    })
}

fn search(fixtures: Fixtures) -> CallFn {
    call_fn(move |channel, _| {
        let request = fixtures.search.clone();
        async move { answer(FlightServiceClient::new(channel).search_flights(request).await) }
    })
}

fn get_flight(fixtures: Fixtures) -> CallFn {
    call_fn(move |channel, _| {
        let request = pb::GetFlightRequest { flight_id: fixtures.flight_id.clone() };
        async move { answer(FlightServiceClient::new(channel).get_flight(request).await) }
    })
}

fn seat_map(fixtures: Fixtures) -> CallFn {
    call_fn(move |channel, _| {
        let request =
            pb::GetSeatMapRequest { flight_id: fixtures.flight_id.clone(), cabin: pb::CabinClass::Economy.into() };
        async move { answer(FlightServiceClient::new(channel).get_seat_map(request).await) }
    })
}

/// Holds of one seat, each by a new customer (a customer may hold only a few seats per flight) with a new
/// key, on a flight picked at random from `flights` created for the run.
async fn hold_spread(target: &Target, flights: usize) -> Result<CallFn, Error> {
    let tokens = target.tokens()?;
    let flights: Arc<[String]> = target.create_flights(flights.max(1), MAX_ROWS).await?.into();
    Ok(call_fn(move |channel, index| {
        let flight = &flights[(spread(index) % flights.len() as u64) as usize];
        let request = target::keyed(target::hold_request(flight), &tokens.customer(), &target::new_key());
        async move { answer(BookingServiceClient::new(channel).create_booking(request).await) }
    }))
}

/// A completed hold re-sent with its key: the server answers from the completed-call memory. One hold per
/// caller (at most one cabin's worth) is placed first; call `i` re-sends hold `i % holds`.
async fn replay(target: &Target, callers: usize) -> Result<CallFn, Error> {
    let tokens = target.tokens()?;
    let holds = callers.clamp(1, MAX_ROWS as usize * SEATS_PER_ROW);
    let rows = i32::try_from(holds.div_ceil(SEATS_PER_ROW)).expect("at most 99 rows");
    let flight = target.create_flights(1, rows).await?.remove(0);
    let channel = target.channels[0].clone();
    let placed: Vec<Placed> = stream::iter(0..holds)
        .map(|_| {
            let placed = Placed {
                bearer: tokens.customer(),
                key: target::new_key(),
                flight: flight.clone(),
                booking_id: String::new(),
            };
            let mut client = BookingServiceClient::new(channel.clone());
            async move {
                let request = target::keyed(target::hold_request(&placed.flight), &placed.bearer, &placed.key);
                let booking_id = client.create_booking(request).await?.into_inner().id;
                Ok::<_, Error>(Placed { booking_id, ..placed })
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    let placed: Arc<[Placed]> = placed.into();
    Ok(call_fn(move |channel, index| {
        let hold = placed[(index % placed.len() as u64) as usize].clone();
        async move {
            let request = target::keyed(target::hold_request(&hold.flight), &hold.bearer, &hold.key);
            match BookingServiceClient::new(channel).create_booking(request).await {
                Ok(answer) if answer.get_ref().id != hold.booking_id => Answer::Error("REPLAY_OTHER_BOOKING".into()),
                Ok(answer) if answer.metadata().get("idempotent-replayed").is_none_or(|v| v != "true") => {
                    Answer::Error("REPLAY_NOT_MARKED".into())
                }
                Ok(_) => Answer::Ok,
                Err(status) => Answer::Error(target::error_code(&status)),
            }
        }
    }))
}

/// A hold placed before a replay run, and what re-sending it must answer.
#[derive(Clone)]
struct Placed {
    bearer: String,
    key: String,
    flight: String,
    booking_id: String,
}

fn call_fn<F, Fut>(call: F) -> CallFn
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    Arc::new(move |channel, index| Box::pin(call(channel, index)))
}

fn answer<T>(result: Result<T, Status>) -> Answer {
    match result {
        Ok(_) => Answer::Ok,
        Err(status) => Answer::Error(target::error_code(&status)),
    }
}

/// Scatters call indexes (splitmix64), so consecutive calls pick unrelated flights and mixes interleave.
fn spread(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tokens for scenarios that need them, checked before anything runs.
pub fn needs_tokens(scenario: Scenario) -> bool {
    matches!(
        scenario,
        Scenario::Replay
            | Scenario::HoldSpread
            | Scenario::HoldSpreadFilling
            | Scenario::Mixed
            | Scenario::FlashSale
            | Scenario::FlashSaleTrips
            | Scenario::Watch
            | Scenario::FlashSaleWaitingRoom
    )
}

/// Whether `scenario` reads the demo schedule.
pub fn needs_fixtures(scenario: Scenario) -> bool {
    matches!(scenario, Scenario::Search | Scenario::GetFlight | Scenario::SeatMap | Scenario::Mixed)
}
