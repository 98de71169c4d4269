//! Canonical JSON (RFC 8785, JSON Canonicalization Scheme) and SHA-256 helpers shared by
//! snapshot hashes, plan hashes and the audit chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A SHA-256 digest as 64 lowercase hex characters.
pub type HexDigest = String;

/// The `prev_hash` of the first record of a chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Error raised when a value cannot be written as canonical JSON.
#[derive(Debug, thiserror::Error)]
#[error("value cannot be serialised as canonical JSON (RFC 8785)")]
pub struct CanonicalError(#[source] pub serde_json::Error);

/// Serialises `value` as RFC 8785 canonical JSON: object keys sorted by UTF-16 code units,
/// no insignificant whitespace, numbers in their shortest ECMAScript form.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    serde_jcs::to_string(value).map_err(CanonicalError)
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> HexDigest {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the canonical JSON form of `value`, as lowercase hex.
pub fn canonical_hash<T: Serialize + ?Sized>(value: &T) -> Result<HexDigest, CanonicalError> {
    Ok(sha256_hex(canonical_json(value)?.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, 2.50, "x"], "a": {"z": null, "é": true} }"#).expect("valid json");
        assert_eq!(canonical_json(&v).expect("canonical"), r#"{"a":{"z":null,"é":true},"b":[1,2.5,"x"]}"#);
    }

    #[test]
    fn hash_of_empty_object_is_stable() {
        // sha256("{}")
        assert_eq!(
            canonical_hash(&serde_json::json!({})).expect("hash"),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
