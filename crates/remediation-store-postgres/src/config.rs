//! [`PostgresConfig`]: where the store is, how to log in, how to verify TLS, how big the pool
//! is; and [`MigrateOptions`].

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use remediation_core::Clock;
use secrecy::SecretString;
use tokio_postgres::config::{Host, SslMode};

use crate::StorePostgresError;

/// Connections the pool keeps at most, by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long opening a connection may take, unless the URL says (`connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the background sequencer looks for unsequenced audit entries, by default.
pub const DEFAULT_SEQUENCER_INTERVAL: Duration = Duration::from_millis(100);

/// How long the sequencer's lease lasts, by default (renewed at every pass).
pub const DEFAULT_SEQUENCER_TTL: Duration = Duration::from_secs(10);

/// Where the store is and how to reach it: built from a URL
/// (`postgres://user@host:port/db?sslmode=require`, or `key=value` pairs), with the password,
/// the TLS trust anchors and the pool size given separately.
///
/// TLS follows the URL's `sslmode`: `disable` never uses it; `prefer` (the default), `require`,
/// `verify-ca` and `verify-full` verify the server's certificate and name against the configured root
/// certificates, else the system trust store, and an unverifiable server is an error, never a
/// silent fall-back. `Debug` never shows the password.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) password: Option<SecretString>,
    pub(crate) root_certificates: Option<PathBuf>,
    pub(crate) pool_size: usize,
    pub(crate) sequencer_interval: Option<Duration>,
    pub(crate) sequencer_ttl: Duration,
    pub(crate) release_sequencer_after_pass: bool,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("target", &self.target())
            .field("user", &self.pg.get_user())
            .field("sslmode", &self.pg.get_ssl_mode())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("root_certificates", &self.root_certificates)
            .field("pool_size", &self.pool_size)
            .field("sequencer_interval", &self.sequencer_interval)
            .finish_non_exhaustive()
    }
}

impl PostgresConfig {
    /// Parses `url`: a `postgres://user@host:port/db?sslmode=...` URL or `key=value` pairs. A
    /// URL carrying a password is refused: give it with [`PostgresConfig::with_password`].
    pub fn from_url(url: &str) -> Result<Self, StorePostgresError> {
        // libpq's `verify-ca` and `verify-full` ask for what every TLS connection of this store
        // does anyway (the chain and the host name are checked), so they mean `require` here.
        let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let pg = tokio_postgres::Config::from_str(&url).map_err(|e| StorePostgresError::InvalidUrl {
            // tokio-postgres names the bad key or value, never the password.
            reason: e.to_string(),
        })?;
        if pg.get_password().is_some() {
            return Err(StorePostgresError::PasswordInUrl);
        }
        if pg.get_hosts().is_empty() {
            return Err(StorePostgresError::InvalidUrl { reason: "it names no host".to_owned() });
        }
        let mut pg = pg;
        // A server that does not answer fails the call instead of hanging it.
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("remediation");
        }
        Ok(Self {
            pg,
            password: None,
            root_certificates: None,
            pool_size: DEFAULT_POOL_SIZE,
            sequencer_interval: Some(DEFAULT_SEQUENCER_INTERVAL),
            sequencer_ttl: DEFAULT_SEQUENCER_TTL,
            release_sequencer_after_pass: false,
            clock: None,
        })
    }

    /// Logs in with `password`.
    #[must_use]
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// Verifies the server's certificate against the PEM certificates in `pem_path` instead of
    /// the system trust store.
    #[must_use]
    pub fn with_root_certificates(mut self, pem_path: PathBuf) -> Self {
        self.root_certificates = Some(pem_path);
        self
    }

    /// Keeps at most `n` connections open (at least one).
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Runs the background audit sequencer every `interval` (`None`: no background sequencer;
    /// entries are then sequenced only by [`crate::PostgresStore::sequence_pending`] calls).
    #[must_use]
    pub fn with_sequencer_interval(mut self, interval: Option<Duration>) -> Self {
        self.sequencer_interval = interval;
        self
    }

    /// Gives the sequencer lease up at the end of every [`crate::PostgresStore::sequence_pending`]
    /// pass that took it: for a short-lived process (a CLI command seals what it wrote, then
    /// exits), so the next command or a server takes the lease at once rather than when it
    /// expires. A server keeps the lease between passes (the default).
    #[must_use]
    pub fn with_sequencer_release_after_pass(mut self, release: bool) -> Self {
        self.release_sequencer_after_pass = release;
        self
    }

    /// Holds the sequencer's lease for `ttl` at a time.
    #[must_use]
    pub fn with_sequencer_ttl(mut self, ttl: Duration) -> Self {
        self.sequencer_ttl = ttl;
        self
    }

    /// Judges lease expiry by `clock` instead of the system clock (tests inject a manual clock;
    /// every replica sharing a database should use the same time source).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The password from the environment variable `env` or the file `file` (one trailing
    /// newline ignored); `None` when neither is named.
    pub fn load_password(env: Option<&str>, file: Option<&Path>) -> Result<Option<SecretString>, StorePostgresError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(StorePostgresError::TwoPasswordSources),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) => Ok(Some(SecretString::from(v))),
                Err(_) => Err(StorePostgresError::PasswordEnv { var: var.to_owned() }),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    Ok(Some(SecretString::from(text.to_owned())))
                }
                Err(source) => Err(StorePostgresError::PasswordFile { path: path.to_owned(), source }),
            },
            (None, None) => Ok(None),
        }
    }

    /// `host:port/db`, for messages.
    pub fn target(&self) -> String {
        let host = match self.pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let db = self.pg.get_dbname().or(self.pg.get_user()).unwrap_or("postgres");
        format!("{host}:{port}/{db}")
    }

    /// The user the store logs in as.
    pub fn user(&self) -> Option<&str> {
        self.pg.get_user()
    }

    /// Whether connections use TLS (anything but `sslmode=disable`).
    pub fn uses_tls(&self) -> bool {
        !matches!(self.pg.get_ssl_mode(), SslMode::Disable)
    }

    /// The tokio-postgres configuration with the password set: only for opening connections.
    pub(crate) fn connection_config(&self) -> tokio_postgres::Config {
        use secrecy::ExposeSecret as _;
        let mut pg = self.pg.clone();
        if let Some(password) = &self.password {
            pg.password(password.expose_secret().as_bytes());
        }
        pg
    }

    /// The clock leases are judged by.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.as_ref().map_or_else(time::OffsetDateTime::now_utc, |c| c.now())
    }
}

/// What [`crate::migrate`] does besides the migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// The role the application connects as: granted SELECT, INSERT, UPDATE and DELETE on the
    /// mutable tables, SELECT and INSERT only on the audit table, and owns nothing. `None`
    /// grants nothing (the owner role is then also the application's, and revoked privileges
    /// do not bind it; the audit triggers still do).
    pub runtime_role: Option<String>,
}

/// Checks a role name used in a GRANT: lowercase letters, digits and `_`, starting with a letter.
pub(crate) fn check_role(name: &str) -> Result<(), StorePostgresError> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(StorePostgresError::InvalidRoleName { name: name.chars().take(80).collect() }) }
}
