//! The idempotency keys a sold-out cabin's gate knows may be recorded for holds on that cabin, so that a
//! refusal needs to look a key up only when it may name a completed call.
//!
//! Two parts: a Bloom filter of the keys recorded when the gate closed (read from the database after the
//! refusal that closed it committed), and the exact digests of keys refused after that read. A key in
//! neither was never recorded for the cabin; a key in either may have been (the filter errs on the side
//! of "may", about 1% of the time), and is looked up.

use std::{collections::HashSet, sync::Arc};

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// A key's identity in the filter: the first half of SHA-256 over its caller and the key.
pub type KeyDigest = [u8; 16];

/// Keys one filter holds at most; a cabin with more keeps looking keys up (its filter would be too big to
/// hand every instance each second).
pub const MAX_FILTERED_KEYS: usize = 200_000;
/// Bits per key, rounded up to a power of two: 10 to 20 bits with [`PROBES`] give 1% false "may" or less.
const BITS_PER_KEY: usize = 10;
const MIN_BITS: usize = 1_024;
const PROBES: u64 = 7;

pub fn key_digest(caller_id: Uuid, key: &str) -> KeyDigest {
    let digest = Sha256::new().chain_update(caller_id.as_bytes()).chain_update(key.as_bytes()).finalize();
    let mut first_half = [0; 16];
    first_half.copy_from_slice(&digest[..16]);
    first_half
}

/// A Bloom filter over key digests, with a power-of-two number of bits.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyFilter {
    bits: Vec<u8>,
}

impl KeyFilter {
    /// A filter holding every digest; `None` past [`MAX_FILTERED_KEYS`].
    pub fn of(digests: &[KeyDigest]) -> Option<Self> {
        if digests.len() > MAX_FILTERED_KEYS {
            return None;
        }
        let bit_count = (digests.len() * BITS_PER_KEY).next_power_of_two().max(MIN_BITS);
        let mut filter = Self { bits: vec![0; bit_count / 8] };
        for digest in digests {
            for bit in filter.probes(digest) {
                filter.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        Some(filter)
    }

    /// A filter as [`Self::as_bytes`] gave it; `None` when `bytes` cannot be one.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_BITS / 8 && bytes.len().is_power_of_two()).then_some(Self { bits: bytes })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn may_hold(&self, digest: &KeyDigest) -> bool {
        self.probes(digest).all(|bit| self.bits[bit / 8] & (1 << (bit % 8)) != 0)
    }

    /// Double hashing: probe i is h1 + i * h2, h2 odd so the probes differ modulo a power of two.
    fn probes(&self, digest: &KeyDigest) -> impl Iterator<Item = usize> + use<> {
        let both = u128::from_le_bytes(*digest);
        let (h1, h2) = (both as u64, (both >> 64) as u64 | 1);
        let mask = (self.bits.len() * 8 - 1) as u64;
        (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & mask) as usize)
    }
}

/// What a closed gate knows of the cabin's recorded keys.
#[derive(Debug, Clone)]
pub struct KnownKeys {
    pub filter: Arc<KeyFilter>,
    /// Keys refused after the filter's keys were read.
    pub late: Arc<HashSet<KeyDigest>>,
}

impl KnownKeys {
    /// Whether the key may be recorded for the cabin: if not, no completed call can answer for it.
    pub fn may_hold(&self, digest: &KeyDigest) -> bool {
        self.late.contains(digest) || self.filter.may_hold(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(count: usize) -> Vec<KeyDigest> {
        let caller = Uuid::now_v7();
        (0..count).map(|n| key_digest(caller, &format!("key-{n}"))).collect()
    }

    #[test]
    fn every_key_put_in_is_found_and_few_others_are() {
        let inside = digests(20_000);
        let filter = KeyFilter::of(&inside).unwrap();
        assert!(inside.iter().all(|digest| filter.may_hold(digest)), "no false negative");
        let outside = digests(20_000);
        let false_positives = outside.iter().filter(|digest| filter.may_hold(digest)).count();
        assert!(false_positives < 200, "{false_positives} of 20,000 outside keys said to be in");
    }

    #[test]
    fn travels_as_bytes_and_refuses_bytes_that_are_not_a_filter() {
        let filter = KeyFilter::of(&digests(3)).unwrap();
        assert_eq!(filter.as_bytes().len(), MIN_BITS / 8);
        assert_eq!(KeyFilter::from_bytes(filter.as_bytes().to_vec()), Some(filter));
        assert_eq!(KeyFilter::from_bytes(vec![0; 100]), None);
        assert!(KeyFilter::of(&vec![[0; 16]; MAX_FILTERED_KEYS + 1]).is_none());
    }

    #[test]
    fn late_keys_are_known_beside_the_filter() {
        let [before, after] = [key_digest(Uuid::nil(), "before"), key_digest(Uuid::nil(), "after")];
        let known =
            KnownKeys { filter: Arc::new(KeyFilter::of(&[before]).unwrap()), late: Arc::new(HashSet::from([after])) };
        assert!(known.may_hold(&before) && known.may_hold(&after));
        assert!(!known.may_hold(&key_digest(Uuid::nil(), "never")));
        assert_ne!(key_digest(Uuid::nil(), "ab"), key_digest(Uuid::max(), "ab"), "the caller counts");
    }
}
