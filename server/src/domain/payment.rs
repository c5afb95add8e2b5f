//! Card payments: a payment's own life cycle, the provider's outcomes in provider-neutral terms, and the
//! rule that decides what an outcome does, so that late, repeated or out-of-order events never move a
//! payment (or its booking) backwards.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::Money;

string_enum!(
    /// Where a payment is, as Aerobook records it.
    PaymentStatus {
        RequiresPaymentMethod => "REQUIRES_PAYMENT_METHOD",
        Processing => "PROCESSING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        Canceled => "CANCELED",
        RefundPending => "REFUND_PENDING",
        Refunded => "REFUNDED",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub status: PaymentStatus,
    /// The provider's PaymentIntent id; `None` until the provider has answered.
    pub provider_reference: Option<String>,
    pub client_secret: Option<String>,
    /// Correlation id of the call that started the payment; sent to the provider unchanged on retries.
    pub correlation_id: String,
    /// Bumped when a canceled PaymentIntent is replaced by a new one.
    pub attempt: i32,
    pub amount_received_minor: i64,
    pub amount_refunded_minor: i64,
    /// Why the last attempt failed, as the card network or provider put it.
    pub decline_code: Option<String>,
    pub failure_message: Option<String>,
    pub refund_reference: Option<String>,
    /// Numbers the refunds Aerobook has asked the provider for; 0 before the first.
    pub refund_attempt: i32,
    /// The change (its quote) this payment pays for; `None` for the booking's own payment.
    pub change_id: Option<Uuid>,
}

/// Part of a payment given back for a change that made the booking cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPart {
    /// The change (its quote) the money comes back for.
    pub change_id: Uuid,
    pub amount_minor: i64,
}

/// One refund request to the provider: how much, under which idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOrder {
    pub amount_minor: i64,
    pub key: String,
}

/// What the refunds reported so far do to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundProgress {
    /// Nothing new: a repeated or stale report.
    Unchanged,
    /// Part of what was received has been refunded; the booking stays as it is.
    Partial,
    /// Everything received has been refunded.
    Full,
}

impl Payment {
    /// The provider idempotency key for creating this payment's PaymentIntent: fixed per payment and
    /// attempt, so any retry (another call, a crash, a timeout) names the same PaymentIntent.
    pub fn intent_key(&self) -> String {
        format!("aerobook-payment-{}-intent-{}", self.id, self.attempt)
    }

    /// The provider idempotency key for the current refund attempt: a retry of the attempt (after a timeout
    /// or a crash) names the same refund, while a new attempt after a failed refund is a new request.
    pub fn refund_key(&self) -> String {
        format!("aerobook-payment-{}-refund-{}", self.id, self.refund_attempt)
    }

    /// Starts a new refund attempt of everything not yet refunded; the refund itself is sent by a job.
    pub fn start_refund(&mut self) {
        self.status = PaymentStatus::RefundPending;
        self.refund_attempt += 1;
        self.refund_reference = None;
        self.failure_message = None;
    }

    /// Applies the total refunded so far as the provider reports it. The total never goes down and never
    /// exceeds what was received; once it reaches what was received, the payment is refunded.
    pub fn record_refunded(&mut self, total_refunded_minor: i64) -> RefundProgress {
        let total = total_refunded_minor.clamp(self.amount_refunded_minor, self.amount_received_minor);
        let full = self.amount_received_minor > 0 && total == self.amount_received_minor;
        let unchanged = total == self.amount_refunded_minor && (!full || self.status == PaymentStatus::Refunded);
        self.amount_refunded_minor = total;
        if unchanged {
            RefundProgress::Unchanged
        } else if full {
            self.status = PaymentStatus::Refunded;
            RefundProgress::Full
        } else {
            RefundProgress::Partial
        }
    }

    /// What a full refund returns: everything captured and not yet refunded.
    pub fn refundable_minor(&self) -> i64 {
        self.amount_received_minor - self.amount_refunded_minor
    }

    /// The refund to ask the provider for: the current full refund attempt, or `part` under a key of its
    /// own (one per change and payment), never more than is left to refund.
    pub fn refund_order(&self, part: Option<&RefundPart>) -> RefundOrder {
        match part {
            None => RefundOrder { amount_minor: self.refundable_minor(), key: self.refund_key() },
            Some(part) => RefundOrder {
                amount_minor: part.amount_minor.min(self.refundable_minor()),
                key: format!("aerobook-payment-{}-change-{}-refund", self.id, part.change_id),
            },
        }
    }
}

/// Splits `amount_minor` given back for `change_id` over the payments that can refund it, newest first,
/// each up to what it has left; what they cannot cover (a booking paid at the desk) is returned beside.
pub fn split_refund(amount_minor: i64, change_id: Uuid, payments: &[Payment]) -> (Vec<(Uuid, RefundPart)>, i64) {
    let mut refundable: Vec<&Payment> =
        payments.iter().filter(|p| p.status == PaymentStatus::Succeeded && p.refundable_minor() > 0).collect();
    // Payment ids are UUIDv7: later payments sort last.
    refundable.sort_by_key(|p| std::cmp::Reverse(p.id));
    let mut left = amount_minor;
    let mut parts = Vec::new();
    for payment in refundable {
        if left <= 0 {
            break;
        }
        let amount_minor = left.min(payment.refundable_minor());
        parts.push((payment.id, RefundPart { change_id, amount_minor }));
        left -= amount_minor;
    }
    (parts, left.max(0))
}

/// Which payment an event is about: the id Aerobook put in the provider's metadata when it has one, and
/// the PaymentIntent id otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    pub payment_id: Option<Uuid>,
    pub intent_id: Option<String>,
}

/// An outcome reported by the payment provider (a webhook event, or found by reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderEvent {
    Processing {
        payment: PaymentRef,
    },
    Succeeded {
        payment: PaymentRef,
        amount_received_minor: i64,
    },
    Failed {
        payment: PaymentRef,
        decline_code: Option<String>,
        message: Option<String>,
    },
    Canceled {
        payment: PaymentRef,
    },
    /// With a `refund_id`, that one refund succeeded for `amount_refunded_minor`; without one (a charge's
    /// report), `amount_refunded_minor` is the charge's total refunded so far.
    RefundSucceeded {
        payment: PaymentRef,
        refund_id: Option<String>,
        amount_refunded_minor: i64,
    },
    RefundFailed {
        payment: PaymentRef,
        refund_id: Option<String>,
        reason: Option<String>,
    },
    DisputeOpened {
        payment: PaymentRef,
        reason: String,
    },
}

impl ProviderEvent {
    pub fn payment(&self) -> &PaymentRef {
        match self {
            ProviderEvent::Processing { payment }
            | ProviderEvent::Succeeded { payment, .. }
            | ProviderEvent::Failed { payment, .. }
            | ProviderEvent::Canceled { payment }
            | ProviderEvent::RefundSucceeded { payment, .. }
            | ProviderEvent::RefundFailed { payment, .. }
            | ProviderEvent::DisputeOpened { payment, .. } => payment,
        }
    }

    /// The payment status this event leads to from `current`, or `None` when it changes nothing: a
    /// repeated event, or one older than what is already known (e.g. `payment_failed` arriving after
    /// `succeeded`). A success is final for the charge: only a refund moves it on. For a succeeded refund
    /// this is where a full refund leads; whether it is full is [`Payment::record_refunded`]'s to say.
    pub fn next_status(&self, current: PaymentStatus) -> Option<PaymentStatus> {
        use PaymentStatus as S;
        let open = matches!(current, S::RequiresPaymentMethod | S::Processing | S::Failed);
        let next = match self {
            ProviderEvent::Processing { .. } if open => S::Processing,
            // A failed attempt may be retried with another card: the same PaymentIntent can still succeed.
            ProviderEvent::Succeeded { .. } if open => S::Succeeded,
            ProviderEvent::Failed { .. } if open => S::Failed,
            ProviderEvent::Canceled { .. } if open => S::Canceled,
            ProviderEvent::RefundSucceeded { .. } if matches!(current, S::Succeeded | S::RefundPending) => S::Refunded,
            ProviderEvent::RefundFailed { .. } if current == S::RefundPending => S::Succeeded,
            _ => return None,
        };
        // A repeated `payment_failed` still carries a newer decline code, so it counts as a change.
        (next != current || matches!(self, ProviderEvent::Failed { .. })).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> PaymentRef {
        PaymentRef { payment_id: Some(Uuid::nil()), intent_id: Some("pi_1".into()) }
    }

    #[test]
    fn success_is_never_undone_by_an_older_failure_or_cancellation() {
        let failed = ProviderEvent::Failed { payment: payment(), decline_code: None, message: None };
        let canceled = ProviderEvent::Canceled { payment: payment() };
        let processing = ProviderEvent::Processing { payment: payment() };
        for event in [&failed, &canceled, &processing] {
            assert_eq!(event.next_status(PaymentStatus::Succeeded), None, "{event:?}");
            assert_eq!(event.next_status(PaymentStatus::Refunded), None, "{event:?}");
        }
        assert_eq!(failed.next_status(PaymentStatus::Processing), Some(PaymentStatus::Failed));
        assert_eq!(failed.next_status(PaymentStatus::Failed), Some(PaymentStatus::Failed));
    }

    #[test]
    fn a_repeated_success_changes_nothing_and_a_retry_after_failure_succeeds() {
        let succeeded = ProviderEvent::Succeeded { payment: payment(), amount_received_minor: 100 };
        assert_eq!(succeeded.next_status(PaymentStatus::Succeeded), None);
        assert_eq!(succeeded.next_status(PaymentStatus::RefundPending), None);
        for from in [PaymentStatus::RequiresPaymentMethod, PaymentStatus::Processing, PaymentStatus::Failed] {
            assert_eq!(succeeded.next_status(from), Some(PaymentStatus::Succeeded));
        }
    }

    fn received(amount: i64) -> Payment {
        Payment {
            id: Uuid::nil(),
            booking_id: Uuid::nil(),
            user_id: Uuid::nil(),
            amount: Money::seat_price("EUR", amount).unwrap(),
            status: PaymentStatus::Succeeded,
            provider_reference: Some("pi_1".into()),
            client_secret: None,
            correlation_id: "c".into(),
            attempt: 1,
            amount_received_minor: amount,
            amount_refunded_minor: 0,
            decline_code: None,
            failure_message: None,
            refund_reference: None,
            refund_attempt: 0,
            change_id: None,
        }
    }

    #[test]
    fn partial_refunds_are_recorded_and_only_the_full_amount_refunds() {
        let mut payment = received(1_000);
        assert_eq!(payment.record_refunded(300), RefundProgress::Partial);
        assert_eq!((payment.status, payment.amount_refunded_minor), (PaymentStatus::Succeeded, 300));
        assert_eq!(payment.record_refunded(300), RefundProgress::Unchanged, "a repeated report");
        assert_eq!(payment.record_refunded(200), RefundProgress::Unchanged, "an older total never lowers it");
        assert_eq!(payment.record_refunded(5_000), RefundProgress::Full, "never more than received");
        assert_eq!((payment.status, payment.amount_refunded_minor), (PaymentStatus::Refunded, 1_000));
        assert_eq!(payment.record_refunded(1_000), RefundProgress::Unchanged);
    }

    #[test]
    fn each_refund_attempt_has_its_own_provider_key() {
        let mut payment = received(1_000);
        payment.start_refund();
        let first = payment.refund_key();
        assert_eq!(payment.refund_key(), first, "retries of one attempt share the key");
        payment.status = PaymentStatus::Succeeded;
        payment.start_refund();
        assert_ne!(payment.refund_key(), first);
        assert_eq!((payment.status, payment.refund_attempt), (PaymentStatus::RefundPending, 2));
    }

    #[test]
    fn a_change_s_refund_has_its_own_key_and_never_exceeds_what_is_left() {
        let mut payment = received(1_000);
        payment.amount_refunded_minor = 700;
        let change_id = Uuid::now_v7();
        let part = RefundPart { change_id, amount_minor: 500 };
        let order = payment.refund_order(Some(&part));
        assert_eq!(order.amount_minor, 300);
        assert!(order.key.contains(&change_id.to_string()), "{}", order.key);
        assert_ne!(order.key, payment.refund_order(None).key);
        assert_eq!(payment.refund_order(None).amount_minor, 300);
    }

    #[test]
    fn money_back_is_split_over_the_payments_newest_first() {
        let (older, mut newer, mut refunded) = (received(1_000), received(300), received(900));
        let [older_id, newer_id, refunded_id] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let older = Payment { id: older_id, ..older };
        (newer.id, refunded.id) = (newer_id, refunded_id);
        refunded.status = PaymentStatus::Refunded;
        let payments = [older, newer, refunded];
        let change_id = Uuid::now_v7();
        let part = |amount_minor| RefundPart { change_id, amount_minor };
        assert_eq!(split_refund(200, change_id, &payments), (vec![(newer_id, part(200))], 0));
        assert_eq!(split_refund(500, change_id, &payments), (vec![(newer_id, part(300)), (older_id, part(200))], 0));
        assert_eq!(
            split_refund(1_500, change_id, &payments),
            (vec![(newer_id, part(300)), (older_id, part(1_000))], 200),
            "what no card payment covers is left over"
        );
        assert_eq!(split_refund(100, change_id, &[]), (vec![], 100));
    }

    #[test]
    fn refunds_complete_or_fail_once() {
        let done = ProviderEvent::RefundSucceeded { payment: payment(), refund_id: None, amount_refunded_minor: 1 };
        let failed = ProviderEvent::RefundFailed { payment: payment(), refund_id: None, reason: None };
        assert_eq!(done.next_status(PaymentStatus::RefundPending), Some(PaymentStatus::Refunded));
        assert_eq!(done.next_status(PaymentStatus::Succeeded), Some(PaymentStatus::Refunded));
        assert_eq!(done.next_status(PaymentStatus::Refunded), None);
        assert_eq!(failed.next_status(PaymentStatus::RefundPending), Some(PaymentStatus::Succeeded));
        assert_eq!(failed.next_status(PaymentStatus::Refunded), None);
        assert_eq!(failed.next_status(PaymentStatus::Succeeded), None);
    }
}
