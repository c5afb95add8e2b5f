//! Refunds and payment edges found in review: partial refunds made at Stripe, refund attempts that can be
//! sent again, webhook signatures that cannot be verified, the webhook rate limit, the idempotency key
//! claimed before any payment effect, and provider time limits inside the call deadline.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_server::stripe_wire as wire;
use aerobook_tests::{
    ContractError, Role, TestApp, idempotency_key, request,
    stripe::{Misbehaviour, StripeTestServer},
    stripe_tests,
};
use http::StatusCode;
use sea_orm::{ConnectionTrait as _, DbBackend, SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
use serde_json::json;

use crate::{
    bookings::{Customer, PAST_HOLD_TTL, adult, economy_available, flight_with_economy, hold, is_replayed, reason},
    payments::{count, deliver, pay, payment},
};

fn refund_request(booking: &pb::Booking) -> pb::RefundBookingRequest {
    pb::RefundBookingRequest { booking_id: booking.id.clone(), reason: "cannot travel".into() }
}

/// A confirmed card payment for one economy seat; returns the PaymentIntent id too.
async fn paid(app: &TestApp, stripe: &StripeTestServer) -> (Customer, pb::Flight, pb::Booking, String) {
    let flight = flight_with_economy(app, 2, "AB").await;
    let customer = Customer::new(app);
    let booking = customer.book(app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("held");
    let intent_id =
        pay(app, &customer, &booking, &idempotency_key()).await.expect("intent").into_inner().provider_reference;
    deliver(app, stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await;
    (customer, flight, booking, intent_id)
}

/// A hold of one seat, and the Stripe test server's next answer 3 s late.
async fn held_with_stripe_slow(app: &TestApp, stripe: &StripeTestServer) -> (Customer, pb::Booking) {
    let flight = flight_with_economy(app, 2, "AB").await;
    let customer = Customer::new(app);
    let booking = customer.book(app, hold(&flight, vec![adult("Sara")], &[])).await.expect("held");
    stripe.misbehave_next(Misbehaviour::SlowAnswer(Duration::from_secs(3)));
    (customer, booking)
}

fn assert_provider_timeout(paid: Result<tonic::Response<pb::Payment>, tonic::Status>) {
    let timeout = ContractError::from_status(&paid.expect_err("the provider timed out"));
    assert_eq!(
        (timeout.code, timeout.reason.as_str(), timeout.retryable),
        (tonic::Code::Unavailable, "PROVIDER_TIMEOUT", true)
    );
}

stripe_tests! {
    /// A refund smaller than what was received (made in Stripe's dashboard) is recorded, shown on the
    /// payment and noted on the booking, which stays confirmed with its seat; only refunds adding up to
    /// everything received refund the booking. Each refund counts once, however often it is reported.
    async fn partial_refunds_are_recorded_without_refunding_the_booking(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking, intent_id) = paid(&app, &stripe).await;
        let received = payment(&app, &customer, &booking).await.amount_received.unwrap().amount_minor;
        let dashboard = wire::refund("re_dashboard_1", &intent_id, 1_000, "sar", "succeeded", &json!({}), None);
        for _ in 0..2 {
            assert_eq!(deliver(&app, &stripe, "refund.updated", dashboard.clone()).await, StatusCode::OK);
        }
        let charge = wire::charge("ch_test_1", &intent_id, received, "sar", 1_000);
        assert_eq!(deliver(&app, &stripe, "charge.refunded", charge).await, StatusCode::OK);

        let partly = payment(&app, &customer, &booking).await;
        assert_eq!((partly.status(), partly.amount_refunded.unwrap().amount_minor), (pb::PaymentStatus::Succeeded, 1_000));
        assert_eq!(customer.get(&app, &booking).await.unwrap().status(), pb::BookingStatus::Confirmed);
        assert_eq!(economy_available(&app, &flight).await, 3, "the seat stays sold");
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'PARTIAL_REFUND'").await, 1);

        // The customer's refund sends the rest; once Stripe reports it, the booking is refunded.
        let refund = app.payments().refund_booking(customer.keyed(refund_request(&booking), &idempotency_key())).await.expect("refund");
        assert_eq!(refund.into_inner().status(), pb::BookingStatus::RefundPending);
        app.run_jobs().await;
        let ours = stripe.refunds_of(&intent_id);
        assert_eq!(ours.len(), 1);
        assert_eq!(ours[0]["amount"], received - 1_000, "what was not refunded yet");
        let done = stripe.settle_refund(ours[0]["id"].as_str().unwrap(), "succeeded");
        deliver(&app, &stripe, "refund.updated", done).await;
        let refunded = payment(&app, &customer, &booking).await;
        assert_eq!((refunded.status(), refunded.amount_refunded.unwrap().amount_minor), (pb::PaymentStatus::Refunded, received));
        assert_eq!(customer.get(&app, &booking).await.unwrap().status(), pb::BookingStatus::Refunded);
        assert_eq!(economy_available(&app, &flight).await, 4);
    }

    /// Each refund attempt has its own Stripe key: after a failed refund, asking again sends a new refund
    /// instead of getting the failure replayed. A failed automatic refund (paid after the hold expired and
    /// the seat was resold) is sent again by an operator; the customer cannot, and the booking stays expired.
    async fn failed_refunds_can_be_sent_again(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking, intent_id) = paid(&app, &stripe).await;
        for attempt in 1..=2 {
            app.payments().refund_booking(customer.keyed(refund_request(&booking), &idempotency_key())).await.expect("refund requested");
            app.run_jobs().await;
            let refunds = stripe.refunds_of(&intent_id);
            assert_eq!(refunds.len(), attempt, "a new refund for each attempt");
            let failed = stripe.settle_refund(refunds[attempt - 1]["id"].as_str().unwrap(), "failed");
            deliver(&app, &stripe, "refund.failed", failed).await;
            assert_eq!(customer.get(&app, &booking).await.unwrap().status(), pb::BookingStatus::Confirmed);
        }

        let flight = flight_with_economy(&app, 2, "AB").await;
        let late = Customer::new(&app);
        let expired = late.book(&app, hold(&flight, vec![adult("Lina")], &["10A"])).await.expect("held");
        let late_intent = pay(&app, &late, &expired, &idempotency_key()).await.unwrap().into_inner().provider_reference;
        app.clock.advance(PAST_HOLD_TTL);
        app.sweep().await;
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Omar")], &["10A"])).await.expect("resold");
        deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&late_intent)).await;
        let automatic = stripe.refunds_of(&late_intent);
        assert_eq!(automatic.len(), 1);
        deliver(&app, &stripe, "refund.failed", stripe.settle_refund(automatic[0]["id"].as_str().unwrap(), "failed")).await;
        assert_eq!(payment(&app, &late, &expired).await.status(), pb::PaymentStatus::Succeeded, "paid, and not refunded");

        let by_customer = app.payments().refund_booking(late.keyed(refund_request(&expired), &idempotency_key())).await.unwrap_err();
        assert_eq!(reason(&by_customer), "INVALID_STATE_TRANSITION");
        let operator = app.bearer(Role::Operator);
        let key = idempotency_key();
        let retried = app.payments()
            .refund_booking(request(refund_request(&expired), &[("authorization", &operator), ("idempotency-key", &key)]))
            .await
            .expect("an operator sends it again")
            .into_inner();
        assert_eq!(retried.status(), pb::BookingStatus::Expired, "the booking stays as it is");
        app.run_jobs().await;
        let sent = stripe.refunds_of(&late_intent);
        assert_eq!(sent.len(), 2);
        deliver(&app, &stripe, "refund.updated", stripe.settle_refund(sent[1]["id"].as_str().unwrap(), "succeeded")).await;
        assert_eq!(payment(&app, &late, &expired).await.status(), pb::PaymentStatus::Refunded);
        assert_eq!(late.get(&app, &expired).await.unwrap().status(), pb::BookingStatus::Expired);
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'RETRY_REFUND'").await, 1);
    }

    /// A `Stripe-Signature` that cannot be verified at all is refused like a wrong one, even for an event
    /// type Aerobook ignores, and nothing is stored.
    async fn unreadable_signature_headers_are_refused(app: TestApp, stripe: StripeTestServer) {
        let payload = wire::event("customer.created", json!({"id": "cus_1", "object": "customer"})).to_string();
        for header in ["t=x,v1=00", "t=,v1=00", "v1=00"] {
            let status = stripe.post_webhook(&app.webhook_url(), payload.clone(), Some(header.to_owned())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{header}");
        }
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 0);
        assert_eq!(stripe.deliver(&app.webhook_url(), &serde_json::from_str(&payload).unwrap()).await, StatusCode::OK);
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 1);
    }

    /// Webhook deliveries are rate limited per client address: past the budget, 429 and nothing stored.
    async fn webhook_deliveries_are_rate_limited_per_source(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_RATE_LIMIT_WEBHOOK", "3/60")]
    ) {
        let event = || wire::event("customer.created", json!({"id": "cus_1", "object": "customer"}));
        for _ in 0..3 {
            assert_eq!(stripe.deliver(&app.webhook_url(), &event()).await, StatusCode::OK);
        }
        assert_eq!(stripe.deliver(&app.webhook_url(), &event()).await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(stripe.post_webhook(&app.webhook_url(), "{}".into(), Some("t=x".into())).await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 3);
    }

    /// The key is claimed before the payment row or Stripe: while a first call is still at Stripe, the same
    /// key for another booking is refused with IDEMPOTENCY_CONFLICT and no effect, and the same request is
    /// told to retry.
    async fn the_key_is_claimed_before_any_payment_effect(app: TestApp, stripe: StripeTestServer) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let customer = Customer::new(&app);
        let first = customer.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.unwrap();
        let second = customer.book(&app, hold(&flight, vec![adult("Omar")], &["10B"])).await.unwrap();
        stripe.misbehave_next(Misbehaviour::SlowAnswer(Duration::from_millis(1_500)));
        let key = idempotency_key();
        let slow = {
            let (app_channel, bearer, booking, key) = (app.channel.clone(), customer.bearer.clone(), first.clone(), key.clone());
            tokio::spawn(async move {
                let start = pb::CreatePaymentIntentRequest { booking_id: booking.id };
                let headers = [("authorization", bearer.as_str()), ("idempotency-key", key.as_str())];
                pb::payment_service_client::PaymentServiceClient::new(app_channel).create_payment_intent(request(start, &headers)).await
            })
        };
        // The first call has reached Stripe (the intent exists; its answer is slow).
        let reached = async {
            while stripe.intents_created() == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), reached).await.expect("the first call reaches Stripe");
        let conflict = ContractError::from_status(&pay(&app, &customer, &second, &key).await.unwrap_err());
        assert_eq!((conflict.reason.as_str(), conflict.retryable), ("IDEMPOTENCY_CONFLICT", false));
        let same = ContractError::from_status(&pay(&app, &customer, &first, &key).await.unwrap_err());
        assert_eq!((same.reason.as_str(), same.retryable), ("IDEMPOTENCY_IN_PROGRESS", true));
        let started = slow.await.unwrap().expect("the first call completes").into_inner();
        assert_eq!(stripe.intents_created(), 1, "no PaymentIntent for the conflicting request");
        let rows = format!("SELECT COUNT(*) AS n FROM payments WHERE booking_id = '{}'", second.id);
        assert_eq!(count(&app, &rows).await, 0, "no payment row for the conflicting request");
        let replay = pay(&app, &customer, &first, &key).await.expect("replayed");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), started);
    }

    /// Stripe slower than the call allows: the client hears PROVIDER_TIMEOUT (retryable, same key) within
    /// the call's deadline, not a bare DEADLINE_EXCEEDED, and the retry gets the same PaymentIntent.
    async fn provider_timeouts_reach_the_client_within_the_deadline(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_REQUEST_TIMEOUT_MS", "1500")]
    ) {
        let (customer, booking) = held_with_stripe_slow(&app, &stripe).await;
        let key = idempotency_key();
        assert_provider_timeout(pay(&app, &customer, &booking, &key).await);
        let retried = pay(&app, &customer, &booking, &key).await.expect("the retry succeeds").into_inner();
        assert_eq!(stripe.intents_created(), 1);
        assert_eq!(stripe.intent(&retried.provider_reference)["id"], retried.provider_reference.as_str());
    }

    /// The work before the provider call slower than usual (the payments table held for 600 ms): the
    /// provider call gets only what the call's deadline leaves, and the client still hears PROVIDER_TIMEOUT
    /// in time. With the provider's own 1,050 ms, the call would pass its 1,500 ms deadline.
    async fn a_provider_call_that_starts_late_still_times_out_within_the_deadline(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_REQUEST_TIMEOUT_MS", "1500")]
    ) {
        let (customer, booking) = held_with_stripe_slow(&app, &stripe).await;
        let db = app.database().await;
        let held = db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        }).await.expect("a transaction");
        if held.get_database_backend() == DbBackend::Postgres {
            held.execute_unprepared("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE").await.expect("locked");
        }
        let key = idempotency_key();
        let (paid, ()) = tokio::join!(pay(&app, &customer, &booking, &key), async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            held.rollback().await.expect("released");
        });
        assert_provider_timeout(paid);
    }
}
