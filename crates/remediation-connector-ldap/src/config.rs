//! The connector's configuration and how its bind password is found.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::LdapConnectorError;

/// Which directory server the connector talks to, which decides how an account is suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenLDAP with the ppolicy overlay: suspend sets `pwdAccountLockedTime` to
    /// `000001010000Z` (locked until an administrator unlocks).
    Openldap,
    /// Active Directory: suspend sets the ACCOUNTDISABLE bit (`0x2`) of `userAccountControl`.
    ActiveDirectory,
}

/// Configuration of one LDAP connector.
///
/// Exactly one of `bind_password_env`, `bind_password_file` and `bind_password_sealed` names where the bind
/// password is; the password itself never appears in configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Connector identifier, as actions name it (`ldap-corp`).
    pub id: String,
    /// Server URL: `ldaps://host:636` (TLS from the first byte), `ldap://host:389` (plain, or
    /// TLS with `starttls`) or `ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi` (a local socket).
    pub url: String,
    /// Upgrade an `ldap://` connection to TLS with the StartTLS operation before binding, so
    /// the bind password never crosses the network in clear (default false).
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA certificate(s) that sign the server's certificate, for `ldaps://`
    /// and StartTLS; without it the system's trust store is used. The server's certificate
    /// must also name the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// DN the connector binds as.
    pub bind_dn: String,
    /// Name of the environment variable that holds the bind password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_env: Option<String>,
    /// Path of a file that holds the bind password (one trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// The managed connection's sealed secret that holds the bind password (only in a
    /// connection created with `remediate connections add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_sealed: Option<String>,
    /// Subtree the connector acts in: targets outside it are refused, and group searches start here.
    pub base_dn: String,
    /// The server's dialect.
    pub dialect: Dialect,
    /// DNs (users or groups) no action may touch, such as break-glass accounts.
    #[serde(default)]
    pub protected_dns: Vec<String>,
    /// Groups whose members no action may touch (and memberships in which are never revoked).
    /// They must lie under `base_dn`.
    #[serde(default)]
    pub protected_groups: Vec<String>,
    /// Timeout for connecting and for each LDAP operation, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Page size of the simple paged results control used by searches.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_page_size() -> u32 {
    500
}

impl LdapConfig {
    /// Reads the bind password from the variable or file the configuration names.
    pub fn bind_password(&self) -> Result<SecretString, LdapConnectorError> {
        if let Some(name) = &self.bind_password_sealed {
            if self.bind_password_env.is_some() || self.bind_password_file.is_some() {
                return Err(LdapConnectorError::PasswordSource { connector: self.id.clone() });
            }
            return remediation_core::secret_source::sealed(name)
                .map_err(|source| LdapConnectorError::PasswordSealed { connector: self.id.clone(), source });
        }
        match (&self.bind_password_env, &self.bind_password_file) {
            (Some(_), Some(_)) | (None, None) => Err(LdapConnectorError::PasswordSource { connector: self.id.clone() }),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                _ => Err(LdapConnectorError::PasswordEnv { connector: self.id.clone(), var: var.clone() }),
            },
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| LdapConnectorError::PasswordFile {
                    connector: self.id.clone(),
                    path: path.clone(),
                    source,
                })?;
                let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                if text.is_empty() {
                    return Err(LdapConnectorError::PasswordFile {
                        connector: self.id.clone(),
                        path: path.clone(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
                    });
                }
                Ok(SecretString::from(text.to_owned()))
            }
        }
    }

    /// Whether connections use TLS: an `ldaps://` URL, or StartTLS.
    pub fn uses_tls(&self) -> bool {
        self.starttls || self.url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("ldaps://"))
    }

    /// Checks what serde cannot: a usable URL scheme, a positive page size and timeout.
    pub fn validate(&self) -> Result<(), LdapConnectorError> {
        let invalid =
            |reason: &str| LdapConnectorError::Invalid { connector: self.id.clone(), reason: reason.to_owned() };
        let scheme = self.url.split("://").next().unwrap_or_default().to_ascii_lowercase();
        match scheme.as_str() {
            "ldap" => {
                if self.ca_file.is_some() && !self.starttls {
                    return Err(invalid("ca_file applies only over TLS: use ldaps:// or set starttls = true"));
                }
            }
            "ldaps" if self.starttls => {
                return Err(invalid("starttls applies to ldap:// only; ldaps:// is TLS from the start"));
            }
            "ldaps" => {}
            "ldapi" if self.starttls || self.ca_file.is_some() => {
                return Err(invalid("ldapi:// is a local socket: starttls and ca_file do not apply"));
            }
            "ldapi" => {}
            _ => return Err(invalid("url must start with ldaps://, ldap:// or ldapi://")),
        }
        if self.page_size == 0 || i32::try_from(self.page_size).is_err() {
            return Err(invalid("page_size must be between 1 and 2147483647"));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs must be at least 1"));
        }
        if self.base_dn.trim().is_empty() {
            return Err(invalid("base_dn must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use secrecy::ExposeSecret;

    use super::*;

    const FULL: &str = r#"{
        "id": "ldap-corp", "url": "ldap://ldap.example.org:389",
        "bind_dn": "cn=remediator,ou=services,dc=example,dc=org",
        "bind_password_file": "/nonexistent/password",
        "base_dn": "dc=example,dc=org", "dialect": "openldap",
        "protected_dns": ["uid=breakglass,ou=people,dc=example,dc=org"],
        "protected_groups": ["cn=admins,ou=groups,dc=example,dc=org"],
        "timeout_secs": 5, "page_size": 100, "starttls": false
    }"#;

    #[test]
    fn a_full_config_parses_and_validates() {
        let c: LdapConfig = serde_json::from_str(FULL).unwrap();
        assert_eq!(c.dialect, Dialect::Openldap);
        assert_eq!(c.page_size, 100);
        c.validate().unwrap();
    }

    #[test]
    fn defaults_fill_timeout_and_page_size() {
        let c: LdapConfig = serde_json::from_str(
            r#"{"id": "x", "url": "ldap://h", "bind_dn": "cn=a", "bind_password_env": "P",
                "base_dn": "dc=x", "dialect": "active_directory"}"#,
        )
        .unwrap();
        assert_eq!((c.timeout_secs, c.page_size), (10, 500));
        assert!(c.protected_dns.is_empty() && c.protected_groups.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = FULL.replace("\"page_size\"", "\"bind_password\": \"hunter22\", \"page_size\"");
        let e = serde_json::from_str::<LdapConfig>(&text).unwrap_err().to_string();
        assert!(e.contains("unknown field `bind_password`"), "{e}");
    }

    #[test]
    fn exactly_one_password_source() {
        let mut c: LdapConfig = serde_json::from_str(FULL).unwrap();
        c.bind_password_env = Some("X".into());
        assert!(matches!(c.bind_password(), Err(LdapConnectorError::PasswordSource { .. })));
        c.bind_password_env = None;
        c.bind_password_file = None;
        assert!(matches!(c.bind_password(), Err(LdapConnectorError::PasswordSource { .. })));
    }

    #[test]
    fn the_password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret-value \n").unwrap();
        let mut c: LdapConfig = serde_json::from_str(FULL).unwrap();
        c.bind_password_file = Some(path.clone());
        assert_eq!(c.bind_password().unwrap().expose_secret(), "s3cret-value ");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(c.bind_password(), Err(LdapConnectorError::PasswordFile { .. })));
    }

    #[test]
    fn a_missing_variable_is_named_without_a_value() {
        let mut c: LdapConfig = serde_json::from_str(FULL).unwrap();
        c.bind_password_file = None;
        c.bind_password_env = Some("REMEDIATION_LDAP_TEST_SURELY_UNSET".into());
        let e = c.bind_password().unwrap_err().to_string();
        assert!(e.contains("REMEDIATION_LDAP_TEST_SURELY_UNSET"), "{e}");
    }

    #[test]
    fn validation_refuses_unknown_schemes_and_zero_sizes() {
        let base: LdapConfig = serde_json::from_str(FULL).unwrap();
        for (field, value) in [("url", "http://h"), ("page_size", "0"), ("timeout_secs", "0")] {
            let mut c = base.clone();
            match field {
                "url" => c.url = value.into(),
                "page_size" => c.page_size = 0,
                _ => c.timeout_secs = 0,
            }
            assert!(c.validate().is_err(), "{field}={value} was accepted");
        }
    }

    #[track_caller]
    fn check_tls(url: &str, starttls: bool, ca_file: bool, expected: Result<(), &str>) {
        let mut c: LdapConfig = serde_json::from_str(FULL).unwrap();
        c.url = url.into();
        c.starttls = starttls;
        c.ca_file = ca_file.then(|| PathBuf::from("/etc/ssl/ldap-ca.pem"));
        match (c.validate(), expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "{url} {starttls} {ca_file}: {e}"),
            (got, want) => panic!("{url} starttls={starttls} ca_file={ca_file}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn tls_settings_fit_the_scheme() {
        check_tls("ldaps://h:636", false, false, Ok(()));
        check_tls("ldaps://h:636", false, true, Ok(()));
        check_tls("ldap://h", true, false, Ok(()));
        check_tls("ldap://h", true, true, Ok(()));
        check_tls("ldap://h", false, false, Ok(()));
        check_tls("ldap://h", false, true, Err("ca_file applies only over TLS"));
        check_tls("ldaps://h", true, false, Err("starttls applies to ldap:// only"));
        check_tls("ldapi://%2Frun%2Fldapi", false, false, Ok(()));
        check_tls("ldapi://%2Frun%2Fldapi", true, false, Err("local socket"));
        check_tls("ldapi://%2Frun%2Fldapi", false, true, Err("local socket"));
    }
}
