//! `PaymentService` conversions.

use super::*;

pub fn payment_to_proto(payment: &Payment) -> pb::Payment {
    let money = |amount_minor| Some(money_to_proto(Money { amount_minor, ..payment.amount }));
    pb::Payment {
        id: payment.id.to_string(),
        booking_id: payment.booking_id.to_string(),
        provider_reference: payment.provider_reference.clone().unwrap_or_default(),
        client_secret: payment.client_secret.clone().unwrap_or_default(),
        amount: Some(money_to_proto(payment.amount)),
        status: payment_status_to_proto(payment.status) as i32,
        decline_code: payment.decline_code.clone().unwrap_or_default(),
        failure_message: payment.failure_message.clone().unwrap_or_default(),
        amount_received: money(payment.amount_received_minor),
        amount_refunded: money(payment.amount_refunded_minor),
    }
}

fn payment_status_to_proto(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::RequiresPaymentMethod => pb::PaymentStatus::RequiresPaymentMethod,
        PaymentStatus::Processing => pb::PaymentStatus::Processing,
        PaymentStatus::Succeeded => pb::PaymentStatus::Succeeded,
        PaymentStatus::Failed => pb::PaymentStatus::Failed,
        PaymentStatus::Canceled => pb::PaymentStatus::Canceled,
        PaymentStatus::RefundPending => pb::PaymentStatus::RefundPending,
        PaymentStatus::Refunded => pb::PaymentStatus::Refunded,
    }
}

pub fn reconciliation_to_proto(report: &ReconciliationReport) -> pb::ReconcilePaymentsResponse {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    pb::ReconcilePaymentsResponse {
        intents_checked: count(report.intents_checked),
        refunds_checked: count(report.refunds_checked),
        fixed: count(report.fixed),
        mismatches: report
            .mismatches
            .iter()
            .map(|m| pb::PaymentMismatch {
                payment_id: m.payment_id.map(|id| id.to_string()).unwrap_or_default(),
                provider_reference: m.provider_reference.clone(),
                problem: m.problem.clone(),
            })
            .collect(),
    }
}
