//! What must never show a secret or the master key: `Debug` of keys, sealed blobs and errors,
//! error messages, and the JSON a store keeps.

use std::error::Error as _;

use remediation_vault::{MasterKey, MasterKeySource, SealedSecrets, VaultError, open, seal};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{CONNECTION, SECRET, TENANT, edit, secrets};

/// `Debug`, `Display` and the whole `source()` chain of `e`.
fn everything_about(e: &VaultError) -> String {
    let mut out = format!("{e:?}\n{e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!("\n{c}\n{c:?}"));
        cause = c.source();
    }
    out
}

#[track_caller]
fn assert_absent(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(!needle.is_empty());
        assert!(!haystack.contains(needle), "{needle:?} appears in {haystack:?}");
    }
}

#[test]
fn master_key_debug_shows_only_its_id() {
    let key = MasterKey::generate();
    let b64 = key.to_base64();
    let debug = format!("{key:?} {key:#?}");
    assert_absent(&debug, &[b64.expose_secret()]);
    assert_eq!(format!("{key:?}"), format!("MasterKey(id={})", key.kid()));
}

#[test]
fn sealed_secrets_debug_and_json_hold_no_secret() {
    let key = MasterKey::generate();
    let b64 = key.to_base64();
    let sealed = seal(&key, TENANT, CONNECTION, &secrets()).expect("seals");
    let debug = format!("{sealed:?} {sealed:#?}");
    let json = serde_json::to_string(&sealed).expect("serializes");
    for text in [&debug, &json] {
        assert_absent(text, &[SECRET, "hunter2", "api_token", b64.expose_secret()]);
    }
    // The JSON really is the sealed blob, not an empty object.
    let read: SealedSecrets = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(open(&key, TENANT, CONNECTION, &read).expect("opens")["api_token"].expose_secret(), SECRET);
}

#[test]
fn errors_hold_no_secret_or_key() {
    let key = MasterKey::generate();
    let other = MasterKey::generate();
    let b64 = key.to_base64();
    let other_b64 = other.to_base64();
    let sealed = seal(&key, TENANT, CONNECTION, &secrets()).expect("seals");
    let long_key = SecretString::from(format!("{}AAAA", b64.expose_secret()));
    let not_b64 = SecretString::from(format!("{}!{}", SECRET, b64.expose_secret()));
    let mut json = serde_json::to_value(&sealed).expect("serializes");
    json["ciphertext"] = SECRET.into();
    let bad_field: SealedSecrets = serde_json::from_value(json).expect("deserializes");

    let errors = [
        open(&other, TENANT, CONNECTION, &sealed).expect_err("wrong key"),
        open(&key, TENANT, "elsewhere", &sealed).expect_err("tampered"),
        open(&key, TENANT, CONNECTION, &edit(&sealed, "ciphertext", |b| b[0] ^= 1)).expect_err("tampered"),
        open(&key, TENANT, CONNECTION, &bad_field).expect_err("malformed"),
        MasterKey::from_base64(&long_key).expect_err("too long"),
        MasterKey::from_base64(&not_b64).expect_err("not base64"),
        MasterKey::load_with(&MasterKeySource { master_key_env: Some("K".to_owned()), ..Default::default() }, &|_| {
            Some(not_b64.expose_secret().to_owned())
        })
        .expect_err("not base64 through the source"),
    ];
    for e in &errors {
        assert_absent(&everything_about(e), &[SECRET, "hunter2", b64.expose_secret(), other_b64.expose_secret()]);
    }
}
