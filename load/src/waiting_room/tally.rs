//! The accounting of the waiters' outcomes: totals and by flight, admissions per second against the rooms'
//! pace, passes by issue second, the sold-out notice, and what two instances disagreed on.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use super::{
    journey::{Booked, Outcome, Told, Waiter},
    report::AdmittedPerSecond,
};
use crate::invariants::SaleFlight;

/// How far from the rooms' pace a second of admissions may be and still count as steady.
const STEADY_TOLERANCE: f64 = 0.1;

/// A flight's receipts, for the sell-out and the span of full-pace admission.
#[derive(Default)]
pub(super) struct FlightTimes {
    pub(super) passes: Vec<Instant>,
    holds: Vec<Instant>,
    last_told_sold_out: Option<Instant>,
}

impl FlightTimes {
    /// When every seat was held: the receipt of the last of them.
    fn sold_out_at(&self, seats: usize) -> Option<Instant> {
        if self.holds.len() >= seats { self.holds.iter().max().copied() } else { None }
    }
}

/// The waiters' outcomes, summed up and by flight.
pub(super) struct Tally {
    pub(super) sale: Vec<SaleFlight>,
    pub(super) times: Vec<FlightTimes>,
    /// By flight: the customers given a pass.
    pub(super) passholders: Vec<HashSet<uuid::Uuid>>,
    /// The passes' expiries, whole seconds since the epoch.
    pub(super) expiries: Vec<i64>,
    pub(super) admitted: u64,
    pub(super) told_sold_out: u64,
    pub(super) holds: u64,
    pub(super) refused_with_pass: u64,
    /// Waiters without an answer or a hold: their errors are counted by code.
    pub(super) failed: u64,
    pub(super) position_updates: u64,
    pub(super) went_on: u64,
    pub(super) double_admissions: u64,
    pub(super) split_at_sell_out: u64,
    pub(super) violations: Vec<String>,
}

impl Tally {
    pub(super) fn of(waiters: &[Waiter], outcomes: &[Outcome], flight_ids: &[String]) -> Self {
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

/// Where every room stopped admitting at its full pace: the first flight to sell out, or to run out of
/// waiters (its last pass); `None` before any pass.
pub(super) fn admission_end(flights: &[FlightTimes], seats: usize) -> Option<Instant> {
    flights.iter().filter_map(|flight| flight.sold_out_at(seats).or_else(|| flight.passes.iter().max().copied())).min()
}

/// Passes per whole second from the first pass on, leaving out the first second (it starts at an arbitrary
/// point of the rooms' pace) and any second not over by `end`.
pub(super) fn admission_rate(passes: &[Instant], end: Option<Instant>, target: f64) -> AdmittedPerSecond {
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
pub(super) fn per_expiry_second(expiries: &[i64]) -> Vec<u64> {
    let (Some(first), Some(last)) = (expiries.iter().min(), expiries.iter().max()) else { return Vec::new() };
    let mut per_second = vec![0; usize::try_from(last - first).unwrap_or(0) + 1];
    for expiry in expiries {
        per_second[usize::try_from(expiry - first).unwrap_or(0)] += 1;
    }
    per_second
}

/// The longest wait, over the flights that sold out with waiters left, from the sell-out to the last of
/// them told so. A notice may overtake the answer to the last hold: that counts as no wait.
pub(super) fn sold_out_notice(flights: &[FlightTimes], seats: usize) -> Option<Duration> {
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
