//! E-tickets, on SQLite and PostgreSQL (plus Redis): one per passenger and flight when a booking is
//! confirmed (by its payment or an operator), each 13 digits after `AEROBOOK_TICKET_PREFIX`, issued once
//! whatever repeats the confirmation; voided by a refund; a completed change voids the old flight's tickets
//! and issues the new flight's. Confirmations racing through two instances: `cluster.rs`.

use std::collections::BTreeSet;

use aerobook_proto::v1 as pb;
use aerobook_tests::{backend_tests, idempotency_key};

use crate::{
    bookings::{Customer, adult, confirm, hold},
    changes::{change, flight, quote},
    payments::pay,
    trips::trip,
};

fn live(booking: &pb::Booking) -> BTreeSet<(i32, String)> {
    booking
        .tickets
        .iter()
        .filter(|ticket| ticket.status() == pb::TicketStatus::Open)
        .map(|ticket| (ticket.passenger_index, ticket.flight_id.clone()))
        .collect()
}

fn numbers(booking: &pb::Booking) -> BTreeSet<String> {
    booking.tickets.iter().map(|ticket| ticket.ticket_number.clone()).collect()
}

backend_tests! {
    async fn a_paid_trip_holds_a_ticket_per_passenger_and_flight_issued_once(app: TestApp) {
        let (out, back) = (flight(&app, 2, 4, 40_000, 0).await, flight(&app, 5, 4, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, trip(&[&out, &back], vec![adult("Sara"), adult("Omar")])).await.expect("held");
        assert!(held.tickets.is_empty(), "a hold has sold nothing");
        let key = idempotency_key();
        pay(&app, &sara, &held, &key).await.expect("paying");
        app.settle_payments().await;
        let paid = sara.get(&app, &held).await.unwrap();
        let every: BTreeSet<_> = (0..2).flat_map(|i| [(i, out.id.clone()), (i, back.id.clone())]).collect();
        assert_eq!(live(&paid), every);
        assert_eq!(paid.tickets.len(), 4);
        for ticket in &paid.tickets {
            let number = &ticket.ticket_number;
            assert!(number.len() == 13 && number.starts_with("999") && number.bytes().all(|b| b.is_ascii_digit()), "{number}");
        }
        assert_eq!(numbers(&paid).len(), 4, "every number its own");

        pay(&app, &sara, &held, &key).await.expect("replayed");
        app.run_jobs().await;
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &held).await.unwrap().tickets, paid.tickets, "issued once");
        app.assert_invariants().await;
    }

    async fn an_operator_s_confirmation_tickets_the_booking_with_the_configured_prefix(
        app: TestApp,
        settings = [("AEROBOOK_TICKET_PREFIX", "065")]
    ) {
        let booked = flight(&app, 2, 2, 40_000, 0).await;
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let confirmed = confirm(&app, &held).await.expect("paid at the desk");
        assert_eq!(live(&confirmed), BTreeSet::from([(0, booked.id.clone())]), "the answer lists them");
        assert!(confirmed.tickets[0].ticket_number.starts_with("065"));
        assert_eq!(sara.get(&app, &held).await.unwrap().tickets, confirmed.tickets);
    }

    async fn a_refund_voids_the_tickets(app: TestApp) {
        let booked = flight(&app, 2, 2, 40_000, 0).await;
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        pay(&app, &sara, &held, &idempotency_key()).await.expect("paying");
        app.settle_payments().await;
        let refund = pb::RefundBookingRequest { booking_id: held.id.clone(), reason: "cannot travel".into() };
        let pending = app.payments().refund_booking(sara.keyed(refund, &idempotency_key())).await.expect("refund");
        let pending = pending.into_inner();
        assert_eq!(pending.tickets.len(), 1);
        assert_eq!(pending.tickets[0].status(), pb::TicketStatus::Void, "void from the refund's request on");
        app.run_jobs().await;
        app.settle_payments().await;
        let refunded = sara.get(&app, &held).await.unwrap();
        assert_eq!((refunded.status(), refunded.tickets), (pb::BookingStatus::Refunded, pending.tickets));
    }

    async fn a_completed_change_voids_the_old_flight_s_tickets_and_issues_the_new(app: TestApp) {
        let (booked, later) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 40_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let confirmed = confirm(&app, &held).await.expect("paid at the desk");
        let priced = quote(&app, &sara, &held, &booked, &later).await.expect("quoted");
        let changed = change(&app, &sara, &held, &priced, &idempotency_key()).await.expect("changed").into_inner();
        assert_eq!(live(&changed), BTreeSet::from([(0, later.id.clone())]));
        let void: Vec<_> = changed.tickets.iter().filter(|t| t.status() == pb::TicketStatus::Void).collect();
        assert_eq!(void.len(), 1);
        assert_eq!((void[0].ticket_number.as_str(), void[0].flight_id.as_str()), (confirmed.tickets[0].ticket_number.as_str(), booked.id.as_str()));
        app.assert_invariants().await;
    }
}
