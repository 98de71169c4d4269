//! Reading the application permissions (`roles` claim) of a Graph access token and naming the
//! ones the connector's writes need but the token lacks.

use base64::Engine as _;
use serde_json::Value;

/// Each write permission the connector needs, with the broader permissions that also grant it.
const NEEDED: &[(&str, &[&str])] = &[
    ("User.EnableDisableAccount.All", &["User.ReadWrite.All", "Directory.ReadWrite.All"]),
    ("User.RevokeSessions.All", &["User.ReadWrite.All", "Directory.ReadWrite.All"]),
    ("GroupMember.ReadWrite.All", &["Group.ReadWrite.All", "Directory.ReadWrite.All"]),
    ("RoleManagement.ReadWrite.Directory", &[]),
    ("AppRoleAssignment.ReadWrite.All", &[]),
    ("User.Read.All", &["User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"]),
];

/// The `roles` claim of an access token, or `None` when the token is not a readable JWT.
/// The signature is not checked: Graph does that; this only reads what was granted.
pub(crate) fn roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
    )
}

/// The needed permissions that neither `roles` nor a broader permission in it grants.
pub(crate) fn missing(roles: &[String]) -> Vec<String> {
    let has = |p: &str| roles.iter().any(|r| r.eq_ignore_ascii_case(p));
    NEEDED
        .iter()
        .filter(|(p, broader)| !has(p) && !broader.iter().any(|b| has(b)))
        .map(|(p, _)| (*p).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn token(claims: &str) -> String {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", enc(r#"{"alg":"RS256","typ":"JWT"}"#), enc(claims))
    }

    #[test]
    fn roles_are_read_from_the_payload() {
        let t = token(r#"{"aud":"https://graph.microsoft.com","roles":["User.Read.All","GroupMember.ReadWrite.All"]}"#);
        assert_eq!(roles(&t).unwrap(), vec!["User.Read.All", "GroupMember.ReadWrite.All"]);
        assert_eq!(roles(&token(r#"{"aud":"x"}"#)).unwrap(), Vec::<String>::new());
        assert!(roles("opaque-token").is_none());
    }

    #[test]
    fn missing_names_each_needed_permission_once() {
        let m = missing(&["User.Read.All".into(), "GroupMember.ReadWrite.All".into()]);
        assert_eq!(
            m,
            vec![
                "User.EnableDisableAccount.All",
                "User.RevokeSessions.All",
                "RoleManagement.ReadWrite.Directory",
                "AppRoleAssignment.ReadWrite.All"
            ]
        );
        let all = [
            "User.ReadWrite.All",
            "Group.ReadWrite.All",
            "RoleManagement.ReadWrite.Directory",
            "AppRoleAssignment.ReadWrite.All",
        ];
        assert!(missing(&all.map(String::from)).is_empty());
    }
}
