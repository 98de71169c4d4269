//! The checkpoint MAC: its exact input, a test vector computed independently (Python's
//! `hmac`), key parsing, and that a key never shows in `Debug` or errors.

use remediation_audit::{AuditError, AuditKey, Checkpoint, CheckpointVerdict, checkpoint_mac_input};
use secrecy::ExposeSecret;

const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
/// The head of `tests/vectors/chain.jsonl`.
const HEAD: &str = "194f711cfe449417ca60d13a662456b32f59e25b7c79fbee1ab8c74e7307839d";
/// `hmac.new(bytes.fromhex(KEY_HEX), b"remediation-audit-checkpoint-v1\n3\n" + HEAD, sha256)`.
const MAC: &str = "a93fc99483180248276e2efaf6c84423af0b56e4567c1e5202e4337c5267283e";

fn key() -> AuditKey {
    AuditKey::from_hex(KEY_HEX).expect("key")
}

#[test]
fn mac_input_and_vector() {
    assert_eq!(checkpoint_mac_input(3, HEAD), format!("remediation-audit-checkpoint-v1\n3\n{HEAD}"));
    let checkpoint = key().seal(3, HEAD);
    assert_eq!(checkpoint, Checkpoint { count: 3, head: HEAD.to_owned(), mac: MAC.to_owned() });
    assert!(key().verifies(&checkpoint));
}

#[track_caller]
fn check_rejected(checkpoint: Checkpoint) {
    assert!(!key().verifies(&checkpoint), "{checkpoint:?}");
    assert_eq!(
        remediation_audit::judge_checkpoint(Some(&key()), Some(&checkpoint), Some((3, HEAD))),
        CheckpointVerdict::BadMac
    );
}

#[test]
fn any_change_to_a_checkpoint_breaks_its_mac() {
    let good = key().seal(3, HEAD);
    check_rejected(Checkpoint { count: 4, ..good.clone() });
    check_rejected(Checkpoint { head: "0".repeat(64), ..good.clone() });
    check_rejected(Checkpoint { mac: "0".repeat(64), ..good.clone() });
    check_rejected(Checkpoint { mac: "not hex".to_owned(), ..good.clone() });
    check_rejected(Checkpoint { mac: MAC[..62].to_owned(), ..good.clone() });
    check_rejected(AuditKey::generate().seal(3, HEAD));
}

#[test]
fn keys_parse_from_64_hex_characters_only() {
    assert!(AuditKey::from_hex(&format!("{KEY_HEX}\n")).is_ok(), "a final newline is fine");
    assert!(AuditKey::from_hex(&KEY_HEX.to_uppercase()).is_ok());
    for bad in ["", "abc", &KEY_HEX[..62], &format!("{KEY_HEX}00"), &format!("{}zz", &KEY_HEX[..62])] {
        let err = AuditKey::from_hex(bad).expect_err("refused");
        assert!(matches!(err, AuditError::InvalidKey { .. }), "{err:?}");
        assert_eq!(err.to_string(), "the audit checkpoint key is not valid: expected 64 hex characters (32 bytes)");
    }
    let short = secrecy::SecretSlice::from(vec![1_u8; 15]);
    assert!(AuditKey::from_secret(short).is_err());
    assert!(AuditKey::from_secret(secrecy::SecretSlice::from(vec![1_u8; 16])).is_ok());
}

#[test]
fn generated_keys_are_random_and_round_trip_through_hex() {
    let a = AuditKey::generate();
    let b = AuditKey::generate();
    let (ha, hb) = (a.to_hex(), b.to_hex());
    assert_eq!(ha.expose_secret().len(), 64);
    assert_ne!(ha.expose_secret(), hb.expose_secret());
    let again = AuditKey::from_hex(ha.expose_secret()).expect("round trip");
    assert!(again.verifies(&a.seal(1, HEAD)));
}

#[test]
fn debug_never_shows_the_key() {
    let key = key();
    assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
    assert_eq!(format!("{:?}", Some(&key)), "Some(AuditKey(<redacted>))");
    assert!(!format!("{:#?}", key.to_hex()).contains(KEY_HEX));
}

#[test]
fn verdict_messages() {
    let mismatch = |checkpoint_count, actual_count| CheckpointVerdict::Mismatch {
        checkpoint_count,
        checkpoint_head: "cd".repeat(32),
        actual_count,
        actual_head: Some("ab".repeat(32)),
    };
    assert_eq!(CheckpointVerdict::NotConfigured.to_string(), "checkpoint: not configured");
    assert_eq!(CheckpointVerdict::Matches.to_string(), "checkpoint: matches");
    assert!(CheckpointVerdict::Missing.to_string().contains("was deleted"));
    assert!(CheckpointVerdict::BadMac.to_string().contains("forged"));
    assert!(mismatch(5, 3).to_string().contains("records were cut off the end"));
    assert!(mismatch(5, 5).to_string().contains("the chain was rewritten"));
    assert!(mismatch(5, 6).to_string().contains("records were added without the key"));
    assert!(!mismatch(5, 3).is_ok());
    assert!(CheckpointVerdict::NotConfigured.is_ok() && CheckpointVerdict::Matches.is_ok());
}
