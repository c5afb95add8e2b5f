//! Which payment provider the server talks to, and the limits on talking to it.

use std::time::Duration;

use super::{ConfigError, Secret, invalid, parse_in};

/// Which payment provider the server talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMode {
    /// Stripe, with its secret key.
    Stripe(Secret),
    /// The embedded simulation: every card succeeds. The default only on the embedded database; anywhere
    /// else it must be asked for (`AEROBOOK_PAYMENTS=simulated`), so production never takes fake payments.
    Simulated,
}

#[derive(Debug, Clone)]
pub struct PaymentConfig {
    pub mode: PaymentMode,
    /// Webhook signing secrets, all accepted (two during a rotation). Empty with the simulated provider,
    /// which signs with a random secret of its own.
    pub webhook_secrets: Vec<Secret>,
    /// Stripe's API base URL, overridden by tests.
    pub stripe_api_base: Option<String>,
    /// How long one call to the provider may take before it counts as `PROVIDER_TIMEOUT`; shorter than the
    /// call deadline, so the client hears `PROVIDER_TIMEOUT` (retry with the same key) rather than a bare
    /// deadline.
    pub provider_timeout: Duration,
    /// The part of a call's deadline a provider call leaves for the work after it and the answer: a call
    /// that reaches the provider late gives up this long before its deadline.
    pub answer_reserve: Duration,
    /// How long the simulated provider waits before reporting an outcome.
    pub simulated_delay: Duration,
    /// How often reconciliation compares recent provider objects with Aerobook's payments.
    pub reconcile_interval: Duration,
}

/// Share of the call deadline a provider call may take by default: the rest is left for the database work
/// around it and for the answer.
const PROVIDER_SHARE_OF_DEADLINE: (u32, u32) = (7, 10);

pub(super) fn payment_config<'a>(
    get: impl Fn(&str) -> Option<&'a str> + Copy,
    embedded: bool,
    request_timeout: Duration,
) -> Result<PaymentConfig, ConfigError> {
    let stripe_secret_key = get("STRIPE_SECRET_KEY").map(Secret::new);
    let mode = match (get("AEROBOOK_PAYMENTS"), stripe_secret_key) {
        (Some("stripe") | None, Some(key)) => PaymentMode::Stripe(key),
        (Some("stripe"), None) => {
            return Err(invalid("STRIPE_SECRET_KEY", "is required with AEROBOOK_PAYMENTS=stripe"));
        }
        (Some("simulated"), Some(_)) => {
            return Err(invalid("AEROBOOK_PAYMENTS", "is simulated, but STRIPE_SECRET_KEY is set: choose one"));
        }
        (Some("simulated"), None) => PaymentMode::Simulated,
        (None, None) if embedded => PaymentMode::Simulated,
        (None, None) => {
            return Err(invalid(
                "AEROBOOK_PAYMENTS",
                "no payment provider: set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET) for Stripe, or \
                 AEROBOOK_PAYMENTS=simulated to accept every card without charging (never in production)",
            ));
        }
        (Some(_), _) => return Err(invalid("AEROBOOK_PAYMENTS", "must be stripe or simulated")),
    };
    let webhook_secrets: Vec<Secret> = get("STRIPE_WEBHOOK_SECRET")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(Secret::new)
        .collect();
    if matches!(mode, PaymentMode::Stripe(_)) && webhook_secrets.is_empty() {
        return Err(invalid("STRIPE_WEBHOOK_SECRET", "is required with STRIPE_SECRET_KEY: webhooks confirm payments"));
    }
    let stripe_api_base = get("STRIPE_API_BASE").map(str::to_owned);
    if let Some(base) = &stripe_api_base
        && !base.starts_with("https://")
        && !base.starts_with("http://")
    {
        return Err(invalid("STRIPE_API_BASE", "must be an http:// or https:// URL"));
    }
    let (share, of) = PROVIDER_SHARE_OF_DEADLINE;
    let longest_provider_call = request_timeout * share / of;
    let provider_timeout = match get("AEROBOOK_PAYMENT_TIMEOUT_MS") {
        None => longest_provider_call.min(Duration::from_secs(7)),
        Some(_) => Duration::from_millis(parse_in(get, "AEROBOOK_PAYMENT_TIMEOUT_MS", 0, 100..=60_000)?),
    };
    if provider_timeout > longest_provider_call {
        return Err(invalid(
            "AEROBOOK_PAYMENT_TIMEOUT_MS",
            format!(
                "must be at most {}% of AEROBOOK_REQUEST_TIMEOUT_MS ({} ms here), so PROVIDER_TIMEOUT reaches the client",
                share * 100 / of,
                longest_provider_call.as_millis()
            ),
        ));
    }
    Ok(PaymentConfig {
        mode,
        webhook_secrets,
        stripe_api_base,
        provider_timeout,
        answer_reserve: request_timeout - longest_provider_call,
        simulated_delay: Duration::from_millis(parse_in(
            get,
            "AEROBOOK_SIMULATED_PAYMENT_DELAY_MS",
            2_000,
            0..=60_000,
        )?),
        reconcile_interval: Duration::from_secs(parse_in(
            get,
            "AEROBOOK_RECONCILE_INTERVAL_SECONDS",
            900,
            10..=86_400,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Config;

    fn source(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn payments_are_simulated_only_on_the_embedded_database_or_when_asked() {
        assert_eq!(Config::from_source(&BTreeMap::new()).unwrap().payments.mode, PaymentMode::Simulated);
        let postgres = ("DATABASE_URL", "postgres://db/x");
        let key = ("AEROBOOK_JWT_SECRET", "a-signing-key-of-at-least-32-bytes-0123456789");
        match Config::from_source(&source(&[postgres, key])) {
            Err(ConfigError::Invalid { key: "AEROBOOK_PAYMENTS", reason }) => {
                assert!(reason.contains("STRIPE_SECRET_KEY") && reason.contains("simulated"), "{reason}")
            }
            other => panic!("PostgreSQL without a provider must not start: {other:?}"),
        }
        let simulated = Config::from_source(&source(&[postgres, key, ("AEROBOOK_PAYMENTS", "simulated")])).unwrap();
        assert_eq!(simulated.payments.mode, PaymentMode::Simulated);
        let stripe = [postgres, key, ("STRIPE_SECRET_KEY", "sk_test_1"), ("STRIPE_WEBHOOK_SECRET", "whsec_1")];
        assert!(matches!(Config::from_source(&source(&stripe)).unwrap().payments.mode, PaymentMode::Stripe(_)));
        let both = [stripe[0], stripe[1], stripe[2], stripe[3], ("AEROBOOK_PAYMENTS", "simulated")];
        assert!(Config::from_source(&source(&both)).is_err(), "a Stripe key with simulated payments is ambiguous");
        assert!(Config::from_source(&source(&[("AEROBOOK_PAYMENTS", "stripe")])).is_err(), "stripe needs its key");
    }

    #[test]
    fn provider_calls_end_before_the_call_deadline() {
        let config = Config::from_source(&BTreeMap::new()).unwrap();
        assert!(config.payments.provider_timeout < config.limits.request_timeout);
        let short = Config::from_source(&source(&[("AEROBOOK_REQUEST_TIMEOUT_MS", "2000")])).unwrap();
        assert_eq!(short.payments.provider_timeout, Duration::from_millis(1400));
        let explicit = source(&[("AEROBOOK_REQUEST_TIMEOUT_MS", "2000"), ("AEROBOOK_PAYMENT_TIMEOUT_MS", "1500")]);
        assert!(Config::from_source(&explicit).is_err());
    }
}
