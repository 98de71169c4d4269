//! Signed tree heads: the log's size and root at an instant, signed with Ed25519, and the
//! published public keys that verify them. See the crate docs, "The verifiable log", for the
//! contract.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::RngCore as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::merkle::{MerkleHash, ProofError, empty_root, verify_consistency};

/// The domain-separation prefix of the signed tree head bytes; the `v1` changes if they ever
/// do.
pub const TREE_HEAD_CONTEXT: &str = "remediation-audit-tree-head-v1";

/// The first line of a signing key file; the second is the 32-byte Ed25519 seed in hex.
pub const SIGNING_KEY_FILE_HEADER: &str = "remediation-audit-ed25519-signing-key-v1";

/// The only signature algorithm, as named in a published key set.
pub const ALGORITHM_ED25519: &str = "ed25519";

/// Why a tree head could not be signed or verified, or a key not loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeHeadError {
    /// The new head does not extend the previous one, so it is not signed.
    #[error(
        "refusing to sign a tree head of {new_size} leaves: it does not extend the previous signed head of {previous_size} leaves"
    )]
    DoesNotExtend {
        /// The previous head's size.
        previous_size: u64,
        /// The new head's size.
        new_size: u64,
        /// What the consistency check found.
        #[source]
        source: ProofError,
    },
    /// The tree head names a key that is not in the published key set.
    #[error("the tree head names key `{key_id}`, which is not in the published key set")]
    UnknownKey {
        /// The key id the head names.
        key_id: String,
    },
    /// The signature does not verify under the named key.
    #[error("the signature of the tree head of {tree_size} leaves does not verify under key `{key_id}`")]
    BadSignature {
        /// The head's size.
        tree_size: u64,
        /// The key id the head names.
        key_id: String,
    },
    /// The timestamp is not in UTC, so its signed form is not the one written.
    #[error("the tree head's timestamp is not in UTC")]
    NotUtc,
    /// The signature, a public key or a key id has the wrong form.
    #[error("malformed {what}: expected {expected}")]
    Malformed {
        /// Which field.
        what: &'static str,
        /// Its form.
        expected: &'static str,
    },
    /// A published key's id is not the id of its public key.
    #[error("published key `{key_id}` has the id {actual}, not the one it is listed under")]
    KeyIdMismatch {
        /// The id it is listed under.
        key_id: String,
        /// The id of the public key.
        actual: String,
    },
    /// A published key uses an algorithm other than Ed25519.
    #[error("published key `{key_id}` uses algorithm `{algorithm}`; only `ed25519` is supported")]
    UnsupportedAlgorithm {
        /// The key's id.
        key_id: String,
        /// The algorithm named.
        algorithm: String,
    },
    /// The signing key file is not in the expected format. The message never quotes it.
    #[error("the signing key file {path} is not valid: expected {expected}")]
    InvalidKeyFile {
        /// The file.
        path: String,
        /// What a key file looks like.
        expected: &'static str,
    },
    /// The signing key file can be read by other users.
    #[error(
        "the signing key file {path} is readable or writable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFilePermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The signing key file could not be read or written.
    #[error("cannot {action} the signing key file {path}")]
    KeyFileIo {
        /// `read`, `create` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The timestamp cannot be written in RFC 3339 (a year beyond 9999).
    #[error("the tree head's timestamp cannot be written in RFC 3339")]
    Timestamp(#[source] time::error::Format),
}

/// A key id: the first 8 bytes of SHA-256 of the 32-byte Ed25519 public key, as 16 lowercase
/// hex characters.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// The log's state at an instant: what a signed tree head asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    /// The number of records in the log.
    pub tree_size: u64,
    /// The Merkle tree root of those records.
    pub root_hash: MerkleHash,
    /// When the head was signed, UTC, RFC 3339 (`Z`; fractional seconds only when non-zero).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub timestamp: OffsetDateTime,
    /// The id of the key that signs it ([`key_id`]).
    pub key_id: String,
}

impl TreeHead {
    /// The exact bytes that are signed, as UTF-8 text:
    /// `remediation-audit-tree-head-v1\n{key_id}\n{tree_size}\n{root_hash}\n{timestamp}` (no
    /// trailing newline), `tree_size` in decimal, `root_hash` as 64 lowercase hex, `timestamp`
    /// as RFC 3339 in UTC exactly as written in the JSON.
    ///
    /// ```
    /// use remediation_audit::merkle::empty_root;
    /// use remediation_audit::TreeHead;
    /// use time::macros::datetime;
    ///
    /// let head = TreeHead {
    ///     tree_size: 0,
    ///     root_hash: empty_root(),
    ///     timestamp: datetime!(2026-01-02 03:04:05.25 UTC),
    ///     key_id: "0011223344556677".to_owned(),
    /// };
    /// assert_eq!(
    ///     head.signed_bytes()?,
    ///     "remediation-audit-tree-head-v1\n0011223344556677\n0\n\
    ///      e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
    ///      2026-01-02T03:04:05.25Z"
    /// );
    /// # Ok::<(), remediation_audit::TreeHeadError>(())
    /// ```
    pub fn signed_bytes(&self) -> Result<String, TreeHeadError> {
        if !self.timestamp.offset().is_utc() {
            return Err(TreeHeadError::NotUtc);
        }
        let timestamp = self.timestamp.format(&Rfc3339).map_err(TreeHeadError::Timestamp)?;
        Ok(format!("{TREE_HEAD_CONTEXT}\n{}\n{}\n{}\n{timestamp}", self.key_id, self.tree_size, self.root_hash))
    }
}

/// A tree head and its Ed25519 signature: one JSON object with the head's fields and
/// `signature`, nothing else (a field the contract does not have is refused: it would not be
/// signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "SignedTreeHeadJson", into = "SignedTreeHeadJson")]
pub struct SignedTreeHead {
    /// What is signed.
    pub head: TreeHead,
    /// The Ed25519 signature (RFC 8032) of [`TreeHead::signed_bytes`], 128 lowercase hex
    /// characters.
    pub signature: String,
}

/// The JSON form of [`SignedTreeHead`]: flat, and strict (`serde(flatten)` would let unknown
/// fields through).
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename = "SignedTreeHead")]
struct SignedTreeHeadJson {
    /// The number of records in the log.
    tree_size: u64,
    /// The Merkle tree root of those records.
    root_hash: MerkleHash,
    /// When the head was signed, UTC, RFC 3339 (`Z`; fractional seconds only when non-zero).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    timestamp: OffsetDateTime,
    /// The id of the key that signs it: the first 8 bytes of SHA-256 of its public key, hex.
    key_id: String,
    /// The Ed25519 signature of the signed bytes, 128 lowercase hex characters.
    signature: String,
}

impl From<SignedTreeHeadJson> for SignedTreeHead {
    fn from(json: SignedTreeHeadJson) -> Self {
        let SignedTreeHeadJson { tree_size, root_hash, timestamp, key_id, signature } = json;
        SignedTreeHead { head: TreeHead { tree_size, root_hash, timestamp, key_id }, signature }
    }
}

impl From<SignedTreeHead> for SignedTreeHeadJson {
    fn from(signed: SignedTreeHead) -> Self {
        let SignedTreeHead { head: TreeHead { tree_size, root_hash, timestamp, key_id }, signature } = signed;
        SignedTreeHeadJson { tree_size, root_hash, timestamp, key_id, signature }
    }
}

/// One published public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedKey {
    /// Its id ([`key_id`] of the public key).
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32-byte Ed25519 public key, 64 lowercase hex characters.
    pub public_key: String,
}

impl PublishedKey {
    /// The key as Ed25519 verifies with, after checking its algorithm, form and id.
    pub fn verifying_key(&self) -> Result<VerifyingKey, TreeHeadError> {
        if self.algorithm != ALGORITHM_ED25519 {
            return Err(TreeHeadError::UnsupportedAlgorithm {
                key_id: self.key_id.clone(),
                algorithm: self.algorithm.clone(),
            });
        }
        let malformed = TreeHeadError::Malformed { what: "public key", expected: "64 lowercase hex characters" };
        let mut bytes = [0_u8; 32];
        if self.public_key.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed);
        }
        hex::decode_to_slice(&self.public_key, &mut bytes).map_err(|_| malformed)?;
        let actual = key_id(&bytes);
        if actual != self.key_id {
            return Err(TreeHeadError::KeyIdMismatch { key_id: self.key_id.clone(), actual });
        }
        VerifyingKey::from_bytes(&bytes)
            .map_err(|_| TreeHeadError::Malformed { what: "public key", expected: "a valid Ed25519 point" })
    }
}

/// The published public keys of a log, current and retired: every tree head ever signed
/// verifies against it, so a rotated key stays listed for good.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicKeySet {
    /// The keys, oldest first.
    pub keys: Vec<PublishedKey>,
}

impl PublicKeySet {
    /// Adds `key` (for a rotation: the new key), unless a key with its id is listed already.
    pub fn publish(&mut self, key: PublishedKey) {
        if !self.keys.iter().any(|k| k.key_id == key.key_id) {
            self.keys.push(key);
        }
    }

    /// The key listed under `key_id`.
    pub fn get(&self, key_id: &str) -> Option<&PublishedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    /// Verifies `head`'s signature under the key it names, which must be in this set.
    pub fn verify(&self, head: &SignedTreeHead) -> Result<(), TreeHeadError> {
        let key_id = &head.head.key_id;
        let published = self.get(key_id).ok_or_else(|| TreeHeadError::UnknownKey { key_id: key_id.clone() })?;
        let key = published.verifying_key()?;
        let malformed = || TreeHeadError::Malformed { what: "signature", expected: "128 lowercase hex characters" };
        if head.signature.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed());
        }
        let mut bytes = [0_u8; 64];
        hex::decode_to_slice(&head.signature, &mut bytes).map_err(|_| malformed())?;
        let signature = Signature::from_bytes(&bytes);
        let message = head.head.signed_bytes()?;
        key.verify_strict(message.as_bytes(), &signature)
            .map_err(|_| TreeHeadError::BadSignature { tree_size: head.head.tree_size, key_id: key_id.clone() })
    }
}

/// The Ed25519 key that signs tree heads.
///
/// Its secret is zeroed when dropped; `Debug` prints only the key id.
pub struct LogSigningKey {
    key: SigningKey,
    key_id: String,
}

impl LogSigningKey {
    /// A new key from the operating system's generator (through `rand`'s thread-local
    /// CSPRNG, seeded from it).
    pub fn generate() -> LogSigningKey {
        let mut seed = Zeroizing::new([0_u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key with this 32-byte Ed25519 secret seed (RFC 8032 §5.1.5), e.g. a test key.
    pub fn from_seed(seed: &[u8; 32]) -> LogSigningKey {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(key.verifying_key().as_bytes());
        LogSigningKey { key, key_id }
    }

    /// The key's id ([`key_id`] of its public key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as it is published.
    pub fn published(&self) -> PublishedKey {
        PublishedKey {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM_ED25519.to_owned(),
            public_key: hex::encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// The key file's text: [`SIGNING_KEY_FILE_HEADER`], a newline, the 32-byte seed as 64
    /// lowercase hex characters and a newline. Zeroed when dropped.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(hex::encode(self.key.to_bytes()));
        Zeroizing::new(format!("{SIGNING_KEY_FILE_HEADER}\n{}\n", seed.as_str()))
    }

    /// Parses the key file's text ([`Self::to_file_text`]); `path` only names the file in
    /// errors, which never quote the text.
    pub fn from_file_text(text: &str, path: &Path) -> Result<LogSigningKey, TreeHeadError> {
        let invalid = || TreeHeadError::InvalidKeyFile {
            path: path.display().to_string(),
            expected: "a first line `remediation-audit-ed25519-signing-key-v1` and a second line of 64 lowercase hex characters",
        };
        let mut lines = text.lines();
        if lines.next() != Some(SIGNING_KEY_FILE_HEADER) {
            return Err(invalid());
        }
        let seed_hex = lines.next().ok_or_else(invalid)?;
        if lines.any(|l| !l.trim().is_empty()) || seed_hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let mut seed = Zeroizing::new([0_u8; 32]);
        hex::decode_to_slice(seed_hex, seed.as_mut()).map_err(|_| invalid())?;
        Ok(Self::from_seed(&seed))
    }

    /// Writes the key to a new file at `path` with mode 0600 (on Unix), refusing to overwrite
    /// an existing file.
    pub fn write_new_file(&self, path: &Path) -> Result<(), TreeHeadError> {
        let io = |action, source| TreeHeadError::KeyFileIo { action, path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| io("create", e))?;
        file.write_all(self.to_file_text().as_bytes()).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("write", e))
    }

    /// Reads the key from `path`, refusing a file that other users may read or write (on
    /// Unix: any of the mode bits 0o077).
    pub fn read_file(path: &Path) -> Result<LogSigningKey, TreeHeadError> {
        let io = |source| TreeHeadError::KeyFileIo { action: "read", path: path.display().to_string(), source };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(TreeHeadError::KeyFilePermissions { path: path.display().to_string(), mode });
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::from_file_text(&text, path)
    }

    /// Signs `head` as it stands, naming this key. Prefer [`Self::sign_next`], which checks
    /// that the head extends the previous one.
    fn sign(
        &self,
        tree_size: u64,
        root_hash: MerkleHash,
        timestamp: OffsetDateTime,
    ) -> Result<SignedTreeHead, TreeHeadError> {
        let head = TreeHead {
            tree_size,
            root_hash,
            timestamp: timestamp.to_offset(time::UtcOffset::UTC),
            key_id: self.key_id.clone(),
        };
        let signature = self.key.sign(head.signed_bytes()?.as_bytes());
        Ok(SignedTreeHead { head, signature: hex::encode(signature.to_bytes()) })
    }

    /// Signs the head of `tree_size` leaves with root `root_hash` at `timestamp` (converted to
    /// UTC), but only if it extends `previous`, the last head signed (by this key or one
    /// rotated out): `consistency_proof` must prove the new tree extends the previous one
    /// ([`verify_consistency`]). The previous head's signature is not re-checked: it is the
    /// signer's own record.
    ///
    /// With no previous head, or a previous head of the empty tree, any tree extends it and
    /// the proof must be empty. Equal sizes need an empty proof and an equal root (a fresh
    /// timestamp on an unchanged log).
    pub fn sign_next(
        &self,
        previous: Option<&SignedTreeHead>,
        tree_size: u64,
        root_hash: MerkleHash,
        consistency_proof: &[MerkleHash],
        timestamp: OffsetDateTime,
    ) -> Result<SignedTreeHead, TreeHeadError> {
        let (previous_size, previous_root) =
            previous.map_or((0, empty_root()), |p| (p.head.tree_size, p.head.root_hash));
        check_extends(previous_size, &previous_root, tree_size, &root_hash, consistency_proof)
            .map_err(|source| TreeHeadError::DoesNotExtend { previous_size, new_size: tree_size, source })?;
        self.sign(tree_size, root_hash, timestamp)
    }
}

impl fmt::Debug for LogSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSigningKey").field("key_id", &self.key_id).field("secret", &"<redacted>").finish()
    }
}

/// Verifies, as an auditor, that the log described by `new` extends the one described by
/// `old`: both heads' signatures under `keys`, then `proof` between their roots. An `old` head
/// of the empty tree is extended by every head.
pub fn verify_extends(
    keys: &PublicKeySet,
    old: &SignedTreeHead,
    new: &SignedTreeHead,
    proof: &[MerkleHash],
) -> Result<(), ExtendsError> {
    keys.verify(old).map_err(ExtendsError::OldHead)?;
    keys.verify(new).map_err(ExtendsError::NewHead)?;
    check_extends(old.head.tree_size, &old.head.root_hash, new.head.tree_size, &new.head.root_hash, proof)
        .map_err(ExtendsError::Inconsistent)
}

/// [`verify_consistency`], extended to an old tree that is empty: its root must be
/// [`empty_root`], the proof empty, and a new empty tree must have that root too.
fn check_extends(
    old_size: u64,
    old_root: &MerkleHash,
    new_size: u64,
    new_root: &MerkleHash,
    proof: &[MerkleHash],
) -> Result<(), ProofError> {
    if old_size > 0 {
        return verify_consistency(old_size, new_size, old_root, new_root, proof);
    }
    let empty = empty_root();
    if *old_root != empty {
        return Err(ProofError::OldRootMismatch { expected: empty });
    }
    if !proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    if new_size == 0 && *new_root != empty {
        return Err(ProofError::RootMismatch { expected: empty });
    }
    Ok(())
}

/// Why a new tree head was not shown to extend an old one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtendsError {
    /// The old head does not verify.
    #[error("the old tree head does not verify")]
    OldHead(#[source] TreeHeadError),
    /// The new head does not verify.
    #[error("the new tree head does not verify")]
    NewHead(#[source] TreeHeadError),
    /// Both verify, but the proof fails: the log was truncated, rewritten or forked.
    #[error("the log does not extend the old tree head")]
    Inconsistent(#[source] ProofError),
}

impl From<SignedTreeHead> for remediation_core::StoredTreeHead {
    fn from(signed: SignedTreeHead) -> Self {
        let SignedTreeHead { head: TreeHead { tree_size, root_hash, timestamp, key_id }, signature } = signed;
        remediation_core::StoredTreeHead { tree_size, root_hash: root_hash.to_hex(), timestamp, key_id, signature }
    }
}

impl TryFrom<remediation_core::StoredTreeHead> for SignedTreeHead {
    type Error = TreeHeadError;

    /// The head as a store kept it; a root hash that is not 64 lowercase hex characters is
    /// refused. The signature is not checked here: [`PublicKeySet::verify`] does that.
    fn try_from(stored: remediation_core::StoredTreeHead) -> Result<Self, TreeHeadError> {
        let remediation_core::StoredTreeHead { tree_size, root_hash, timestamp, key_id, signature } = stored;
        let root_hash = root_hash
            .parse()
            .map_err(|_| TreeHeadError::Malformed { what: "root hash", expected: "64 lowercase hex characters" })?;
        Ok(SignedTreeHead { head: TreeHead { tree_size, root_hash, timestamp, key_id }, signature })
    }
}

impl PublishedKey {
    /// The key as a store publishes it, first published at `published_at`.
    pub fn to_stored(&self, published_at: OffsetDateTime) -> remediation_core::StoredPublicKey {
        remediation_core::StoredPublicKey {
            key_id: self.key_id.clone(),
            algorithm: self.algorithm.clone(),
            public_key: self.public_key.clone(),
            published_at,
        }
    }
}

impl From<remediation_core::StoredPublicKey> for PublishedKey {
    fn from(stored: remediation_core::StoredPublicKey) -> Self {
        PublishedKey { key_id: stored.key_id, algorithm: stored.algorithm, public_key: stored.public_key }
    }
}
