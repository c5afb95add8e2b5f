//! Verifying Stripe webhook deliveries and reading them as provider-neutral [`ProviderEvent`]s.
//!
//! Verification is async-stripe's: HMAC-SHA256 over `timestamp.payload`, any `v1` signature in the header
//! may match, and the timestamp must be within 300 s. Several signing secrets may be active at once (during
//! a rotation); the delivery is accepted when it verifies with any of them.

use stripe_types::Expandable;
use stripe_webhook::{EventObject, Webhook, WebhookError};

use super::stripe::{intent_record, refund_record};
use crate::{
    config::Secret,
    domain::payment::{PaymentRef, ProviderEvent},
};

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    pub id: String,
    pub event_type: String,
    /// `None` for event types Aerobook does not act on: they are acknowledged and ignored.
    pub event: Option<ProviderEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("missing Stripe-Signature header")]
    MissingSignature,
    #[error("no signature matches a configured signing secret")]
    BadSignature,
    #[error("the signature's timestamp is outside the 300 s tolerance")]
    Expired,
    #[error("the payload is not a Stripe event")]
    Malformed,
}

/// Verifies `payload` against `signature` with each secret in turn and reads the event.
pub fn verify(payload: &str, signature: Option<&str>, secrets: &[Secret]) -> Result<ReceivedEvent, WebhookRejection> {
    let signature = signature.ok_or(WebhookRejection::MissingSignature)?;
    let mut rejection = WebhookRejection::BadSignature;
    for secret in secrets {
        match Webhook::construct_event(payload, signature, secret.expose()) {
            Ok(event) => {
                return Ok(ReceivedEvent {
                    id: event.id.as_str().to_owned(),
                    event_type: event.type_.as_str().to_owned(),
                    event: provider_event(event.data.object),
                });
            }
            Err(WebhookError::BadSignature | WebhookError::BadKey) => continue,
            // An unreadable header (e.g. `t=x`) verifies with no secret: nothing about it is authentic.
            Err(WebhookError::BadHeader(_)) => break,
            // The signature matched: the delivery is authentic but too old, or async-stripe could not read it.
            Err(WebhookError::BadTimestamp(_)) => rejection = WebhookRejection::Expired,
            Err(WebhookError::BadParse(_)) => return ignorable(payload).ok_or(WebhookRejection::Malformed),
        }
        break;
    }
    Err(rejection)
}

/// Event types Aerobook acts on; their objects must be readable.
const HANDLED: &[&str] = &[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.processing",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refunded",
    "charge.dispute.created",
];

/// An authentic event async-stripe could not read (e.g. an object shape from a newer API version) is
/// acknowledged and ignored when Aerobook does not act on its type; otherwise it is refused, and Stripe
/// delivers it again.
fn ignorable(payload: &str) -> Option<ReceivedEvent> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: String,
        #[serde(rename = "type")]
        event_type: String,
    }
    let envelope: Envelope = serde_json::from_str(payload).ok()?;
    (!HANDLED.contains(&envelope.event_type.as_str())).then_some(ReceivedEvent {
        id: envelope.id,
        event_type: envelope.event_type,
        event: None,
    })
}

/// The outcome a Stripe object reports, for the event types Aerobook acts on.
fn provider_event(object: EventObject) -> Option<ProviderEvent> {
    let intent = |intent: Box<stripe_shared::PaymentIntent>| intent_record(*intent);
    let payment_of = |intent: Option<&Expandable<stripe_shared::PaymentIntent>>| PaymentRef {
        payment_id: None,
        intent_id: intent.map(|p| p.id().to_string()),
    };
    Some(match object {
        EventObject::PaymentIntentProcessing(i) => ProviderEvent::Processing { payment: intent(i).payment_ref() },
        EventObject::PaymentIntentCanceled(i) => ProviderEvent::Canceled { payment: intent(i).payment_ref() },
        EventObject::PaymentIntentSucceeded(i) => {
            let record = intent(i);
            ProviderEvent::Succeeded {
                payment: record.payment_ref(),
                amount_received_minor: record.amount_received_minor,
            }
        }
        EventObject::PaymentIntentPaymentFailed(mut i) => {
            let error = i.last_payment_error.take();
            ProviderEvent::Failed {
                payment: intent(i).payment_ref(),
                decline_code: error
                    .as_ref()
                    .and_then(|e| e.decline_code.clone().or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))),
                message: error.and_then(|e| e.message),
            }
        }
        EventObject::RefundCreated(refund) | EventObject::RefundUpdated(refund) | EventObject::RefundFailed(refund) => {
            refund_record(*refund).outcome()?
        }
        // Sent for partial refunds too: it carries the charge's total refunded so far.
        EventObject::ChargeRefunded(charge) => ProviderEvent::RefundSucceeded {
            payment: payment_of(charge.payment_intent.as_ref()),
            refund_id: None,
            amount_refunded_minor: charge.amount_refunded,
        },
        EventObject::ChargeDisputeCreated(dispute) => ProviderEvent::DisputeOpened {
            payment: payment_of(dispute.payment_intent.as_ref()),
            reason: dispute.reason.clone(),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::infra::payments::wire;

    fn secrets() -> Vec<Secret> {
        vec![Secret::new("whsec_old"), Secret::new("whsec_new")]
    }

    fn succeeded() -> String {
        let metadata = json!({"payment_id": Uuid::nil().to_string()});
        wire::event(
            "payment_intent.succeeded",
            wire::payment_intent("pi_1", "s", 500, "EUR", "succeeded", 500, &metadata, None),
        )
        .to_string()
    }

    #[test]
    fn any_active_secret_verifies_and_the_event_is_read() {
        let payload = succeeded();
        for secret in ["whsec_old", "whsec_new"] {
            let event = verify(&payload, Some(&wire::signature(&payload, secret)), &secrets()).expect("verifies");
            assert_eq!(event.event_type, "payment_intent.succeeded");
            assert_eq!(
                event.event,
                Some(ProviderEvent::Succeeded {
                    payment: PaymentRef { payment_id: Some(Uuid::nil()), intent_id: Some("pi_1".into()) },
                    amount_received_minor: 500,
                })
            );
        }
    }

    #[test]
    fn forged_altered_unsigned_and_stale_deliveries_are_rejected() {
        let payload = succeeded();
        let header = wire::signature(&payload, "whsec_other");
        assert_eq!(verify(&payload, Some(&header), &secrets()), Err(WebhookRejection::BadSignature));
        let signed = wire::signature(&payload, "whsec_new");
        let altered = payload.replace("500", "50");
        assert_eq!(verify(&altered, Some(&signed), &secrets()), Err(WebhookRejection::BadSignature));
        assert_eq!(verify(&payload, None, &secrets()), Err(WebhookRejection::MissingSignature));
        let stale = wire::signature_at(&payload, "whsec_new", chrono::Utc::now().timestamp() - 301);
        assert_eq!(verify(&payload, Some(&stale), &secrets()), Err(WebhookRejection::Expired));
    }

    /// Headers that cannot be verified at all are refused like wrong signatures, even for an event type
    /// Aerobook would acknowledge and ignore.
    #[test]
    fn unverifiable_headers_are_refused_for_every_event_type() {
        let ignored = wire::event("customer.created", json!({"id": "cus_1", "object": "customer"})).to_string();
        for payload in [succeeded(), ignored] {
            for header in ["t=x,v1=00", "t=,v1=00", "v1=00", "t=1", "garbage", "t=1,v1=zz", ""] {
                assert_eq!(verify(&payload, Some(header), &secrets()), Err(WebhookRejection::BadSignature), "{header}");
            }
        }
    }

    #[test]
    fn unknown_event_types_are_read_as_nothing_to_do() {
        // A type async-stripe knows, with an object it cannot read, is still acknowledged.
        let payload = wire::event("customer.created", json!({"id": "cus_1", "object": "customer"})).to_string();
        let event = verify(&payload, Some(&wire::signature(&payload, "whsec_old")), &secrets()).expect("verifies");
        assert_eq!((event.event_type.as_str(), event.event), ("customer.created", None));
        // One Aerobook acts on is refused, so Stripe delivers it again.
        let payload = wire::event("payment_intent.succeeded", json!({"id": "pi_1"})).to_string();
        let header = wire::signature(&payload, "whsec_old");
        assert_eq!(verify(&payload, Some(&header), &secrets()), Err(WebhookRejection::Malformed));
        // A type newer than the library, as Stripe adds them.
        let payload = wire::event("aerobook.future_event", json!({"id": "x_1", "object": "future"})).to_string();
        let event = verify(&payload, Some(&wire::signature(&payload, "whsec_old")), &secrets()).expect("verifies");
        assert_eq!((event.event_type.as_str(), event.event), ("aerobook.future_event", None));
    }
}
