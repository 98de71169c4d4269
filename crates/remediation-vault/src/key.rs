//! The master key: 32 random bytes that wrap every connection's data key, and where it is
//! read from.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use remediation_core::secret_source::{EnvLookup, process_env, read_secret};
use schemars::JsonSchema;
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::error::VaultError;

/// The length of a master key and of a data key, in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// The master key of a vault: 32 random bytes, kept on the heap and wiped when dropped.
///
/// Its [`Debug`] shows only its [key id](MasterKey::kid), never the key.
pub struct MasterKey {
    key: SecretBox<[u8; KEY_LEN]>,
    kid: String,
}

impl MasterKey {
    /// A new random master key, from `rand`'s thread-local CSPRNG (seeded by the operating
    /// system). Export it with [`MasterKey::to_base64`] to store it.
    pub fn generate() -> Self {
        Self::from_box(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| rand::rng().fill_bytes(key)))
    }

    /// The key from its base64 text (standard alphabet, padded; surrounding whitespace is
    /// ignored). Refuses text that is not base64 or does not decode to exactly 32 bytes; the
    /// error never quotes the text.
    pub fn from_base64(text: &SecretString) -> Result<Self, VaultError> {
        let decoded = Zeroizing::new(
            STANDARD.decode(text.expose_secret().trim().as_bytes()).map_err(|_| VaultError::KeyNotBase64)?,
        );
        if decoded.len() != KEY_LEN {
            return Err(VaultError::KeyLength { len: decoded.len() });
        }
        Ok(Self::from_box(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| key.copy_from_slice(&decoded))))
    }

    /// The key from the environment variable or the file that `source` names, read through
    /// [`remediation_core::secret_source::read_secret`], then as [`MasterKey::from_base64`].
    pub fn load(source: &MasterKeySource) -> Result<Self, VaultError> {
        Self::load_with(source, &process_env)
    }

    /// As [`MasterKey::load`], with environment variables looked up through `lookup`, so that
    /// tests need not change the process environment.
    pub fn load_with(source: &MasterKeySource, lookup: EnvLookup<'_>) -> Result<Self, VaultError> {
        Self::from_base64(&source.read(lookup)?)
    }

    /// The key as base64 text, the form [`MasterKey::from_base64`] reads: to put a
    /// [generated](MasterKey::generate) key in a secrets manager.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.key.expose_secret()))
    }

    /// The key id: the first 8 hex digits of the SHA-256 of the key. Names the key in
    /// [`SealedSecrets`](crate::SealedSecrets) and errors; reveals nothing usable about a
    /// random 256-bit key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key bytes, for the AEAD.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        self.key.expose_secret()
    }

    /// A second copy of the key (it wipes itself too), for a keyring built from another.
    pub(crate) fn duplicate(&self) -> Self {
        Self::from_box(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| key.copy_from_slice(self.bytes())))
    }

    fn from_box(key: SecretBox<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::digest(key.expose_secret());
        let kid = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self { key, kid }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.kid)
    }
}

/// Where the master key is read from: exactly one of an environment variable and a file, each
/// holding the key in base64 (see [`MasterKey::from_base64`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MasterKeySource {
    /// The environment variable that holds the master key, in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key_env: Option<String>,
    /// The file that holds the master key, in base64 (a final newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
}

impl MasterKeySource {
    /// The text the environment variable or the file holds (a key, or a keyring), read through
    /// [`remediation_core::secret_source::read_secret`].
    pub(crate) fn read(&self, lookup: EnvLookup<'_>) -> Result<SecretString, VaultError> {
        read_secret(
            ("master_key_env", self.master_key_env.as_deref()),
            ("master_key_file", self.master_key_file.as_deref()),
            lookup,
        )
        .map_err(|source| VaultError::ReadKey { source })?
        .ok_or(VaultError::NoKeySource)
    }
}
