//! A person's accounts across directories: how a connector is asked for one
//! ([`AccountKey`]) and what it answers ([`Account`]).
//!
//! A person is linked to an account only by a key the organisation controls: a sign-in name
//! or primary email the directory's admins assign and the provider verifies, or an explicit
//! link an admin recorded. Never by an address the account holder may set freely (a GitHub
//! profile email): whoever sets their profile email to the victim's would otherwise be "found"
//! and acted on, or would hide the real account.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Target;

/// The grant type of a whole account, in every built-in connector's vocabulary.
pub const ACCOUNT_GRANT_TYPE: &str = "account";

/// Longest person key accepted (an email address is at most 254 characters).
pub const MAX_PERSON_KEY: usize = 254;

/// Checks a person key (`alice@example.com`, `alice`): 1 to [`MAX_PERSON_KEY`] characters,
/// no control characters, no whitespace, and none of `/ \ ? # % " ' ( ) * , ; < > [ ] { } |`
/// (characters that could change a provider request's path or filter).
pub fn check_person_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > MAX_PERSON_KEY {
        return Err(format!("a person is named by 1 to {MAX_PERSON_KEY} characters (an email or a login)"));
    }
    let bad = |c: char| {
        c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '/' | '\\'
                    | '?'
                    | '#'
                    | '%'
                    | '"'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | ','
                    | ';'
                    | '<'
                    | '>'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '|'
            )
    };
    if let Some(c) = key.chars().find(|c| bad(*c)) {
        return Err(format!(
            "`{}` is not a person's email or login: it holds `{}`",
            key.escape_debug(),
            c.escape_debug()
        ));
    }
    if key == "." || key == ".." {
        return Err(format!("`{key}` is not a person's email or login"));
    }
    Ok(())
}

/// How a connector is asked to find an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum AccountKey {
    /// A person's verified email or sign-in name, as the organisation assigns it. The
    /// connector matches it only against fields its admins control (a login, a primary email,
    /// an alias), never a profile field the account holder sets.
    Person(String),
    /// An account an admin linked to the person explicitly: the provider's own id or login
    /// of the account.
    Link(String),
}

impl AccountKey {
    /// The key as typed.
    pub fn value(&self) -> &str {
        match self {
            Self::Person(v) | Self::Link(v) => v,
        }
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(v) => write!(f, "person {v}"),
            Self::Link(v) => write!(f, "linked account {v}"),
        }
    }
}

/// An account a connector found, resolved to the provider's canonical id, with what the
/// connector can see of it. Fields the provider does not expose are `None`, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The provider's immutable id of the account (an Okta `00u…` id, an Entra object id, a
    /// Google user id, the sandbox's user key). Actions target it.
    pub id: String,
    /// The sign-in name or primary email the provider shows.
    pub login: String,
    /// Which field matched the key (`login`, `primary_email`, `alias`, `user_principal_name`,
    /// `id`, `link`).
    pub matched_by: String,
    /// The account's status in the provider's words (`ACTIVE`, `SUSPENDED`, `enabled`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The name shown to people, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The groups (or roles) the account belongs to, by the provider's id or name, when the
    /// connector reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// How many sign-in sessions are open, where the provider shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
    /// The account is protected (break-glass): no action may touch it.
    #[serde(default)]
    pub protected: bool,
}

impl Account {
    /// The whole-account target of this account (grant type [`ACCOUNT_GRANT_TYPE`]).
    pub fn target(&self) -> Target {
        Target { identity: self.id.clone(), resource: None, grant: None, grant_type: ACCOUNT_GRANT_TYPE.to_owned() }
    }

    /// The target of this account's membership of `group`.
    pub fn membership(&self, group: &str) -> Target {
        Target {
            identity: self.id.clone(),
            resource: Some(group.to_owned()),
            grant: None,
            grant_type: "group_membership".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_keys_that_could_reshape_a_request_are_refused() {
        for good in ["alice@example.com", "alice", "a.b-c_d+tag@sub.example.org"] {
            assert!(check_person_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            ".",
            "alice/../bob",
            "alice@example.com\" or true",
            "alice?x=1",
            "a b",
            "alice\n",
            "x)(uid=*",
            "a%2f",
            "a#b",
            &"a".repeat(255),
        ] {
            assert!(check_person_key(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn keys_serialize_with_how_they_match() {
        let key = AccountKey::Link("00u1".into());
        assert_eq!(serde_json::to_value(&key).expect("serialize"), serde_json::json!({"by": "link", "value": "00u1"}));
        assert_eq!(key.to_string(), "linked account 00u1");
    }
}
