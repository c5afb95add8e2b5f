//! Property tests of the pure rules: whatever the inputs, the promises hold (`proptest`; each property
//! runs 256 cases by default, `PROPTEST_CASES=100000 cargo test -p aerobook-server properties` runs more).

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::{
    booking::{BookingAction, BookingStatus},
    flight::{CabinLayout, SeatNumber},
    hold::LockedCabin,
    money::{CurrencyCode, MAX_SEAT_PRICE_MINOR, Money},
    payment::{Payment, PaymentStatus, RefundProgress},
    taken_seats::{TakenSeats, choose_seats},
    waiting_room::Admission,
};

const ACTIONS: [BookingAction; 9] = [
    BookingAction::Confirm,
    BookingAction::Cancel,
    BookingAction::Expire,
    BookingAction::ChangeSeats,
    BookingAction::ChangeFlight,
    BookingAction::RequestRefund,
    BookingAction::CompleteRefund,
    BookingAction::PaymentSucceeded,
    BookingAction::RefundFailed,
];

/// The life cycle as the contract documents it, written out edge by edge.
const EDGES: [(BookingStatus, BookingAction, BookingStatus); 12] = {
    use BookingAction as A;
    use BookingStatus as S;
    [
        (S::Held, A::Confirm, S::Confirmed),
        (S::Held, A::PaymentSucceeded, S::Confirmed),
        (S::Expired, A::PaymentSucceeded, S::Confirmed),
        (S::Held, A::Cancel, S::Cancelled),
        (S::Held, A::Expire, S::Expired),
        (S::Held, A::ChangeSeats, S::Held),
        (S::Held, A::ChangeFlight, S::Held),
        (S::Confirmed, A::ChangeFlight, S::Confirmed),
        (S::Confirmed, A::RequestRefund, S::RefundPending),
        (S::RefundPending, A::CompleteRefund, S::Refunded),
        (S::Confirmed, A::CompleteRefund, S::Refunded),
        (S::RefundPending, A::RefundFailed, S::Confirmed),
    ]
};

proptest! {
    /// From a new hold, any sequence of actions: every change is an edge of the documented life cycle, a
    /// refused action changes nothing, and seats are given back only while the booking has them (once per
    /// taking: a late payment takes them again before it confirms an expired hold).
    #[test]
    fn any_sequence_of_actions_keeps_the_life_cycle(actions in prop::collection::vec(prop::sample::select(&ACTIONS[..]), 0..40)) {
        let mut status = BookingStatus::Held;
        let mut has_seats = true;
        for action in actions {
            match status.apply(action) {
                Ok(next) => {
                    prop_assert!(EDGES.contains(&(status, action, next)), "{status:?} --{action:?}--> {next:?}");
                    if next.releases_seats() {
                        prop_assert!(has_seats, "{status:?} --{action:?}--> {next:?} released seats it no longer had");
                        has_seats = false;
                    } else if !has_seats {
                        prop_assert_eq!((status, action), (BookingStatus::Expired, BookingAction::PaymentSucceeded));
                        has_seats = true;
                    }
                    status = next;
                }
                Err(_) => prop_assert!(!EDGES.iter().any(|(from, by, _)| *from == status && *by == action)),
            }
        }
    }

    /// The server's seat choice: never a taken seat, never one seat twice, always in the cabin; side by
    /// side in one row whenever some row has that many free seats in a row; none only when too few are free.
    #[test]
    fn seat_choice_never_takes_a_taken_seat_and_keeps_parties_together(
        rows in 1..8_i32,
        letters in prop::sample::subsequence(vec!['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K'], 1..=10),
        taken_bits in prop::collection::vec(any::<bool>(), 80),
        count in 1..=9_usize,
    ) {
        let letters: String = letters.into_iter().collect();
        let layout = CabinLayout::new(10, rows, &letters).expect("a valid layout");
        let seats: Vec<SeatNumber> = layout.seats().collect();
        let taken: BTreeSet<SeatNumber> = seats.iter().zip(&taken_bits).filter(|(_, t)| **t).map(|(s, _)| *s).collect();
        let free = seats.len() - taken.len();
        let stored = TakenSeats::from_seats(layout.clone(), taken.iter().copied()).expect("seats of the cabin");
        match choose_seats(&stored, count) {
            None => prop_assert!(free < count, "{free} free seats, none chosen for {count}"),
            Some(chosen) => {
                prop_assert_eq!(chosen.len(), count);
                let distinct: BTreeSet<SeatNumber> = chosen.iter().copied().collect();
                prop_assert_eq!(distinct.len(), count, "a seat chosen twice");
                prop_assert!(chosen.iter().all(|seat| layout.contains(*seat) && !taken.contains(seat)));
                let letter_order: Vec<char> = letters.chars().collect();
                let side_by_side_exists = (layout.first_row..=layout.last_row()).any(|row| {
                    letter_order.windows(count).any(|run| run.iter().all(|&letter| !taken.contains(&SeatNumber { row, letter })))
                });
                if side_by_side_exists {
                    let row = chosen[0].row;
                    let first = letter_order.iter().position(|&l| l == chosen[0].letter).unwrap();
                    let expected: Vec<char> = letter_order[first..first + count].to_vec();
                    let got: Vec<char> = chosen.iter().map(|seat| seat.letter).collect();
                    prop_assert!(chosen.iter().all(|seat| seat.row == row) && got == expected, "{chosen:?} not side by side");
                }
            }
        }
    }

    /// A batch of holds decided against one locked cabin gets, hold for hold, the answers the same holds
    /// get one by one in arrival order, each in a transaction of its own that reads what the ones before
    /// committed; and the batch never places a seat twice, nor one taken before it, nor more than were free.
    #[test]
    fn a_batch_decides_each_hold_as_it_would_be_decided_alone(
        rows in 1..6_i32,
        letters in prop::sample::subsequence(vec!['A', 'B', 'C', 'D', 'E', 'F'], 1..=6),
        taken_bits in prop::collection::vec(any::<bool>(), 36),
        earlier_holds in prop::collection::vec(0..4_u64, 4),
        limit in 1..4_u32,
        holds in prop::collection::vec((0..4_usize, 1..=9_usize, any::<bool>(), any::<prop::sample::Index>()), 1..=64),
    ) {
        let letters: String = letters.into_iter().collect();
        let layout = CabinLayout::new(1, rows, &letters).expect("a valid layout");
        let all_seats: Vec<SeatNumber> = layout.seats().collect();
        let taken: BTreeSet<SeatNumber> = all_seats.iter().zip(&taken_bits).filter(|(_, t)| **t).map(|(s, _)| *s).collect();
        let free = (all_seats.len() - taken.len()) as i32;
        let users: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
        let live_holds: HashMap<uuid::Uuid, u64> = users.iter().copied().zip(earlier_holds).collect();
        // A listed hold names `party` consecutive seats of the cabin, from anywhere in it (taken or not).
        let requests: Vec<(uuid::Uuid, usize, Vec<SeatNumber>)> = holds
            .into_iter()
            .map(|(user, party, listed, start)| {
                let party = party.min(all_seats.len());
                let seats = if listed {
                    let first = start.index(all_seats.len() - party + 1);
                    all_seats[first..first + party].to_vec()
                } else {
                    Vec::new()
                };
                (users[user], party, seats)
            })
            .collect();

        let stored = |seats: &BTreeSet<SeatNumber>| TakenSeats::from_seats(layout.clone(), seats.iter().copied()).expect("seats of the cabin");
        let mut batch = LockedCabin::new(free, stored(&taken), live_holds.clone(), limit);
        let batched: Vec<_> = requests.iter().map(|(user, party, seats)| batch.decide(*user, *party, seats)).collect();

        // One by one: each hold locks the cabin as the holds committed before it left it.
        let (mut committed_taken, mut committed_free, mut committed_holds) = (taken.clone(), free, live_holds);
        let mut alone = Vec::new();
        for (user, party, seats) in &requests {
            let mut cabin = LockedCabin::new(committed_free, stored(&committed_taken), committed_holds.clone(), limit);
            let decided = cabin.decide(*user, *party, seats);
            if let Ok(Ok(placed)) = &decided {
                committed_taken.extend(placed.iter().copied());
                committed_free -= placed.len() as i32;
                *committed_holds.entry(*user).or_default() += 1;
            }
            alone.push(decided);
        }
        prop_assert_eq!(&batched, &alone);
        prop_assert!(batched.iter().all(Result::is_ok), "a consistent cabin's count disagreed with its seats");

        let placed: Vec<SeatNumber> = batched.iter().filter_map(|d| d.as_ref().ok()?.as_ref().ok()).flatten().copied().collect();
        let distinct: BTreeSet<SeatNumber> = placed.iter().copied().collect();
        prop_assert_eq!(distinct.len(), placed.len(), "a seat placed twice");
        prop_assert!(distinct.is_disjoint(&taken), "a seat placed that was taken before the batch");
        prop_assert!(placed.len() as i32 <= free);
        prop_assert_eq!(batch.seats_placed(), placed.len() as i32);
        prop_assert_eq!(batch.taken(), &stored(&taken.union(&distinct).copied().collect()), "the seats to store");
    }

    /// Admission: never more passes than the rate allows for the time that passed (plus the credit carried
    /// from before), never past the queue's end, and never backwards: no queue number skipped or repeated.
    #[test]
    fn admission_never_outpaces_its_rate_nor_skips_a_ticket(
        issued in 0..10_000_u64,
        steps in prop::collection::vec((0..120_000_i64, 1..=100_000_u32), 1..30),
    ) {
        let mut admission = Admission { issued, serving: 0, carry: 0 };
        let mut credited_ms_times_rate: i128 = 0;
        for (elapsed_ms, rate) in steps {
            let next = admission.advance(elapsed_ms, rate);
            prop_assert!(next.serving >= admission.serving, "admission went backwards");
            prop_assert!(next.serving <= next.issued, "admitted past the queue's end");
            prop_assert!(next.carry >= 0);
            credited_ms_times_rate += i128::from(elapsed_ms) * i128::from(rate);
            let allowed = credited_ms_times_rate / 60_000;
            prop_assert!(i128::from(next.serving) <= allowed, "{} admitted, {allowed} allowed", next.serving);
            admission = next;
        }
    }

    /// Refunds as the provider reports them, in any order and repeated: the refunded total never goes
    /// down, never exceeds what was received, and the payment is refunded in full exactly once.
    #[test]
    fn refunds_never_exceed_what_was_charged(
        received in 1..=MAX_SEAT_PRICE_MINOR * 9,
        reports in prop::collection::vec(-1_000_i64..=i64::MAX / 2, 0..20),
    ) {
        let mut payment = received_payment(received);
        let mut full = 0;
        let mut refunded = 0;
        for total in reports {
            let progress = payment.record_refunded(total);
            prop_assert!(payment.amount_refunded_minor >= refunded, "the refunded total went down");
            prop_assert!(payment.amount_refunded_minor <= received);
            prop_assert!(payment.refundable_minor() >= 0);
            refunded = payment.amount_refunded_minor;
            if progress == RefundProgress::Full {
                full += 1;
            }
        }
        prop_assert!(full <= 1, "refunded in full {full} times");
        prop_assert_eq!(full == 1, payment.status == PaymentStatus::Refunded && refunded == received);
    }
}

/// A payment that received `amount_minor`, nothing refunded yet.
fn received_payment(amount_minor: i64) -> Payment {
    Payment {
        id: uuid::Uuid::now_v7(),
        booking_id: uuid::Uuid::now_v7(),
        user_id: uuid::Uuid::now_v7(),
        amount: Money { currency: CurrencyCode::parse("SAR").expect("a currency"), amount_minor },
        status: PaymentStatus::Succeeded,
        provider_reference: Some("pi_1".into()),
        client_secret: None,
        correlation_id: String::new(),
        attempt: 0,
        amount_received_minor: amount_minor,
        amount_refunded_minor: 0,
        decline_code: None,
        failure_message: None,
        refund_reference: None,
        refund_attempt: 1,
        change_id: None,
    }
}
