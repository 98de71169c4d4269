//! Tenants: one installation serves several directories (an MSP's customers, or a company's
//! test and production tenants), and nothing crosses from one to another.
//!
//! Every action, setting, control, limit window, principal role, token, connection, campaign,
//! event and audit log belongs to one tenant. A store handle is scoped to one tenant
//! ([`crate::store::TenantStore::for_tenant`] gives the handle of another); every read and
//! write through it sees only that tenant's rows. An installation that never creates a tenant
//! has one, [`TenantId::DEFAULT`].

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// The longest tenant name.
pub const MAX_TENANT_NAME: usize = 40;

/// A tenant's name: 1 to 40 lowercase ASCII letters, digits and `-`, starting with a letter
/// or a digit (`default`, `acme-prod`). It appears in URLs (`/v1/tenants/{tenant}/…`), event
/// sources (`/remediation/{tenant}`) and file names, so nothing else is allowed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant name {name:?}: {why}")]
pub struct TenantNameError {
    /// The name as given (it is never a secret).
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl TenantId {
    /// The name of the tenant every installation has.
    pub const DEFAULT: &'static str = "default";

    /// Checks `name` against the rules above.
    pub fn new(name: &str) -> Result<Self, TenantNameError> {
        let refuse = |why| Err(TenantNameError { name: name.chars().take(80).collect(), why });
        if name.is_empty() || name.len() > MAX_TENANT_NAME {
            return refuse("a tenant name has 1 to 40 characters");
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return refuse("a tenant name starts with a lowercase letter or a digit");
        }
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return refuse("a tenant name holds only lowercase letters, digits and `-`");
        }
        Ok(Self(name.to_owned()))
    }

    /// The tenant every installation has.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// Whether this is [`TenantId::DEFAULT`].
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl FromStr for TenantId {
    type Err = TenantNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TenantId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TenantId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A tenant's name: 1 to 40 lowercase letters, digits and `-`, starting with a letter or a digit.",
            "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"
        })
    }
}

/// A tenant as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Its name.
    pub name: TenantId,
    /// When it was created (for [`TenantId::DEFAULT`]: when the store was first asked).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// Who created it (`system` for the default tenant).
    pub created_by: String,
    /// What it is for, as its creator wrote it.
    #[serde(default)]
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["default", "a", "acme-prod", "0", &"x".repeat(MAX_TENANT_NAME)] {
            assert!(TenantId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "A", "a b", "a/b", "..", "a.b", "a_b", "é", "a%2f", &"x".repeat(MAX_TENANT_NAME + 1)] {
            assert!(TenantId::new(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<TenantId>("\"../x\"").is_err());
        assert_eq!(serde_json::to_string(&TenantId::default()).expect("json"), "\"default\"");
    }
}
