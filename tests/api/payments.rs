//! Payments end to end: the simulated provider (embedded default) and Stripe through the real async-stripe
//! client against the Stripe test server; signed, de-duplicated webhooks; late payments; refunds;
//! provider failures; reconciliation. Every test runs on SQLite and on PostgreSQL + Redis.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_server::stripe_wire as wire;
use aerobook_tests::{
    ContractError, Role, TestApp, backend_tests, idempotency_key, request,
    stripe::{Misbehaviour, StripeTestServer, WEBHOOK_SECRET},
    stripe_tests,
};
use futures::future::join_all;
use http::StatusCode;
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::Value;
use tonic::Response;

use crate::bookings::{
    Customer, PAST_HOLD_TTL, adult, confirm, economy_available, flight_with_economy, hold, is_replayed, reason,
    taken_seats,
};

/// A customer's hold of one economy seat (10A) on a new flight with `rows` rows of seats A and B.
async fn held(app: &TestApp, rows: i32) -> (Customer, pb::Flight, pb::Booking) {
    let flight = flight_with_economy(app, rows, "AB").await;
    let customer = Customer::new(app);
    let booking = customer.book(app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("hold placed");
    (customer, flight, booking)
}

pub(crate) async fn pay(
    app: &TestApp,
    customer: &Customer,
    booking: &pb::Booking,
    key: &str,
) -> Result<Response<pb::Payment>, tonic::Status> {
    let start = pb::CreatePaymentIntentRequest { booking_id: booking.id.clone() };
    app.payments().create_payment_intent(customer.keyed(start, key)).await
}

pub(crate) async fn payment(app: &TestApp, customer: &Customer, booking: &pb::Booking) -> pb::Payment {
    let get = pb::GetPaymentRequest { booking_id: booking.id.clone() };
    app.payments().get_payment(customer.plain(get)).await.expect("payment").into_inner()
}

async fn status(app: &TestApp, customer: &Customer, booking: &pb::Booking) -> pb::BookingStatus {
    customer.get(app, booking).await.expect("booking").status()
}

async fn refund(app: &TestApp, customer: &Customer, booking: &pb::Booking) -> Result<pb::Booking, tonic::Status> {
    let refund = pb::RefundBookingRequest { booking_id: booking.id.clone(), reason: "cannot travel".into() };
    app.payments().refund_booking(customer.keyed(refund, &idempotency_key())).await.map(Response::into_inner)
}

/// Starts paying at the Stripe test server; returns the PaymentIntent id.
async fn intent(app: &TestApp, customer: &Customer, booking: &pb::Booking) -> String {
    pay(app, customer, booking, &idempotency_key()).await.expect("intent created").into_inner().provider_reference
}

pub(crate) async fn deliver(app: &TestApp, stripe: &StripeTestServer, event_type: &str, object: Value) -> StatusCode {
    let status = stripe.deliver(&app.webhook_url(), &wire::event(event_type, object)).await;
    app.run_jobs().await;
    status
}

pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
    let db = app.database().await;
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

backend_tests! {
    /// The README's flow on the embedded defaults: hold, pay, and the simulated provider's signed webhook
    /// confirms the booking through the same code path as Stripe's.
    async fn simulated_payment_confirms_the_hold(app: TestApp) {
        let (customer, _, booking) = held(&app, 2).await;
        let key = idempotency_key();
        let started = pay(&app, &customer, &booking, &key).await.expect("intent").into_inner();
        assert!(started.provider_reference.starts_with("pi_sim_"), "{started:?}");
        assert!(started.client_secret.starts_with(&started.provider_reference));
        assert_eq!(started.amount, booking.total_price);
        // The tests' simulated provider answers at once: its webhook may settle the payment before this
        // call has returned, and the call answers with the payment as it then is.
        let fresh_or_settled = [pb::PaymentStatus::RequiresPaymentMethod, pb::PaymentStatus::Succeeded];
        assert!(fresh_or_settled.contains(&started.status()), "{started:?}");

        let replay = pay(&app, &customer, &booking, &key).await.expect("replay");
        assert!(is_replayed(&replay));
        assert_eq!(replay.into_inner(), started);

        app.settle_payments().await;
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
        let paid = payment(&app, &customer, &booking).await;
        assert_eq!((paid.status(), paid.amount_received), (pb::PaymentStatus::Succeeded, booking.total_price.clone()));

        // Simulated refunds settle the same way, and give the seat back.
        assert_eq!(refund(&app, &customer, &booking).await.expect("refund").status(), pb::BookingStatus::RefundPending);
        app.run_jobs().await;
        app.settle_payments().await;
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Refunded);
        assert_eq!(payment(&app, &customer, &booking).await.status(), pb::PaymentStatus::Refunded);
    }

    /// One payment per booking: another key for the same hold gets the same PaymentIntent, and only the
    /// booking's owner may start paying.
    async fn one_payment_per_booking_and_only_for_its_owner(
        app: TestApp,
        // The booking must still be a hold when it is paid for the second time.
        settings = [("AEROBOOK_SIMULATED_PAYMENT_DELAY_MS", "60000")]
    ) {
        let (customer, _, booking) = held(&app, 2).await;
        let first = pay(&app, &customer, &booking, &idempotency_key()).await.expect("intent").into_inner();
        let second = pay(&app, &customer, &booking, &idempotency_key()).await.expect("intent").into_inner();
        assert_eq!((second.id, second.provider_reference), (first.id.clone(), first.provider_reference.clone()));

        let stranger = Customer::new(&app);
        let stolen = pay(&app, &stranger, &booking, &idempotency_key()).await.unwrap_err();
        assert_eq!(reason(&stolen), "NOT_FOUND");
        let get = pb::GetPaymentRequest { booking_id: booking.id.clone() };
        assert_eq!(reason(&app.payments().get_payment(stranger.plain(get)).await.unwrap_err()), "NOT_FOUND");
        let operator = request(pb::GetPaymentRequest { booking_id: booking.id.clone() }, &[("authorization", &app.bearer(Role::Operator))]);
        let seen_by_staff = app.payments().get_payment(operator).await.expect("staff read payments").into_inner();
        assert_eq!((seen_by_staff.id, seen_by_staff.client_secret), (first.id, String::new()));
        assert_eq!(payment(&app, &customer, &booking).await.client_secret, first.client_secret);
    }

    /// Paying needs a live hold of one's own; the refusal is stored under the key like any other.
    async fn paying_for_what_is_not_a_live_hold_is_refused(app: TestApp) {
        let (customer, _, booking) = held(&app, 2).await;
        app.clock.advance(PAST_HOLD_TTL);
        let key = idempotency_key();
        let expired = pay(&app, &customer, &booking, &key).await.unwrap_err();
        assert_eq!(reason(&expired), "BOOKING_EXPIRED");
        let replayed = pay(&app, &customer, &booking, &key).await.unwrap_err();
        assert_eq!(reason(&replayed), "BOOKING_EXPIRED");
        assert_eq!(replayed.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));

        let (customer, _, booking) = held(&app, 2).await;
        customer.cancel(&app, &booking).await.expect("cancelled");
        let cancelled = ContractError::from_status(&pay(&app, &customer, &booking, &idempotency_key()).await.unwrap_err());
        assert_eq!((cancelled.reason.as_str(), cancelled.metadata["currentStatus"].as_str()), ("INVALID_STATE_TRANSITION", "CANCELLED"));

        let bad = pay(&app, &customer, &pb::Booking { id: "nope".into(), ..booking }, &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&bad).assert_validation(&["booking_id"]);
    }

    /// A booking confirmed for an offline payment has no card payment to refund.
    async fn refunding_an_offline_payment_needs_a_card_payment(app: TestApp) {
        let (customer, _, booking) = held(&app, 2).await;
        confirm(&app, &booking).await.expect("confirmed offline");
        assert_eq!(reason(&refund(&app, &customer, &booking).await.unwrap_err()), "PAYMENT_REQUIRED");
        let (customer, _, booking) = held(&app, 2).await;
        assert_eq!(reason(&refund(&app, &customer, &booking).await.unwrap_err()), "INVALID_STATE_TRANSITION");
    }
}

stripe_tests! {
    /// Hold -> PaymentIntent at Stripe -> `payment_intent.succeeded` -> CONFIRMED.
    async fn stripe_payment_confirms_the_hold(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let started = pay(&app, &customer, &booking, &idempotency_key()).await.expect("intent").into_inner();
        let created = stripe.intent(&started.provider_reference);
        assert_eq!(created["metadata"]["booking_id"], booking.id.as_str());
        assert_eq!(created["metadata"]["payment_id"], started.id.as_str());
        assert!(!created["metadata"]["correlation_id"].as_str().unwrap().is_empty());
        assert_eq!(created["amount"], booking.total_price.as_ref().unwrap().amount_minor);
        assert_eq!(created["client_secret"], started.client_secret.as_str());

        let paid = stripe.succeed(&started.provider_reference);
        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", paid).await, StatusCode::OK);
        let booking = customer.get(&app, &booking).await.unwrap();
        assert_eq!(booking.status(), pb::BookingStatus::Confirmed);
        assert!(booking.hold_expires_at.is_none());
        assert_eq!(payment(&app, &customer, &booking).await.status(), pb::PaymentStatus::Succeeded);
        assert_eq!(stripe.intents_created(), 1);
    }

    /// A decline: the payment records the decline code and the hold keeps its seats until its TTL.
    async fn declined_payment_keeps_the_hold_until_its_ttl(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        let declined = stripe.decline(&intent_id, "insufficient_funds");
        assert_eq!(deliver(&app, &stripe, "payment_intent.payment_failed", declined).await, StatusCode::OK);
        let failed = payment(&app, &customer, &booking).await;
        assert_eq!((failed.status(), failed.decline_code.as_str()), (pb::PaymentStatus::Failed, "insufficient_funds"));
        let still = customer.get(&app, &booking).await.unwrap();
        assert_eq!((still.status(), &still.hold_expires_at), (pb::BookingStatus::Held, &booking.hold_expires_at));
        assert_eq!(economy_available(&app, &flight).await, 3);

        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Expired);
        assert_eq!(economy_available(&app, &flight).await, 4);

        // A card refused while the intent is created: PAYMENT_FAILED with the decline code, nothing stored.
        let (customer, _, booking) = held(&app, 2).await;
        stripe.misbehave_next(Misbehaviour::Decline("card_velocity_exceeded"));
        let refused = ContractError::from_status(&pay(&app, &customer, &booking, &idempotency_key()).await.unwrap_err());
        assert_eq!((refused.reason.as_str(), refused.retryable), ("PAYMENT_FAILED", false));
        assert_eq!(refused.metadata["declineCode"], "card_velocity_exceeded");
    }

    /// Forged, unsigned, stale and altered deliveries get 400 and change nothing.
    async fn unverifiable_webhooks_are_rejected_without_effect(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        let payload = wire::event("payment_intent.succeeded", stripe.succeed(&intent_id)).to_string();
        let url = app.webhook_url();
        let forged = wire::signature(&payload, "whsec_someone_else");
        let stale_signed = wire::signature_at(&payload, WEBHOOK_SECRET, chrono::Utc::now().timestamp() - 301);
        let altered = payload.replace("\"livemode\":false", "\"livemode\":true");
        let genuine = wire::signature(&payload, WEBHOOK_SECRET);
        for (body, signature) in [
            (payload.clone(), Some(forged)),
            (payload.clone(), None),
            (payload.clone(), Some(stale_signed)),
            (altered, Some(genuine.clone())),
            (payload.clone(), Some("t=1,v1=garbage".to_owned())),
        ] {
            assert_eq!(stripe.post_webhook(&url, body, signature).await, StatusCode::BAD_REQUEST);
        }
        app.run_jobs().await;
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Held);
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 0);
        // The genuine delivery still works afterwards.
        assert_eq!(stripe.post_webhook(&url, payload, Some(genuine)).await, StatusCode::OK);
        app.run_jobs().await;
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
    }

    /// The same event delivered again, and 20 times at once: recorded and applied exactly once.
    async fn duplicate_events_are_processed_once(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        let event = wire::event("payment_intent.succeeded", stripe.succeed(&intent_id));
        let url = app.webhook_url();
        let statuses = join_all((0..20).map(|_| stripe.deliver(&url, &event))).await;
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        assert_eq!(stripe.deliver(&url, &event).await, StatusCode::OK);
        app.run_jobs().await;
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 1);
        let jobs = "SELECT COUNT(*) AS n FROM outbox_jobs WHERE kind = 'APPLY_PROVIDER_EVENT'";
        assert_eq!(count(&app, jobs).await, 1);
        let emails = "SELECT COUNT(*) AS n FROM outbox_jobs WHERE kind = 'SEND_EMAIL'";
        assert_eq!(count(&app, emails).await, 1, "one confirmation email");
        let confirmations = "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'PAYMENT_SUCCEEDED'";
        assert_eq!(count(&app, confirmations).await, 1);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
    }

    /// Out of order: a `payment_failed` (or `processing`) arriving after `succeeded` changes nothing.
    async fn a_late_failure_never_undoes_a_success(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        let declined = stripe.decline(&intent_id, "generic_decline");
        let paid = stripe.succeed(&intent_id);
        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", paid).await, StatusCode::OK);
        assert_eq!(deliver(&app, &stripe, "payment_intent.payment_failed", declined.clone()).await, StatusCode::OK);
        assert_eq!(deliver(&app, &stripe, "payment_intent.processing", declined).await, StatusCode::OK);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
        let paid = payment(&app, &customer, &booking).await;
        assert_eq!((paid.status(), paid.decline_code.as_str()), (pb::PaymentStatus::Succeeded, ""));
    }

    /// Paid after the hold expired: the seats come back to the booking when they are still free.
    async fn a_late_payment_retakes_free_seats(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1);
        assert_eq!(economy_available(&app, &flight).await, 4);

        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await, StatusCode::OK);
        let confirmed = customer.get(&app, &booking).await.unwrap();
        assert_eq!((confirmed.status(), confirmed.seat_numbers.clone()), (pb::BookingStatus::Confirmed, vec!["10A".to_owned()]));
        assert_eq!(economy_available(&app, &flight).await, 3);
        assert!(taken_seats(&app, &flight).await.contains("10A"));
        assert!(stripe.refunds_of(&intent_id).is_empty());
    }

    /// Paid after the hold expired and its seat was sold: never oversold, refunded automatically.
    async fn a_late_payment_for_a_resold_seat_is_refunded(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        app.clock.advance(PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1);
        let other = Customer::new(&app);
        other.book(&app, hold(&flight, vec![adult("Omar")], &["10A"])).await.expect("the seat is sold again");

        assert_eq!(deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await, StatusCode::OK);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Expired);
        assert_eq!(economy_available(&app, &flight).await, 3);
        let refunds = stripe.refunds_of(&intent_id);
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!(refunds[0]["amount"], booking.total_price.as_ref().unwrap().amount_minor);
        assert_eq!(payment(&app, &customer, &booking).await.status(), pb::PaymentStatus::RefundPending);
        let why = "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'AUTO_REFUND'";
        assert_eq!(count(&app, why).await, 1);

        let done = stripe.settle_refund(refunds[0]["id"].as_str().unwrap(), "succeeded");
        assert_eq!(deliver(&app, &stripe, "refund.updated", done).await, StatusCode::OK);
        assert_eq!(payment(&app, &customer, &booking).await.status(), pb::PaymentStatus::Refunded);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Expired);
        assert_eq!(economy_available(&app, &flight).await, 3);
    }

    /// RefundBooking: REFUND_PENDING, one refund of exactly what was captured, REFUNDED when Stripe says so,
    /// and the seat goes back on sale once.
    async fn refunds_complete_when_stripe_reports_them(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await;
        let pending = refund(&app, &customer, &booking).await.expect("refund requested");
        assert_eq!(pending.status(), pb::BookingStatus::RefundPending);
        app.run_jobs().await;
        let refunds = stripe.refunds_of(&intent_id);
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0]["amount"], stripe.intent(&intent_id)["amount_received"]);
        assert_eq!(reason(&refund(&app, &customer, &booking).await.unwrap_err()), "INVALID_STATE_TRANSITION");

        let done = stripe.settle_refund(refunds[0]["id"].as_str().unwrap(), "succeeded");
        assert_eq!(deliver(&app, &stripe, "refund.updated", done.clone()).await, StatusCode::OK);
        // charge.refunded reports the same refund again: nothing more happens.
        let charge = wire::charge("ch_test_1", &intent_id, done["amount"].as_i64().unwrap(), "sar", done["amount"].as_i64().unwrap());
        assert_eq!(deliver(&app, &stripe, "charge.refunded", charge).await, StatusCode::OK);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Refunded);
        let refunded = payment(&app, &customer, &booking).await;
        assert_eq!((refunded.status(), refunded.amount_refunded), (pb::PaymentStatus::Refunded, refunded.amount_received.clone()));
        assert_eq!(economy_available(&app, &flight).await, 4);
        assert_eq!(stripe.refunds_created(), 1);
    }

    /// A failed refund: the booking is confirmed again (it is still paid) and the payment says why.
    async fn a_failed_refund_leaves_the_booking_confirmed(app: TestApp, stripe: StripeTestServer) {
        let (customer, flight, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await;
        refund(&app, &customer, &booking).await.expect("refund requested");
        app.run_jobs().await;
        let refund_id = stripe.refunds_of(&intent_id)[0]["id"].as_str().unwrap().to_owned();
        let failed = stripe.settle_refund(&refund_id, "failed");
        assert_eq!(deliver(&app, &stripe, "refund.failed", failed).await, StatusCode::OK);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
        let paid = payment(&app, &customer, &booking).await;
        assert_eq!((paid.status(), paid.failure_message.as_str()), (pb::PaymentStatus::Succeeded, "expired_or_canceled_card"));
        assert_eq!(economy_available(&app, &flight).await, 3);
    }

    /// Stripe answers too late: PROVIDER_TIMEOUT (retryable, key not used up); the retry with the same key
    /// gets the PaymentIntent the first attempt created, and Stripe holds exactly one.
    async fn a_provider_timeout_is_retried_without_a_second_intent(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_PAYMENT_TIMEOUT_MS", "300")]
    ) {
        let (customer, _, booking) = held(&app, 2).await;
        stripe.misbehave_next(Misbehaviour::SlowAnswer(Duration::from_millis(1500)));
        let key = idempotency_key();
        let timeout = ContractError::from_status(&pay(&app, &customer, &booking, &key).await.unwrap_err());
        assert_eq!((timeout.reason.as_str(), timeout.retryable), ("PROVIDER_TIMEOUT", true));
        assert_eq!(stripe.intents_created(), 1);

        let retried = pay(&app, &customer, &booking, &key).await.expect("the retry succeeds");
        assert!(!is_replayed(&retried));
        let retried = retried.into_inner();
        assert_eq!(stripe.intents_created(), 1);
        assert_eq!(stripe.intent(&retried.provider_reference)["id"], retried.provider_reference.as_str());

        stripe.misbehave_next(Misbehaviour::ServerError);
        let (customer, _, booking) = held(&app, 2).await;
        let unavailable = ContractError::from_status(&pay(&app, &customer, &booking, &idempotency_key()).await.unwrap_err());
        assert_eq!((unavailable.reason.as_str(), unavailable.retryable), ("PROVIDER_ERROR", true));
    }

    /// Cancelling while the payment is processing waits for its outcome; disputes and unknown events are
    /// acknowledged.
    async fn payments_in_flight_block_cancellation(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        let mut processing = stripe.intent(&intent_id);
        processing["status"] = "processing".into();
        assert_eq!(deliver(&app, &stripe, "payment_intent.processing", processing).await, StatusCode::OK);
        let refused = ContractError::from_status(&customer.cancel(&app, &booking).await.unwrap_err());
        assert_eq!((refused.reason.as_str(), refused.retryable), ("PAYMENT_PROCESSING", true));

        deliver(&app, &stripe, "payment_intent.succeeded", stripe.succeed(&intent_id)).await;
        let dispute = wire::dispute("dp_test_1", "ch_test_1", &intent_id, 100, "sar", "fraudulent");
        assert_eq!(deliver(&app, &stripe, "charge.dispute.created", dispute).await, StatusCode::OK);
        let noted = "SELECT COUNT(*) AS n FROM booking_history WHERE cause = 'DISPUTE_OPENED'";
        assert_eq!(count(&app, noted).await, 1);
        let unknown = serde_json::json!({"id": "x_1", "object": "something_new"});
        assert_eq!(deliver(&app, &stripe, "aerobook.something_new", unknown).await, StatusCode::OK);
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
    }

    /// A webhook that never arrived: reconciliation finds the payment at Stripe and confirms the booking;
    /// the operator RPC reports what it cannot fix.
    async fn reconciliation_repairs_lost_webhooks(app: TestApp, stripe: StripeTestServer) {
        let (customer, _, booking) = held(&app, 2).await;
        let intent_id = intent(&app, &customer, &booking).await;
        stripe.succeed(&intent_id);
        let operator = || request(pb::ReconcilePaymentsRequest {}, &[("authorization", app.bearer(Role::Operator).as_str())]);
        let report = app.payments().reconcile_payments(operator()).await.expect("reconciled").into_inner();
        assert_eq!((report.intents_checked, report.fixed, report.mismatches.len()), (1, 1, 0), "{report:?}");
        assert_eq!(status(&app, &customer, &booking).await, pb::BookingStatus::Confirmed);
        // Converged: a second run fixes nothing.
        assert_eq!(app.reconcile().await.fixed, 0);

        // More than one page of Stripe's list (100 per page): every PaymentIntent is read and fixed.
        let flight = flight_with_economy(&app, 60, "AB").await;
        for _ in 0..101 {
            let customer = Customer::new(&app);
            let booking = customer.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("hold placed");
            stripe.succeed(&intent(&app, &customer, &booking).await);
        }
        let report = app.reconcile().await;
        assert_eq!((report.intents_checked, report.fixed, report.mismatches.len()), (102, 101, 0));
        assert_eq!(economy_available(&app, &flight).await, 120 - 101);

        let customer_call = request(pb::ReconcilePaymentsRequest {}, &[("authorization", customer.bearer.as_str())]);
        assert_eq!(reason(&app.payments().reconcile_payments(customer_call).await.unwrap_err()), "FORBIDDEN");
    }
}
