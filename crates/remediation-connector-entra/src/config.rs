//! The connector's configuration: tenant, application, credential and endpoints.

use remediation_connector_http::SecretSource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The public cloud's sign-in endpoint.
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
/// The public cloud's Microsoft Graph v1.0 endpoint.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Configuration of one Microsoft Entra ID tenant.
///
/// ```toml
/// id = "entra-prod"
/// tenant_id = "11111111-2222-4333-8444-555555555555"
/// client_id = "c11e0000-0000-4000-8000-00000000c1d0"
/// credential = { type = "client_secret", secret = { env = "ENTRA_CLIENT_SECRET" } }
/// protected = ["b4ea0000-0000-4000-8000-00000000b4ea"]  # break-glass accounts
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// Connector id used in actions (`entra-prod`).
    pub id: String,
    /// The directory (tenant) id, or one of its verified domain names.
    pub tenant_id: String,
    /// The application (client) id of the app registration the connector signs in as.
    pub client_id: String,
    /// How the application proves its identity.
    pub credential: Credential,
    /// The sign-in endpoint, without the tenant (`https://login.microsoftonline.us` for US
    /// Government, `https://login.chinacloudapi.cn` for 21Vianet).
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// Microsoft Graph's v1.0 endpoint (`https://graph.microsoft.us/v1.0`,
    /// `https://microsoftgraph.chinacloudapi.cn/v1.0`).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// The token scope; defaults to `<graph origin>/.default`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Principals no action may touch (break-glass accounts), by object id or user principal
    /// name; snapshots of targets resolving to them (under any name) are marked protected.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// The application's credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    /// A client secret.
    ClientSecret {
        /// Where the secret is read from.
        secret: SecretSource,
    },
    /// A certificate: the connector signs a client assertion (RS256, `x5t` header) with the
    /// certificate's private key.
    Certificate {
        /// Where the PEM private key (PKCS#1 or PKCS#8) is read from.
        private_key: SecretSource,
        /// The certificate's SHA-1 thumbprint in hex, as the portal shows it.
        thumbprint: String,
    },
}

fn default_login_url() -> String {
    DEFAULT_LOGIN_URL.to_owned()
}

fn default_graph_url() -> String {
    DEFAULT_GRAPH_URL.to_owned()
}

impl EntraConfig {
    /// The token endpoint: `<login_url>/<tenant>/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.login_url.trim_end_matches('/'), self.tenant_id)
    }

    /// The token scope: the configured one, or Graph's origin with `/.default`.
    pub fn scope(&self) -> String {
        if let Some(s) = &self.scope {
            return s.clone();
        }
        let origin = match url::Url::parse(&self.graph_url) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => self.graph_url.trim_end_matches('/').to_owned(),
        };
        format!("{origin}/.default")
    }
}

/// Converts a hex SHA-1 thumbprint (`AA11BB...`, colons and spaces allowed) into the
/// base64url `x5t` header value.
pub(crate) fn x5t(thumbprint: &str) -> Option<String> {
    use base64::Engine as _;
    let hex: String = thumbprint.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes = hex::decode(hex).ok()?;
    (bytes.len() == 20).then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn x5t_matches_the_documented_example() {
        // Microsoft's documentation: 84E05C1D98BCE3A5421D225B140B36E86A3D5534 -> hOBcHZi846VCHSJbFAs26Go9VTQ
        assert_eq!(x5t("84E05C1D98BCE3A5421D225B140B36E86A3D5534").unwrap(), "hOBcHZi846VCHSJbFAs26Go9VTQ");
        assert_eq!(
            x5t("84:E0:5C:1D:98:BC:E3:A5:42:1D:22:5B:14:0B:36:E8:6A:3D:55:34").unwrap(),
            "hOBcHZi846VCHSJbFAs26Go9VTQ"
        );
        assert!(x5t("84E0").is_none());
    }

    #[test]
    fn endpoints_follow_the_configured_cloud() {
        let c: EntraConfig = toml::from_str(
            r#"
            id = "e"
            tenant_id = "t"
            client_id = "c"
            graph_url = "https://graph.microsoft.us/v1.0"
            login_url = "https://login.microsoftonline.us/"
            credential = { type = "client_secret", secret = { env = "X" } }
            "#,
        )
        .unwrap();
        assert_eq!(c.token_url(), "https://login.microsoftonline.us/t/oauth2/v2.0/token");
        assert_eq!(c.scope(), "https://graph.microsoft.us/.default");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<EntraConfig>(
            r#"
            id = "e"
            tenant_id = "t"
            client_id = "c"
            client_secret = "oops"
            credential = { type = "client_secret", secret = { env = "X" } }
            "#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("client_secret"), "{e}");
    }
}
