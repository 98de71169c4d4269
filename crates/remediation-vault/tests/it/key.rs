//! The master key: its id, and loading it from text, a file or an environment variable.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use remediation_vault::{MasterKey, MasterKeySource, VaultError};
use secrecy::{ExposeSecret as _, SecretString};

/// 32 bytes 0..32 in base64, and the first 8 hex digits of their SHA-256
/// (`printf '\x00\x01...\x1f' | sha256sum`).
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_KID: &str = "630dcd29";

fn b64(len: usize) -> SecretString {
    SecretString::from(STANDARD.encode(vec![7_u8; len]))
}

#[track_caller]
fn check_from_base64(text: &str, expected: Result<&str, &str>) {
    let got = MasterKey::from_base64(&SecretString::from(text)).map(|k| k.kid().to_owned()).map_err(|e| e.to_string());
    assert_eq!(got.as_deref().map_err(String::as_str), expected, "{text:?}");
}

#[test]
fn from_base64() {
    check_from_base64(KEY_B64, Ok(KEY_KID));
    check_from_base64(&format!("  {KEY_B64}\n"), Ok(KEY_KID));
    check_from_base64(
        "not base64!",
        Err(
            "the master key is not base64 (standard alphabet, padded); expected 32 random bytes, e.g. from `openssl rand -base64 32`",
        ),
    );
    check_from_base64("", Err("the master key decodes to 0 bytes; it must be exactly 32"));
}

#[test]
fn wrong_lengths_are_refused() {
    for len in [0, 1, 16, 31, 33, 64] {
        let e = MasterKey::from_base64(&b64(len)).expect_err("refused");
        assert!(matches!(e, VaultError::KeyLength { len: l } if l == len), "{len}: {e:?}");
    }
    MasterKey::from_base64(&b64(32)).expect("32 bytes");
}

#[test]
fn kid_is_the_sha256_prefix() {
    let key = MasterKey::from_base64(&SecretString::from(KEY_B64)).expect("loads");
    assert_eq!(key.kid(), KEY_KID);
    assert_eq!(format!("{key:?}"), format!("MasterKey(id={KEY_KID})"));
}

#[test]
fn generate_gives_distinct_keys_that_export_and_load_back() {
    let a = MasterKey::generate();
    let b = MasterKey::generate();
    assert_ne!(a.kid(), b.kid());
    assert_ne!(a.to_base64().expose_secret(), b.to_base64().expose_secret());
    let back = MasterKey::from_base64(&a.to_base64()).expect("loads");
    assert_eq!(back.kid(), a.kid());
}

#[test]
fn load_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "{KEY_B64}").expect("writes");
    let source = MasterKeySource { master_key_file: Some(file.path().to_owned()), ..Default::default() };
    let key = MasterKey::load_with(&source, &|_| panic!("no variable is read")).expect("loads");
    assert_eq!(key.kid(), KEY_KID);
}

#[test]
fn load_from_an_env_lookup() {
    let source = MasterKeySource { master_key_env: Some("VAULT_KEY".to_owned()), ..Default::default() };
    let lookup = |var: &str| (var == "VAULT_KEY").then(|| KEY_B64.to_owned());
    let key = MasterKey::load_with(&source, &lookup).expect("loads");
    assert_eq!(key.kid(), KEY_KID);
}

#[test]
fn load_refuses_wrong_lengths_from_a_file_and_an_env_lookup() {
    let short = b64(31);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(file, "{}", short.expose_secret()).expect("writes");
    let source = MasterKeySource { master_key_file: Some(file.path().to_owned()), ..Default::default() };
    let e = MasterKey::load_with(&source, &|_| None).expect_err("refused");
    assert!(matches!(e, VaultError::KeyLength { len: 31 }), "{e:?}");

    let long = b64(33);
    let source = MasterKeySource { master_key_env: Some("K".to_owned()), ..Default::default() };
    let e = MasterKey::load_with(&source, &|_| Some(long.expose_secret().to_owned())).expect_err("refused");
    assert!(matches!(e, VaultError::KeyLength { len: 33 }), "{e:?}");
}

#[test]
fn load_failures_are_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("absent.key");
    let source = MasterKeySource { master_key_file: Some(missing.clone()), ..Default::default() };
    let e = MasterKey::load_with(&source, &|_| None).expect_err("refused");
    assert!(matches!(e, VaultError::ReadKey { .. }), "{e:?}");
    assert_eq!(e.to_string(), "cannot read the master key");
    let cause = std::error::Error::source(&e).expect("a cause").to_string();
    assert_eq!(cause, format!("cannot read the file {} (named by `master_key_file`)", missing.display()));

    let source = MasterKeySource { master_key_env: Some("VAULT_KEY".to_owned()), ..Default::default() };
    let e = MasterKey::load_with(&source, &|_| None).expect_err("refused");
    let cause = std::error::Error::source(&e).expect("a cause").to_string();
    assert_eq!(cause, "environment variable `VAULT_KEY` (named by `master_key_env`) is not set");

    let e = MasterKey::load_with(&MasterKeySource::default(), &|_| None).expect_err("refused");
    assert!(matches!(e, VaultError::NoKeySource), "{e:?}");

    let both = MasterKeySource { master_key_env: Some("K".to_owned()), master_key_file: Some(missing) };
    let e = MasterKey::load_with(&both, &|_| Some(KEY_B64.to_owned())).expect_err("refused");
    assert!(matches!(e, VaultError::ReadKey { .. }), "{e:?}");
}

#[test]
fn source_deserializes_and_refuses_unknown_fields() {
    let source: MasterKeySource = serde_json::from_str(r#"{"master_key_env": "K"}"#).expect("deserializes");
    assert_eq!(source.master_key_env.as_deref(), Some("K"));
    assert!(serde_json::from_str::<MasterKeySource>(r#"{"master_key": "AAAA"}"#).is_err());
}
