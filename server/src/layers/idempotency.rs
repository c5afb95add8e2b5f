//! The `idempotency-key` header: present and well-formed on every RPC whose proto policy requires it.
//! (What a key means — replay, conflict, in-progress — is the idempotency store's business.)

use http::HeaderMap;

use crate::domain::validation::FieldViolation;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Response metadata set to `true` when the response is a replay of a stored one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MIN_KEY_LEN: usize = 16;
pub const MAX_KEY_LEN: usize = 255;

/// A caller-chosen key, 16..=255 visible ASCII characters, naming one logical mutation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, FieldViolation> {
        let violation = |description: &str| FieldViolation {
            field: IDEMPOTENCY_KEY_HEADER.to_owned(),
            description: description.to_owned(),
        };
        let value = headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .ok_or_else(|| violation("this call requires an idempotency-key header"))?;
        let visible_ascii = value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b));
        if !visible_ascii || !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&value.len()) {
            return Err(violation("must be 16 to 255 visible ASCII characters, e.g. a UUID"));
        }
        Ok(Self(String::from_utf8_lossy(value.as_bytes()).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated key and the method it was sent to, handed to the service in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodKey {
    pub key: IdempotencyKey,
    /// Full gRPC method path, e.g. `/aerobook.v1.BookingService/CreateBooking`.
    pub method: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key(value: Option<&[u8]>) -> Result<IdempotencyKey, FieldViolation> {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        IdempotencyKey::from_headers(&headers)
    }

    #[test]
    fn accepts_16_to_255_visible_ascii_characters() {
        assert_eq!(key(Some(&[b'k'; 16])).unwrap().as_str().len(), 16);
        assert!(key(Some(&[b'~'; 255])).is_ok());
        assert!(key(Some(uuid::Uuid::new_v4().to_string().as_bytes())).is_ok());
    }

    #[test]
    fn rejects_missing_short_long_and_invisible_keys_naming_the_header() {
        for bad in [
            None,
            Some(&[b'k'; 15][..]),
            Some(&[b'k'; 256][..]),
            Some(b"has a space in it!!"),
            Some(b"tab\tinside-the-key"),
        ] {
            let violation = key(bad).unwrap_err();
            assert_eq!(violation.field, "idempotency-key");
        }
    }
}
