//! Waiting-room passes: `v1.<expiry in Unix seconds>.<signature>`, the signature an HMAC-SHA256 over the
//! version, the flight, the user and the expiry. The flight and the user are not written in the pass: the
//! booking call names both (its flight and its caller), so a pass for another flight or another user
//! simply fails to verify. Checking a pass needs no I/O, and every instance sharing the token signing key
//! accepts every instance's passes.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// Separates pass keys from token keys derived from the same secret.
const KEY_CONTEXT: &[u8] = b"aerobook waiting-room pass v1";
/// Longest pass accepted for checking: the version, a 64-bit expiry and a 32-byte signature fit well
/// within it, and a longer value is refused before any work.
const MAX_PASS_LEN: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("no waiting-room pass")]
    Missing,
    #[error("the waiting-room pass is not valid")]
    Invalid,
    #[error("the waiting-room pass expired")]
    Expired,
}

/// Signs and checks passes with a key derived from the token signing secret (and, while keys rotate,
/// also accepts passes signed with the previous one).
#[derive(Clone)]
pub struct PassSigner {
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

impl PassSigner {
    pub fn new(current_secret: &[u8], previous_secret: Option<&[u8]>) -> Self {
        Self { current: derive(current_secret), previous: previous_secret.map(derive) }
    }

    /// A pass for `user_id` on `flight_id`, valid until `expires_at` (to the second).
    pub fn issue(&self, flight_id: Uuid, user_id: Uuid, expires_at: DateTime<Utc>) -> String {
        let expiry = expires_at.timestamp();
        let signature = signature(&self.current, flight_id, user_id, expiry);
        format!("{VERSION}.{expiry}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Whether `pass` admits `user_id` to book on `flight_id` at `now`.
    pub fn verify(&self, pass: &str, flight_id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Result<(), PassError> {
        if pass.is_empty() {
            return Err(PassError::Missing);
        }
        if pass.len() > MAX_PASS_LEN {
            return Err(PassError::Invalid);
        }
        let mut parts = pass.split('.');
        let (Some(VERSION), Some(expiry), Some(signed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PassError::Invalid);
        };
        let expiry: i64 = expiry.parse().map_err(|_| PassError::Invalid)?;
        let signed = URL_SAFE_NO_PAD.decode(signed).map_err(|_| PassError::Invalid)?;
        let genuine = [Some(&self.current), self.previous.as_ref()].into_iter().flatten().any(|key| {
            let mut mac = key.clone();
            mac.update(&message(flight_id, user_id, expiry));
            // Compared in constant time.
            mac.verify_slice(&signed).is_ok()
        });
        if !genuine {
            return Err(PassError::Invalid);
        }
        // Checked after the signature, so an altered expiry reads as tampering rather than expiry.
        if now.timestamp() >= expiry {
            return Err(PassError::Expired);
        }
        Ok(())
    }
}

fn derive(secret: &[u8]) -> HmacSha256 {
    let mut derivation = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    derivation.update(KEY_CONTEXT);
    let key = derivation.finalize().into_bytes();
    HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length")
}

fn message(flight_id: Uuid, user_id: Uuid, expiry: i64) -> Vec<u8> {
    let mut message = Vec::with_capacity(2 + 16 + 16 + 8);
    message.extend_from_slice(VERSION.as_bytes());
    message.extend_from_slice(flight_id.as_bytes());
    message.extend_from_slice(user_id.as_bytes());
    message.extend_from_slice(&expiry.to_be_bytes());
    message
}

fn signature(key: &HmacSha256, flight_id: Uuid, user_id: Uuid, expiry: i64) -> Vec<u8> {
    let mut mac = key.clone();
    mac.update(&message(flight_id, user_id, expiry));
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn setup() -> (PassSigner, Uuid, Uuid, DateTime<Utc>) {
        (PassSigner::new(b"signing secret", None), Uuid::now_v7(), Uuid::now_v7(), Utc::now())
    }

    #[test]
    fn a_pass_admits_its_user_on_its_flight_until_it_expires() {
        let (signer, flight, user, now) = setup();
        let pass = signer.issue(flight, user, now + TimeDelta::minutes(5));
        assert_eq!(signer.verify(&pass, flight, user, now), Ok(()));
        assert_eq!(signer.verify(&pass, flight, user, now + TimeDelta::minutes(5)), Err(PassError::Expired));
        assert_eq!(signer.verify(&pass, Uuid::now_v7(), user, now), Err(PassError::Invalid), "another flight");
        assert_eq!(signer.verify(&pass, flight, Uuid::now_v7(), now), Err(PassError::Invalid), "another user");
        assert_eq!(signer.verify("", flight, user, now), Err(PassError::Missing));
    }

    #[test]
    fn a_tampered_or_foreign_pass_is_invalid() {
        let (signer, flight, user, now) = setup();
        let pass = signer.issue(flight, user, now + TimeDelta::minutes(5));
        let (head, signature) = pass.rsplit_once('.').unwrap();
        let later = format!("v1.{}.{signature}", (now + TimeDelta::days(1)).timestamp());
        assert_eq!(signer.verify(&later, flight, user, now), Err(PassError::Invalid), "a moved expiry");
        let mut flipped = signature.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{head}.{}", String::from_utf8(flipped).unwrap());
        assert_eq!(signer.verify(&flipped, flight, user, now), Err(PassError::Invalid), "a changed signature");
        let foreign = PassSigner::new(b"another secret", None).issue(flight, user, now + TimeDelta::minutes(5));
        assert_eq!(signer.verify(&foreign, flight, user, now), Err(PassError::Invalid), "another key");
        for junk in ["v1", "v2.1.abc", "v1.x.abc", "v1.1.!!", &"v1.1.".repeat(40)] {
            assert_eq!(signer.verify(junk, flight, user, now), Err(PassError::Invalid), "{junk}");
        }
    }

    #[test]
    fn passes_signed_with_the_previous_key_still_verify_during_a_rotation() {
        let (old, flight, user, now) = setup();
        let pass = old.issue(flight, user, now + TimeDelta::minutes(5));
        let rotated = PassSigner::new(b"new secret", Some(b"signing secret"));
        assert_eq!(rotated.verify(&pass, flight, user, now), Ok(()));
    }
}
