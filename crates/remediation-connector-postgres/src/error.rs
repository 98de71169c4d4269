//! Errors setting the connector up, and how server errors map to connector error kinds.

use std::path::PathBuf;

use remediation_core::{ConnectorError, ConnectorErrorKind};

/// Why a PostgreSQL connector could not be built from its configuration. No variant holds
/// the connection string or the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string does not parse.
    #[error("connector {id}: the connection string is not valid")]
    Url {
        /// The connector.
        id: String,
        /// The parser's error (which does not repeat the string).
        #[source]
        source: tokio_postgres::Error,
    },
    /// The TLS client cannot be set up (an unreadable or empty CA file, no system roots).
    #[error("connector {id}: cannot set up TLS")]
    Tls {
        /// The connector.
        id: String,
        /// What failed.
        #[source]
        source: remediation_tls::TlsError,
    },
    /// The connection string holds a password.
    #[error(
        "connector {id}: the connection string contains a password; remove it and set `password_env` or \
         `password_file`"
    )]
    PasswordInUrl {
        /// The connector.
        id: String,
    },
    /// Both `password_env` and `password_file` are set.
    #[error("connector {id}: set at most one of `password_env`, `password_file` and `password_sealed`")]
    TwoPasswordSources {
        /// The connector.
        id: String,
    },
    /// The sealed secret named by `password_sealed` cannot be read.
    #[error("connector {id}: cannot read the password")]
    PasswordSealed {
        /// The connector.
        id: String,
        /// Why (outside a managed connection's build, or no such secret).
        #[source]
        source: remediation_core::secret_source::SecretSourceError,
    },
    /// The password variable is unset or not UTF-8.
    #[error("connector {id}: environment variable {var} is not set (or not UTF-8)")]
    PasswordEnv {
        /// The connector.
        id: String,
        /// The variable's name.
        var: String,
    },
    /// The password file cannot be read.
    #[error("connector {id}: cannot read password file {}", path.display())]
    PasswordFile {
        /// The connector.
        id: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A protected role name cannot be a PostgreSQL identifier.
    #[error("connector {id}: protected role {role:?} is not a valid role name")]
    ProtectedRole {
        /// The connector.
        id: String,
        /// The name as configured.
        role: String,
        /// Why it is invalid.
        #[source]
        source: crate::sql::IdentError,
    },
}

/// SQLSTATE codes worth retrying in place, a few times with backoff: lock not available,
/// serialization failure, deadlock, too many connections.
pub(crate) const RETRYABLE: [&str; 4] = ["55P03", "40001", "40P01", "53300"];

/// The connector error kind for a SQLSTATE code.
pub fn kind_for_sqlstate(code: &str) -> ConnectorErrorKind {
    match code {
        // undefined_object (a role), undefined_table, invalid_schema_name.
        "42704" | "42P01" | "3F000" => ConnectorErrorKind::NotFound,
        "42501" => ConnectorErrorKind::Forbidden,
        "28P01" | "28000" => ConnectorErrorKind::Unauthenticated,
        "55P03" | "40001" | "40P01" | "53300" | "57P03" => ConnectorErrorKind::Transient,
        c if c.starts_with("08") => ConnectorErrorKind::Transient,
        _ => ConnectorErrorKind::Permanent,
    }
}

/// The server's message when two transactions change the same catalog row (a role's
/// `pg_authid` row, say): an internal error (XX000) that is a race, not a fault, and passes
/// when retried on fresh state.
pub(crate) const CONCURRENT_CATALOG_UPDATE: &str = "tuple concurrently updated";

/// The connector error kind for a server error: by SQLSTATE, except that a concurrent
/// catalog update is transient.
pub fn kind_for_server_error(code: &str, message: &str) -> ConnectorErrorKind {
    if code == "XX000" && message == CONCURRENT_CATALOG_UPDATE {
        ConnectorErrorKind::Transient
    } else {
        kind_for_sqlstate(code)
    }
}

/// Maps a driver error to a connector error, keeping the server's message and SQLSTATE.
/// `doing` says what the connector was doing ("read role alice").
pub(crate) fn map_pg(doing: &str, e: &tokio_postgres::Error) -> ConnectorError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let mut message = format!("cannot {doing}: {} (SQLSTATE {code})", db.message());
        if let Some(detail) = db.detail() {
            message.push_str(&format!("; {detail}"));
        }
        return ConnectorError::new(kind_for_server_error(code, db.message()), message);
    }
    // A certificate that does not verify stays so on a retry, and says what to change.
    if let Some(cause) = tls_failure(e) {
        return ConnectorError::permanent(format!(
            "cannot {doing}: the TLS handshake failed: {cause}; the server's certificate must be signed by the CA \
             in ca_file (or the system trust store without it) and name the connection string's host"
        ));
    }
    // No server error: the connection failed, closed or timed out. tokio-postgres's own
    // messages never contain the password.
    let mut message = format!("cannot {doing}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ConnectorError::new(ConnectorErrorKind::Transient, message)
}

/// The rustls error behind a failed connection, if the TLS handshake is what failed.
fn tls_failure(e: &tokio_postgres::Error) -> Option<&remediation_tls::rustls::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<remediation_tls::rustls::Error>() {
            return Some(tls);
        }
        let inner = s.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        if let Some(tls) = inner.and_then(|i| i.downcast_ref::<remediation_tls::rustls::Error>()) {
            return Some(tls);
        }
        source = s.source();
    }
    None
}

/// Whether a connector error came from a SQLSTATE worth retrying in place.
pub(crate) fn is_retryable(e: &ConnectorError) -> bool {
    e.kind == ConnectorErrorKind::Transient
        && (RETRYABLE.iter().any(|c| e.message.contains(&format!("(SQLSTATE {c})")))
            || e.message.contains(&format!("{CONCURRENT_CATALOG_UPDATE} (SQLSTATE XX000)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(code: &str, expected: ConnectorErrorKind) {
        assert_eq!(kind_for_sqlstate(code), expected, "SQLSTATE {code}");
    }

    #[test]
    fn sqlstates() {
        use ConnectorErrorKind::*;
        check("42704", NotFound);
        check("42P01", NotFound);
        check("3F000", NotFound);
        check("42501", Forbidden);
        check("28P01", Unauthenticated);
        check("28000", Unauthenticated);
        check("55P03", Transient);
        check("40001", Transient);
        check("40P01", Transient);
        check("53300", Transient);
        check("57P03", Transient);
        check("08006", Transient);
        check("08001", Transient);
        check("2BP01", Permanent);
        check("42601", Permanent);
        check("0A000", Permanent);
        check("XX000", Permanent);
        assert_eq!(kind_for_server_error("XX000", CONCURRENT_CATALOG_UPDATE), Transient);
        assert_eq!(kind_for_server_error("XX000", "cache lookup failed"), Permanent);
        assert_eq!(kind_for_server_error("42501", "permission denied"), Forbidden);
    }

    #[track_caller]
    fn check_retry(message: &str, kind: ConnectorErrorKind, expected: bool) {
        assert_eq!(is_retryable(&ConnectorError::new(kind, message)), expected, "{message}");
    }

    #[test]
    fn retryable() {
        use ConnectorErrorKind::*;
        check_retry("cannot x: lock timeout (SQLSTATE 55P03)", Transient, true);
        check_retry("cannot x: could not serialize (SQLSTATE 40001)", Transient, true);
        check_retry("cannot x: too many clients (SQLSTATE 53300)", Transient, true);
        check_retry("cannot x: starting up (SQLSTATE 57P03)", Transient, false);
        check_retry("cannot x: connection closed", Transient, false);
        check_retry("cannot x: tuple concurrently updated (SQLSTATE XX000)", Transient, true);
        check_retry("cannot x: (SQLSTATE 55P03)", Permanent, false);
    }
}
