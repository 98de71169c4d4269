//! Integration tests of remediation-vault, one binary: sealing and opening, the master key, and
//! what must never leak.

mod key;
mod leaks;
mod seal;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use remediation_vault::SealedSecrets;
use secrecy::SecretString;

/// A secret value searched for wherever it must not appear.
pub(crate) const SECRET: &str = "hunter2-very-secret-token";
pub(crate) const TENANT: &str = "acme";
pub(crate) const CONNECTION: &str = "okta-prod";

/// A connection's secrets, one of them [`SECRET`].
pub(crate) fn secrets() -> BTreeMap<String, SecretString> {
    BTreeMap::from([
        ("api_token".to_owned(), SecretString::from(SECRET)),
        ("client_secret".to_owned(), SecretString::from("another \"quoted\" \\ value\n")),
    ])
}

/// `sealed` with the base64 field `field` decoded, passed to `edit`, and encoded again: what an
/// attacker with write access to the store can do.
#[track_caller]
pub(crate) fn edit(sealed: &SealedSecrets, field: &str, edit: impl FnOnce(&mut Vec<u8>)) -> SealedSecrets {
    let mut json = serde_json::to_value(sealed).expect("serializes");
    let text = json[field].as_str().expect("a string field");
    let mut bytes = STANDARD.decode(text).expect("base64");
    edit(&mut bytes);
    json[field] = serde_json::Value::String(STANDARD.encode(bytes));
    serde_json::from_value(json).expect("deserializes")
}

/// `sealed` with its string field `field` replaced by `value`.
#[track_caller]
pub(crate) fn with_field(sealed: &SealedSecrets, field: &str, value: &str) -> SealedSecrets {
    let mut json = serde_json::to_value(sealed).expect("serializes");
    json[field] = serde_json::Value::String(value.to_owned());
    serde_json::from_value(json).expect("deserializes")
}
