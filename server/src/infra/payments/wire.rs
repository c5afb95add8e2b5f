//! Stripe's JSON objects and signed event envelopes, as Stripe sends them, for the two stand-ins that
//! must speak Stripe without Stripe: the embedded simulated provider and the tests' Stripe test server.
//! Each object carries the fields async-stripe requires; the tests below parse them with async-stripe.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

/// A PaymentIntent. `last_error` is `(decline_code, message)` of the last failed attempt.
#[allow(clippy::too_many_arguments)]
pub fn payment_intent(
    id: &str,
    client_secret: &str,
    amount_minor: i64,
    currency: &str,
    status: &str,
    amount_received_minor: i64,
    metadata: &Value,
    last_error: Option<(&str, &str)>,
) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount_minor,
        "amount_capturable": 0,
        "amount_received": amount_received_minor,
        "capture_method": "automatic",
        "client_secret": client_secret,
        "confirmation_method": "automatic",
        "created": Utc::now().timestamp(),
        "currency": currency.to_ascii_lowercase(),
        "livemode": false,
        "metadata": metadata,
        "payment_method_types": ["card"],
        "status": status,
        "last_payment_error": last_error.map(|(decline_code, message)| json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": message,
        })),
    })
}

/// A refund of a PaymentIntent.
pub fn refund(
    id: &str,
    intent_id: &str,
    amount_minor: i64,
    currency: &str,
    status: &str,
    metadata: &Value,
    failure_reason: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount_minor,
        "created": Utc::now().timestamp(),
        "currency": currency.to_ascii_lowercase(),
        "metadata": metadata,
        "payment_intent": intent_id,
        "status": status,
        "failure_reason": failure_reason,
    })
}

/// The charge of a PaymentIntent, as `charge.refunded` carries it.
pub fn charge(id: &str, intent_id: &str, amount_minor: i64, currency: &str, amount_refunded_minor: i64) -> Value {
    json!({
        "id": id,
        "object": "charge",
        "amount": amount_minor,
        "amount_captured": amount_minor,
        "amount_refunded": amount_refunded_minor,
        "billing_details": {},
        "captured": true,
        "created": Utc::now().timestamp(),
        "currency": currency.to_ascii_lowercase(),
        "disputed": false,
        "livemode": false,
        "metadata": {},
        "paid": true,
        "payment_intent": intent_id,
        "refunded": amount_refunded_minor >= amount_minor,
        "status": "succeeded",
    })
}

/// A dispute opened on the charge of a PaymentIntent.
pub fn dispute(id: &str, charge_id: &str, intent_id: &str, amount_minor: i64, currency: &str, reason: &str) -> Value {
    json!({
        "id": id,
        "object": "dispute",
        "amount": amount_minor,
        "balance_transactions": [],
        "charge": charge_id,
        "created": Utc::now().timestamp(),
        "currency": currency.to_ascii_lowercase(),
        "enhanced_eligibility_types": [],
        "evidence": {"enhanced_evidence": {}},
        "evidence_details": {
            "enhanced_eligibility": {},
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0,
        },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "payment_intent": intent_id,
        "reason": reason,
        "status": "needs_response",
    })
}

/// An event envelope around `object`, with a fresh event id.
pub fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", Uuid::new_v4().simple()),
        "object": "event",
        "created": Utc::now().timestamp(),
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    })
}

/// Stripe's error body.
pub fn error(error_type: &str, code: Option<&str>, decline_code: Option<&str>, message: &str) -> Value {
    json!({"error": {"type": error_type, "code": code, "decline_code": decline_code, "message": message}})
}

/// The `Stripe-Signature` header for `payload`, signed now with `secret`.
pub fn signature(payload: &str, secret: &str) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, secret, None)
}

/// The `Stripe-Signature` header for `payload`, signed with `secret` as if at `timestamp` (Unix seconds).
pub fn signature_at(payload: &str, secret: &str, timestamp: i64) -> String {
    stripe_webhook::Webhook::generate_test_header(payload, secret, Some(timestamp))
}

#[cfg(test)]
mod tests {
    use stripe_webhook::{EventObject, Webhook};

    use super::*;

    fn parse(event_type: &str, object: Value) -> EventObject {
        let payload = event(event_type, object).to_string();
        let header = signature(&payload, "whsec_test");
        Webhook::construct_event(&payload, &header, "whsec_test").expect("a valid Stripe event").data.object
    }

    #[test]
    fn every_object_parses_as_async_stripe_expects() {
        let metadata = json!({"payment_id": Uuid::nil().to_string()});
        let intent = payment_intent("pi_1", "pi_1_secret", 1000, "EUR", "succeeded", 1000, &metadata, None);
        assert!(matches!(parse("payment_intent.succeeded", intent), EventObject::PaymentIntentSucceeded(pi)
            if pi.amount_received == 1000 && pi.metadata["payment_id"] == Uuid::nil().to_string()));
        let declined = payment_intent(
            "pi_1",
            "s",
            1000,
            "EUR",
            "requires_payment_method",
            0,
            &metadata,
            Some(("insufficient_funds", "Your card has insufficient funds.")),
        );
        assert!(matches!(parse("payment_intent.payment_failed", declined), EventObject::PaymentIntentPaymentFailed(pi)
            if pi.last_payment_error.as_ref().and_then(|e| e.decline_code.as_deref()) == Some("insufficient_funds")));
        let refund = refund("re_1", "pi_1", 1000, "EUR", "failed", &metadata, Some("expired_or_canceled_card"));
        assert!(
            matches!(parse("refund.failed", refund), EventObject::RefundFailed(r) if r.status.as_deref() == Some("failed"))
        );
        assert!(matches!(parse("charge.refunded", charge("ch_1", "pi_1", 1000, "EUR", 1000)),
            EventObject::ChargeRefunded(c) if c.refunded));
        assert!(matches!(parse("charge.dispute.created", dispute("dp_1", "ch_1", "pi_1", 1000, "EUR", "fraudulent")),
            EventObject::ChargeDisputeCreated(d) if d.reason == "fraudulent"));
    }
}
