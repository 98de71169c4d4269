//! API bearer tokens: generated here, shown once, kept in the store only as a SHA-256 hash.

use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// The prefix of every token, so a leaked one is recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "rmt_";

/// A new random token: the prefix and 64 hex characters (32 bytes from the OS-seeded CSPRNG).
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    bytes.fill(0);
    SecretString::from(token)
}

/// The hex SHA-256 of `token`, as the store keeps it.
pub fn hash(token: &SecretString) -> String {
    hex::encode(Sha256::digest(token.expose_secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (generate(), generate());
        assert!(a.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose_secret().len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert!(!format!("{a:?}").contains(&a.expose_secret()[4..]), "Debug must redact");
    }
}
