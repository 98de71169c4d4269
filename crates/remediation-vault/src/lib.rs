//! Envelope encryption of connection secrets at rest: what a store keeps of a connection's
//! credentials is unreadable without the master key, and bound to its tenant and connection.
//!
//! # The scheme
//!
//! One [`MasterKey`] (32 random bytes) per installation, kept outside the store. Each call to
//! [`seal`] draws a fresh random 32-byte **data key** and encrypts the connection's secrets (a
//! map of names to values, serialized as a JSON object) under it with XChaCha20-Poly1305 and a
//! random 24-byte nonce. The data key is then encrypted ("wrapped") under the master key, again
//! with XChaCha20-Poly1305 and its own random nonce. The result, [`SealedSecrets`], holds the
//! master key's id, the wrapped data key, the nonce and the ciphertext, all in base64; the
//! plaintext JSON is wiped from memory once encrypted. XChaCha20's 192-bit nonces make random
//! nonces safe without counting how many were used.
//!
//! # Associated data
//!
//! Both encryptions authenticate, without encrypting, the tenant and the connection id the
//! secrets belong to:
//!
//! - the wrapped data key: `"remediation/data-key/v1\0" + tenant + "\0" + connection_id`;
//! - the secrets: `"remediation/secrets/v1\0" + tenant + "\0" + connection_id`.
//!
//! So a sealed blob copied onto another tenant's or another connection's row does not open
//! there ([`VaultError::Tampered`]), any edited byte fails authentication the same way, and the
//! two prefixes keep a wrapped key and a secrets ciphertext from standing in for each other.
//! Names may not contain NUL, so each associated data names exactly one tenant and connection.
//!
//! # A copied store reveals nothing
//!
//! A store's rows, its dumps and its backups hold only ciphertext, random nonces and the key
//! id, the first 8 hex digits of the master key's SHA-256. Without the master key an attacker
//! holding all of it faces a 256-bit key: the data keys are themselves encrypted, and no secret
//! is derived from anything the store holds. [`open`] with the wrong key refuses up front by
//! the key id ([`VaultError::WrongMasterKey`]), and a forged key id gets no further than a
//! failed authentication.
//!
//! # Rotating the master key
//!
//! [`rewrap`] decrypts only the data key under the old master key and wraps it under the new
//! one; the secrets' nonce and ciphertext stay byte for byte as they were.
//! [`Keyring`] holds the keys in force during and after a rotation: the first seals, every
//! one opens (found by the key id a blob names), so nothing becomes unreadable midway.
//!
//! # Backing up the master key
//!
//! Keep the master key in a secrets manager (or an equivalent offline copy), never in the
//! store or alongside the store's backups: a backup that carries its own key protects nothing.
//! Losing the master key loses every connection's secrets: they cannot be recovered, only
//! entered again. [`MasterKey::generate`] makes a key and [`MasterKey::to_base64`] exports it;
//! [`MasterKey::load`] reads it back from an environment variable or a file.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use remediation_vault::{MasterKey, VaultError, open, seal};
//! use secrecy::{ExposeSecret as _, SecretString};
//!
//! let master = MasterKey::generate();
//! let secrets = BTreeMap::from([("api_token".to_owned(), SecretString::from("s3cr3t"))]);
//!
//! let sealed = seal(&master, "acme", "okta-prod", &secrets)?;
//! let stored = serde_json::to_string(&sealed)?; // what a store keeps
//!
//! let read = serde_json::from_str(&stored)?;
//! let opened = open(&master, "acme", "okta-prod", &read)?;
//! assert_eq!(opened["api_token"].expose_secret(), "s3cr3t");
//!
//! // The same blob does not open for another connection.
//! assert!(matches!(open(&master, "acme", "okta-test", &read), Err(VaultError::Tampered { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod key;
mod keyring;
mod seal;

pub use error::VaultError;
pub use key::{MasterKey, MasterKeySource};
pub use keyring::Keyring;
pub use seal::{SealedSecrets, open, rewrap, seal};
