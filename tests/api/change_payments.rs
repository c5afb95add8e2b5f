//! Changes of paid bookings that move money, on SQLite and PostgreSQL (plus Redis): a change with money due
//! holds its new seats and completes only when its own payment succeeds; unpaid, it lapses at the hold TTL
//! and the booking stays as it was; a later change supersedes it; money back is a partial refund of exactly
//! the difference; a refund of the booking refunds every payment; a change paid after it lapsed takes its
//! seats again if they are free and is refunded otherwise (Stripe test server).

use aerobook_proto::v1 as pb;
use aerobook_tests::{TestApp, backend_tests, idempotency_key, stripe_tests};
use http::StatusCode;

use crate::{
    bookings::{Customer, PAST_HOLD_TTL, adult, confirm, economy_available, hold, is_replayed, reason},
    changes::{change, flight, minor, quote},
    payments::{count, deliver, pay, payment},
};

/// Sara's booking of one economy seat on `booked`, paid at the desk.
async fn paid_at_the_desk(app: &TestApp, booked: &pb::Flight) -> (Customer, pb::Booking) {
    let sara = Customer::new(app);
    let held = sara.book(app, hold(booked, vec![adult("Sara")], &[])).await.expect("held");
    (sara, confirm(app, &held).await.expect("paid at the desk"))
}

/// Sara's booking of one economy seat on `booked`, paid by card (the simulated provider).
async fn paid_by_card(app: &TestApp, booked: &pb::Flight) -> (Customer, pb::Booking) {
    let sara = Customer::new(app);
    let held = sara.book(app, hold(booked, vec![adult("Sara")], &[])).await.expect("held");
    pay(app, &sara, &held, &idempotency_key()).await.expect("paying");
    app.settle_payments().await;
    let paid = sara.get(app, &held).await.expect("read");
    assert_eq!(paid.status(), pb::BookingStatus::Confirmed);
    (sara, paid)
}

/// A change of `booking` from `from` to `to`, made and waiting for its payment.
async fn waiting_change(
    app: &TestApp,
    sara: &Customer,
    booking: &pb::Booking,
    (from, to): (&pb::Flight, &pb::Flight),
) -> (pb::ChangeQuote, pb::Booking) {
    let priced = quote(app, sara, booking, from, to).await.expect("quoted");
    let waiting = change(app, sara, booking, &priced, &idempotency_key()).await.expect("made").into_inner();
    assert!(waiting.pending_change.is_some(), "{waiting:?}");
    (priced, waiting)
}

fn refunded_minor(payment: &pb::Payment) -> i64 {
    minor(&payment.amount_refunded)
}

backend_tests! {
    async fn a_change_with_money_due_completes_only_when_paid(app: TestApp) {
        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 5_000).await, flight(&app, 3, 2, 45_000, 0).await);
        let (sara, paid) = paid_at_the_desk(&app, &booked).await;
        let priced = quote(&app, &sara, &paid, &booked, &dearer).await.expect("quoted");
        assert_eq!(minor(&priced.amount_due), 10_000, "50.00 dearer and the 50.00 fee");
        let key = idempotency_key();
        let waiting = change(&app, &sara, &paid, &priced, &key).await.expect("made").into_inner();
        assert_eq!((waiting.status(), waiting.flight_id.as_str()), (pb::BookingStatus::Confirmed, booked.id.as_str()));
        assert_eq!((waiting.segments.clone(), waiting.total_price.clone()), (paid.segments.clone(), paid.total_price.clone()));
        let pending = waiting.pending_change.clone().expect("waiting for its payment");
        assert_eq!((pending.quote_id.as_str(), pending.flight_id.as_str()), (priced.quote_id.as_str(), booked.id.as_str()));
        assert_eq!((pending.new_flight_id.as_str(), minor(&pending.amount_due)), (dearer.id.as_str(), 10_000));
        assert_eq!(pending.seat_numbers.len(), 1);
        assert_eq!((economy_available(&app, &booked).await, economy_available(&app, &dearer).await), (1, 1), "both held");
        let replay = change(&app, &sara, &paid, &priced, &key).await.expect("replayed");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), waiting);
        let again = change(&app, &sara, &paid, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&again), "QUOTE_EXPIRED", "a quote is made once");
        assert_eq!(sara.get(&app, &paid).await.unwrap().flight_id, booked.id, "nothing moves before the payment");

        let pay_key = idempotency_key();
        let started = pay(&app, &sara, &paid, &pay_key).await.expect("paying").into_inner();
        assert_eq!(started.amount, priced.amount_due, "the change's payment charges the amount due");
        let replayed = pay(&app, &sara, &paid, &pay_key).await.expect("replayed");
        assert!(is_replayed(&replayed));
        assert_eq!(replayed.into_inner().id, started.id);
        app.settle_payments().await;
        let changed = sara.get(&app, &paid).await.unwrap();
        assert_eq!((changed.flight_id.as_str(), changed.pending_change.as_ref()), (dearer.id.as_str(), None));
        assert_eq!(changed.segments[0].seat_numbers, pending.seat_numbers, "the seats held for it");
        assert_eq!(minor(&changed.total_price), 50_000);
        assert_eq!((economy_available(&app, &booked).await, economy_available(&app, &dearer).await), (2, 1));
        let latest = payment(&app, &sara, &paid).await;
        assert_eq!((latest.status(), latest.id), (pb::PaymentStatus::Succeeded, started.id));
        let emailed = "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'CHANGE_FLIGHT'";
        assert_eq!(count(&app, emailed).await, 1);
        app.assert_invariants().await;
    }

    async fn an_unpaid_change_lapses_and_the_booking_stays_as_it_was(app: TestApp) {
        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 45_000, 0).await);
        let (sara, paid) = paid_at_the_desk(&app, &booked).await;
        waiting_change(&app, &sara, &paid, (&booked, &dearer)).await;
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(sara.get(&app, &paid).await.unwrap().pending_change, None, "lapsed as soon as it is due");
        let late = pay(&app, &sara, &paid, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&late), "QUOTE_EXPIRED");
        assert_eq!(app.sweep_changes().await, 1);
        assert_eq!(app.sweep_changes().await, 0, "a change lapses once");
        assert_eq!((economy_available(&app, &booked).await, economy_available(&app, &dearer).await), (1, 2));
        let kept = sara.get(&app, &paid).await.unwrap();
        assert_eq!((kept.segments.clone(), kept.total_price.clone()), (paid.segments.clone(), paid.total_price.clone()));
        app.assert_invariants().await;
    }

    async fn a_later_change_supersedes_one_waiting_for_its_payment(app: TestApp) {
        let booked = flight(&app, 2, 2, 40_000, 0).await;
        let (first, second) = (flight(&app, 3, 2, 45_000, 0).await, flight(&app, 4, 2, 41_000, 0).await);
        let (sara, paid) = paid_at_the_desk(&app, &booked).await;
        waiting_change(&app, &sara, &paid, (&booked, &first)).await;
        let (priced, waiting) = waiting_change(&app, &sara, &paid, (&booked, &second)).await;
        assert_eq!(waiting.pending_change.unwrap().quote_id, priced.quote_id);
        assert_eq!((economy_available(&app, &first).await, economy_available(&app, &second).await), (2, 1));
        app.assert_invariants().await;
    }

    /// Money back comes as a partial refund of exactly the difference; the booking's refund then returns
    /// the rest.
    async fn a_cheaper_change_refunds_exactly_the_difference(app: TestApp) {
        let (booked, cheaper) = (flight(&app, 2, 2, 40_000, 5_000).await, flight(&app, 3, 2, 30_000, 0).await);
        let (sara, paid) = paid_by_card(&app, &booked).await;
        let priced = quote(&app, &sara, &paid, &booked, &cheaper).await.expect("quoted");
        assert_eq!(minor(&priced.amount_due), -5_000, "100.00 cheaper, less the 50.00 fee");
        let key = idempotency_key();
        let changed = change(&app, &sara, &paid, &priced, &key).await.expect("changed").into_inner();
        assert_eq!((changed.flight_id.as_str(), changed.pending_change.as_ref()), (cheaper.id.as_str(), None));
        assert_eq!(minor(&changed.total_price), 35_000);
        app.run_jobs().await;
        app.settle_payments().await;
        assert!(is_replayed(&change(&app, &sara, &paid, &priced, &key).await.expect("replayed")));
        app.run_jobs().await;
        app.settle_payments().await;
        let card = payment(&app, &sara, &paid).await;
        assert_eq!((card.status(), refunded_minor(&card), minor(&card.amount_received)), (pb::PaymentStatus::Succeeded, 5_000, 40_000));
        assert_eq!(sara.get(&app, &paid).await.unwrap().status(), pb::BookingStatus::Confirmed);

        let refund = pb::RefundBookingRequest { booking_id: paid.id.clone(), reason: "cannot travel".into() };
        app.payments().refund_booking(sara.keyed(refund, &idempotency_key())).await.expect("refund requested");
        app.run_jobs().await;
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &paid).await.unwrap().status(), pb::BookingStatus::Refunded);
        assert_eq!(refunded_minor(&payment(&app, &sara, &paid).await), 40_000);
        app.assert_invariants().await;
    }

    /// A booking whose change was paid for by a second payment is refunded on both, and is REFUNDED once
    /// both are.
    async fn a_refund_returns_the_booking_s_payment_and_its_change_s(app: TestApp) {
        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 2, 45_000, 0).await);
        let (sara, paid) = paid_by_card(&app, &booked).await;
        waiting_change(&app, &sara, &paid, (&booked, &dearer)).await;
        pay(&app, &sara, &paid, &idempotency_key()).await.expect("paying for the change");
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &paid).await.unwrap().flight_id, dearer.id);
        let refund = pb::RefundBookingRequest { booking_id: paid.id.clone(), reason: "cannot travel".into() };
        app.payments().refund_booking(sara.keyed(refund, &idempotency_key())).await.expect("refund requested");
        app.run_jobs().await;
        app.settle_payments().await;
        assert_eq!(sara.get(&app, &paid).await.unwrap().status(), pb::BookingStatus::Refunded);
        // Each test has a database of its own: these are the booking's payments.
        let refunded = "SELECT COUNT(*) AS n FROM payments WHERE status = 'REFUNDED'";
        assert_eq!(count(&app, refunded).await, 2, "the booking's own payment and its change's");
        assert_eq!(economy_available(&app, &dearer).await, 2);
        app.assert_invariants().await;
    }

    /// A hold's payment started at its price keeps that price; a quote priced for a hold is not made once
    /// the hold is paid (it owes no fee).
    async fn prices_stay_what_the_payment_and_the_quote_were_made_for(
        app: TestApp,
        settings = [("AEROBOOK_SIMULATED_PAYMENT_DELAY_MS", "60000")]
    ) {
        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 5_000).await, flight(&app, 3, 2, 45_000, 0).await);
        let sara = Customer::new(&app);
        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let priced = quote(&app, &sara, &held, &booked, &dearer).await.expect("quoted");
        pay(&app, &sara, &held, &idempotency_key()).await.expect("paying");
        let refused = change(&app, &sara, &held, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&refused), "PAYMENT_PROCESSING");

        let held = sara.book(&app, hold(&booked, vec![adult("Sara")], &[])).await.expect("held");
        let priced = quote(&app, &sara, &held, &booked, &dearer).await.expect("quoted");
        assert_eq!(minor(&priced.change_fee), 0, "no fee on a hold");
        confirm(&app, &held).await.expect("paid at the desk");
        let stale = change(&app, &sara, &held, &priced, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&stale), "QUOTE_EXPIRED");
        assert_eq!(economy_available(&app, &dearer).await, 2);
    }
}

stripe_tests! {
    /// A change paid after it lapsed takes its seats again while they are free; once they are sold, the
    /// payment is refunded in full and the booking stays as it was.
    async fn a_change_paid_after_it_lapsed_is_made_or_refunded(app: TestApp, stripe: StripeTestServer) {
        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 1, 45_000, 0).await);
        let (sara, paid) = paid_at_the_desk(&app, &booked).await;
        let (_, waiting) = waiting_change(&app, &sara, &paid, (&booked, &dearer)).await;
        let intent = pay(&app, &sara, &paid, &idempotency_key()).await.expect("paying").into_inner();
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep_changes().await, 1);
        assert_eq!(economy_available(&app, &dearer).await, 1, "released");
        let succeeded = stripe.succeed(&intent.provider_reference);
        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", succeeded).await, StatusCode::OK);
        let changed = sara.get(&app, &paid).await.unwrap();
        assert_eq!(changed.flight_id, dearer.id, "the seat was still free");
        assert_eq!(changed.segments[0].seat_numbers, waiting.pending_change.unwrap().seat_numbers);
        assert!(stripe.refunds_of(&intent.provider_reference).is_empty());

        let (booked, dearer) = (flight(&app, 2, 2, 40_000, 0).await, flight(&app, 3, 1, 45_000, 0).await);
        let (sara, paid) = paid_at_the_desk(&app, &booked).await;
        let (priced, _) = waiting_change(&app, &sara, &paid, (&booked, &dearer)).await;
        let intent = pay(&app, &sara, &paid, &idempotency_key()).await.expect("paying").into_inner();
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep_changes().await, 1);
        Customer::new(&app).book(&app, hold(&dearer, vec![adult("Omar")], &[])).await.expect("the seat sold again");
        let succeeded = stripe.succeed(&intent.provider_reference);
        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", succeeded).await, StatusCode::OK);
        let kept = sara.get(&app, &paid).await.unwrap();
        assert_eq!((kept.flight_id.as_str(), kept.segments.clone()), (booked.id.as_str(), paid.segments.clone()));
        let refunds = stripe.refunds_of(&intent.provider_reference);
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!(refunds[0]["amount"], minor(&priced.amount_due));
        assert_eq!(economy_available(&app, &booked).await, 1);
        app.assert_invariants().await;
    }
}
