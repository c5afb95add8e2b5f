//! SHA-256 in lower-case hex, for digests stored and compared as text.

use sha2::{Digest as _, Sha256};

/// The digest of `parts` written one after the other.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part);
    }
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_known_digest_whatever_the_split() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(&[b"abc"]), abc);
        assert_eq!(sha256_hex(&[b"a", b"bc"]), abc);
    }
}
