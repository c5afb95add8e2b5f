//! Stripe through async-stripe: PaymentIntents and Refunds, each create sent once with an
//! `Idempotency-Key` fixed by the payment row, so a retry (ours, after a timeout or a crash) returns the
//! object the first attempt created instead of creating a second one.

use std::{collections::HashMap, str::FromStr as _, time::Duration};

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use stripe::{ApiErrorsType, Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest as _};
use stripe_core::{
    payment_intent::{CreatePaymentIntent, ListPaymentIntent},
    refund::{CreateRefund, ListRefund},
};
use stripe_types::{Currency, RangeQueryTs};
use uuid::Uuid;

use super::{IntentRecord, ProviderError, RECONCILE_MAX_OBJECTS, RefundRecord};
use crate::{
    domain::payment::{Payment, RefundOrder},
    infra::{deadline, telemetry},
};

/// Objects per list page (Stripe's maximum).
const PAGE_SIZE: i64 = 100;

pub struct StripeProvider {
    client: Client,
    /// Kept from a call's deadline for what follows the provider call (see [`Self::in_time`]).
    answer_reserve: Duration,
}

impl StripeProvider {
    /// `api_base` overrides Stripe's URL (tests point it at their Stripe test server).
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
        answer_reserve: Duration,
    ) -> Result<Self, ProviderError> {
        let mut builder = ClientBuilder::new(secret_key).timeout(timeout).request_strategy(RequestStrategy::Once);
        if let Some(base) = api_base {
            // async-stripe joins paths onto the base and expects it to end with a slash.
            builder = builder.url(format!("{}/", base.trim_end_matches('/')));
        }
        Ok(Self { client: builder.build().map_err(provider_error)?, answer_reserve })
    }

    /// Sends a create within the client's timeout and, during a call, within what the call's deadline
    /// leaves after [`Self::answer_reserve`]: work before it may have taken longer than usual, and the
    /// client must still hear `PROVIDER_TIMEOUT` (retry with the same key) rather than a bare deadline.
    async fn in_time<T>(&self, create: impl Future<Output = Result<T, StripeError>>) -> Result<T, ProviderError> {
        let sent = match deadline::remaining() {
            Some(left) => tokio::time::timeout(left.saturating_sub(self.answer_reserve), create)
                .await
                .unwrap_or(Err(StripeError::Timeout)),
            None => create.await,
        };
        sent.map_err(provider_error)
    }

    #[tracing::instrument(name = "stripe create_payment_intent", skip_all, fields(otel.kind = "client", peer.service = "stripe"))]
    pub async fn create_intent(&self, payment: &Payment, description: &str) -> Result<IntentRecord, ProviderError> {
        let mut metadata = HashMap::from([
            ("booking_id".to_owned(), payment.booking_id.to_string()),
            ("payment_id".to_owned(), payment.id.to_string()),
            ("correlation_id".to_owned(), payment.correlation_id.clone()),
        ]);
        with_trace_context(&mut metadata);
        let intent = CreatePaymentIntent::new(payment.amount.amount_minor, currency(payment))
            .description(description)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(payment.intent_key())?);
        let intent = self.in_time(intent.send(&self.client)).await?;
        Ok(intent_record(intent))
    }

    #[tracing::instrument(name = "stripe create_refund", skip_all, fields(otel.kind = "client", peer.service = "stripe"))]
    pub async fn refund(
        &self,
        payment: &Payment,
        intent_id: &str,
        order: &RefundOrder,
    ) -> Result<RefundRecord, ProviderError> {
        let mut metadata = HashMap::from([
            ("booking_id".to_owned(), payment.booking_id.to_string()),
            ("payment_id".to_owned(), payment.id.to_string()),
        ]);
        with_trace_context(&mut metadata);
        let refund = CreateRefund::new()
            .payment_intent(intent_id)
            .amount(order.amount_minor)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(order.key.clone())?);
        let refund = self.in_time(refund.send(&self.client)).await?;
        Ok(refund_record(refund))
    }

    /// Pages through async-stripe's list stream, newest first, up to [`RECONCILE_MAX_OBJECTS`].
    #[tracing::instrument(name = "stripe list_payment_intents", skip_all, fields(otel.kind = "client", peer.service = "stripe"))]
    pub async fn recent_intents(&self, since: DateTime<Utc>) -> Result<Vec<IntentRecord>, ProviderError> {
        let list = ListPaymentIntent::new().created(RangeQueryTs::gte(since.timestamp())).limit(PAGE_SIZE);
        let stream = list.paginate().stream(&self.client).take(RECONCILE_MAX_OBJECTS);
        stream.map_ok(intent_record).try_collect().await.map_err(provider_error)
    }

    #[tracing::instrument(name = "stripe list_refunds", skip_all, fields(otel.kind = "client", peer.service = "stripe"))]
    pub async fn recent_refunds(&self, since: DateTime<Utc>) -> Result<Vec<RefundRecord>, ProviderError> {
        let list = ListRefund::new().created(RangeQueryTs::gte(since.timestamp())).limit(PAGE_SIZE);
        let stream = list.paginate().stream(&self.client).take(RECONCILE_MAX_OBJECTS);
        stream.map_ok(refund_record).try_collect().await.map_err(provider_error)
    }
}

/// async-stripe sends no headers of ours, so the W3C trace context travels in the object's metadata: it is
/// on the object in Stripe's dashboard and in every webhook event about it.
fn with_trace_context(metadata: &mut HashMap<String, String>) {
    if let Some(traceparent) = telemetry::current_traceparent() {
        metadata.insert("traceparent".to_owned(), traceparent);
    }
}

fn currency(payment: &Payment) -> Currency {
    // Parsing cannot fail: an unknown code would become `Currency::Unknown`, but Aerobook only prices in
    // currencies from its supported list.
    let Ok(currency) = Currency::from_str(&payment.amount.currency.as_str().to_ascii_lowercase());
    currency
}

fn idempotent(key: String) -> Result<RequestStrategy, ProviderError> {
    let key = IdempotencyKey::new(key).map_err(|e| ProviderError::Rejected(format!("idempotency key: {e}")))?;
    Ok(RequestStrategy::Idempotent(key))
}

pub(super) fn intent_record(intent: stripe_shared::PaymentIntent) -> IntentRecord {
    IntentRecord {
        payment_id: intent.metadata.get("payment_id").and_then(|id| Uuid::parse_str(id).ok()),
        id: intent.id.as_str().to_owned(),
        client_secret: intent.client_secret,
        status: intent.status.as_str().to_owned(),
        amount_minor: intent.amount,
        amount_received_minor: intent.amount_received,
    }
}

pub(super) fn refund_record(refund: stripe_shared::Refund) -> RefundRecord {
    RefundRecord {
        payment_id: refund.metadata.as_ref().and_then(|m| m.get("payment_id")).and_then(|id| Uuid::parse_str(id).ok()),
        intent_id: refund.payment_intent.as_ref().map(|p| p.id().to_string()),
        id: refund.id.as_str().to_owned(),
        status: refund.status.unwrap_or_else(|| "pending".to_owned()),
        amount_minor: refund.amount,
        failure_reason: refund.failure_reason,
    }
}

fn provider_error(error: StripeError) -> ProviderError {
    match error {
        StripeError::Timeout => ProviderError::Timeout,
        StripeError::ClientError(cause) => ProviderError::Unavailable(cause),
        StripeError::Stripe(error, status) => {
            let message = error.message.clone().unwrap_or_default();
            let code = error.code.as_ref().map(|c| c.as_str().to_owned());
            match (error.type_, status) {
                (ApiErrorsType::CardError, _) => ProviderError::Declined {
                    decline_code: error.decline_code.or(code).unwrap_or_else(|| "card_declined".to_owned()),
                    message,
                },
                // 409: the same idempotency key is still being processed; 429: rate limited.
                (_, 409 | 429 | 500..) => ProviderError::Unavailable(format!("{status}: {message}")),
                (kind, _) => ProviderError::Rejected(format!("{status} {}: {message}", kind.as_str())),
            }
        }
        StripeError::JSONDeserialize(cause) => ProviderError::Rejected(format!("unreadable answer: {cause}")),
        StripeError::ConfigError(cause) => ProviderError::Rejected(format!("configuration: {cause}")),
    }
}
