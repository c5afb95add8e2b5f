//! Waiting-room passes and tickets, signed so that checking them needs no I/O, and every instance sharing
//! the token signing key accepts every instance's.
//!
//! A pass is `v1.<expiry in Unix seconds>.<signature>`, the signature an HMAC-SHA256 over the version, the
//! flight, the user and the expiry. The flight and the user are not written in the pass: the booking call
//! names both (its flight and its caller), so a pass for another flight or another user simply fails to
//! verify.
//!
//! A ticket carries what watching it needs (its queue, its owner, its queue number when it has one), sealed
//! with a truncated HMAC, so ten thousand watchers opening their streams at once ask the queue nothing.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use crate::domain::waiting_room::MAX_PASS_CHARS;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// Separates pass keys from token keys derived from the same secret.
const KEY_CONTEXT: &[u8] = b"aerobook waiting-room pass v1";

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
        if pass.len() > MAX_PASS_CHARS {
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

/// What a ticket says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketClaims {
    pub flight_id: Uuid,
    pub ticket_id: Uuid,
    pub user_id: Uuid,
    /// Its queue number; `None` for an early arrival before the room opened.
    pub number: Option<u64>,
    /// Issued by the queue an instance kept on its own while Redis was away.
    pub in_fallback: bool,
}

/// Tag, flags, flight, ticket, user, number.
const TICKET_BODY: usize = 1 + 1 + 16 + 16 + 16 + 8;
/// Bytes of the HMAC kept: forging one takes 2^128 tries.
const TICKET_MAC: usize = 16;
const TICKET_TAG: u8 = 1;

impl PassSigner {
    /// The ticket's text form (URL-safe, 99 characters).
    pub fn seal_ticket(&self, claims: &TicketClaims) -> String {
        let mut bytes = Vec::with_capacity(TICKET_BODY + TICKET_MAC);
        bytes.push(TICKET_TAG);
        bytes.push(u8::from(claims.in_fallback));
        bytes.extend_from_slice(claims.flight_id.as_bytes());
        bytes.extend_from_slice(claims.ticket_id.as_bytes());
        bytes.extend_from_slice(claims.user_id.as_bytes());
        bytes.extend_from_slice(&claims.number.unwrap_or(0).to_be_bytes());
        let mut mac = self.current.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..TICKET_MAC]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The claims of a ticket this deployment sealed; `None` for anything else.
    pub fn open_ticket(&self, text: &str) -> Option<TicketClaims> {
        if text.len() > MAX_PASS_CHARS * 2 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        if bytes.len() != TICKET_BODY + TICKET_MAC || bytes[0] != TICKET_TAG {
            return None;
        }
        let (body, seal) = bytes.split_at(TICKET_BODY);
        let genuine = [Some(&self.current), self.previous.as_ref()].into_iter().flatten().any(|key| {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_truncated_left(seal).is_ok()
        });
        if !genuine {
            return None;
        }
        let uuid = |at: usize| Uuid::from_slice(&body[at..at + 16]).ok();
        let number = u64::from_be_bytes(body[50..58].try_into().ok()?);
        Some(TicketClaims {
            flight_id: uuid(2)?,
            ticket_id: uuid(18)?,
            user_id: uuid(34)?,
            number: (number > 0).then_some(number),
            in_fallback: body[1] == 1,
        })
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
    fn a_ticket_reads_back_as_sealed_and_not_at_all_once_altered() {
        let signer = PassSigner::new(b"signing secret", None);
        let claims = TicketClaims {
            flight_id: Uuid::now_v7(),
            ticket_id: Uuid::new_v4(),
            user_id: Uuid::now_v7(),
            number: Some(42),
            in_fallback: true,
        };
        let ticket = signer.seal_ticket(&claims);
        assert_eq!(ticket.len(), 99);
        assert_eq!(signer.open_ticket(&ticket), Some(claims));
        let early = TicketClaims { number: None, in_fallback: false, ..claims };
        assert_eq!(signer.open_ticket(&signer.seal_ticket(&early)), Some(early));
        let mut altered = ticket.clone().into_bytes();
        altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(signer.open_ticket(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(PassSigner::new(b"another secret", None).open_ticket(&ticket), None);
        assert_eq!(signer.open_ticket("not-a-ticket"), None);
        assert_eq!(
            signer.open_ticket(&signer.issue(claims.flight_id, claims.user_id, Utc::now())),
            None,
            "a pass is not a ticket"
        );
    }

    #[test]
    fn passes_signed_with_the_previous_key_still_verify_during_a_rotation() {
        let (old, flight, user, now) = setup();
        let pass = old.issue(flight, user, now + TimeDelta::minutes(5));
        let rotated = PassSigner::new(b"new secret", Some(b"signing secret"));
        assert_eq!(rotated.verify(&pass, flight, user, now), Ok(()));
    }
}
