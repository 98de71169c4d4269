//! Signed tree heads: what is signed, which keys verify, rotation, refusing to sign a head
//! that does not extend the last one, and the signing key file.

use remediation_audit::merkle::{self, MerkleHash, empty_root, leaf_hash};
use remediation_audit::{
    ConsistencyProof, ExtendsError, LogSigningKey, ProofError, PublicKeySet, SignedTreeHead, TreeHeadError, key_id,
    verify_extends,
};
use time::Duration;
use time::macros::datetime;

/// RFC 8032 §7.1, TEST 1: the secret key and the public key it derives.
pub(crate) const RFC8032_TEST1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC8032_TEST1_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

pub(crate) fn seed(text: &str) -> [u8; 32] {
    let mut seed = [0_u8; 32];
    hex::decode_to_slice(text, &mut seed).expect("hex seed");
    seed
}

fn leaves(n: u64) -> Vec<MerkleHash> {
    (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
}

fn keys(signers: &[&LogSigningKey]) -> PublicKeySet {
    let mut set = PublicKeySet::default();
    for signer in signers {
        set.publish(signer.published());
    }
    set
}

/// Signs heads of the first `sizes` of `log` in turn, each extending the last.
fn sign_sizes(signer: &LogSigningKey, log: &[MerkleHash], sizes: &[u64]) -> Vec<SignedTreeHead> {
    let mut heads: Vec<SignedTreeHead> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let proof = match heads.last() {
            Some(prev) if prev.head.tree_size > 0 => {
                ConsistencyProof::generate(log, prev.head.tree_size, size).expect("prove").path
            }
            _ => Vec::new(),
        };
        let at = datetime!(2026-03-01 12:00:00 UTC) + Duration::minutes(i as i64);
        let head = signer
            .sign_next(heads.last(), size, merkle::root(&log[..size as usize]), &proof, at)
            .expect("sign a head that extends the last");
        heads.push(head);
    }
    heads
}

#[test]
fn the_key_of_rfc_8032_test_1_derives_its_public_key_and_id() {
    let signer = LogSigningKey::from_seed(&seed(RFC8032_TEST1_SECRET));
    let published = signer.published();
    assert_eq!(published.public_key, RFC8032_TEST1_PUBLIC);
    assert_eq!(published.algorithm, "ed25519");
    // First 8 bytes of SHA-256 of the public key.
    let digest = sha2_hex(&hex::decode(RFC8032_TEST1_PUBLIC).expect("hex"));
    assert_eq!(published.key_id, digest[..16]);
    assert_eq!(key_id(&seed(RFC8032_TEST1_PUBLIC)), digest[..16]);
}

fn sha2_hex(bytes: &[u8]) -> String {
    remediation_core::hash::sha256_hex(bytes)
}

#[test]
fn a_signed_head_verifies_and_any_changed_field_does_not() {
    let signer = LogSigningKey::generate();
    let set = keys(&[&signer]);
    let log = leaves(5);
    let head = sign_sizes(&signer, &log, &[5]).remove(0);
    set.verify(&head).expect("verifies");
    assert_eq!(head.head.key_id, signer.key_id());

    let bad_signature = |e: TreeHeadError| matches!(e, TreeHeadError::BadSignature { .. });
    let mut changed = head.clone();
    changed.head.tree_size += 1;
    assert!(set.verify(&changed).is_err_and(bad_signature));
    let mut changed = head.clone();
    changed.head.root_hash.0[7] ^= 0x10;
    assert!(set.verify(&changed).is_err_and(bad_signature));
    let mut changed = head.clone();
    changed.head.timestamp += Duration::milliseconds(1);
    assert!(set.verify(&changed).is_err_and(bad_signature));
    for position in [0, 63, 64, 127] {
        let mut changed = head.clone();
        let mut bytes = hex::decode(&changed.signature).expect("hex");
        bytes[position / 2] ^= 0x01;
        changed.signature = hex::encode(bytes);
        assert!(set.verify(&changed).is_err(), "flipped signature byte {}", position / 2);
    }
    let mut changed = head.clone();
    changed.signature = changed.signature.to_uppercase();
    assert!(matches!(set.verify(&changed), Err(TreeHeadError::Malformed { .. })));
}

#[test]
fn a_head_signed_by_an_unknown_key_fails() {
    let published = LogSigningKey::generate();
    let stranger = LogSigningKey::generate();
    let head = sign_sizes(&stranger, &leaves(3), &[3]).remove(0);
    let err = keys(&[&published]).verify(&head).expect_err("unknown key");
    assert!(matches!(&err, TreeHeadError::UnknownKey { key_id } if key_id == stranger.key_id()), "{err:?}");

    // Claiming a published key's id does not help: the signature is checked under that key.
    let mut claimed = head.clone();
    claimed.head.key_id = published.key_id().to_owned();
    assert!(matches!(keys(&[&published]).verify(&claimed), Err(TreeHeadError::BadSignature { .. })));
}

#[test]
fn a_published_key_listed_under_another_id_is_refused() {
    let signer = LogSigningKey::generate();
    let other = LogSigningKey::generate();
    let head = sign_sizes(&signer, &leaves(2), &[2]).remove(0);
    let mut forged = signer.published();
    forged.public_key = other.published().public_key;
    let set = PublicKeySet { keys: vec![forged] };
    assert!(matches!(set.verify(&head), Err(TreeHeadError::KeyIdMismatch { .. })));
}

#[test]
fn heads_signed_before_a_rotation_still_verify() {
    let old_key = LogSigningKey::generate();
    let new_key = LogSigningKey::generate();
    let log = leaves(9);
    let before = sign_sizes(&old_key, &log, &[2, 5]);
    let proof = ConsistencyProof::generate(&log, 5, 9).expect("prove").path;
    let after = new_key
        .sign_next(before.last(), 9, merkle::root(&log), &proof, datetime!(2026-03-02 00:00:00 UTC))
        .expect("the new key signs a head extending the old key's");
    assert_eq!(after.head.key_id, new_key.key_id());

    let set = keys(&[&old_key, &new_key]);
    for head in before.iter().chain([&after]) {
        set.verify(head).unwrap_or_else(|e| panic!("{}: {e}", head.head.tree_size));
    }
    // An auditor who saw the first head checks the one after the rotation.
    let proof = ConsistencyProof::generate(&log, 2, 9).expect("prove").path;
    verify_extends(&set, &before[0], &after, &proof).expect("extends");
    // Without the old key, old heads no longer verify: it must stay published.
    assert!(keys(&[&new_key]).verify(&before[0]).is_err());
}

#[test]
fn sign_next_refuses_a_head_that_does_not_extend_the_last() {
    let signer = LogSigningKey::generate();
    let log = leaves(8);
    let last = sign_sizes(&signer, &log, &[6]).remove(0);
    let at = datetime!(2026-03-03 00:00:00 UTC);
    let refuses = |result: Result<SignedTreeHead, TreeHeadError>| {
        matches!(result, Err(TreeHeadError::DoesNotExtend { previous_size: 6, .. }))
    };

    // Smaller.
    let proof = ConsistencyProof::generate(&log, 4, 6).expect("prove").path;
    assert!(refuses(signer.sign_next(Some(&last), 4, merkle::root(&log[..4]), &proof, at)));
    // Same size, other root.
    assert!(refuses(signer.sign_next(Some(&last), 6, leaf_hash(b"other"), &[], at)));
    // Larger, without a proof.
    assert!(refuses(signer.sign_next(Some(&last), 8, merkle::root(&log), &[], at)));
    // Larger, with a proof for another tree.
    let mut other = log.clone();
    other[2] = leaf_hash(b"rewritten");
    let proof = ConsistencyProof::generate(&other, 6, 8).expect("prove").path;
    assert!(refuses(signer.sign_next(Some(&last), 8, merkle::root(&other), &proof, at)));
    // The honest next head is signed; so is the same head again with a later timestamp.
    let proof = ConsistencyProof::generate(&log, 6, 8).expect("prove").path;
    let next = signer.sign_next(Some(&last), 8, merkle::root(&log), &proof, at).expect("extends");
    signer.sign_next(Some(&next), 8, merkle::root(&log), &[], at + Duration::hours(1)).expect("same tree");
}

#[test]
fn the_first_head_and_the_empty_tree() {
    let signer = LogSigningKey::generate();
    let at = datetime!(2026-03-03 00:00:00 UTC);
    let empty = signer.sign_next(None, 0, empty_root(), &[], at).expect("empty log");
    assert!(signer.sign_next(None, 0, leaf_hash(b"x"), &[], at).is_err(), "an empty tree has the empty root");
    let log = leaves(3);
    let first = signer.sign_next(Some(&empty), 3, merkle::root(&log), &[], at).expect("anything extends empty");
    assert!(signer.sign_next(Some(&empty), 3, merkle::root(&log), &[leaf_hash(b"x")], at).is_err());
    let set = keys(&[&signer]);
    verify_extends(&set, &empty, &first, &[]).expect("extends the empty tree");
}

#[test]
fn timestamps_are_signed_in_utc() {
    let signer = LogSigningKey::generate();
    let local = datetime!(2026-03-03 01:00:00.125 +01:00);
    let head = signer.sign_next(None, 0, empty_root(), &[], local).expect("sign");
    assert!(head.head.timestamp.offset().is_utc());
    let json = serde_json::to_value(&head).expect("json");
    assert_eq!(json["timestamp"], "2026-03-03T00:00:00.125Z");
    assert!(head.head.signed_bytes().expect("bytes").ends_with("\n2026-03-03T00:00:00.125Z"));

    let mut shifted = json.clone();
    shifted["timestamp"] = "2026-03-03T01:00:00.125+01:00".into();
    let shifted: SignedTreeHead = serde_json::from_value(shifted).expect("parse");
    assert!(matches!(keys(&[&signer]).verify(&shifted), Err(TreeHeadError::NotUtc)));
}

#[test]
fn the_json_of_a_signed_head_is_flat_and_strict() {
    let signer = LogSigningKey::from_seed(&seed(RFC8032_TEST1_SECRET));
    let head = signer.sign_next(None, 0, empty_root(), &[], datetime!(2026-01-02 03:04:05 UTC)).expect("sign");
    let json = serde_json::to_value(&head).expect("json");
    let mut fields: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["key_id", "root_hash", "signature", "timestamp", "tree_size"]);
    assert_eq!(serde_json::from_value::<SignedTreeHead>(json.clone()).expect("parse"), head);
    // A field the contract does not have is refused, not silently dropped (it is not signed).
    let mut extra = json;
    extra["origin"] = "elsewhere".into();
    assert!(serde_json::from_value::<SignedTreeHead>(extra).is_err());
}

#[test]
fn an_auditor_needs_both_heads_to_verify() {
    let signer = LogSigningKey::generate();
    let stranger = LogSigningKey::generate();
    let log = leaves(4);
    let heads = sign_sizes(&signer, &log, &[2, 4]);
    let forged = sign_sizes(&stranger, &log, &[4]).remove(0);
    let proof = ConsistencyProof::generate(&log, 2, 4).expect("prove").path;
    let set = keys(&[&signer]);
    verify_extends(&set, &heads[0], &heads[1], &proof).expect("honest");
    assert!(matches!(verify_extends(&set, &heads[0], &forged, &proof), Err(ExtendsError::NewHead(_))));
    assert!(matches!(verify_extends(&set, &forged, &heads[1], &proof), Err(ExtendsError::OldHead(_))));
    assert!(matches!(
        verify_extends(&set, &heads[1], &heads[0], &proof),
        Err(ExtendsError::Inconsistent(ProofError::Shrunk { .. }))
    ));
}

#[test]
fn the_signing_key_never_prints_its_secret() {
    let signer = LogSigningKey::from_seed(&seed(RFC8032_TEST1_SECRET));
    for text in [format!("{signer:?}"), format!("{signer:#?}")] {
        assert!(!text.contains(RFC8032_TEST1_SECRET), "{text}");
        assert!(!text.contains(&RFC8032_TEST1_SECRET[..8]), "{text}");
        assert!(text.contains(signer.key_id()) && text.contains("redacted"), "{text}");
    }
}

#[test]
fn the_key_file_is_private_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit-signing.key");
    let signer = LogSigningKey::generate();
    signer.write_new_file(&path).expect("write");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("remediation-audit-ed25519-signing-key-v1\n"));
    assert_eq!(text.lines().nth(1).map(str::len), Some(64));
    let loaded = LogSigningKey::read_file(&path).expect("read back");
    assert_eq!(loaded.published(), signer.published());

    // Never overwritten.
    assert!(matches!(LogSigningKey::generate().write_new_file(&path), Err(TreeHeadError::KeyFileIo { .. })));
    assert_eq!(LogSigningKey::read_file(&path).expect("unchanged").key_id(), signer.key_id());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = LogSigningKey::read_file(&path).expect_err("group-readable");
        assert!(matches!(err, TreeHeadError::KeyFilePermissions { mode: 0o640, .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[test]
fn a_malformed_key_file_is_refused_without_quoting_it() {
    let path = std::path::Path::new("/etc/remediate/audit-signing.key");
    let secretish =
        "remediation-audit-ed25519-signing-key-v1\nzz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n";
    for text in [
        secretish,
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
        "remediation-audit-ed25519-signing-key-v1\n9d61b19d\n",
        "remediation-audit-ed25519-signing-key-v1\n9D61B19DEFFD5A60BA844AF492EC2CC44449C5697B326919703BAC031CAE7F60\n",
    ] {
        let err = LogSigningKey::from_file_text(text, path).expect_err("malformed");
        let message = err.to_string();
        assert!(matches!(err, TreeHeadError::InvalidKeyFile { .. }), "{message}");
        assert!(!message.contains("61b19d") && !message.contains("61B19D"), "{message}");
    }
    let good = format!("remediation-audit-ed25519-signing-key-v1\n{RFC8032_TEST1_SECRET}\n");
    assert!(LogSigningKey::from_file_text(&good, path).is_ok());
}

#[test]
fn the_types_that_cross_the_api_describe_their_json() {
    let schema = serde_json::to_value(schemars::schema_for!(SignedTreeHead)).expect("schema");
    let mut properties: Vec<_> = schema["properties"].as_object().expect("properties").keys().cloned().collect();
    properties.sort();
    assert_eq!(properties, ["key_id", "root_hash", "signature", "timestamp", "tree_size"]);
    assert_eq!(schema["additionalProperties"], false);
    let text = schema.to_string();
    assert!(text.contains("^[0-9a-f]{64}$"), "root_hash is a lowercase hex hash: {text}");
    for schema in [
        serde_json::to_value(schemars::schema_for!(remediation_audit::InclusionProof)).expect("schema"),
        serde_json::to_value(schemars::schema_for!(ConsistencyProof)).expect("schema"),
        serde_json::to_value(schemars::schema_for!(PublicKeySet)).expect("schema"),
    ] {
        assert_eq!(schema["additionalProperties"], false, "{schema}");
    }
}

#[test]
fn entries_not_yet_sequenced_are_named_but_do_not_fail_verification() {
    use remediation_audit::{AuditVerification, TreeHeadVerdict};
    let verification = |unsequenced| AuditVerification {
        chain: remediation_audit::verify_chain(Vec::new()),
        tree_head: TreeHeadVerdict::default(),
        unsequenced,
    };
    assert_eq!(verification(0).unsequenced_note(), None);
    assert_eq!(
        verification(3).unsequenced_note().as_deref(),
        Some(
            "3 entries written but not yet sequenced (the sequencer seals them within seconds; they are not covered by this check)"
        )
    );
    assert!(verification(1).unsequenced_note().is_some_and(|n| n.starts_with("1 entry written")));
    assert_eq!(verification(3).is_intact(), verification(0).is_intact(), "waiting entries do not fail it");
    let json = serde_json::to_value(verification(3)).expect("json");
    assert_eq!(json["unsequenced"], 3);
    let old: AuditVerification = serde_json::from_value(serde_json::json!({
        "records": 0, "head": null, "first_break": null, "checkpoint": {"status": "not_configured"}
    }))
    .expect("a report without the field");
    assert_eq!(old.unsequenced, 0);
}
