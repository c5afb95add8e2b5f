//! What the configuration chooses at start: the token and pass signing keys, and the payment provider.

use std::sync::Arc;

use super::StartupError;
use crate::{
    config::{Config, PaymentMode, Secret},
    infra::{
        clock::Clock,
        passes::PassSigner,
        payments::{PaymentProvider, simulated::SimulatedProvider, stripe::StripeProvider},
        tokens::{self, AccessTokens},
    },
};

/// The configured signing keys, or a random key for development (tokens then die with the process).
/// The access-token issuer, and the waiting-room pass signer keyed from the same secrets (so that every
/// instance sharing the token key accepts every instance's passes).
pub(super) fn signing(config: &Config) -> (AccessTokens, PassSigner) {
    let previous = config.auth.jwt_previous_secret.as_ref().map(|s| s.expose().as_bytes());
    let current = match &config.auth.jwt_secret {
        Some(secret) => secret.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "AEROBOOK_JWT_SECRET is not set (embedded defaults only): signing tokens with a random key; they stop \
                 working at restart"
            );
            tokens::random_secret()
        }
    };
    (AccessTokens::new(&current, previous, config.auth.access_token_ttl), PassSigner::new(&current, previous))
}

/// The payment provider, the simulation behind it when there is one, and the webhook signing secrets.
pub(super) struct PaymentSetup {
    pub provider: PaymentProvider,
    pub simulated: Option<Arc<SimulatedProvider>>,
    pub webhook_secrets: Vec<Secret>,
}

/// Stripe, or the simulated provider signing its webhook events with the configured secret or a random
/// one (configuration allows the simulation only on the embedded database or when asked for explicitly).
pub(super) fn payment_provider(config: &Config, clock: &Clock) -> Result<PaymentSetup, StartupError> {
    let payments = &config.payments;
    if let PaymentMode::Stripe(key) = &payments.mode {
        let stripe = StripeProvider::new(
            key.expose(),
            payments.stripe_api_base.as_deref(),
            payments.provider_timeout,
            payments.answer_reserve,
        )?;
        tracing::info!("payments: Stripe");
        return Ok(PaymentSetup {
            provider: PaymentProvider::Stripe(Arc::new(stripe)),
            simulated: None,
            webhook_secrets: payments.webhook_secrets.clone(),
        });
    }
    let secrets = match payments.webhook_secrets.is_empty() {
        true => vec![Secret::new(format!("whsec_sim_{}", uuid::Uuid::new_v4().simple()))],
        false => payments.webhook_secrets.clone(),
    };
    tracing::warn!("payments are simulated: every card succeeds and nothing is charged");
    let simulated = Arc::new(SimulatedProvider::new(secrets[0].clone(), payments.simulated_delay, clock.clone()));
    Ok(PaymentSetup {
        provider: PaymentProvider::Simulated(simulated.clone()),
        simulated: Some(simulated),
        webhook_secrets: secrets,
    })
}
