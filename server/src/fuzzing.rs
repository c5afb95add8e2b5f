//! Entry points for the fuzz targets (`server/fuzz/`, run by `scripts/fuzz`) and for the suite's replay
//! of their corpus (`server/tests/fuzz_corpus.rs`). Each takes arbitrary bytes, as an attacker would send
//! them, and must return whatever they are: every parser answers with a value or an error, never a panic.
//! Secrets and clocks are fixed, so a crash found once reproduces; the one exception is a webhook signed
//! by the target, which must carry the current time to pass the provider's tolerance.

use std::{collections::BTreeMap, path::Path, time::Duration};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

pub use crate::api::fuzzing::convert_request as request;
use crate::{
    config::{self, Config, Secret},
    domain::{
        flight::AirportCode,
        pagination::{Cursor, KeyCursor},
    },
    infra::{
        passes::PassSigner,
        payments::webhook,
        tokens::{self, AccessTokens},
    },
};

const SECRET: &[u8] = b"fuzzing-secret-of-thirty-two-bytes!";
const WEBHOOK_SECRET: &str = "whsec_fuzzing";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A webhook delivery: with the first byte even, the signature header is the first line and the payload
/// the rest; odd, the rest is the payload, signed as Stripe signs (now), so the event parser sees it.
pub fn webhook(bytes: &[u8]) {
    let Some((&mode, rest)) = bytes.split_first() else { return };
    let secrets = [Secret::new(WEBHOOK_SECRET)];
    let rest = text(rest);
    if mode % 2 == 0 {
        let (header, payload) = rest.split_once('\n').unwrap_or((&rest, ""));
        let _answer = webhook::verify(payload, Some(header), &secrets);
    } else {
        let timestamp = Utc::now().timestamp();
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()) else { return };
        mac.update(format!("{timestamp}.{rest}").as_bytes());
        let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let _answer = webhook::verify(&rest, Some(&format!("t={timestamp},v1={signature}")), &secrets);
    }
}

/// An access token as a client sends it, and a refresh token as the sign-in refresh reads it.
pub fn tokens(bytes: &[u8]) {
    let token = text(bytes);
    let tokens = AccessTokens::new(SECRET, Some(b"the-previous-fuzzing-secret-key!!"), Duration::from_secs(900));
    let _answer = tokens.verify(&token);
    let _digest = tokens::refresh_token_hash(&token);
}

/// A waiting-room pass and a sealed ticket.
pub fn passes(bytes: &[u8]) {
    let pass = text(bytes);
    let signer = PassSigner::new(SECRET, None);
    let now = DateTime::<Utc>::from_timestamp(1_798_761_600, 0).unwrap_or_default();
    let _answer = signer.verify(&pass, Uuid::nil(), Uuid::max(), now);
    let _ticket = signer.open_ticket(&pass);
}

/// A page token of each kind of list.
pub fn page_token(bytes: &[u8]) {
    let token = text(bytes);
    let _bookings = Cursor::decode(&token);
    let _airports = KeyCursor::decode_key(&token, AirportCode::parse);
    let _jobs = KeyCursor::decode_key(&token, Uuid::try_parse);
}

/// Configuration: the bytes as a config file, and as `KEY=value` lines of an environment.
pub fn configuration(bytes: &[u8]) {
    let text = text(bytes);
    if let Ok(file) = config::parse_file(&text, Path::new("fuzzing.toml")) {
        let _config = Config::from_source(&file);
    }
    let environment: BTreeMap<String, String> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let _config = Config::from_source(&environment);
}
