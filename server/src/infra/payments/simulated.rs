//! The embedded payment provider, used when no Stripe key is configured. It keeps PaymentIntents and
//! refunds in memory and, like Stripe, reports outcomes only through signed webhook events that it
//! delivers to the server's own `POST /webhooks/stripe` shortly after: every card succeeds, every refund
//! succeeds. So the whole flow (hold, pay, confirmed, refund) runs through the production code path.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use super::{IntentRecord, RefundRecord, wire};
use crate::{
    config::Secret,
    domain::payment::{Payment, RefundOrder},
    infra::clock::Clock,
};

struct Intent {
    record: IntentRecord,
    currency: String,
    metadata: Value,
    created: DateTime<Utc>,
}

struct Refund {
    record: RefundRecord,
    created: DateTime<Utc>,
}

#[derive(Default)]
struct Ledger {
    intents: HashMap<String, Intent>,
    refunds: HashMap<String, Refund>,
    /// Idempotency key -> the object it created.
    keys: HashMap<String, String>,
}

pub struct SimulatedProvider {
    signing_secret: Secret,
    delay: Duration,
    /// The server's webhook URL, known once it is bound.
    webhook_url: OnceLock<String>,
    ledger: Mutex<Ledger>,
    /// Deliveries scheduled and not yet answered.
    in_flight: watch::Sender<usize>,
    http: Client<HttpConnector, Full<Bytes>>,
    /// The server's clock: reconciliation compares creation times with its own "now".
    clock: Clock,
}

impl SimulatedProvider {
    pub fn new(signing_secret: Secret, delay: Duration, clock: Clock) -> Self {
        Self {
            signing_secret,
            delay,
            clock,
            webhook_url: OnceLock::new(),
            ledger: Mutex::default(),
            in_flight: watch::Sender::new(0),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Where events go: the server's own webhook endpoint.
    pub fn deliver_to(&self, webhook_url: String) {
        let _ = self.webhook_url.set(webhook_url);
    }

    /// Waits until every scheduled event has been delivered and answered.
    pub async fn settled(&self) {
        let mut in_flight = self.in_flight.subscribe();
        let _ = in_flight.wait_for(|n| *n == 0).await;
    }

    pub fn create_intent(self: &std::sync::Arc<Self>, payment: &Payment) -> IntentRecord {
        let key = payment.intent_key();
        let mut ledger = self.lock();
        if let Some(intent) = ledger.keys.get(&key).and_then(|id| ledger.intents.get(id)) {
            return intent.record.clone();
        }
        let id = format!("pi_sim_{}", Uuid::new_v4().simple());
        let record = IntentRecord {
            client_secret: Some(format!("{id}_secret_{}", Uuid::new_v4().simple())),
            id: id.clone(),
            status: "requires_payment_method".to_owned(),
            amount_minor: payment.amount.amount_minor,
            amount_received_minor: 0,
            payment_id: Some(payment.id),
        };
        let metadata = json!({
            "booking_id": payment.booking_id.to_string(),
            "payment_id": payment.id.to_string(),
            "correlation_id": payment.correlation_id,
        });
        let currency = payment.amount.currency.as_str().to_owned();
        ledger.keys.insert(key, id.clone());
        ledger
            .intents
            .insert(id.clone(), Intent { record: record.clone(), currency, metadata, created: self.clock.now() });
        drop(ledger);
        // The simulated customer pays at once; the provider reports it after the configured delay.
        self.schedule(move |ledger| {
            let intent = ledger.intents.get_mut(&id)?;
            intent.record.status = "succeeded".to_owned();
            intent.record.amount_received_minor = intent.record.amount_minor;
            let r = &intent.record;
            let object = wire::payment_intent(
                &r.id,
                r.client_secret.as_deref().unwrap_or_default(),
                r.amount_minor,
                &intent.currency,
                "succeeded",
                r.amount_received_minor,
                &intent.metadata,
                None,
            );
            Some(wire::event("payment_intent.succeeded", object))
        });
        record
    }

    pub fn refund(
        self: &std::sync::Arc<Self>,
        payment: &Payment,
        intent_id: &str,
        order: &RefundOrder,
    ) -> RefundRecord {
        let key = order.key.clone();
        let mut ledger = self.lock();
        if let Some(refund) = ledger.keys.get(&key).and_then(|id| ledger.refunds.get(id)) {
            return refund.record.clone();
        }
        let id = format!("re_sim_{}", Uuid::new_v4().simple());
        let record = RefundRecord {
            id: id.clone(),
            intent_id: Some(intent_id.to_owned()),
            payment_id: Some(payment.id),
            status: "pending".to_owned(),
            amount_minor: order.amount_minor,
            failure_reason: None,
        };
        let currency = payment.amount.currency.as_str().to_owned();
        ledger.keys.insert(key, id.clone());
        ledger.refunds.insert(id.clone(), Refund { record: record.clone(), created: self.clock.now() });
        drop(ledger);
        self.schedule(move |ledger| {
            let refund = ledger.refunds.get_mut(&id)?;
            refund.record.status = "succeeded".to_owned();
            let r = &refund.record;
            let metadata = json!({"payment_id": r.payment_id.map(|id| id.to_string())});
            let object = wire::refund(
                &r.id,
                r.intent_id.as_deref().unwrap_or_default(),
                r.amount_minor,
                &currency,
                "succeeded",
                &metadata,
                None,
            );
            Some(wire::event("refund.updated", object))
        });
        record
    }

    pub fn recent_intents(&self, since: DateTime<Utc>) -> Vec<IntentRecord> {
        let ledger = self.lock();
        let mut intents: Vec<_> = ledger.intents.values().filter(|i| i.created >= since).collect();
        intents.sort_by_key(|i| std::cmp::Reverse(i.created));
        intents.into_iter().map(|i| i.record.clone()).collect()
    }

    pub fn recent_refunds(&self, since: DateTime<Utc>) -> Vec<RefundRecord> {
        let ledger = self.lock();
        let mut refunds: Vec<_> = ledger.refunds.values().filter(|r| r.created >= since).collect();
        refunds.sort_by_key(|r| std::cmp::Reverse(r.created));
        refunds.into_iter().map(|r| r.record.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// After the delay, applies `settle` to the ledger and delivers the event it returns.
    fn schedule(self: &std::sync::Arc<Self>, settle: impl FnOnce(&mut Ledger) -> Option<Value> + Send + 'static) {
        self.in_flight.send_modify(|n| *n += 1);
        let provider = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(provider.delay).await;
            let event = settle(&mut provider.lock());
            if let Some(event) = event {
                provider.deliver(event).await;
            }
            provider.in_flight.send_modify(|n| *n -= 1);
        });
    }

    async fn deliver(&self, event: Value) {
        let Some(url) = self.webhook_url.get() else {
            tracing::warn!("simulated payments: no webhook address yet; reconciliation will pick the outcome up");
            return;
        };
        let payload = event.to_string();
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", wire::signature(&payload, self.signing_secret.expose()))
            .body(Full::new(Bytes::from(payload)));
        let outcome = match request {
            Ok(request) => self.http.request(request).await.map(|r| r.status()).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(status) if status.is_success() => {}
            Ok(status) => tracing::warn!(%status, "simulated payments: the webhook refused an event"),
            Err(error) => tracing::warn!(%error, "simulated payments: could not deliver an event"),
        }
    }
}
