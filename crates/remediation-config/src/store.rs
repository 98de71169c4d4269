//! `[store]`: where the installation's store lives. Absent, it is the SQLite file
//! `remediation.db` in the data directory; a shared PostgreSQL database lets several servers
//! run on one installation.
//!
//! The table is checked once, into a [`StoreTarget`], so every insecure or contradictory
//! combination is refused when the file is loaded, with the key at fault named. Passwords
//! never appear in the file: `password_env` names an environment variable and
//! `password_file` a file; [`PasswordSource::read`] turns either into a [`SecretString`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The port PostgreSQL listens on unless told otherwise.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;
/// Connections a PostgreSQL store keeps open unless `pool_size` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// `[store]` as written. Either nothing (the SQLite file in the data directory), `type =
/// "sqlite"` with an optional `path`, a `url` (`postgres://USER@HOST:PORT/DATABASE?sslmode=…`
/// or `sqlite:PATH`), or `type = "postgres"` with `host`, `port`, `database` and `user`.
///
/// TLS: `sslmode = "verify-full"` (the default) encrypts and verifies the server's
/// certificate and host name, against `root_certificates` (a PEM file) when given, else the
/// operating system's trust store. `sslmode = "disable"` is accepted only for a server on this
/// host (`localhost`, a loopback address or a Unix socket directory). `require`, `verify-ca`,
/// `prefer` and `allow` are refused: each lets a machine in the middle read or answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite` (the default) or `postgres`. With `url`, the URL's scheme decides and `type`
    /// may be left out.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
    /// The store as one URL: `postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full` (also
    /// `postgresql://`; `sslrootcert=PATH` names root certificates; never a password) or
    /// `sqlite:PATH` (relative to the data directory). Not together with `host`, `port`,
    /// `database`, `user` or `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// SQLite only: the database file, relative to the data directory (default
    /// `remediation.db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// PostgreSQL: the server's host name or address, or a Unix socket directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// PostgreSQL: the port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// PostgreSQL: the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// PostgreSQL: the role the servers and the CLI connect as. It should own nothing, so
    /// that privileges revoked from it (UPDATE and DELETE on the audit table) bind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// PostgreSQL: the environment variable holding `user`'s password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// PostgreSQL: a file holding `user`'s password (owner-only; relative to the data
    /// directory). Not together with `password_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: a PEM file of the certificate authorities that may sign the server's
    /// certificate (default: the operating system's trust store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_certificates: Option<PathBuf>,
    /// PostgreSQL: `verify-full` (default) or `disable` (a server on this host only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// PostgreSQL: connections each process keeps open (default 16, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<u32>,
    /// PostgreSQL: the role `remediate migrate` connects as, which owns the schema (default:
    /// `user`). The servers never use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_user: Option<String>,
    /// PostgreSQL: the environment variable holding `migrate_user`'s password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_password_env: Option<String>,
    /// PostgreSQL: a file holding `migrate_user`'s password. Not together with
    /// `migrate_password_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_password_file: Option<PathBuf>,
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// One SQLite file (the default).
    Sqlite,
    /// A PostgreSQL database shared by several servers.
    Postgres,
}

/// PostgreSQL TLS modes, named as libpq names them; only `verify-full` and (on this host)
/// `disable` are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS: accepted only for a server on this host.
    Disable,
    /// Refused: may fall back to no TLS.
    Allow,
    /// Refused: may fall back to no TLS.
    Prefer,
    /// Refused: encrypts but accepts any certificate.
    Require,
    /// Refused: verifies the certificate but not that it names the host.
    VerifyCa,
    /// TLS, the certificate verified against the root certificates and the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where a password comes from; the password itself is read only when connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// An environment variable, by name.
    Env(String),
    /// A file, relative to the data directory unless absolute.
    File(PathBuf),
}

/// Why a password could not be read. Never quotes the password or the file's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The environment variable is not set (or not Unicode).
    #[error("the environment variable {name} is not set; export it with the password, or use a password file")]
    EnvMissing {
        /// The variable.
        name: String,
    },
    /// The file cannot be read.
    #[error("cannot read the password file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The variable or file is empty.
    #[error("the password in {what} is empty")]
    Empty {
        /// The variable or file.
        what: String,
    },
}

impl PasswordSource {
    /// Reads the password: the variable's value, or the file's content without its trailing
    /// line break; relative files are found in `data_dir`.
    pub fn read(&self, data_dir: &Path) -> Result<SecretString, PasswordError> {
        let (text, what) = match self {
            Self::Env(name) => (
                std::env::var(name).map_err(|_| PasswordError::EnvMissing { name: name.clone() })?,
                format!("the environment variable {name}"),
            ),
            Self::File(file) => {
                let path = data_dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| PasswordError::File { path: path.clone(), source })?;
                (text, path.display().to_string())
            }
        };
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(PasswordError::Empty { what });
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}

/// The store an installation uses, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// A SQLite file: relative paths are relative to the data directory.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres(PostgresTarget),
}

impl StoreTarget {
    /// The default: `remediation.db` in the data directory.
    pub fn default_sqlite() -> Self {
        Self::Sqlite { path: PathBuf::from(DEFAULT_SQLITE_FILE) }
    }

    /// Parses a store URL as `remediate store copy` takes it: `sqlite:PATH` or
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=…&sslrootcert=…` (the password from
    /// `password`, when given).
    pub fn parse_url(url: &str, password: Option<PasswordSource>) -> Result<Self, StoreSettingsError> {
        parse_url(url, "url").map(|target| match target {
            Self::Postgres(mut pg) => {
                pg.password = password;
                Self::Postgres(pg)
            }
            other => other,
        })
    }

    /// A description for messages: the path, or the URL without any password.
    pub fn describe(&self, data_dir: &Path) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite:{}", data_dir.join(path).display()),
            Self::Postgres(pg) => pg.url(),
        }
    }
}

/// The file name of the default SQLite store inside the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "remediation.db";

/// A PostgreSQL store, checked: TLS verifies the server unless it is on this host and TLS is
/// off deliberately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// Host name, address or Unix socket directory.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// The runtime role.
    pub user: String,
    /// Where its password comes from; `None`: no password (trust or certificate auth).
    pub password: Option<PasswordSource>,
    /// TLS.
    pub tls: PostgresTls,
    /// Connections per process.
    pub pool_size: u32,
    /// The role migrations run as, with its password; `None`: `user`.
    pub migrate_as: Option<(String, Option<PasswordSource>)>,
}

/// How a PostgreSQL store is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTls {
    /// TLS with certificate and host name verification, against these root certificates
    /// (PEM) or, when `None`, the operating system's trust store.
    VerifyFull {
        /// The PEM file of root certificates.
        root_certificates: Option<PathBuf>,
    },
    /// No TLS (a server on this host).
    Disable,
}

impl PostgresTarget {
    /// The connection URL without any password: what the PostgreSQL store is opened with
    /// (the password and root certificates are passed beside it).
    pub fn url(&self) -> String {
        let mode = match self.tls {
            PostgresTls::VerifyFull { .. } => SslMode::VerifyFull,
            PostgresTls::Disable => SslMode::Disable,
        };
        let host = if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}@{host}:{}/{}?sslmode={}",
            encode(&self.user),
            self.port,
            encode(&self.database),
            mode.as_str()
        )
    }

    /// The root certificates file, when TLS names one.
    pub fn root_certificates(&self) -> Option<&Path> {
        match &self.tls {
            PostgresTls::VerifyFull { root_certificates } => root_certificates.as_deref(),
            PostgresTls::Disable => None,
        }
    }

    /// The target `remediate migrate` connects to: the same database as `migrate_user` when
    /// one is set.
    pub fn for_migrations(&self) -> Self {
        let mut target = self.clone();
        if let Some((user, password)) = &self.migrate_as {
            target.user.clone_from(user);
            target.password.clone_from(password);
        }
        target.migrate_as = None;
        target
    }
}

/// Percent-encodes what may not stand bare in a URL's user or path.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A `[store]` table that cannot be used: the dotted key at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreSettingsError {
    /// The dotted key (`store.sslmode`).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn refuse(key: &str, message: impl Into<String>) -> StoreSettingsError {
    StoreSettingsError { key: format!("store.{key}"), message: message.into() }
}

/// True for a host that is this machine: `localhost`, a loopback address, a Unix socket
/// directory.
fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl StoreSettings {
    /// True when nothing is set: the default SQLite file.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the table into the store it names; every contradiction and insecure choice is
    /// refused with its key.
    pub fn target(&self) -> Result<StoreTarget, StoreSettingsError> {
        let pg_fields: [(&str, bool); 12] = [
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("database", self.database.is_some()),
            ("user", self.user.is_some()),
            ("password_env", self.password_env.is_some()),
            ("password_file", self.password_file.is_some()),
            ("root_certificates", self.root_certificates.is_some()),
            ("sslmode", self.sslmode.is_some()),
            ("pool_size", self.pool_size.is_some()),
            ("migrate_user", self.migrate_user.is_some()),
            ("migrate_password_env", self.migrate_password_env.is_some()),
            ("migrate_password_file", self.migrate_password_file.is_some()),
        ];
        let kind = match (&self.url, self.kind) {
            (Some(url), kind) => {
                let from_url = if url.starts_with("sqlite:") { StoreKind::Sqlite } else { StoreKind::Postgres };
                if let Some(kind) = kind.filter(|k| *k != from_url) {
                    return Err(refuse(
                        "type",
                        format!("`type = \"{}\"` contradicts the url's scheme; leave `type` out", kind_name(kind)),
                    ));
                }
                from_url
            }
            (None, kind) => kind.unwrap_or(StoreKind::Sqlite),
        };
        if kind == StoreKind::Sqlite {
            if let Some((key, _)) = pg_fields.iter().find(|(_, set)| *set) {
                return Err(refuse(
                    key,
                    format!("`{key}` is a PostgreSQL setting; a SQLite store takes only `path` (or a `sqlite:` url)"),
                ));
            }
            return match (&self.url, &self.path) {
                (Some(_), Some(_)) => Err(refuse("path", "give the file either as `path` or in the `url`, not both")),
                (Some(url), None) => parse_url(url, "url"),
                (None, path) => {
                    Ok(StoreTarget::Sqlite { path: path.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_FILE)) })
                }
            };
        }
        if self.path.is_some() {
            return Err(refuse(
                "path",
                "`path` is a SQLite setting; a PostgreSQL store is named by `url` or `host` and `database`",
            ));
        }
        let mut target = match &self.url {
            Some(url) => {
                if let Some(key) = ["host", "port", "database", "user"]
                    .into_iter()
                    .find(|k| pg_fields.iter().any(|(name, set)| name == k && *set))
                {
                    return Err(refuse(
                        key,
                        format!(
                            "`{key}` belongs inside the `url` when the store is given as one (`postgres://USER@HOST:PORT/DATABASE?sslmode=…`)"
                        ),
                    ));
                }
                let StoreTarget::Postgres(mut pg) = parse_url(url, "url")? else {
                    return Err(refuse("url", "expected a postgres:// url"));
                };
                if let Some(mode) = self.sslmode {
                    let in_url = url::Url::parse(url).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "sslmode"));
                    if in_url {
                        return Err(refuse("sslmode", "the url already sets `sslmode`; give it in one place"));
                    }
                    let roots = pg.root_certificates().map(Path::to_path_buf);
                    pg.tls = tls_for(&pg.host, mode, roots, "sslmode")?;
                }
                if let Some(roots) = &self.root_certificates {
                    if pg.root_certificates().is_some() {
                        return Err(refuse(
                            "root_certificates",
                            "the url already names `sslrootcert`; give it in one place",
                        ));
                    }
                    if pg.tls == PostgresTls::Disable {
                        return Err(refuse(
                            "root_certificates",
                            "root certificates are useless with `sslmode=disable`",
                        ));
                    }
                    pg.tls = PostgresTls::VerifyFull { root_certificates: Some(roots.clone()) };
                }
                pg
            }
            None => {
                let need = |key: &str, value: &Option<String>| {
                    value
                        .clone()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| refuse(key, format!("a PostgreSQL store needs `{key}` (or a `url`)")))
                };
                let host = need("host", &self.host)?;
                let database = need("database", &self.database)?;
                let user = need("user", &self.user)?;
                let tls = tls_for(
                    &host,
                    self.sslmode.unwrap_or(SslMode::VerifyFull),
                    self.root_certificates.clone(),
                    "sslmode",
                )?;
                PostgresTarget {
                    host,
                    port: self.port.unwrap_or(DEFAULT_POSTGRES_PORT),
                    database,
                    user,
                    password: None,
                    tls,
                    pool_size: DEFAULT_POOL_SIZE,
                    migrate_as: None,
                }
            }
        };
        target.password = password_source(&self.password_env, &self.password_file, "password")?;
        if let Some(size) = self.pool_size {
            if size == 0 {
                return Err(refuse("pool_size", "must be at least 1 (connections each process keeps open)"));
            }
            target.pool_size = size;
        }
        let migrate_password =
            password_source(&self.migrate_password_env, &self.migrate_password_file, "migrate_password")?;
        target.migrate_as = match (&self.migrate_user, migrate_password) {
            (Some(user), password) if !user.is_empty() => Some((user.clone(), password)),
            (Some(_), _) => return Err(refuse("migrate_user", "must not be empty")),
            (None, Some(_)) => {
                let key =
                    if self.migrate_password_env.is_some() { "migrate_password_env" } else { "migrate_password_file" };
                return Err(refuse(key, "a migration password needs `migrate_user`, the role it belongs to"));
            }
            (None, None) => None,
        };
        Ok(StoreTarget::Postgres(target))
    }
}

fn kind_name(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Sqlite => "sqlite",
        StoreKind::Postgres => "postgres",
    }
}

fn password_source(
    env: &Option<String>,
    file: &Option<PathBuf>,
    prefix: &str,
) -> Result<Option<PasswordSource>, StoreSettingsError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(refuse(
            &format!("{prefix}_file"),
            format!("give the password either in `{prefix}_env` or in `{prefix}_file`, not both"),
        )),
        (Some(name), None) if name.is_empty() => {
            Err(refuse(&format!("{prefix}_env"), "must name an environment variable"))
        }
        (Some(name), None) => Ok(Some(PasswordSource::Env(name.clone()))),
        (None, Some(path)) => Ok(Some(PasswordSource::File(path.clone()))),
        (None, None) => Ok(None),
    }
}

fn tls_for(
    host: &str,
    mode: SslMode,
    root_certificates: Option<PathBuf>,
    key: &str,
) -> Result<PostgresTls, StoreSettingsError> {
    match mode {
        SslMode::VerifyFull => Ok(PostgresTls::VerifyFull { root_certificates }),
        SslMode::Disable if is_local(host) => {
            if root_certificates.is_some() {
                return Err(refuse("root_certificates", "root certificates are useless with `sslmode = \"disable\"`"));
            }
            Ok(PostgresTls::Disable)
        }
        SslMode::Disable => Err(refuse(
            key,
            format!(
                "`disable` sends the password and the audit log in clear text to {host}; it is accepted only for a server on this host (localhost, a loopback address, a Unix socket): use `verify-full`"
            ),
        )),
        SslMode::Require | SslMode::VerifyCa | SslMode::Prefer | SslMode::Allow => Err(refuse(
            key,
            format!(
                "`{}` does not verify that the server is {host} (a machine in the middle could read and answer); use `verify-full`, with `root_certificates` for a private certificate authority",
                mode.as_str()
            ),
        )),
    }
}

/// Parses `sqlite:PATH` or `postgres://…`; errors name `store.{key}`.
fn parse_url(text: &str, key: &str) -> Result<StoreTarget, StoreSettingsError> {
    if let Some(rest) = text.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(refuse(
                key,
                "`sqlite:` needs a file: `sqlite:remediation.db` or `sqlite:/var/lib/remediation/remediation.db`",
            ));
        }
        return Ok(StoreTarget::Sqlite { path: PathBuf::from(path) });
    }
    let url = url::Url::parse(text).map_err(|e| {
        refuse(key, format!("not a store URL ({e}); expected `postgres://USER@HOST:PORT/DATABASE` or `sqlite:PATH`"))
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(refuse(
            key,
            format!("unknown store scheme `{}:`; expected `postgres://`, `postgresql://` or `sqlite:`", url.scheme()),
        ));
    }
    if url.password().is_some() {
        return Err(refuse(
            key,
            "the url holds a password: remove it (and change it, since it was written down) and give it with `password_env` or `password_file`",
        ));
    }
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    let host =
        url.host_str().filter(|h| !h.is_empty()).map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
    let host = host.ok_or_else(|| refuse(key, "the url names no host: `postgres://USER@HOST:PORT/DATABASE`"))?;
    let user = Some(url.username()).filter(|u| !u.is_empty()).and_then(decode);
    let user = user.ok_or_else(|| refuse(key, "the url names no user: `postgres://USER@HOST:PORT/DATABASE`"))?;
    let database = url.path().trim_start_matches('/');
    let database = Some(database).filter(|d| !d.is_empty() && !d.contains('/')).and_then(decode);
    let database =
        database.ok_or_else(|| refuse(key, "the url names no database: `postgres://USER@HOST:PORT/DATABASE`"))?;
    let mut mode = SslMode::VerifyFull;
    let mut roots = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "sslmode" => {
                mode = SslMode::parse(&value).ok_or_else(|| {
                    refuse(
                        key,
                        format!(
                            "unknown sslmode `{value}`; expected `verify-full` (or `disable` for a server on this host)"
                        ),
                    )
                })?;
            }
            "sslrootcert" => roots = Some(PathBuf::from(value.as_ref())),
            other => {
                return Err(refuse(
                    key,
                    format!(
                        "the url parameter `{other}` is not understood; only `sslmode` and `sslrootcert` are (set the rest in [store])"
                    ),
                ));
            }
        }
    }
    let tls = tls_for(&host, mode, roots, key)?;
    Ok(StoreTarget::Postgres(PostgresTarget {
        host,
        port: url.port().unwrap_or(DEFAULT_POSTGRES_PORT),
        database,
        user,
        password: None,
        tls,
        pool_size: DEFAULT_POOL_SIZE,
        migrate_as: None,
    }))
}
