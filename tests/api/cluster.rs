//! The concurrency scenarios through a cluster: three instances on one database (and Redis), and Rust SDK
//! clients that balance every call, and every repeat, across them as a load balancer would. Each scenario
//! ends with the invariant check.

use std::collections::{BTreeMap, BTreeSet};

use aerobook_sdk::{ApiError, ErrorCode, proto as pb};
use aerobook_tests::{
    Backend, Role,
    cluster::{Cluster, INSTANCES},
};
use futures::future::join_all;

use crate::bookings::{adult, economy_available, flight_with_economy, hold};

/// Runs each scenario on a cluster on the embedded backend (one SQLite file) and, when configured, on
/// PostgreSQL + Redis.
macro_rules! cluster_tests {
    ($(async fn $name:ident($cluster:ident: Cluster) $body:block)*) => {$(
        mod $name {
            use super::*;

            async fn run($cluster: Cluster) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                run(Cluster::start(Backend::Embedded, INSTANCES).await.expect("the embedded backend")).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some(cluster) = Cluster::start(Backend::External, INSTANCES).await {
                    run(cluster).await
                }
            }
        }
    )*};
}

fn key(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4())
}

/// Both answers to one key must be the same answer.
fn one_answer<T: PartialEq + std::fmt::Debug>(a: &Result<T, ApiError>, b: &Result<T, ApiError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "one key, one answer"),
        (Err(a), Err(b)) => assert_eq!(a.code, b.code, "one key, one refusal: {a:?} / {b:?}"),
        other => panic!("one key, two answers: {other:?}"),
    }
}

cluster_tests! {
    async fn a_crowd_tapping_twice_through_any_instance_gets_one_answer_per_key(cluster: Cluster) {
        let app = cluster.first();
        let flight = flight_with_economy(app, 10, "AB").await;
        let buyers = (0..40).map(|i| {
            let (client, flight) = (cluster.signed_in(Role::Customer), &flight);
            async move {
                let key = key(&format!("double-tap-{i}"));
                let request = hold(flight, vec![adult("Sara")], &[]);
                let tap = || client.booking().create_booking(request.clone()).idempotency_key(key.clone());
                let (a, b) = tokio::join!(tap(), tap());
                (a.map(|r| r.into_inner()), b.map(|r| r.into_inner()))
            }
        });
        let answers = join_all(buyers).await;
        let mut booked = BTreeSet::new();
        for (a, b) in &answers {
            one_answer(a, b);
            match a {
                Ok(booking) => assert!(booked.insert(booking.id.clone())),
                Err(refused) => assert_eq!(refused.code, ErrorCode::SeatsUnavailable, "{refused:?}"),
            }
        }
        assert_eq!(booked.len(), 20, "every seat sold once, to one key each");
        assert_eq!(economy_available(app, &flight).await, 0);
        app.scenario_done("double taps in a crowd, through 3 instances", 2 * answers.len(), 0).await;
    }

    async fn seat_changes_crossing_each_other_never_share_a_seat(cluster: Cluster) {
        let app = cluster.first();
        let flight = flight_with_economy(app, 5, "AB").await;
        let seats: Vec<String> = (10..15).flat_map(|row| ["A", "B"].map(|letter| format!("{row}{letter}"))).collect();
        // Eight holds on the first eight seats; two seats stay free.
        let mut holders = Vec::new();
        for seat in &seats[..8] {
            let client = cluster.signed_in(Role::Customer);
            let booking = client.booking().create_booking(hold(&flight, vec![adult("Sara")], &[seat.as_str()])).await;
            holders.push((client, booking.expect("held").into_inner()));
        }
        // Each moves, at once and through any instance, into the next one's seat or a free one.
        let moves = holders.iter().enumerate().map(|(i, (client, booking))| {
            let wanted = seats[(i + 1) % seats.len()].clone();
            let request = pb::ChangeSeatsRequest { booking_id: booking.id.clone(), seat_numbers: vec![wanted], ..Default::default() };
            async move { client.booking().change_seats(request).await.map(|r| r.into_inner()) }
        });
        let results = join_all(moves).await;
        for result in &results {
            if let Err(refused) = result {
                assert_eq!(refused.code, ErrorCode::SeatsUnavailable, "{refused:?}");
            }
        }
        assert!(results.iter().any(Result::is_ok), "the move into the free seat succeeds");
        app.scenario_done("seat changes crossing each other, through 3 instances", 8 + results.len(), 0).await;
    }

    async fn payments_and_refunds_sent_twice_through_any_instance_charge_and_refund_once(cluster: Cluster) {
        let app = cluster.first();
        let flight = flight_with_economy(app, 3, "AB").await;
        let mut customers = Vec::new();
        for _ in 0..6 {
            let client = cluster.signed_in(Role::Customer);
            let booking = client.booking().create_booking(hold(&flight, vec![adult("Sara")], &[])).await;
            customers.push((client, booking.expect("held").into_inner()));
        }
        let intents = customers.iter().map(|(client, booking)| async move {
            let key = key("pay");
            let request = pb::CreatePaymentIntentRequest { booking_id: booking.id.clone() };
            let pay = || client.payment().create_payment_intent(request.clone()).idempotency_key(key.clone());
            let (a, b) = tokio::join!(pay(), pay());
            (a.map(|r| r.into_inner()), b.map(|r| r.into_inner()))
        });
        for (a, b) in join_all(intents).await {
            one_answer(&a, &b);
            a.expect("a payment intent");
        }
        for instance in &cluster.instances {
            instance.settle_payments().await;
        }
        let refunds = customers.iter().map(|(client, booking)| async move {
            let key = key("refund");
            let request = pb::RefundBookingRequest { booking_id: booking.id.clone(), reason: "plans changed".into() };
            let refund = || client.payment().refund_booking(request.clone()).idempotency_key(key.clone());
            let (a, b) = tokio::join!(refund(), refund());
            (a.map(|r| r.into_inner()), b.map(|r| r.into_inner()))
        });
        for (a, b) in join_all(refunds).await {
            one_answer(&a, &b);
            a.expect("refund accepted");
        }
        // A refund job may run on any instance, whose provider then reports to that instance.
        for _ in 0..2 {
            for instance in &cluster.instances {
                instance.settle_payments().await;
            }
        }
        let mut statuses = BTreeMap::new();
        for (client, booking) in &customers {
            let read = client.booking().get_booking(pb::GetBookingRequest { booking_id: booking.id.clone() }).await;
            *statuses.entry(read.expect("read").into_inner().status().as_str_name()).or_insert(0) += 1;
        }
        assert_eq!(statuses, BTreeMap::from([("BOOKING_STATUS_REFUNDED", 6)]));
        app.scenario_done("payments and refunds sent twice, through 3 instances", 6 * 6, 0).await;
    }

    async fn waiting_room_joins_through_any_instance_take_one_place_each(cluster: Cluster) {
        let app = cluster.first();
        if app.redis_prefix.is_none() {
            return; // Without Redis each instance keeps a queue of its own, as documented.
        }
        let flight = flight_with_economy(app, 2, "AB").await;
        let operator = cluster.signed_in(Role::Operator);
        let room = pb::ConfigureWaitingRoomRequest {
            flight_id: flight.id.clone(),
            enabled: true,
            admit_per_minute: 1,
            pass_ttl_seconds: 60,
            opens_at: None,
        };
        operator.waiting_room().configure_waiting_room(room).await.expect("room configured");
        let joins = (0..20).map(|_| {
            let (client, flight) = (cluster.signed_in(Role::Customer), &flight);
            async move {
                let join = || client.waiting_room().join_waiting_room(pb::JoinWaitingRoomRequest { flight_id: flight.id.clone() });
                let (a, b) = tokio::join!(join(), join());
                (a.map(|r| r.into_inner()), b.map(|r| r.into_inner()))
            }
        });
        let mut positions = Vec::new();
        for (a, b) in join_all(joins).await {
            one_answer(&a, &b);
            positions.push(a.expect("joined").position);
        }
        positions.sort_unstable();
        assert_eq!(positions, (1..=20).collect::<Vec<_>>(), "one place each, in one queue");
        app.scenario_done("waiting-room joins sent twice, through 3 instances", 2 * 20 + 1, 0).await;
    }

    async fn confirmations_racing_through_two_instances_ticket_each_booking_once(cluster: Cluster) {
        let app = cluster.first();
        let flight = flight_with_economy(app, 5, "AB").await;
        let mut held = Vec::new();
        for _ in 0..5 {
            let customer = cluster.signed_in(Role::Customer);
            let booking = customer.booking().create_booking(hold(&flight, vec![adult("Sara"), adult("Omar")], &[])).await;
            held.push(booking.expect("held").into_inner());
        }
        let operator = cluster.signed_in(Role::Operator);
        let confirmations = held.iter().map(|booking| {
            let operator = &operator;
            async move {
                let confirm = |label: &str| {
                    let request = pb::ConfirmBookingRequest { booking_id: booking.id.clone(), note: "paid at the desk".into() };
                    operator.booking().confirm_booking(request).idempotency_key(key(label))
                };
                let (a, b) = tokio::join!(confirm("confirm-a"), confirm("confirm-b"));
                [a.is_ok(), b.is_ok()].into_iter().filter(|confirmed| *confirmed).count()
            }
        });
        let confirmed: Vec<usize> = join_all(confirmations).await;
        assert_eq!(confirmed, vec![1; 5], "each booking confirmed by one of its two calls");
        for booking in &held {
            let read = operator.booking().get_booking(pb::GetBookingRequest { booking_id: booking.id.clone() }).await;
            let tickets = read.expect("read").into_inner().tickets;
            let live: BTreeSet<_> = tickets.iter().map(|t| (t.passenger_index, t.flight_id.clone())).collect();
            assert_eq!((tickets.len(), live.len()), (2, 2), "one ticket per passenger: {tickets:?}");
        }
        app.scenario_done("confirmations racing through 2 instances", 5 + 2 * 5, 0).await;
    }
}
