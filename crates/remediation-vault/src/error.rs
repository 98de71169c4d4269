//! Why a master key cannot be loaded or a connection's secrets cannot be sealed or opened.

use remediation_core::secret_source::SecretSourceError;

/// Why a master key cannot be loaded, or a connection's secrets cannot be sealed, opened or
/// rewrapped. No variant holds key material or a secret: only key ids, lengths, names of
/// tenants and connections, and the names of the fields at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The master key text is not base64.
    #[error(
        "the master key is not base64 (standard alphabet, padded); expected 32 random bytes, \
         e.g. from `openssl rand -base64 32`"
    )]
    KeyNotBase64,
    /// The master key decodes to a length other than 32 bytes.
    #[error("the master key decodes to {len} bytes; it must be exactly 32")]
    KeyLength {
        /// The decoded length.
        len: usize,
    },
    /// The master key's variable or file holds no key.
    #[error("the master key variable or file holds no key (expected base64 keys, one per line or comma-separated)")]
    EmptyKeyring,
    /// Neither the variable nor the file of the master key is named.
    #[error("no master key configured: set `master_key_env` or `master_key_file`")]
    NoKeySource,
    /// The variable or file of the master key cannot be read.
    #[error("cannot read the master key")]
    ReadKey {
        /// Which source failed, and how.
        #[source]
        source: SecretSourceError,
    },
    /// A tenant or connection id holds a NUL byte, the separator of the associated data.
    #[error("the {what} {name:?} holds a NUL byte, which names may not contain")]
    NulInName {
        /// `"tenant"` or `"connection id"`.
        what: &'static str,
        /// The name, with the NUL escaped.
        name: String,
    },
    /// The secrets were sealed under another master key than the one given.
    #[error(
        "these secrets were sealed under master key {expected_kid}; the key given is \
         {given_kid}: load the key they were sealed with"
    )]
    WrongMasterKey {
        /// The id of the key the secrets were sealed under.
        expected_kid: String,
        /// The id of the key given.
        given_kid: String,
    },
    /// Authentication failed: the sealed secrets were edited, or belong to another tenant or
    /// connection, or the key id was forged.
    #[error(
        "the sealed secrets of connection {connection_id} (tenant {tenant}) fail \
         authentication: they were edited, were sealed for another tenant or connection, or \
         under another master key with the same id"
    )]
    Tampered {
        /// The tenant asked for.
        tenant: String,
        /// The connection asked for.
        connection_id: String,
    },
    /// A field of the sealed secrets is not base64 or has an impossible length.
    #[error("the sealed secrets of connection {connection_id} (tenant {tenant}) are malformed: `{field}` {why}")]
    Malformed {
        /// The tenant asked for.
        tenant: String,
        /// The connection asked for.
        connection_id: String,
        /// The field at fault (`wrapped_key`, `nonce`, `ciphertext`).
        field: &'static str,
        /// What is wrong with it; never its content.
        why: &'static str,
    },
    /// The sealed secrets carry a format version this build does not know.
    #[error(
        "the sealed secrets of connection {connection_id} (tenant {tenant}) are format \
         version {version}; this build reads version 1"
    )]
    UnsupportedVersion {
        /// The tenant asked for.
        tenant: String,
        /// The connection asked for.
        connection_id: String,
        /// The version found.
        version: u32,
    },
    /// The AEAD refused to encrypt (only for inputs beyond its length limit, 256 GiB).
    #[error("cannot encrypt the secrets of connection {connection_id} (tenant {tenant})")]
    Encrypt {
        /// The tenant.
        tenant: String,
        /// The connection.
        connection_id: String,
    },
}
