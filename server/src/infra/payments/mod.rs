//! The payment provider boundary. Use cases see [`PaymentProvider`] and provider-neutral records; Stripe
//! ([`stripe`]) and the embedded simulation ([`simulated`]) sit behind it. Both confirm payments the same
//! way: through signed webhook events to `POST /webhooks/stripe`, verified by [`webhook`].

pub mod simulated;
pub mod stripe;
pub mod webhook;
pub mod wire;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::payment::{Payment, PaymentRef, ProviderEvent, RefundOrder};

/// A PaymentIntent as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRecord {
    pub id: String,
    pub client_secret: Option<String>,
    /// The provider's status name (`requires_payment_method`, `processing`, `succeeded`, `canceled`...).
    pub status: String,
    pub amount_minor: i64,
    pub amount_received_minor: i64,
    /// The payment id Aerobook put in the metadata, when there is one.
    pub payment_id: Option<Uuid>,
}

impl IntentRecord {
    pub fn payment_ref(&self) -> PaymentRef {
        PaymentRef { payment_id: self.payment_id, intent_id: Some(self.id.clone()) }
    }

    /// The settled outcome this PaymentIntent shows, if any (a decline leaves it waiting for another card).
    pub fn outcome(&self) -> Option<ProviderEvent> {
        let payment = self.payment_ref();
        match self.status.as_str() {
            "succeeded" => {
                Some(ProviderEvent::Succeeded { payment, amount_received_minor: self.amount_received_minor })
            }
            "processing" => Some(ProviderEvent::Processing { payment }),
            "canceled" => Some(ProviderEvent::Canceled { payment }),
            _ => None,
        }
    }
}

/// A refund as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: String,
    pub intent_id: Option<String>,
    pub payment_id: Option<Uuid>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub amount_minor: i64,
    pub failure_reason: Option<String>,
}

impl RefundRecord {
    /// The refund's outcome; `None` while it is still pending.
    pub fn outcome(&self) -> Option<ProviderEvent> {
        let payment = PaymentRef { payment_id: self.payment_id, intent_id: self.intent_id.clone() };
        let refund_id = Some(self.id.clone());
        match self.status.as_str() {
            "succeeded" => {
                Some(ProviderEvent::RefundSucceeded { payment, refund_id, amount_refunded_minor: self.amount_minor })
            }
            "failed" | "canceled" => {
                Some(ProviderEvent::RefundFailed { payment, refund_id, reason: self.failure_reason.clone() })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// Network failures, 5xx, rate limiting, or a concurrent request with the same idempotency key.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the card was declined ({decline_code})")]
    Declined { decline_code: String, message: String },
    /// The provider refused the request itself: a bug or a misconfiguration on our side.
    #[error("the payment provider rejected the request: {0}")]
    Rejected(String),
}

/// Card payments: Stripe when a secret key is configured, the embedded simulation otherwise.
#[derive(Clone)]
pub enum PaymentProvider {
    Stripe(Arc<stripe::StripeProvider>),
    Simulated(Arc<simulated::SimulatedProvider>),
}

impl PaymentProvider {
    /// Creates (or, for a key already used, returns) the PaymentIntent of `payment`; the idempotency key
    /// and every parameter come from the payment row, so a retry sends exactly the same request.
    pub async fn create_intent(&self, payment: &Payment, description: &str) -> Result<IntentRecord, ProviderError> {
        match self {
            PaymentProvider::Stripe(stripe) => stripe.create_intent(payment, description).await,
            PaymentProvider::Simulated(simulated) => Ok(simulated.create_intent(payment)),
        }
    }

    /// Refunds `order.amount_minor` of the payment, once per `order.key` (an idempotency key).
    pub async fn refund(
        &self,
        payment: &Payment,
        intent_id: &str,
        order: &RefundOrder,
    ) -> Result<RefundRecord, ProviderError> {
        match self {
            PaymentProvider::Stripe(stripe) => stripe.refund(payment, intent_id, order).await,
            PaymentProvider::Simulated(simulated) => Ok(simulated.refund(payment, intent_id, order)),
        }
    }

    /// PaymentIntents created since `since`, newest first, at most [`RECONCILE_MAX_OBJECTS`].
    pub async fn recent_intents(&self, since: DateTime<Utc>) -> Result<Vec<IntentRecord>, ProviderError> {
        match self {
            PaymentProvider::Stripe(stripe) => stripe.recent_intents(since).await,
            PaymentProvider::Simulated(simulated) => Ok(simulated.recent_intents(since)),
        }
    }

    /// Refunds created since `since`, newest first, at most [`RECONCILE_MAX_OBJECTS`].
    pub async fn recent_refunds(&self, since: DateTime<Utc>) -> Result<Vec<RefundRecord>, ProviderError> {
        match self {
            PaymentProvider::Stripe(stripe) => stripe.recent_refunds(since).await,
            PaymentProvider::Simulated(simulated) => Ok(simulated.recent_refunds(since)),
        }
    }
}

/// The most objects of each kind one reconciliation reads from the provider (100 per page).
pub const RECONCILE_MAX_OBJECTS: usize = 5_000;
