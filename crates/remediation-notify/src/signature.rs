//! The request signature shared by the webhook sink and the webhook notifier, and its check.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::error::SignatureError;

/// Header carrying the Unix time (seconds, decimal) at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Remediation-Timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Remediation-Signature";
/// Header carrying an identifier that is the same for every retry of one delivery.
pub const EVENT_ID_HEADER: &str = "X-Remediation-Event-Id";
/// How far a timestamp may be from the receiver's clock by default: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

const PREFIX: &str = "sha256=";

fn mac(secret: &SecretString, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of the [`SIGNATURE_HEADER`] for `body` signed at `timestamp` (Unix seconds):
/// `sha256=` and the lowercase hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of the
/// timestamp in decimal, a `.`, and the body bytes exactly as sent.
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(tag))
}

/// Checks a signed request as a receiver would: `timestamp` and `header` are the raw values of
/// the [`TIMESTAMP_HEADER`] and [`SIGNATURE_HEADER`], `body` the raw request body (before any
/// JSON parsing), `now` the receiver's clock. A timestamp more than `tolerance` away from `now`
/// in either direction is refused, so a captured request cannot be replayed later
/// ([`DEFAULT_TOLERANCE`] is five minutes). The comparison is constant-time.
///
/// ```
/// use remediation_notify::{DEFAULT_TOLERANCE, sign, verify_signature};
/// use secrecy::SecretString;
/// use time::OffsetDateTime;
///
/// let secret = SecretString::from("s3cret");
/// let now = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
/// let body = br#"{"type":"breaker_tripped"}"#;
/// let header = sign(&secret, 1_700_000_000, body);
/// assert!(verify_signature(&secret, "1700000000", body, &header, now, DEFAULT_TOLERANCE).is_ok());
/// assert!(verify_signature(&secret, "1700000000", b"{}", &header, now, DEFAULT_TOLERANCE).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_signature(
    secret: &SecretString,
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.trim();
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let signed_at: i64 = timestamp.parse().map_err(|_| SignatureError::MalformedTimestamp)?;
    let age = now.unix_timestamp().saturating_sub(signed_at);
    let tolerance_secs = tolerance.as_secs();
    if age.unsigned_abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age, tolerance_secs });
    }
    let hex_tag = header.trim().strip_prefix(PREFIX).ok_or(SignatureError::MalformedSignature)?;
    if hex_tag.len() != 64 {
        return Err(SignatureError::MalformedSignature);
    }
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::MalformedSignature)?;
    mac(secret, timestamp, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("whsec-test")
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[track_caller]
    fn check(timestamp: &str, body: &[u8], header: &str, now: i64, expected: Result<(), SignatureError>) {
        assert_eq!(verify_signature(&secret(), timestamp, body, header, at(now), DEFAULT_TOLERANCE), expected);
    }

    #[test]
    fn known_vector() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec-test
        assert_eq!(
            sign(&secret(), 1_700_000_000, br#"{"a":1}"#),
            "sha256=fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece"
        );
    }

    #[test]
    fn verification_cases() {
        let body = br#"{"a":1}"#;
        let good = sign(&secret(), 1_700_000_000, body);
        check("1700000000", body, &good, 1_700_000_000, Ok(()));
        check("1700000000", body, &good, 1_700_000_300, Ok(()));
        check("1700000000", body, &good, 1_699_999_700, Ok(()));
        check(
            "1700000000",
            body,
            &good,
            1_700_000_301,
            Err(SignatureError::Stale { age_secs: 301, tolerance_secs: 300 }),
        );
        check(
            "1700000000",
            body,
            &good,
            1_699_999_699,
            Err(SignatureError::Stale { age_secs: -301, tolerance_secs: 300 }),
        );
        check("1700000000", br#"{"a":2}"#, &good, 1_700_000_000, Err(SignatureError::Mismatch));
        check("1700000001", body, &good, 1_700_000_000, Err(SignatureError::Mismatch));
        check("-1", body, &good, 1_700_000_000, Err(SignatureError::MalformedTimestamp));
        check("", body, &good, 1_700_000_000, Err(SignatureError::MalformedTimestamp));
        check("17e8", body, &good, 1_700_000_000, Err(SignatureError::MalformedTimestamp));
        check(
            "1700000000",
            body,
            good.trim_start_matches("sha256="),
            1_700_000_000,
            Err(SignatureError::MalformedSignature),
        );
        check("1700000000", body, "sha256=zz", 1_700_000_000, Err(SignatureError::MalformedSignature));
        check(
            "1700000000",
            body,
            &format!("sha256={}", "g".repeat(64)),
            1_700_000_000,
            Err(SignatureError::MalformedSignature),
        );
        let other = sign(&SecretString::from("other"), 1_700_000_000, body);
        check("1700000000", body, &other, 1_700_000_000, Err(SignatureError::Mismatch));
    }
}
