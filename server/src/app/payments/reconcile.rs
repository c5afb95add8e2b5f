//! Reconciliation: the provider's recent PaymentIntents and refunds compared with Aerobook's payments.

use super::*;

impl Payments {
    /// Compares the provider's recent PaymentIntents and refunds with Aerobook's payments, applies the
    /// outcomes a lost webhook left behind (through the same rules as webhooks), and reports the rest.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile(&self) -> Result<ReconciliationReport, AppError> {
        let since = self.clock.now() - RECONCILE_WINDOW;
        let intents = self.provider.recent_intents(since).await?;
        let refunds = self.provider.recent_refunds(since).await?;
        let correlation_id = format!("reconcile-{}", Uuid::now_v7());
        let mut report = ReconciliationReport {
            intents_checked: intents.len(),
            refunds_checked: refunds.len(),
            ..Default::default()
        };
        let mismatch = |payment_id, provider_reference: &str, problem: String| Mismatch {
            payment_id,
            provider_reference: provider_reference.to_owned(),
            problem,
        };
        for intent in &intents {
            let Some(payment) = payments::find(self.store.conn(), &intent.payment_ref(), false).await? else {
                let problem = "PaymentIntent unknown to Aerobook".to_owned();
                report.mismatches.push(mismatch(intent.payment_id, &intent.id, problem));
                continue;
            };
            if payment.provider_reference.as_deref() != Some(intent.id.as_str()) {
                // An earlier, canceled attempt of the payment.
                continue;
            }
            if intent.amount_minor != payment.amount.amount_minor {
                let (there, here) = (intent.amount_minor, payment.amount.amount_minor);
                let problem = format!("amount {there} at the provider, {here} in Aerobook");
                report.mismatches.push(mismatch(Some(payment.id), &intent.id, problem));
            } else if let Some(event) = intent.outcome() {
                report.fixed += usize::from(self.fix(&payment, &event, &correlation_id).await?);
            }
        }
        for refund in &refunds {
            let Some(event) = refund.outcome() else { continue };
            match payments::find(self.store.conn(), event.payment(), false).await? {
                Some(payment) => report.fixed += usize::from(self.fix(&payment, &event, &correlation_id).await?),
                None => {
                    let problem = "refund of a payment unknown to Aerobook".to_owned();
                    report.mismatches.push(mismatch(refund.payment_id, &refund.id, problem));
                }
            }
        }
        let listed: HashSet<&str> = refunds.iter().map(|r| r.id.as_str()).collect();
        for payment in payments::with_refund_pending(self.store.conn()).await? {
            if let Some(refund_id) = payment.refund_reference.as_deref().filter(|id| !listed.contains(id)) {
                let problem = "refund pending in Aerobook but not found at the provider".to_owned();
                report.mismatches.push(mismatch(Some(payment.id), refund_id, problem));
            }
        }
        for m in &report.mismatches {
            tracing::warn!(payment_id = ?m.payment_id, provider_reference = m.provider_reference, problem = m.problem, "payment reconciliation mismatch");
        }
        let metrics = crate::infra::metrics::metrics();
        metrics.reconciliation_fixed.add(report.fixed as u64, &[]);
        metrics.reconciliation_mismatches.add(report.mismatches.len() as u64, &[]);
        tracing::info!(
            intents = report.intents_checked,
            refunds = report.refunds_checked,
            fixed = report.fixed,
            mismatches = report.mismatches.len(),
            "payments reconciled"
        );
        Ok(report)
    }

    /// Applies an outcome reconciliation found, when the payment does not show it yet.
    async fn fix(&self, payment: &Payment, event: &ProviderEvent, correlation_id: &str) -> Result<bool, AppError> {
        if event.next_status(payment.status).is_none() {
            return Ok(false);
        }
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        let applied = self.apply_event(&txn, event, correlation_id, now).await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.after_commit(applied.moved).await;
        if applied.changed {
            tracing::warn!(payment_id = %payment.id, ?event, "reconciliation applied an outcome whose webhook was lost");
        }
        Ok(applied.changed)
    }
}

/// One discrepancy between the provider and Aerobook that reconciliation could not fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub payment_id: Option<Uuid>,
    pub provider_reference: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconciliationReport {
    pub intents_checked: usize,
    pub refunds_checked: usize,
    /// Outcomes a lost webhook had left unapplied, applied now.
    pub fixed: usize,
    pub mismatches: Vec<Mismatch>,
}
