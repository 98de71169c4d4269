//! Where the `Authorization` header comes from: static tokens, OAuth2 client credentials
//! (client secret or signed client assertion) and the JWT-bearer grant, with a cache that
//! refreshes before expiry and forgets its token on a 401.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use remediation_core::{Clock, ConnectorError, ConnectorErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::HttpError;

/// A source of `Authorization` header values. Object safe; shared as `Arc<dyn TokenSource>`.
///
/// Implementations never print their secret in `Debug`.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// The whole header value (`Bearer eyJ...`, `SSWS 00a...`), fetching a token if needed.
    async fn authorization(&self) -> Result<SecretString, ConnectorError>;

    /// Forgets the current token after the provider answered 401. Returns whether the next
    /// [`TokenSource::authorization`] may give a different value (and so whether a retry can
    /// help); a static token answers `false`.
    fn invalidate(&self) -> bool;
}

/// A fixed token with its scheme: `SSWS` (Okta API tokens) or `Bearer`.
pub struct StaticToken {
    scheme: &'static str,
    token: SecretString,
}

impl StaticToken {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: SecretString) -> Self {
        Self { scheme: "Bearer", token }
    }

    /// `Authorization: SSWS <token>` (Okta API token).
    pub fn ssws(token: SecretString) -> Self {
        Self { scheme: "SSWS", token }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken").field("scheme", &self.scheme).field("token", &"[redacted]").finish()
    }
}

#[async_trait]
impl TokenSource for StaticToken {
    async fn authorization(&self) -> Result<SecretString, ConnectorError> {
        Ok(SecretString::from(format!("{} {}", self.scheme, self.token.expose_secret())))
    }

    fn invalidate(&self) -> bool {
        false
    }
}

/// An RSA private key that signs RS256 JWTs, with the key id put in the header.
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    x5t: Option<String>,
    key: EncodingKey,
}

impl JwtKey {
    /// Parses a PEM RSA private key (PKCS#1 or PKCS#8). The key never appears in errors.
    pub fn from_rsa_pem(pem: &SecretString, kid: Option<String>) -> Result<Self, HttpError> {
        let key = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
            .map_err(|source| HttpError::InvalidKey { what: "RSA", source })?;
        Ok(Self { kid, x5t: None, key })
    }

    /// Puts `x5t` (the base64url SHA-1 thumbprint of the key's certificate) in the header,
    /// as Microsoft Entra ID's certificate credentials require.
    pub fn with_x5t(mut self, x5t: impl Into<String>) -> Self {
        self.x5t = Some(x5t.into());
        self
    }

    /// Signs `claims` with RS256.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<SecretString, ConnectorError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.kid);
        header.x5t.clone_from(&self.x5t);
        jsonwebtoken::encode(&header, claims, &self.key)
            .map(SecretString::from)
            .map_err(|e| ConnectorError::new(ConnectorErrorKind::Unauthenticated, format!("cannot sign JWT: {e}")))
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey").field("kid", &self.kid).field("x5t", &self.x5t).field("key", &"[redacted]").finish()
    }
}

/// How an OAuth2 client proves who it is at the token endpoint.
pub enum ClientAuth {
    /// `client_secret` in the form body.
    Secret(SecretString),
    /// `client_assertion`: an RS256 JWT (iss = sub = client id, aud = token URL, jti, iat,
    /// exp), as Okta's `private_key_jwt` and Entra's certificate credentials expect.
    PrivateKeyJwt(JwtKey),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::PrivateKeyJwt(k) => f.debug_tuple("PrivateKeyJwt").field(k).finish(),
        }
    }
}

/// Settings shared by the OAuth token sources.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Refresh this long before the token expires.
    pub refresh_margin: Duration,
    /// Lifetime of the JWTs we sign (assertions), at most one hour.
    pub assertion_lifetime: Duration,
    /// Timeout of one token request.
    pub timeout: Duration,
    /// Accept an `http://` token URL on a host other than loopback (the credential would
    /// cross the network in clear); refused by default.
    pub allow_insecure_http: bool,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            refresh_margin: Duration::from_secs(60),
            assertion_lifetime: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            allow_insecure_http: false,
        }
    }
}

/// Largest token endpoint answer read.
const TOKEN_RESPONSE_LIMIT: usize = 1024 * 1024;

/// A cached access token.
struct Cached {
    header: SecretString,
    expires_at: OffsetDateTime,
}

/// The cache and token-endpoint plumbing both OAuth grants share.
struct TokenCache {
    token_url: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    options: TokenOptions,
    cached: tokio::sync::Mutex<Option<Cached>>,
    invalidated: std::sync::atomic::AtomicBool,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenCache {
    fn new(token_url: &str, clock: Arc<dyn Clock>, options: TokenOptions) -> Result<Self, HttpError> {
        let parsed = url::Url::parse(token_url)
            .map_err(|e| HttpError::InvalidBaseUrl { url: token_url.to_owned(), reason: e.to_string() })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HttpError::InvalidBaseUrl { url: token_url.to_owned(), reason: "not http(s)".to_owned() });
        }
        crate::client::check_transport(&parsed, options.allow_insecure_http)?;
        let http = reqwest::Client::builder()
            .user_agent(crate::client::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(options.timeout)
            .build()
            .map_err(|source| HttpError::Client { source })?;
        Ok(Self {
            token_url: token_url.to_owned(),
            http,
            clock,
            options,
            cached: tokio::sync::Mutex::new(None),
            invalidated: std::sync::atomic::AtomicBool::new(false),
        })
    }

    async fn get<F>(&self, form: F) -> Result<SecretString, ConnectorError>
    where
        F: FnOnce(OffsetDateTime) -> Result<Vec<(&'static str, SecretString)>, ConnectorError> + Send,
    {
        let mut cached = self.cached.lock().await;
        if self.invalidated.swap(false, std::sync::atomic::Ordering::SeqCst) {
            *cached = None;
        }
        let now = self.clock.now();
        if let Some(c) = cached.as_ref().filter(|c| now + self.options.refresh_margin < c.expires_at) {
            return Ok(c.header.clone());
        }
        let fields = form(now)?;
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.expose_secret())).collect();
        tracing::debug!(token_url = %self.token_url, "fetching an access token");
        let response = self.http.post(&self.token_url).form(&pairs).send().await.map_err(|e| {
            ConnectorError::new(
                ConnectorErrorKind::Transient,
                format!("token request failed: {}", crate::client::describe(&e)),
            )
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = crate::client::request_id(&headers);
        // A token answer is a few kilobytes; the cap keeps a broken endpoint from filling memory.
        let body = crate::send::read_body(response, TOKEN_RESPONSE_LIMIT).await?;
        let with_id = |e: ConnectorError| match &request_id {
            Some(id) => e.with_request_id(id.clone()),
            None => e,
        };
        if !status.is_success() {
            let detail = serde_json::from_slice::<TokenErrorBody>(&body)
                .map(|b| match b.error_description {
                    Some(d) => format!("{}: {d}", b.error),
                    None => b.error,
                })
                .unwrap_or_else(|_| format!("HTTP {status}"));
            let kind = match status.as_u16() {
                400 | 401 | 403 => ConnectorErrorKind::Unauthenticated,
                429 => ConnectorErrorKind::Throttled { retry_after: crate::retry::retry_after(&headers, now) },
                500..=599 => ConnectorErrorKind::Transient,
                _ => ConnectorErrorKind::Permanent,
            };
            return Err(with_id(ConnectorError::new(kind, format!("token endpoint refused: {detail}"))));
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            with_id(ConnectorError::new(
                ConnectorErrorKind::Unauthenticated,
                "token endpoint answered without an access_token",
            ))
        })?;
        let scheme = match token.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("dpop") => "DPoP",
            _ => "Bearer",
        };
        let lifetime = time::Duration::seconds(token.expires_in.unwrap_or(3600).try_into().unwrap_or(3600));
        let header = SecretString::from(format!("{scheme} {}", token.access_token.expose_secret()));
        *cached = Some(Cached { header: header.clone(), expires_at: now + lifetime });
        Ok(header)
    }

    fn invalidate(&self) -> bool {
        self.invalidated.store(true, std::sync::atomic::Ordering::SeqCst);
        true
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").field("token_url", &self.token_url).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// OAuth2 client credentials (`grant_type=client_credentials`), with a client secret or a
/// signed client assertion, cached until shortly before expiry.
pub struct ClientCredentials {
    client_id: String,
    auth: ClientAuth,
    scope: String,
    cache: TokenCache,
}

impl ClientCredentials {
    /// A source posting to `token_url` as `client_id` for `scopes` (space-joined).
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        auth: ClientAuth,
        scopes: &[&str],
        clock: Arc<dyn Clock>,
        options: TokenOptions,
    ) -> Result<Self, HttpError> {
        Ok(Self {
            client_id: client_id.into(),
            auth,
            scope: scopes.join(" "),
            cache: TokenCache::new(token_url, clock, options)?,
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.cache.token_url)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .finish()
    }
}

#[async_trait]
impl TokenSource for ClientCredentials {
    async fn authorization(&self) -> Result<SecretString, ConnectorError> {
        let lifetime = self.cache.options.assertion_lifetime.min(Duration::from_secs(3600));
        self.cache
            .get(|now| {
                let mut form = vec![
                    ("grant_type", SecretString::from("client_credentials")),
                    ("scope", SecretString::from(self.scope.clone())),
                ];
                match &self.auth {
                    ClientAuth::Secret(secret) => {
                        form.push(("client_id", SecretString::from(self.client_id.clone())));
                        form.push(("client_secret", secret.clone()));
                    }
                    ClientAuth::PrivateKeyJwt(key) => {
                        let claims = AssertionClaims {
                            iss: &self.client_id,
                            sub: &self.client_id,
                            aud: &self.cache.token_url,
                            iat: now.unix_timestamp(),
                            exp: (now + lifetime).unix_timestamp(),
                            jti: uuid::Uuid::new_v4().to_string(),
                        };
                        form.push(("client_id", SecretString::from(self.client_id.clone())));
                        form.push((
                            "client_assertion_type",
                            SecretString::from("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                        ));
                        form.push(("client_assertion", key.sign(&claims)?));
                    }
                }
                Ok(form)
            })
            .await
    }

    fn invalidate(&self) -> bool {
        self.cache.invalidate()
    }
}

#[derive(Serialize)]
struct BearerClaims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The JWT-bearer grant (RFC 7523) as Google service accounts use it: an RS256 JWT with
/// `kid` = key id, `iss` = the service account, `sub` = the user to impersonate, `scope`,
/// `aud` = the token URL, `iat` and `exp` (at most an hour later).
pub struct JwtBearer {
    issuer: String,
    subject: Option<String>,
    scope: String,
    key: JwtKey,
    cache: TokenCache,
}

/// The fields of a Google service account key file this crate reads.
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    /// `client_email`: the JWT issuer.
    pub client_email: String,
    /// `private_key_id`: the JWT `kid`.
    pub private_key_id: String,
    /// `private_key`: PEM.
    pub private_key: SecretString,
    /// `token_uri`, when present.
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl ServiceAccountKey {
    /// Parses a service account key file's JSON. Errors never quote the file.
    pub fn from_json(json: &SecretString) -> Result<Self, HttpError> {
        serde_json::from_str(json.expose_secret()).map_err(|e| HttpError::Credential {
            what: "service account key".to_owned(),
            reason: format!("not a service account key file (line {}, column {})", e.line(), e.column()),
        })
    }
}

impl JwtBearer {
    /// A source signing with `key` as `issuer`, impersonating `subject`, posting to
    /// `token_url` (which is also the audience).
    pub fn new(
        token_url: &str,
        issuer: impl Into<String>,
        subject: Option<String>,
        key: JwtKey,
        scopes: &[&str],
        clock: Arc<dyn Clock>,
        options: TokenOptions,
    ) -> Result<Self, HttpError> {
        Ok(Self {
            issuer: issuer.into(),
            subject,
            scope: scopes.join(" "),
            key,
            cache: TokenCache::new(token_url, clock, options)?,
        })
    }

    /// A source for a Google service account key file. `token_url` overrides the file's
    /// `token_uri` (tests point it at a fake).
    pub fn service_account(
        account: &ServiceAccountKey,
        token_url: Option<&str>,
        subject: Option<String>,
        scopes: &[&str],
        clock: Arc<dyn Clock>,
        options: TokenOptions,
    ) -> Result<Self, HttpError> {
        let key = JwtKey::from_rsa_pem(&account.private_key, Some(account.private_key_id.clone()))?;
        let url = token_url.or(account.token_uri.as_deref()).unwrap_or("https://oauth2.googleapis.com/token");
        Self::new(url, account.client_email.clone(), subject, key, scopes, clock, options)
    }
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearer")
            .field("token_url", &self.cache.token_url)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish()
    }
}

#[async_trait]
impl TokenSource for JwtBearer {
    async fn authorization(&self) -> Result<SecretString, ConnectorError> {
        let lifetime = self.cache.options.assertion_lifetime.min(Duration::from_secs(3600));
        self.cache
            .get(|now| {
                let claims = BearerClaims {
                    iss: &self.issuer,
                    sub: self.subject.as_deref(),
                    scope: &self.scope,
                    aud: &self.cache.token_url,
                    iat: now.unix_timestamp(),
                    exp: (now + lifetime).unix_timestamp(),
                };
                Ok(vec![
                    ("grant_type", SecretString::from("urn:ietf:params:oauth:grant-type:jwt-bearer")),
                    ("assertion", self.key.sign(&claims)?),
                ])
            })
            .await
    }

    fn invalidate(&self) -> bool {
        self.cache.invalidate()
    }
}
