//! Which store an installation uses, chosen in one place from `[store]`: the SQLite file in
//! the data directory (the default, migrated whenever it is opened: one file on one host, so
//! the process opening it is the only one that could be upgrading it), or a PostgreSQL
//! database shared by several servers (migrated only by `remediate migrate`, or by a server
//! started with `--migrate`).
//!
//! # PostgreSQL
//!
//! The PostgreSQL store lives in its own crate, `remediation-store-postgres`, built in with the
//! `postgres` feature (on by default in both binaries). Without it, every entry point below
//! answers [`RuntimeError::PostgresNotBuilt`] for a `postgres://` store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use remediation_audit::AuditKey;
use remediation_config::{Config, PasswordSource, PostgresTarget, StoreTarget};
use remediation_core::Store;
use remediation_core::store::transfer::TransferStore;
use secrecy::SecretString;

use crate::RuntimeError;

/// The store `config` names, checked (absent: the SQLite file in the data directory).
pub fn target(config: &Config) -> Result<StoreTarget, RuntimeError> {
    config.store.target().map_err(|e| RuntimeError::StoreSettings { key: e.key, message: e.message })
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Apply pending migrations first (PostgreSQL: as the `migrate_user`). SQLite always
    /// migrates when opened.
    pub migrate: bool,
    /// PostgreSQL: run the audit sequencer in the background (a server does; a CLI command
    /// seals what is pending when it ends, and the target of a copy must not seal anything
    /// before the copy completes). SQLite sequences in every commit.
    pub background_sequencer: bool,
}

/// What `remediate migrate` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// The store, without any password (`sqlite:PATH` or the PostgreSQL URL).
    pub store: String,
    /// The schema version found (`None`: a new store).
    pub from: Option<u32>,
    /// The schema version now.
    pub to: u32,
    /// PostgreSQL: the runtime role (the `[store]` user) granted its privileges, when
    /// migrations ran as another role.
    pub granted: Option<String>,
}

/// The SQLite file of `path` (relative to `data_dir`).
fn sqlite_path(data_dir: &Path, path: &Path) -> PathBuf {
    data_dir.join(path)
}

/// Opens the SQLite store at `path` on the calling thread (creating the file owner-only first,
/// so its `-wal` and `-shm` files follow), migrated to this build's schema.
pub(crate) fn open_sqlite(
    data_dir: &Path,
    path: &Path,
    key: Option<AuditKey>,
) -> Result<Arc<dyn TransferStore>, RuntimeError> {
    let file = sqlite_path(data_dir, path);
    crate::files::create_private(&file)?;
    remediation_store_sqlite::open_transfer_store(&file, key)
        .map_err(|source| RuntimeError::StoreOpen { dir: data_dir.to_owned(), source: Box::new(source) })
}

/// Runs blocking store work (opening SQLite reads and migrates the file) off the async
/// worker threads.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| RuntimeError::StoreTask { message: e.to_string() })?
}

/// Opens the store of `target` (the one place the kind of store is chosen), for the engine.
pub async fn open(
    target: &StoreTarget,
    data_dir: &Path,
    key: Option<AuditKey>,
    options: OpenOptions,
) -> Result<Arc<dyn Store>, RuntimeError> {
    let store: Arc<dyn Store> = open_transfer(target, data_dir, key, options).await?;
    Ok(store)
}

/// [`open`], with the export and import of `remediate store copy`.
pub async fn open_transfer(
    target: &StoreTarget,
    data_dir: &Path,
    key: Option<AuditKey>,
    options: OpenOptions,
) -> Result<Arc<dyn TransferStore>, RuntimeError> {
    match target {
        StoreTarget::Sqlite { path } => {
            let (dir, path) = (data_dir.to_owned(), path.clone());
            off_thread(move || open_sqlite(&dir, &path, key)).await
        }
        StoreTarget::Postgres(pg) => {
            let config = postgres::Connection::new(pg, data_dir)?;
            if options.migrate {
                let owner = postgres::Connection::new(&pg.for_migrations(), data_dir)?;
                postgres::migrate(&owner, runtime_role(pg)).await?;
            }
            postgres::connect(&config, key, options.background_sequencer).await
        }
    }
}

/// Applies pending migrations: SQLite by opening the file (created when missing), PostgreSQL
/// as the `migrate_user`. Refuses a schema newer than this build knows, naming both versions.
pub async fn migrate(target: &StoreTarget, data_dir: &Path) -> Result<MigrationReport, RuntimeError> {
    let store = target.describe(data_dir);
    match target {
        StoreTarget::Sqlite { path } => {
            let file = sqlite_path(data_dir, path);
            let dir = data_dir.to_owned();
            off_thread(move || {
                crate::files::create_private(&file)?;
                let report = remediation_store_sqlite::migrate(&file)
                    .map_err(|source| RuntimeError::StoreOpen { dir, source: Box::new(source) })?;
                Ok(MigrationReport { store, from: report.from, to: report.to, granted: None })
            })
            .await
        }
        StoreTarget::Postgres(pg) => {
            let owner = postgres::Connection::new(&pg.for_migrations(), data_dir)?;
            let role = runtime_role(pg);
            let (from, to) = postgres::migrate(&owner, role).await?;
            Ok(MigrationReport { store, from, to, granted: role.map(str::to_owned) })
        }
    }
}

/// The role `remediate migrate` grants the application's privileges to: the `[store]` user,
/// when migrations run as another role (`migrate_user`).
fn runtime_role(pg: &PostgresTarget) -> Option<&str> {
    match &pg.migrate_as {
        Some((owner, _)) if *owner != pg.user => Some(pg.user.as_str()),
        _ => None,
    }
}

/// Refuses a store whose schema (`found`) is newer than this build's (`supported`): an older
/// binary must not write to a schema it does not know. Both versions are named.
pub fn refuse_newer_schema(store: &str, found: Option<u32>, supported: u32) -> Result<(), RuntimeError> {
    match found {
        Some(found) if found > supported => {
            Err(RuntimeError::SchemaTooNew { store: store.to_owned(), found, supported })
        }
        _ => Ok(()),
    }
}

/// A PostgreSQL store's connection settings, resolved: the URL without a password, the
/// password read from its variable or file, the root certificates' path.
pub struct PostgresParts {
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=…`, never with a password.
    pub url: String,
    /// The password, if one is configured.
    pub password: Option<SecretString>,
    /// The PEM file of root certificates (absolute, or relative to the working directory).
    pub root_certificates: Option<PathBuf>,
    /// Connections to keep open.
    pub pool_size: usize,
}

impl std::fmt::Debug for PostgresParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresParts")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("root_certificates", &self.root_certificates)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresParts {
    /// Resolves `target`: reads the password now (relative files from `data_dir`), so a
    /// missing variable or unreadable file is reported before any connection is tried.
    pub fn resolve(target: &PostgresTarget, data_dir: &Path) -> Result<Self, RuntimeError> {
        let password = target
            .password
            .as_ref()
            .map(|source| {
                source
                    .read(data_dir)
                    .map_err(|e| RuntimeError::StorePassword { source_name: describe(source), source: e })
            })
            .transpose()?;
        Ok(Self {
            url: target.url(),
            password,
            root_certificates: target.root_certificates().map(|p| data_dir.join(p)),
            pool_size: usize::try_from(target.pool_size).unwrap_or(usize::MAX),
        })
    }
}

fn describe(source: &PasswordSource) -> String {
    match source {
        PasswordSource::Env(name) => format!("environment variable {name}"),
        PasswordSource::File(path) => format!("file {}", path.display()),
    }
}

/// The PostgreSQL store of `remediation-store-postgres` (the `postgres` feature): its
/// `PostgresConfig` built from [`PostgresParts`]. Without the feature every call answers
/// [`RuntimeError::PostgresNotBuilt`].
mod postgres {
    use std::path::Path;
    use std::sync::Arc;

    use remediation_audit::AuditKey;
    use remediation_config::PostgresTarget;
    use remediation_core::store::transfer::TransferStore;

    use super::PostgresParts;
    use crate::RuntimeError;

    /// A PostgreSQL store's resolved settings.
    pub(super) struct Connection {
        parts: PostgresParts,
    }

    impl Connection {
        pub(super) fn new(target: &PostgresTarget, data_dir: &Path) -> Result<Self, RuntimeError> {
            Ok(Self { parts: PostgresParts::resolve(target, data_dir)? })
        }

        #[cfg(feature = "postgres")]
        fn failed(&self, source: remediation_store_postgres::StorePostgresError) -> RuntimeError {
            RuntimeError::Postgres { url: self.parts.url.clone(), source: Box::new(source) }
        }

        #[cfg(feature = "postgres")]
        fn config(&self) -> Result<remediation_store_postgres::PostgresConfig, RuntimeError> {
            let parts = &self.parts;
            let mut config = remediation_store_postgres::PostgresConfig::from_url(&parts.url)
                .map_err(|e| self.failed(e))?
                .with_pool_size(parts.pool_size);
            if let Some(p) = &parts.password {
                config = config.with_password(p.clone());
            }
            if let Some(roots) = &parts.root_certificates {
                config = config.with_root_certificates(roots.clone());
            }
            Ok(config)
        }

        #[cfg(not(feature = "postgres"))]
        fn not_built(&self) -> RuntimeError {
            RuntimeError::PostgresNotBuilt { url: self.parts.url.clone() }
        }
    }

    /// Applies migrations as `owner`, granting `runtime_role` (when it is another role) what
    /// the application needs; the versions before and after.
    #[cfg(feature = "postgres")]
    pub(super) async fn migrate(
        owner: &Connection,
        runtime_role: Option<&str>,
    ) -> Result<(Option<u32>, u32), RuntimeError> {
        let options = remediation_store_postgres::MigrateOptions { runtime_role: runtime_role.map(str::to_owned) };
        let report =
            remediation_store_postgres::migrate_with(&owner.config()?, &options).await.map_err(|e| owner.failed(e))?;
        Ok((report.from, report.to))
    }

    /// Connects without migrating: a schema that is missing, older or newer than this build's
    /// is refused, naming both versions.
    #[cfg(feature = "postgres")]
    pub(super) async fn connect(
        config: &Connection,
        key: Option<AuditKey>,
        background_sequencer: bool,
    ) -> Result<Arc<dyn TransferStore>, RuntimeError> {
        let mut pg = config.config()?;
        if !background_sequencer {
            // A short-lived process seals at the end of each command and gives the lease up.
            pg = pg.with_sequencer_interval(None).with_sequencer_release_after_pass(true);
        }
        let store = remediation_store_postgres::PostgresStore::connect(&pg, key).await.map_err(|e| config.failed(e))?;
        Ok(Arc::new(store))
    }

    /// Applies migrations; without PostgreSQL in the build, refused.
    #[cfg(not(feature = "postgres"))]
    pub(super) async fn migrate(
        owner: &Connection,
        _runtime_role: Option<&str>,
    ) -> Result<(Option<u32>, u32), RuntimeError> {
        Err(owner.not_built())
    }

    /// Connects; without PostgreSQL in the build, refused.
    #[cfg(not(feature = "postgres"))]
    pub(super) async fn connect(
        config: &Connection,
        _key: Option<AuditKey>,
        _background_sequencer: bool,
    ) -> Result<Arc<dyn TransferStore>, RuntimeError> {
        Err(config.not_built())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn pg(text: &str) -> PostgresTarget {
        let config: Config = toml::from_str(text).expect("parse");
        match target(&config).expect("valid") {
            StoreTarget::Postgres(pg) => pg,
            other => panic!("not postgres: {other:?}"),
        }
    }

    #[test]
    fn postgres_parts_read_the_password_and_never_show_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("db.pw"), "pg-s3cret\n").expect("write");
        let target = pg(
            "[store]\nurl = \"postgres://app@db.example.com/rem?sslrootcert=ca.pem\"\npassword_file = \"db.pw\"\npool_size = 3\n",
        );
        let parts = PostgresParts::resolve(&target, dir.path()).expect("resolve");
        assert_eq!(parts.url, "postgres://app@db.example.com:5432/rem?sslmode=verify-full");
        assert_eq!(parts.password.as_ref().map(|p| p.expose_secret().to_owned()).as_deref(), Some("pg-s3cret"));
        assert_eq!(parts.root_certificates, Some(dir.path().join("ca.pem")));
        assert_eq!(parts.pool_size, 3);
        let shown = format!("{parts:?}");
        assert!(!shown.contains("pg-s3cret") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn a_missing_password_names_its_source_not_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = pg("[store]\nurl = \"postgres://app@db/rem\"\npassword_env = \"REMEDIATION_TEST_NO_SUCH_VAR\"\n");
        let e = PostgresParts::resolve(&target, dir.path()).expect_err("unset");
        let mut shown = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            shown.push_str(&format!(": {s}"));
            source = s.source();
        }
        assert!(shown.contains("REMEDIATION_TEST_NO_SUCH_VAR"), "{shown}");
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn a_postgres_store_is_refused_clearly_without_the_feature() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = StoreTarget::Postgres(pg("[store]\nurl = \"postgres://app@127.0.0.1/rem?sslmode=disable\"\n"));
        for e in [
            open(&target, dir.path(), None, OpenOptions::default()).await.err().expect("refused"),
            migrate(&target, dir.path()).await.expect_err("refused"),
        ] {
            let shown = e.to_string();
            assert!(shown.contains("PostgreSQL") && shown.contains("postgres://app@127.0.0.1:5432/rem"), "{shown}");
        }
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions() {
        assert!(refuse_newer_schema("postgres://a@b:5432/c", Some(9), 9).is_ok());
        assert!(refuse_newer_schema("postgres://a@b:5432/c", None, 9).is_ok());
        let e = refuse_newer_schema("postgres://a@b:5432/c", Some(10), 9).expect_err("newer");
        let shown = e.to_string();
        assert!(shown.contains("postgres://a@b:5432/c") && shown.contains("10") && shown.contains("(9)"), "{shown}");
    }

    #[tokio::test]
    async fn sqlite_migrate_reports_from_and_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = StoreTarget::Sqlite { path: "other.db".into() };
        let first = migrate(&target, dir.path()).await.expect("migrate");
        assert_eq!((first.from, first.to), (None, remediation_store_sqlite::SCHEMA_VERSION));
        assert!(first.store.ends_with("other.db"), "{}", first.store);
        let again = migrate(&target, dir.path()).await.expect("migrate");
        assert_eq!(again.from, Some(remediation_store_sqlite::SCHEMA_VERSION));
    }
}
