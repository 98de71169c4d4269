//! Sealing, opening and rewrapping: round trips, fresh keys, and every refusal.

use remediation_vault::{MasterKey, SealedSecrets, VaultError, open, rewrap, seal};
use secrecy::ExposeSecret as _;

use crate::{CONNECTION, SECRET, TENANT, edit, secrets, with_field};

fn sealed(master: &MasterKey) -> SealedSecrets {
    seal(master, TENANT, CONNECTION, &secrets()).expect("seals")
}

fn field<'a>(json: &'a serde_json::Value, name: &str) -> &'a str {
    json[name].as_str().expect("a string field")
}

#[track_caller]
fn check_tampered(master: &MasterKey, tenant: &str, connection_id: &str, sealed: &SealedSecrets) {
    match open(master, tenant, connection_id, sealed) {
        Err(VaultError::Tampered { tenant: t, connection_id: c }) => {
            assert_eq!((t.as_str(), c.as_str()), (tenant, connection_id));
        }
        other => panic!("expected Tampered, got {other:?}"),
    }
}

#[test]
fn round_trip() {
    let master = MasterKey::generate();
    let sealed = sealed(&master);
    assert_eq!(sealed.version(), 1);
    assert_eq!(sealed.kid(), master.kid());
    let opened = open(&master, TENANT, CONNECTION, &sealed).expect("opens");
    let expected = secrets();
    assert_eq!(opened.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (name, value) in &expected {
        assert_eq!(opened[name].expose_secret(), value.expose_secret(), "{name}");
    }
}

#[test]
fn round_trip_through_json() {
    let master = MasterKey::generate();
    let stored = serde_json::to_string(&sealed(&master)).expect("serializes");
    let read: SealedSecrets = serde_json::from_str(&stored).expect("deserializes");
    let opened = open(&master, TENANT, CONNECTION, &read).expect("opens");
    assert_eq!(opened["api_token"].expose_secret(), SECRET);
}

#[test]
fn empty_secrets_round_trip() {
    let master = MasterKey::generate();
    let sealed = seal(&master, TENANT, CONNECTION, &Default::default()).expect("seals");
    assert!(open(&master, TENANT, CONNECTION, &sealed).expect("opens").is_empty());
}

#[test]
fn two_seals_differ_in_wrapped_key_nonce_and_ciphertext() {
    let master = MasterKey::generate();
    let a = serde_json::to_value(sealed(&master)).expect("serializes");
    let b = serde_json::to_value(sealed(&master)).expect("serializes");
    for name in ["wrapped_key", "nonce", "ciphertext"] {
        assert_ne!(field(&a, name), field(&b, name), "{name}");
    }
    // That the data keys differ too is checked inside the crate (`seal::tests`), where the
    // wrapped key can be opened.
}

#[test]
fn another_tenant_or_connection_is_refused() {
    let master = MasterKey::generate();
    let sealed = sealed(&master);
    for (tenant, connection_id) in [
        ("globex", CONNECTION),
        (TENANT, "okta-test"),
        ("globex", "okta-test"),
        // The separator keeps these from naming the same pair.
        ("acmeokta-prod", ""),
        ("", "acmeokta-prod"),
        ("acme ", CONNECTION),
    ] {
        check_tampered(&master, tenant, connection_id, &sealed);
    }
}

#[test]
fn names_with_nul_are_refused() {
    let master = MasterKey::generate();
    for (tenant, connection_id) in [("ac\0me", CONNECTION), (TENANT, "okta\0prod")] {
        let e = seal(&master, tenant, connection_id, &secrets()).expect_err("refused");
        assert!(matches!(e, VaultError::NulInName { .. }), "{e:?}");
    }
}

#[test]
fn a_flipped_byte_anywhere_is_refused() {
    let master = MasterKey::generate();
    let sealed = sealed(&master);
    for name in ["wrapped_key", "nonce", "ciphertext"] {
        let mut len = 0;
        edit(&sealed, name, |bytes| len = bytes.len());
        for at in [0, len / 2, len - 1] {
            let edited = edit(&sealed, name, |bytes| bytes[at] ^= 0x01);
            check_tampered(&master, TENANT, CONNECTION, &edited);
        }
    }
}

#[test]
fn a_swapped_ciphertext_from_another_seal_is_refused() {
    let master = MasterKey::generate();
    let a = sealed(&master);
    let b = serde_json::to_value(sealed(&master)).expect("serializes");
    let mixed = with_field(&with_field(&a, "ciphertext", field(&b, "ciphertext")), "nonce", field(&b, "nonce"));
    check_tampered(&master, TENANT, CONNECTION, &mixed);
}

#[test]
fn malformed_fields_are_refused_by_name() {
    let master = MasterKey::generate();
    let sealed = sealed(&master);
    for (name, value) in [
        ("wrapped_key", "not base64!"),
        ("wrapped_key", "AAAA"),
        ("nonce", "AAAA"),
        ("nonce", "%%"),
        ("ciphertext", ""),
    ] {
        match open(&master, TENANT, CONNECTION, &with_field(&sealed, name, value)) {
            Err(VaultError::Malformed { field, .. }) => assert_eq!(field, name),
            other => panic!("{name}={value:?}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn an_unknown_version_is_refused() {
    let master = MasterKey::generate();
    let mut json = serde_json::to_value(sealed(&master)).expect("serializes");
    json["version"] = 2.into();
    let sealed: SealedSecrets = serde_json::from_value(json).expect("deserializes");
    let e = open(&master, TENANT, CONNECTION, &sealed).expect_err("refused");
    assert!(matches!(e, VaultError::UnsupportedVersion { version: 2, .. }), "{e:?}");
}

#[test]
fn unknown_fields_are_refused() {
    let master = MasterKey::generate();
    let mut json = serde_json::to_value(sealed(&master)).expect("serializes");
    json["plaintext"] = "x".into();
    assert!(serde_json::from_value::<SealedSecrets>(json).is_err());
}

#[test]
fn the_wrong_master_key_is_named() {
    let right = MasterKey::generate();
    let wrong = MasterKey::generate();
    let e = open(&wrong, TENANT, CONNECTION, &sealed(&right)).expect_err("refused");
    match &e {
        VaultError::WrongMasterKey { expected_kid, given_kid } => {
            assert_eq!((expected_kid.as_str(), given_kid.as_str()), (right.kid(), wrong.kid()));
        }
        other => panic!("expected WrongMasterKey, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "these secrets were sealed under master key {}; the key given is {}: load the key they were sealed with",
            right.kid(),
            wrong.kid()
        )
    );
}

#[test]
fn a_forged_kid_with_the_wrong_key_is_tampered() {
    let right = MasterKey::generate();
    let wrong = MasterKey::generate();
    let forged = with_field(&sealed(&right), "kid", wrong.kid());
    check_tampered(&wrong, TENANT, CONNECTION, &forged);
}

#[test]
fn rewrap_moves_to_the_new_key_and_keeps_the_ciphertext() {
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let before = sealed(&old);
    let after = rewrap(&old, &new, TENANT, CONNECTION, &before).expect("rewraps");
    assert_eq!(after.kid(), new.kid());

    let (b, a) = (serde_json::to_value(&before).expect("json"), serde_json::to_value(&after).expect("json"));
    assert_eq!(field(&a, "ciphertext"), field(&b, "ciphertext"));
    assert_eq!(field(&a, "nonce"), field(&b, "nonce"));
    assert_ne!(field(&a, "wrapped_key"), field(&b, "wrapped_key"));

    let opened = open(&new, TENANT, CONNECTION, &after).expect("opens under the new key");
    assert_eq!(opened["api_token"].expose_secret(), SECRET);
    let e = open(&old, TENANT, CONNECTION, &after).expect_err("not under the old key");
    assert!(matches!(e, VaultError::WrongMasterKey { .. }), "{e:?}");
    // Nor under the old key with the kid forged back.
    check_tampered(&old, TENANT, CONNECTION, &with_field(&after, "kid", old.kid()));
}

#[test]
fn rewrap_refuses_what_open_refuses() {
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let sealed = sealed(&old);
    let e = rewrap(&new, &old, TENANT, CONNECTION, &sealed).expect_err("not sealed under `new`");
    assert!(matches!(e, VaultError::WrongMasterKey { .. }), "{e:?}");
    let e = rewrap(&old, &new, TENANT, "okta-test", &sealed).expect_err("another connection");
    assert!(matches!(e, VaultError::Tampered { .. }), "{e:?}");
    let edited = edit(&sealed, "wrapped_key", |bytes| bytes[30] ^= 0x80);
    let e = rewrap(&old, &new, TENANT, CONNECTION, &edited).expect_err("edited");
    assert!(matches!(e, VaultError::Tampered { .. }), "{e:?}");
}

#[test]
fn the_schema_names_the_stored_fields_and_nothing_else() {
    let schema = serde_json::to_value(schemars::schema_for!(SealedSecrets)).expect("serializes");
    let mut fields: Vec<&str> =
        schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["ciphertext", "kid", "nonce", "version", "wrapped_key"]);
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["wrapped_key"]["description"].as_str().expect("documented").contains("data-key/v1"));
}
