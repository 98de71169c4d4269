//! The NATS connection settings ([`NatsConnectionConfig`]) and what they build
//! ([`NatsConnector`]): the URL, the credentials read into [`SecretString`]s, and the TLS
//! client, ready to open connections.
//!
//! A connection opened here never reconnects by itself. `async-nats` would keep what was
//! published while it was disconnected and send it after reconnecting, after the messages lost
//! with the old connection: the batch a sink retries would then land behind later events, out
//! of order. So a connection authenticates once (the auth callback refuses a second time), and
//! the sinks and the consumer open a new one on their next call instead.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::rustls;
use schemars::JsonSchema;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::NatsError;
use crate::secret::{self, EnvLookup};

const CONTEXT: &str = "NATS connection";

fn default_connect_timeout_secs() -> u64 {
    10
}

fn default_request_timeout_secs() -> u64 {
    5
}

/// Where the NATS server is and how to log in to it.
///
/// At most one kind of credentials: a token (`token_env` or `token_file`), a user and
/// password (`user` with `password_env` or `password_file`), or a NATS `.creds` file
/// (`creds_file`, a user JWT and its seed). Secrets are read when the sink or consumer is
/// built, never written in the config itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsConnectionConfig {
    /// The server: `nats://host:4222` (plain; a server that demands TLS is refused) or
    /// `tls://host:4222` (TLS required, the certificate checked against the system's roots or
    /// `tls_ca_file`). No credentials in the URL.
    pub url: String,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token (surrounding whitespace is ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// User name, with `password_env` or `password_file`.
    #[serde(default)]
    pub user: Option<String>,
    /// Environment variable holding the password of `user`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password of `user` (surrounding whitespace is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A NATS user credentials file (`nsc generate creds`): a user JWT and its nkey seed.
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
    /// PEM file of the CA(s) to trust instead of the system's roots, for a private CA. Needs a
    /// `tls://` URL.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Limit on connecting (TCP, TLS, login), in seconds (default 10).
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Limit on waiting for a JetStream acknowledgement or API reply, in seconds (default 5).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

impl NatsConnectionConfig {
    /// A connection to `url` without credentials, with the default timeouts.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token_env: None,
            token_file: None,
            user: None,
            password_env: None,
            password_file: None,
            creds_file: None,
            tls_ca_file: None,
            connect_timeout_secs: default_connect_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
        }
    }

    /// Checks the settings and reads the secrets from the process environment or their files.
    /// Does not connect.
    pub fn build(&self) -> Result<NatsConnector, NatsError> {
        self.build_with_env(&secret::process_env)
    }

    /// Like [`build`](Self::build), with `env` standing in for the process environment.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<NatsConnector, NatsError> {
        let addr = parse_url(&self.url)?;
        let tls_required = addr.scheme() == "tls";
        if self.tls_ca_file.is_some() && !tls_required {
            return Err(invalid(
                "tls_ca_file",
                "is set, but the URL is not tls://: use a tls:// URL so TLS is required",
            ));
        }
        let credentials = self.credentials(env)?;
        let tls = match &self.tls_ca_file {
            Some(path) => tls_config(Trust::Ca(read_ca(path)?))?,
            None if tls_required => tls_config(Trust::SystemRoots)?,
            None => tls_config(Trust::RefusePlainUrl)?,
        };
        Ok(NatsConnector {
            inner: Arc::new(Inner {
                url: self.url.clone(),
                addr,
                tls_required,
                tls,
                credentials,
                connect_timeout: seconds("connect_timeout_secs", self.connect_timeout_secs)?,
                request_timeout: seconds("request_timeout_secs", self.request_timeout_secs)?,
            }),
        })
    }

    fn credentials(&self, env: EnvLookup<'_>) -> Result<Credentials, NatsError> {
        let token = secret::read(
            CONTEXT,
            ("token_env", self.token_env.as_deref()),
            ("token_file", self.token_file.as_deref()),
            env,
        )?;
        let password = secret::read(
            CONTEXT,
            ("password_env", self.password_env.as_deref()),
            ("password_file", self.password_file.as_deref()),
            env,
        )?;
        let kinds = [token.is_some(), self.user.is_some() || password.is_some(), self.creds_file.is_some()];
        if kinds.iter().filter(|set| **set).count() > 1 {
            return Err(invalid(
                "token_env",
                "(or `token_file`), `user` with a password, and `creds_file` are different kinds of \
                 credentials; set at most one",
            ));
        }
        match (token, &self.user, password, &self.creds_file) {
            (Some(token), None, None, None) => Ok(Credentials::Token(token)),
            (None, Some(user), Some(password), None) => {
                if user.trim().is_empty() {
                    return Err(invalid("user", "is empty"));
                }
                Ok(Credentials::UserPassword { user: user.clone(), password })
            }
            (None, Some(_), None, None) => Err(invalid("user", "is set without `password_env` or `password_file`")),
            (None, None, Some(_), None) => Err(invalid("password_env", "(or `password_file`) is set without `user`")),
            (None, None, None, Some(path)) => read_creds(path),
            _ => Ok(Credentials::None),
        }
    }
}

fn invalid(field: &'static str, why: &str) -> NatsError {
    NatsError::InvalidSetting { context: CONTEXT, field, why: why.to_owned() }
}

fn seconds(field: &'static str, secs: u64) -> Result<Duration, NatsError> {
    if secs == 0 || secs > 300 {
        return Err(invalid(field, &format!("is {secs}; it must be between 1 and 300")));
    }
    Ok(Duration::from_secs(secs))
}

fn parse_url(url: &str) -> Result<async_nats::ServerAddr, NatsError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("nats" | "tls")) {
        return Err(invalid("url", &format!("is `{url}`; it must start with nats:// or tls://")));
    }
    let addr =
        async_nats::ServerAddr::from_str(url).map_err(|e| invalid("url", &format!("is not a valid NATS URL: {e}")))?;
    if addr.has_user_pass() || url.contains('@') {
        // The URL is logged and shown in errors; credentials go in their own settings.
        return Err(invalid("url", "holds credentials; use `token_env`, `user` with `password_env`, or `creds_file`"));
    }
    Ok(addr)
}

/// How a connection proves who it is. Never printed: `Debug` names the kind only.
#[derive(Clone)]
enum Credentials {
    None,
    Token(SecretString),
    UserPassword { user: String, password: SecretString },
    Creds { jwt: SecretString, seed: SecretString },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Token(_) => f.write_str("Token([REDACTED])"),
            Credentials::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: [REDACTED] }}")
            }
            Credentials::Creds { .. } => f.write_str("Creds([REDACTED])"),
        }
    }
}

impl Credentials {
    /// The login for the server's `nonce`.
    fn auth(&self, nonce: &[u8]) -> Result<async_nats::Auth, async_nats::AuthError> {
        let mut auth = async_nats::Auth::new();
        match self {
            Credentials::None => {}
            Credentials::Token(token) => auth.token = Some(token.expose_secret().to_owned()),
            Credentials::UserPassword { user, password } => {
                auth.username = Some(user.clone());
                auth.password = Some(password.expose_secret().to_owned());
            }
            Credentials::Creds { jwt, seed } => {
                let pair = nkeys::KeyPair::from_seed(seed.expose_secret())
                    .map_err(|_| async_nats::AuthError::new("the .creds seed is not valid"))?;
                let signature =
                    pair.sign(nonce).map_err(|_| async_nats::AuthError::new("cannot sign the server's nonce"))?;
                auth.jwt = Some(jwt.expose_secret().to_owned());
                auth.signature = Some(signature);
            }
        }
        Ok(auth)
    }
}

/// The text between a `-----BEGIN <label>-----` line and the next line of dashes.
fn creds_section<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let mut lines = text.lines().map(str::trim);
    lines.find(|l| l.starts_with("---") && l.contains(&format!("BEGIN {label}")))?;
    let body = lines.next()?;
    (!body.is_empty() && !body.starts_with("---")).then_some(body)
}

fn read_creds(path: &Path) -> Result<Credentials, NatsError> {
    let text = std::fs::read_to_string(path).map_err(|source| NatsError::ReadFile {
        field: "creds_file",
        path: path.to_owned(),
        source,
    })?;
    let bad = |why| NatsError::InvalidCreds { path: path.to_owned(), why };
    let jwt = creds_section(&text, "NATS USER JWT").ok_or_else(|| bad("no `BEGIN NATS USER JWT` section"))?;
    if jwt.split('.').count() != 3 {
        return Err(bad("the user JWT is not three dot-separated parts"));
    }
    let seed = creds_section(&text, "USER NKEY SEED").ok_or_else(|| bad("no `BEGIN USER NKEY SEED` section"))?;
    if !seed.starts_with("SU") {
        return Err(bad("the seed is not a user nkey seed (SU...)"));
    }
    nkeys::KeyPair::from_seed(seed).map_err(|_| bad("the user nkey seed does not decode"))?;
    Ok(Credentials::Creds { jwt: SecretString::from(jwt.to_owned()), seed: SecretString::from(seed.to_owned()) })
}

fn read_ca(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, NatsError> {
    use rustls::pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).map_err(|source| NatsError::ReadFile {
        field: "tls_ca_file",
        path: path.to_owned(),
        source,
    })?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NatsError::InvalidCa { path: path.to_owned(), why: format!("is not valid PEM: {e}") })?;
    if certs.is_empty() {
        return Err(NatsError::InvalidCa { path: path.to_owned(), why: "holds no PEM certificate".to_owned() });
    }
    Ok(certs)
}

enum Trust {
    /// The configured CA only.
    Ca(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// The operating system's roots.
    SystemRoots,
    /// A `nats://` URL: the scheme promised plain NATS, so a server that demands TLS is refused
    /// with a message saying so (`async-nats` would otherwise upgrade silently).
    RefusePlainUrl,
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(trust: Trust) -> Result<Arc<rustls::ClientConfig>, NatsError> {
    let tls_error = |e: rustls::Error| NatsError::Tls { reason: e.to_string() };
    let builder =
        rustls::ClientConfig::builder_with_provider(ring()).with_safe_default_protocol_versions().map_err(tls_error)?;
    let config = match trust {
        Trust::Ca(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert).map_err(tls_error)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::SystemRoots => {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::RefusePlainUrl => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(RefuseTls(ring()))).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Refuses every server certificate: used only when the URL is `nats://` and the server
/// demands TLS all the same.
#[derive(Debug)]
struct RefuseTls(Arc<rustls::crypto::CryptoProvider>);

const PLAIN_URL_TO_TLS_SERVER: &str =
    "the server requires TLS but the URL is nats://; use a tls:// URL (with `tls_ca_file` for a private CA)";

impl rustls::client::danger::ServerCertVerifier for RefuseTls {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(PLAIN_URL_TO_TLS_SERVER.to_owned()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(PLAIN_URL_TO_TLS_SERVER.to_owned()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(PLAIN_URL_TO_TLS_SERVER.to_owned()))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Built connection settings: opens connections to one NATS server. Cheap to clone. Its
/// `Debug` shows the URL and the kind of credentials, never a secret.
#[derive(Clone)]
pub struct NatsConnector {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    addr: async_nats::ServerAddr,
    tls_required: bool,
    tls: Arc<rustls::ClientConfig>,
    credentials: Credentials,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for NatsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConnector")
            .field("url", &self.inner.url)
            .field("tls_required", &self.inner.tls_required)
            .field("credentials", &self.inner.credentials)
            .field("connect_timeout", &self.inner.connect_timeout)
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

impl NatsConnector {
    /// The server URL, as configured.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How long a JetStream acknowledgement or API reply is waited for.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Opens a connection, named `name` on the server (`nats server report connections`).
    ///
    /// The client does not reconnect by itself (see the module docs): once
    /// [`async_nats::Client::connection_state`] is no longer `Connected`, open a new one.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, NatsError> {
        let used = Arc::new(AtomicBool::new(false));
        let credentials = self.inner.credentials.clone();
        let options = async_nats::ConnectOptions::with_auth_callback(move |nonce: Vec<u8>| {
            let first = !used.swap(true, Ordering::SeqCst);
            let auth = if first {
                credentials.auth(&nonce)
            } else {
                Err(async_nats::AuthError::new(
                    "a connection of remediation-nats does not reconnect; a new one is opened",
                ))
            };
            async move { auth }
        })
        .name(name)
        .connection_timeout(self.inner.connect_timeout)
        .request_timeout(Some(self.inner.request_timeout))
        .max_reconnects(1)
        .ignore_discovered_servers()
        .require_tls(self.inner.tls_required)
        .tls_client_config((*self.inner.tls).clone());
        options
            .connect(self.inner.addr.clone())
            .await
            .map_err(|e| NatsError::Connect { url: self.inner.url.clone(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_sections_are_found() {
        let text = "-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n\n\
                    ***\n-----BEGIN USER NKEY SEED-----\nSUxyz\n------END USER NKEY SEED------\n";
        assert_eq!(creds_section(text, "NATS USER JWT"), Some("a.b.c"));
        assert_eq!(creds_section(text, "USER NKEY SEED"), Some("SUxyz"));
        assert_eq!(creds_section("-----BEGIN NATS USER JWT-----\n------END", "NATS USER JWT"), None);
        assert_eq!(creds_section("", "NATS USER JWT"), None);
    }
}
