//! A keyring: the current master key, which seals, and older ones, which still open what was
//! sealed under them, so a rotation never leaves a connection unreadable.

use std::fmt;

use remediation_core::secret_source::{EnvLookup, process_env};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::VaultError;
use crate::key::{MasterKey, MasterKeySource};
use crate::seal::{SealedSecrets, open, rewrap, seal};

/// The master keys in force: the first seals, every one opens (found by the key id a
/// [`SealedSecrets`] names). Its text form is one base64 key per line, or comma-separated (an
/// environment variable), current first.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring of `current` alone.
    pub fn single(current: MasterKey) -> Self {
        Self { keys: vec![current] }
    }

    /// A keyring whose current key is `current`, with `others` after it (a key whose id is
    /// already there is dropped).
    pub fn new(current: MasterKey, others: impl IntoIterator<Item = MasterKey>) -> Self {
        let mut ring = Self::single(current);
        for key in others {
            if ring.get(key.kid()).is_none() {
                ring.keys.push(key);
            }
        }
        ring
    }

    /// The keyring from its text: base64 keys separated by newlines or commas, current first;
    /// blank entries are ignored. The error never quotes the text.
    pub fn from_text(text: &SecretString) -> Result<Self, VaultError> {
        let mut keys = text
            .expose_secret()
            .split([',', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| MasterKey::from_base64(&SecretString::from(k.to_owned())));
        let current = keys.next().ok_or(VaultError::EmptyKeyring)??;
        Ok(Self::new(current, keys.collect::<Result<Vec<_>, _>>()?))
    }

    /// The keyring from the environment variable or file `source` names.
    pub fn load(source: &MasterKeySource) -> Result<Self, VaultError> {
        Self::load_with(source, &process_env)
    }

    /// As [`Keyring::load`], with environment variables looked up through `lookup`.
    pub fn load_with(source: &MasterKeySource, lookup: EnvLookup<'_>) -> Result<Self, VaultError> {
        Self::from_text(&source.read(lookup)?)
    }

    /// The text form, one key per line, current first: what a key file holds.
    pub fn to_text(&self) -> SecretString {
        let mut out = String::new();
        for key in &self.keys {
            out.push_str(key.to_base64().expose_secret());
            out.push('\n');
        }
        SecretString::from(out)
    }

    /// A keyring with `new` as its current key and every key of this one after it: the
    /// first step of a rotation.
    pub fn rotated(&self, new: MasterKey) -> Self {
        Self::new(new, self.keys.iter().map(MasterKey::duplicate))
    }

    /// A keyring of this one's current key alone: the last step of a rotation.
    pub fn current_only(&self) -> Self {
        Self::single(self.current().duplicate())
    }

    /// The key that seals.
    pub fn current(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// The key whose id is `kid`, if the keyring holds it.
    pub fn get(&self, kid: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }

    /// Every key id, current first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(MasterKey::kid).collect()
    }

    /// Seals under the current key (see [`seal`]).
    pub fn seal(
        &self,
        tenant: &str,
        connection_id: &str,
        secrets: &std::collections::BTreeMap<String, SecretString>,
    ) -> Result<SealedSecrets, VaultError> {
        seal(self.current(), tenant, connection_id, secrets)
    }

    /// Opens with the key `sealed` names (see [`open`]); [`VaultError::WrongMasterKey`],
    /// naming that key id and the ones held, when the keyring lacks it.
    pub fn open(
        &self,
        tenant: &str,
        connection_id: &str,
        sealed: &SealedSecrets,
    ) -> Result<std::collections::BTreeMap<String, SecretString>, VaultError> {
        open(self.key_for(sealed)?, tenant, connection_id, sealed)
    }

    /// Rewraps `sealed` under the current key (see [`rewrap`]); what is already under it is
    /// returned as it is.
    pub fn rewrap(
        &self,
        tenant: &str,
        connection_id: &str,
        sealed: &SealedSecrets,
    ) -> Result<SealedSecrets, VaultError> {
        if sealed.kid() == self.current().kid() {
            return Ok(sealed.clone());
        }
        rewrap(self.key_for(sealed)?, self.current(), tenant, connection_id, sealed)
    }

    fn key_for(&self, sealed: &SealedSecrets) -> Result<&MasterKey, VaultError> {
        self.get(sealed.kid()).ok_or_else(|| VaultError::WrongMasterKey {
            expected_kid: sealed.kid().to_owned(),
            given_kid: self.kids().join(", "),
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({})", self.kids().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn secrets() -> BTreeMap<String, SecretString> {
        BTreeMap::from([("token".to_owned(), SecretString::from("t0k3n"))])
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let old_text = old.to_base64().expose_secret().to_owned();
        let new_text = new.to_base64().expose_secret().to_owned();
        let sealed_old = seal(&old, "t", "c", &secrets()).expect("seal");
        let ring = Keyring::from_text(&SecretString::from(format!("{new_text}\n{old_text}\n"))).expect("ring");
        assert_eq!(ring.current().kid(), new.kid());
        assert_eq!(ring.open("t", "c", &sealed_old).expect("old opens")["token"].expose_secret(), "t0k3n");
        let sealed_new = ring.seal("t", "c", &secrets()).expect("seal");
        assert_eq!(sealed_new.kid(), new.kid(), "the current key seals");
        let env = Keyring::from_text(&SecretString::from(format!(" {new_text} , {old_text},"))).expect("commas");
        assert_eq!(env.kids(), ring.kids());
        let rewrapped = ring.rewrap("t", "c", &sealed_old).expect("rewrap");
        assert_eq!(rewrapped.kid(), new.kid());
        let only_new = Keyring::single(MasterKey::from_base64(&SecretString::from(new_text)).expect("key"));
        assert_eq!(only_new.open("t", "c", &rewrapped).expect("opens")["token"].expose_secret(), "t0k3n");
        match only_new.open("t", "c", &sealed_old) {
            Err(VaultError::WrongMasterKey { expected_kid, given_kid }) => {
                assert_eq!((expected_kid.as_str(), given_kid.as_str()), (old.kid(), new.kid()));
            }
            other => panic!("expected WrongMasterKey, got {other:?}"),
        }
        assert!(!format!("{ring:?}").contains(&old_text[..8]), "Debug shows key ids only");
    }

    #[test]
    fn empty_or_bad_text_is_refused_unquoted() {
        assert!(matches!(Keyring::from_text(&SecretString::from(" \n,")), Err(VaultError::EmptyKeyring)));
        let e = Keyring::from_text(&SecretString::from("not-a-key-secret")).expect_err("bad");
        assert!(!e.to_string().contains("not-a-key-secret"), "{e}");
        let key = MasterKey::generate();
        let text = key.to_base64().expose_secret().to_owned();
        let twice = Keyring::from_text(&SecretString::from(format!("{text}\n{text}"))).expect("ring");
        assert_eq!(twice.kids().len(), 1, "a key listed twice is held once");
    }
}
