//! Property tests of the pure rules: whatever the inputs, the promises hold (`proptest`; each property
//! runs 256 cases by default, `PROPTEST_CASES=100000 cargo test -p aerobook-server properties` runs more).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{
    booking::{BookingAction, BookingStatus, choose_seats},
    flight::{CabinLayout, SeatNumber},
    money::{CurrencyCode, MAX_SEAT_PRICE_MINOR, Money},
    payment::{Payment, PaymentStatus, RefundProgress},
    waiting_room::Admission,
};

const ACTIONS: [BookingAction; 8] = [
    BookingAction::Confirm,
    BookingAction::Cancel,
    BookingAction::Expire,
    BookingAction::ChangeSeats,
    BookingAction::RequestRefund,
    BookingAction::CompleteRefund,
    BookingAction::PaymentSucceeded,
    BookingAction::RefundFailed,
];

/// The life cycle as the contract documents it, written out edge by edge.
const EDGES: [(BookingStatus, BookingAction, BookingStatus); 10] = {
    use BookingAction as A;
    use BookingStatus as S;
    [
        (S::Held, A::Confirm, S::Confirmed),
        (S::Held, A::PaymentSucceeded, S::Confirmed),
        (S::Expired, A::PaymentSucceeded, S::Confirmed),
        (S::Held, A::Cancel, S::Cancelled),
        (S::Held, A::Expire, S::Expired),
        (S::Held, A::ChangeSeats, S::Held),
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
        match choose_seats(&layout, &taken, count) {
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
    }
}
