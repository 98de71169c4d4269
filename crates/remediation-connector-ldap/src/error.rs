//! Errors building the connector, and how LDAP result codes become connector errors.

use std::io;
use std::path::PathBuf;

use ldap3::{LdapError, LdapResult};
use remediation_core::{ConnectorError, ConnectorErrorKind};

/// Why an LDAP connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LdapConnectorError {
    /// Neither or both of `bind_password_env` and `bind_password_file` are set.
    #[error(
        "LDAP connector {connector}: set exactly one of bind_password_env, bind_password_file and bind_password_sealed"
    )]
    PasswordSource {
        /// The connector identifier.
        connector: String,
    },
    /// The sealed secret named by `bind_password_sealed` cannot be read.
    #[error("LDAP connector {connector}: cannot read the bind password")]
    PasswordSealed {
        /// The connector identifier.
        connector: String,
        /// Why (outside a managed connection's build, or no such secret).
        #[source]
        source: remediation_core::secret_source::SecretSourceError,
    },
    /// The environment variable that should hold the password is unset or empty.
    #[error("LDAP connector {connector}: environment variable {var} is unset or empty")]
    PasswordEnv {
        /// The connector identifier.
        connector: String,
        /// The variable's name.
        var: String,
    },
    /// The password file could not be read, or is empty.
    #[error("LDAP connector {connector}: cannot read bind password file {}", path.display())]
    PasswordFile {
        /// The connector identifier.
        connector: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The TLS settings cannot be used (an unreadable or empty CA file).
    #[error("LDAP connector {connector}: cannot set up TLS")]
    Tls {
        /// The connector identifier.
        connector: String,
        /// What failed.
        #[source]
        source: remediation_tls::TlsError,
    },
    /// A configuration value is out of range or unusable.
    #[error("LDAP connector {connector}: {reason}")]
    Invalid {
        /// The connector identifier.
        connector: String,
        /// What is wrong.
        reason: String,
    },
}

/// The name RFC 4511 gives a result code.
pub(crate) fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        65 => "objectClassViolation",
        80 => "other",
        _ => "unknown result code",
    }
}

/// The class of failure an LDAP result code stands for.
///
/// 16 and 20 are not failures for an idempotent write; callers handle them before they get
/// here, so here they are permanent (a read never returns them).
pub fn classify(rc: u32) -> ConnectorErrorKind {
    match rc {
        32 => ConnectorErrorKind::NotFound,
        48 | 49 => ConnectorErrorKind::Unauthenticated,
        50 => ConnectorErrorKind::Forbidden,
        // busy, unavailable, timeLimitExceeded, and a server going away (1 on some proxies).
        3 | 51 | 52 => ConnectorErrorKind::Transient,
        11 => ConnectorErrorKind::Throttled { retry_after: None },
        _ => ConnectorErrorKind::Permanent,
    }
}

/// A connector error for an LDAP result, keeping the server's diagnostic text and matched DN.
pub(crate) fn from_result(what: &str, res: &LdapResult) -> ConnectorError {
    let mut message = format!("{what}: {} (LDAP result {})", rc_name(res.rc), res.rc);
    if !res.text.is_empty() {
        message.push_str(": ");
        message.push_str(&res.text);
    }
    if res.rc == 32 && !res.matched.is_empty() {
        message.push_str(&format!(" (the server found only {})", res.matched));
    }
    ConnectorError::new(classify(res.rc), message)
}

/// A connector error for anything `ldap3` reports.
pub(crate) fn from_ldap(what: &str, e: LdapError) -> ConnectorError {
    match e {
        LdapError::LdapResult { result } => from_result(what, &result),
        // A certificate that does not verify stays so on a retry, and says what to change.
        LdapError::Io { source } if tls_failure(&source).is_some() => {
            let cause = tls_failure(&source).map(ToString::to_string).unwrap_or_default();
            ConnectorError::permanent(format!(
                "{what}: the TLS handshake failed: {cause}; the server's certificate must be signed by the CA in \
                 ca_file (or the system trust store without it) and name the URL's host"
            ))
        }
        // Connection refused or reset, timeouts, a closed connection: worth retrying.
        LdapError::Io { .. }
        | LdapError::Timeout { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream => ConnectorError::new(ConnectorErrorKind::Transient, format!("{what}: {e}")),
        other => ConnectorError::permanent(format!("{what}: {other}")),
    }
}

/// The rustls error inside an I/O error of the TLS handshake, if that is what it is.
fn tls_failure(e: &io::Error) -> Option<&remediation_tls::rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<remediation_tls::rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(rc: u32, expected: ConnectorErrorKind) {
        assert_eq!(classify(rc), expected, "result code {rc}");
    }

    #[test]
    fn result_codes_map_to_classes() {
        check(32, ConnectorErrorKind::NotFound);
        check(49, ConnectorErrorKind::Unauthenticated);
        check(48, ConnectorErrorKind::Unauthenticated);
        check(50, ConnectorErrorKind::Forbidden);
        check(51, ConnectorErrorKind::Transient);
        check(52, ConnectorErrorKind::Transient);
        check(11, ConnectorErrorKind::Throttled { retry_after: None });
        check(65, ConnectorErrorKind::Permanent);
        check(53, ConnectorErrorKind::Permanent);
        check(34, ConnectorErrorKind::Permanent);
    }

    #[test]
    fn messages_keep_the_server_text_and_matched_dn() {
        let res = LdapResult {
            rc: 32,
            matched: "ou=people,dc=example,dc=org".into(),
            text: "entry gone".into(),
            refs: vec![],
            ctrls: vec![],
        };
        let e = from_result("read uid=x,ou=people,dc=example,dc=org", &res);
        assert_eq!(e.kind, ConnectorErrorKind::NotFound);
        assert_eq!(
            e.message,
            "read uid=x,ou=people,dc=example,dc=org: noSuchObject (LDAP result 32): entry gone \
             (the server found only ou=people,dc=example,dc=org)"
        );
    }
}
