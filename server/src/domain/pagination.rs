//! Page sizes and opaque keyset page tokens.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Page tokens are short; anything longer is not one of ours.
const MAX_PAGE_TOKEN_LEN: usize = 128;

/// `0` means the default.
pub fn page_size(requested: i32) -> Result<u32, String> {
    page_size_within(requested, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
}

/// A list's own page size, for lists whose pages are larger than most; `0` means `default`.
pub fn page_size_within(requested: i32, default: u32, max: u32) -> Result<u32, String> {
    match u32::try_from(requested) {
        Ok(0) => Ok(default),
        Ok(size) if size <= max => Ok(size),
        _ => Err(format!("must be between 0 (default {default}) and {max}")),
    }
}

fn invalid() -> String {
    "is not a page token returned by this list".to_owned()
}

/// The text inside a page token; `None` for the empty token of a first page.
fn decode_token(token: &str) -> Result<Option<String>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > MAX_PAGE_TOKEN_LEN {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    String::from_utf8(raw).map(Some).map_err(|_| invalid())
}

/// Position after the last item of a page ordered by (time, id): the next page starts strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    const VERSION: &'static str = "c1";

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", Self::VERSION, self.at.timestamp_micros(), self.id.simple()))
    }

    /// Empty means the first page.
    pub fn decode(token: &str) -> Result<Option<Self>, String> {
        let Some(raw) = decode_token(token)? else { return Ok(None) };
        let mut parts = raw.splitn(3, ':');
        let (Some(Self::VERSION), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let at = micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(Some(Self { at, id }))
    }
}

/// Position after the last item of a page ordered by a unique text key (e.g. airport codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor(pub String);

impl KeyCursor {
    const VERSION: &'static str = "k1";

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", Self::VERSION, self.0))
    }

    /// Empty means the first page.
    pub fn decode(token: &str) -> Result<Option<Self>, String> {
        let Some(raw) = decode_token(token)? else { return Ok(None) };
        match raw.split_once(':') {
            Some((Self::VERSION, key)) if !key.is_empty() => Ok(Some(Self(key.to_owned()))),
            _ => Err(invalid()),
        }
    }

    /// The key a page token ends at, read by `parse` (the list's own key type); empty means the first
    /// page. A key `parse` refuses came from another list.
    pub fn decode_key<T, E>(token: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<Option<T>, String> {
        Self::decode(token)?
            .map(|Self(key)| parse(&key).map_err(|_| "is not a page token of this list".to_owned()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1), Ok(1));
        assert_eq!(page_size(100), Ok(100));
        assert!(page_size(101).is_err());
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let cursor = Cursor { at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(), id: Uuid::now_v7() };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(Some(cursor)));
        assert_eq!(Cursor::decode(""), Ok(None));
        let forged = URL_SAFE_NO_PAD.encode("c2:1:00000000000000000000000000000000");
        for bad in ["!!", "abc", forged.as_str(), &"A".repeat(200)] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_cursors_round_trip_and_other_lists_tokens_are_rejected() {
        let cursor = KeyCursor("NRT".into());
        assert_eq!(KeyCursor::decode(&cursor.encode()), Ok(Some(cursor)));
        assert_eq!(KeyCursor::decode(""), Ok(None));
        let upper = |key: &str| if key == key.to_uppercase() { Ok(key.to_owned()) } else { Err(()) };
        assert_eq!(KeyCursor::decode_key(&KeyCursor("NRT".into()).encode(), upper), Ok(Some("NRT".to_owned())));
        assert_eq!(KeyCursor::decode_key("", upper), Ok(None));
        assert!(KeyCursor::decode_key(&KeyCursor("nrt".into()).encode(), upper).is_err());
        let time_cursor = Cursor { at: Utc::now(), id: Uuid::now_v7() }.encode();
        for bad in ["!!", time_cursor.as_str(), &URL_SAFE_NO_PAD.encode("k1:")] {
            assert!(KeyCursor::decode(bad).is_err(), "{bad}");
        }
    }
}
