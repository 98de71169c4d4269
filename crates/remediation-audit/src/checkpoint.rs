//! The chain head kept outside the chain: a checkpoint of the last record's `seq` and `hash`,
//! sealed with an HMAC key, so that records cut off the end and a chain rewritten from the
//! start are detected.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use remediation_core::CheckpointVerdict;
use remediation_core::hash::HexDigest;
use schemars::JsonSchema;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretSlice, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::AuditError;

type HmacSha256 = Hmac<Sha256>;

/// The domain-separation prefix of the checkpoint MAC input; the `v1` changes if the input
/// ever does.
pub const CHECKPOINT_MAC_CONTEXT: &str = "remediation-audit-checkpoint-v1";

/// The exact bytes the checkpoint MAC is computed over:
/// `remediation-audit-checkpoint-v1\n{count}\n{head}` (no trailing newline), where `count` is
/// the last record's `seq` in decimal and `head` is its `hash`.
///
/// ```
/// assert_eq!(
///     remediation_audit::checkpoint_mac_input(3, "ab"),
///     "remediation-audit-checkpoint-v1\n3\nab"
/// );
/// ```
pub fn checkpoint_mac_input(count: u64, head: &str) -> String {
    format!("{CHECKPOINT_MAC_CONTEXT}\n{count}\n{head}")
}

/// The secret key that seals audit checkpoints (HMAC-SHA256).
///
/// Held in a [`SecretSlice`], so it is zeroed when dropped; its `Debug` prints
/// `AuditKey(<redacted>)` and nothing else.
pub struct AuditKey(SecretSlice<u8>);

impl AuditKey {
    /// The length of generated keys, and of keys read from hex: 32 bytes.
    pub const LEN: usize = 32;

    /// A new random key of [`AuditKey::LEN`] bytes from the operating system's generator
    /// (through `rand`'s thread-local CSPRNG, seeded from it).
    pub fn generate() -> AuditKey {
        let mut bytes = SecretSlice::from(vec![0_u8; Self::LEN]);
        rand::rng().fill_bytes(bytes.expose_secret_mut());
        AuditKey(bytes)
    }

    /// Parses a key written as exactly 64 hex characters (32 bytes); surrounding whitespace,
    /// such as a final newline, is ignored. Errors never quote the text.
    pub fn from_hex(text: &str) -> Result<AuditKey, AuditError> {
        let text = text.trim();
        if text.len() != Self::LEN * 2 {
            return Err(AuditError::InvalidKey { expected: "64 hex characters (32 bytes)" });
        }
        let mut bytes = SecretSlice::from(vec![0_u8; Self::LEN]);
        hex::decode_to_slice(text, bytes.expose_secret_mut())
            .map_err(|_| AuditError::InvalidKey { expected: "64 hex characters (32 bytes)" })?;
        Ok(AuditKey(bytes))
    }

    /// Wraps key bytes obtained elsewhere (a secrets manager, say). At least 16 bytes.
    pub fn from_secret(bytes: SecretSlice<u8>) -> Result<AuditKey, AuditError> {
        if bytes.expose_secret().len() < 16 {
            return Err(AuditError::InvalidKey { expected: "at least 16 bytes" });
        }
        Ok(AuditKey(bytes))
    }

    /// The key as 64 lowercase hex characters, still secret: for writing a new key file.
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(hex::encode(self.0.expose_secret()))
    }

    /// Seals a checkpoint over a chain whose last record has `seq` = `count` and
    /// `hash` = `head`.
    pub fn seal(&self, count: u64, head: &str) -> Checkpoint {
        let mac = self.mac(count, head).finalize().into_bytes();
        Checkpoint { count, head: head.to_owned(), mac: hex::encode(mac) }
    }

    /// True when `checkpoint.mac` is the MAC of its `count` and `head` under this key
    /// (compared in constant time).
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        let Ok(mac) = hex::decode(&checkpoint.mac) else {
            return false;
        };
        self.mac(checkpoint.count, &checkpoint.head).verify_slice(&mac).is_ok()
    }

    fn mac(&self, count: u64, head: &str) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(self.0.expose_secret()) {
            Ok(mac) => mac,
            // HMAC pads or hashes the key, so it accepts keys of every length.
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        };
        mac.update(checkpoint_mac_input(count, head).as_bytes());
        mac
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// The chain head as a store keeps it beside the chain: `count` (the last record's `seq`),
/// `head` (its `hash`) and `mac`, the lowercase hex HMAC-SHA256 of
/// [`checkpoint_mac_input`]`(count, head)` under the [`AuditKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Checkpoint {
    /// The `seq` of the last record (the number of records of an intact chain).
    pub count: u64,
    /// The `hash` of the last record.
    pub head: HexDigest,
    /// HMAC-SHA256 of the MAC input, 64 lowercase hex characters.
    pub mac: String,
}

/// Compares the chain's last record (`last`: its `seq` and `hash`, `None` for an empty
/// chain) with the `stored` checkpoint under `key`.
///
/// The MAC is checked first: a checkpoint that is not genuine says nothing about the
/// chain.
pub fn judge_checkpoint(
    key: Option<&AuditKey>,
    stored: Option<&Checkpoint>,
    last: Option<(u64, &str)>,
) -> CheckpointVerdict {
    let Some(key) = key else {
        return CheckpointVerdict::NotConfigured;
    };
    let Some(stored) = stored else {
        return if last.is_none() { CheckpointVerdict::Matches } else { CheckpointVerdict::Missing };
    };
    if !key.verifies(stored) {
        return CheckpointVerdict::BadMac;
    }
    match last {
        Some((seq, hash)) if seq == stored.count && hash == stored.head => CheckpointVerdict::Matches,
        _ => CheckpointVerdict::Mismatch {
            checkpoint_count: stored.count,
            checkpoint_head: stored.head.clone(),
            actual_count: last.map_or(0, |(seq, _)| seq),
            actual_head: last.map(|(_, hash)| hash.to_owned()),
        },
    }
}
