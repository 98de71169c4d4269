//! Sealing a connection's secrets under a fresh data key, wrapping that key under the master
//! key, opening them again, and rewrapping for a new master key.

use std::collections::BTreeMap;
use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use schemars::JsonSchema;
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::key::{KEY_LEN, MasterKey};

/// The format version [`seal`] writes and [`open`] reads.
const VERSION: u32 = 1;
/// The length of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// The length of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// The prefix of the associated data of the wrapped data key.
const DATA_KEY_AD: &[u8] = b"remediation/data-key/v1\0";
/// The prefix of the associated data of the secrets.
const SECRETS_AD: &[u8] = b"remediation/secrets/v1\0";

/// A connection's secrets as a store keeps them: encrypted under a data key of their own,
/// which is itself encrypted ("wrapped") under the master key. All binary fields are base64
/// (standard alphabet, padded). Holds nothing readable without the master key.
///
/// Made only by [`seal`] and [`rewrap`], or read back from a store with serde.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedSecrets {
    /// The format version; 1.
    version: u32,
    /// The [id](MasterKey::kid) of the master key that wraps the data key.
    kid: String,
    /// The 24-byte nonce followed by the XChaCha20-Poly1305 ciphertext (with tag) of the
    /// 32-byte data key under the master key; associated data
    /// `"remediation/data-key/v1\0" + tenant + "\0" + connection_id`.
    wrapped_key: String,
    /// The 24-byte nonce of `ciphertext`.
    nonce: String,
    /// The XChaCha20-Poly1305 ciphertext (with tag) of the secrets, a JSON object of strings,
    /// under the data key; associated data `"remediation/secrets/v1\0" + tenant + "\0" +
    /// connection_id`.
    ciphertext: String,
}

impl SealedSecrets {
    /// The format version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The [id](MasterKey::kid) of the master key these secrets are sealed under: the key
    /// [`open`] needs.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Encrypts `secrets` for connection `connection_id` of `tenant`: a fresh random data key and
/// nonce on every call, the data key wrapped under `master`. The JSON plaintext is wiped once
/// encrypted.
pub fn seal(
    master: &MasterKey,
    tenant: &str,
    connection_id: &str,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<SealedSecrets, VaultError> {
    let ids = Ids::new(tenant, connection_id)?;
    let data_key = SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| rand::rng().fill_bytes(key));

    let plaintext = secrets_json(&ids, secrets)?;
    let nonce = random_nonce();
    let ciphertext = XChaCha20Poly1305::new(data_key.expose_secret().into())
        .encrypt(&nonce, Payload { msg: &plaintext, aad: &ids.ad(SECRETS_AD) })
        .map_err(|_| ids.encrypt_error())?;
    // Wipes the JSON now rather than at the end of the function.
    drop(plaintext);

    Ok(SealedSecrets {
        version: VERSION,
        kid: master.kid().to_owned(),
        wrapped_key: wrap(master, &ids, &data_key)?,
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ciphertext),
    })
}

/// Decrypts the secrets of connection `connection_id` of `tenant`. Refuses with
/// [`VaultError::WrongMasterKey`] when `sealed` names another master key, and with
/// [`VaultError::Tampered`] when authentication fails: `sealed` was edited, or was sealed for
/// another tenant or connection.
pub fn open(
    master: &MasterKey,
    tenant: &str,
    connection_id: &str,
    sealed: &SealedSecrets,
) -> Result<BTreeMap<String, SecretString>, VaultError> {
    let ids = Ids::new(tenant, connection_id)?;
    let data_key = unwrap(master, &ids, sealed)?;

    let nonce = ids.nonce("nonce", &sealed.nonce)?;
    let ciphertext = ids.decode("ciphertext", &sealed.ciphertext)?;
    if ciphertext.len() < TAG_LEN {
        return Err(ids.malformed("ciphertext", "is shorter than an authentication tag"));
    }
    let plaintext = Zeroizing::new(
        XChaCha20Poly1305::new(data_key.expose_secret().into())
            .decrypt(&nonce, Payload { msg: &ciphertext, aad: &ids.ad(SECRETS_AD) })
            .map_err(|_| ids.tampered())?,
    );
    // serde_json's messages can quote the input, so its error is not kept.
    let secrets: BTreeMap<String, String> = serde_json::from_slice(&plaintext)
        .map_err(|_| ids.malformed("ciphertext", "decrypts to something other than a JSON object of strings"))?;
    Ok(secrets.into_iter().map(|(name, value)| (name, SecretString::from(value))).collect())
}

/// Re-encrypts the data key of `sealed` from `old` to `new`, for a rotation of the master key.
/// The secrets' `nonce` and `ciphertext` are kept byte for byte: no secret is decrypted, only
/// the data key. Refuses as [`open`] does when `old` is not the key `sealed` names or the
/// wrapped key fails authentication for this tenant and connection. An edited `ciphertext`
/// is not detected here but by the next [`open`].
pub fn rewrap(
    old: &MasterKey,
    new: &MasterKey,
    tenant: &str,
    connection_id: &str,
    sealed: &SealedSecrets,
) -> Result<SealedSecrets, VaultError> {
    let ids = Ids::new(tenant, connection_id)?;
    let data_key = unwrap(old, &ids, sealed)?;
    Ok(SealedSecrets {
        version: VERSION,
        kid: new.kid().to_owned(),
        wrapped_key: wrap(new, &ids, &data_key)?,
        nonce: sealed.nonce.clone(),
        ciphertext: sealed.ciphertext.clone(),
    })
}

/// `nonce || ciphertext` of the data key under the master key, in base64.
fn wrap(master: &MasterKey, ids: &Ids<'_>, data_key: &SecretBox<[u8; KEY_LEN]>) -> Result<String, VaultError> {
    let nonce = random_nonce();
    let wrapped = XChaCha20Poly1305::new(master.bytes().into())
        .encrypt(&nonce, Payload { msg: data_key.expose_secret(), aad: &ids.ad(DATA_KEY_AD) })
        .map_err(|_| ids.encrypt_error())?;
    let mut out = Vec::with_capacity(NONCE_LEN + wrapped.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&wrapped);
    Ok(STANDARD.encode(out))
}

/// The data key of `sealed`, after checking the version and the master key's id.
fn unwrap(master: &MasterKey, ids: &Ids<'_>, sealed: &SealedSecrets) -> Result<SecretBox<[u8; KEY_LEN]>, VaultError> {
    if sealed.version != VERSION {
        return Err(VaultError::UnsupportedVersion {
            tenant: ids.tenant.to_owned(),
            connection_id: ids.connection_id.to_owned(),
            version: sealed.version,
        });
    }
    if sealed.kid != master.kid() {
        return Err(VaultError::WrongMasterKey {
            expected_kid: sealed.kid.clone(),
            given_kid: master.kid().to_owned(),
        });
    }
    let wrapped = ids.decode("wrapped_key", &sealed.wrapped_key)?;
    if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
        return Err(ids.malformed("wrapped_key", "is not 72 bytes (nonce, key, tag)"));
    }
    let (nonce, wrapped) = wrapped.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| ids.malformed("wrapped_key", "has no 24-byte nonce"))?;
    let key = Zeroizing::new(
        XChaCha20Poly1305::new(master.bytes().into())
            .decrypt(&nonce, Payload { msg: wrapped, aad: &ids.ad(DATA_KEY_AD) })
            .map_err(|_| ids.tampered())?,
    );
    if key.len() != KEY_LEN {
        return Err(ids.tampered());
    }
    Ok(SecretBox::init_with_mut(|out: &mut [u8; KEY_LEN]| out.copy_from_slice(&key)))
}

/// The secrets as a JSON object, in a buffer allocated once at its final size (so no
/// reallocation leaves a copy behind) and wiped on drop.
fn secrets_json(ids: &Ids<'_>, secrets: &BTreeMap<String, SecretString>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let view: BTreeMap<&str, &str> =
        secrets.iter().map(|(name, value)| (name.as_str(), value.expose_secret())).collect();
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, &view).map_err(|_| ids.encrypt_error())?;
    let mut out = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *out, &view).map_err(|_| ids.encrypt_error())?;
    Ok(out)
}

/// Counts the bytes written, to size the JSON buffer.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn random_nonce() -> XNonce {
    let mut nonce = [0_u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    XNonce::from(nonce)
}

/// The tenant and connection a blob belongs to, checked free of NUL so that the associated
/// data names exactly one pair.
struct Ids<'a> {
    tenant: &'a str,
    connection_id: &'a str,
}

impl<'a> Ids<'a> {
    fn new(tenant: &'a str, connection_id: &'a str) -> Result<Self, VaultError> {
        for (what, name) in [("tenant", tenant), ("connection id", connection_id)] {
            if name.contains('\0') {
                return Err(VaultError::NulInName { what, name: name.escape_default().to_string() });
            }
        }
        Ok(Self { tenant, connection_id })
    }

    /// `prefix + tenant + "\0" + connection_id`.
    fn ad(&self, prefix: &[u8]) -> Vec<u8> {
        [prefix, self.tenant.as_bytes(), b"\0", self.connection_id.as_bytes()].concat()
    }

    fn decode(&self, field: &'static str, text: &str) -> Result<Vec<u8>, VaultError> {
        STANDARD.decode(text).map_err(|_| self.malformed(field, "is not base64"))
    }

    fn nonce(&self, field: &'static str, text: &str) -> Result<XNonce, VaultError> {
        XNonce::try_from(self.decode(field, text)?.as_slice()).map_err(|_| self.malformed(field, "is not 24 bytes"))
    }

    fn tampered(&self) -> VaultError {
        VaultError::Tampered { tenant: self.tenant.to_owned(), connection_id: self.connection_id.to_owned() }
    }

    fn malformed(&self, field: &'static str, why: &'static str) -> VaultError {
        VaultError::Malformed {
            tenant: self.tenant.to_owned(),
            connection_id: self.connection_id.to_owned(),
            field,
            why,
        }
    }

    fn encrypt_error(&self) -> VaultError {
        VaultError::Encrypt { tenant: self.tenant.to_owned(), connection_id: self.connection_id.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_seals_use_two_data_keys() {
        let master = MasterKey::generate();
        let ids = Ids::new("acme", "okta-prod").expect("names");
        let secrets = BTreeMap::from([("token".to_owned(), SecretString::from("t"))]);
        let [a, b] = [(); 2].map(|()| {
            let sealed = seal(&master, ids.tenant, ids.connection_id, &secrets).expect("seals");
            unwrap(&master, &ids, &sealed).expect("unwraps")
        });
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
