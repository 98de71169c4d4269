//! Configuration, secrets, TLS and the schema version checks.

use remediation_store_postgres::{
    MigrateOptions, PostgresConfig, PostgresStore, SCHEMA_VERSION, StorePostgresError, connect, migrate_with,
    schema_version,
};
use secrecy::SecretString;

use crate::support::{TestDb, raw};

const PASSWORD: &str = "correct-horse-battery-staple";

/// The error and its sources, as printed at the edge.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[test]
fn the_password_never_shows_in_debug_nor_in_errors() {
    let config = PostgresConfig::from_url("postgres://app@127.0.0.1:1/remediation?sslmode=disable")
        .expect("url")
        .with_password(SecretString::from(PASSWORD));
    let debug = format!("{config:?}");
    assert!(!debug.contains(PASSWORD) && debug.contains("redacted"), "{debug}");
    // A URL with a password is refused, without echoing it.
    let e = PostgresConfig::from_url(&format!("postgres://app:{PASSWORD}@127.0.0.1/remediation")).unwrap_err();
    assert!(matches!(e, StorePostgresError::PasswordInUrl));
    assert!(!chain(&e).contains(PASSWORD), "{e}");
    // A failed connection names the target, not the password.
    let e = tokio::runtime::Runtime::new().expect("rt").block_on(connect(&config, None)).map(|_| ()).unwrap_err();
    let text = format!("{} {e:?}", chain(&e));
    assert!(text.contains("127.0.0.1:1/remediation") && !text.contains(PASSWORD), "{text}");
}

#[test]
fn urls_name_the_target_and_libpq_verify_modes_mean_verified_tls() {
    for (url, target, tls) in [
        ("postgres://app@db.internal:6432/remediation?sslmode=verify-full", "db.internal:6432/remediation", true),
        ("postgres://app@db.internal/remediation?sslmode=verify-ca", "db.internal:5432/remediation", true),
        ("postgres://app@db.internal/remediation", "db.internal:5432/remediation", true),
        ("host=127.0.0.1 port=5433 user=app dbname=r sslmode=disable", "127.0.0.1:5433/r", false),
    ] {
        let config = PostgresConfig::from_url(url).expect(url);
        assert_eq!((config.target(), config.uses_tls()), (target.to_owned(), tls), "{url}");
    }
    for bad in ["postgres://app@db/r?sslmode=sometimes", "not a url at all=", "postgres://"] {
        assert!(PostgresConfig::from_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_password_comes_from_an_env_var_or_a_file() {
    use secrecy::ExposeSecret as _;
    let dir = std::env::temp_dir().join(format!("remediation-pgstore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).expect("write");
    let got = PostgresConfig::load_password(None, Some(&file)).expect("file").expect("some");
    assert_eq!(got.expose_secret(), PASSWORD, "one trailing newline dropped");
    let missing = PostgresConfig::load_password(Some("REMEDIATION_PGSTORE_NO_SUCH_VAR"), None).unwrap_err();
    assert!(missing.to_string().contains("REMEDIATION_PGSTORE_NO_SUCH_VAR"));
    assert!(matches!(
        PostgresConfig::load_password(Some("X"), Some(&file)),
        Err(StorePostgresError::TwoPasswordSources)
    ));
    assert!(PostgresConfig::load_password(None, None).expect("none").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tls_verifies_the_server_and_a_bad_ca_file_is_named() {
    let Some(conn) = remediation_testkit::real_server::require(
        "tls_verifies_the_server",
        crate::support::VAR,
        "run .ci/setup-postgres.sh",
    ) else {
        return;
    };
    // The shared server's certificate is Debian's self-signed one: no trust store vouches for it.
    let su = raw(&conn).await;
    let ssl: String = su.query_one("SHOW ssl", &[]).await.expect("ssl").get(0);
    let required = PostgresConfig::from_url(&format!("{conn} sslmode=require")).expect("url");
    let e = schema_version(&required).await.unwrap_err();
    let text = chain(&e);
    if ssl == "on" {
        assert!(text.to_lowercase().contains("certificate"), "an unverifiable server is refused: {text}");
    } else {
        assert!(matches!(e, StorePostgresError::Connect { .. }), "a server without TLS is refused: {text}");
    }
    let bad = required.with_root_certificates("/nonexistent/ca.pem".into());
    let e = schema_version(&bad).await.unwrap_err();
    assert!(matches!(e, StorePostgresError::Tls { .. }) && chain(&e).contains("/nonexistent/ca.pem"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_store_trusts_the_configured_ca_only() {
    use remediation_testkit::private_pg::PrivatePg;
    use remediation_testkit::tls::TestPki;
    let pki = TestPki::generate("database").expect("pki");
    let Some(server) = PrivatePg::start(&pki, PASSWORD) else { return };
    let url = format!("postgres://postgres@localhost:{}/postgres?sslmode=require", server.port());
    let config = PostgresConfig::from_url(&url)
        .expect("url")
        .with_password(SecretString::from(PASSWORD))
        .with_root_certificates(server.ca())
        .with_sequencer_interval(None);
    // The server accepts TLS only: migrating and connecting prove the handshake verified.
    migrate_with(&config, &MigrateOptions::default()).await.expect("migrate over TLS");
    let store = connect(&config, None).await.expect("connect over TLS");
    assert!(store.count_by_state().await.expect("read").is_empty());
    // Another CA, or the system trust store, which knows neither: refused, never downgraded.
    let wrong = TestPki::generate("unrelated").expect("pki");
    let dir = std::env::temp_dir().join(format!("remediation-pgstore-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let wrong_ca = wrong.write(&dir).expect("write").ca;
    let prefer = format!("postgres://postgres@localhost:{}/postgres", server.port());
    for config in [
        config.clone().with_root_certificates(wrong_ca),
        PostgresConfig::from_url(&prefer).expect("url").with_password(SecretString::from(PASSWORD)),
    ] {
        let e = schema_version(&config).await.unwrap_err();
        let text = chain(&e);
        assert!(text.to_lowercase().contains("issuer") || text.contains("certificate"), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn connect_refuses_a_missing_or_newer_schema_and_names_both_versions() {
    let Some(db) = TestDb::create("connect_refuses_a_missing_or_newer_schema").await else { return };
    let schema = db.empty_schema().await;
    let app = PostgresConfig::from_url(&db.conn(&db.app, &schema)).expect("app").with_sequencer_interval(None);
    let owner = PostgresConfig::from_url(&db.conn(&db.owner, &schema)).expect("owner");
    assert_eq!(schema_version(&owner).await.expect("version"), None);
    let e = PostgresStore::connect(&app, None).await.unwrap_err();
    assert!(
        matches!(e, StorePostgresError::SchemaMissing { .. }) && e.to_string().contains("remediate migrate"),
        "{e}"
    );

    let options = MigrateOptions { runtime_role: Some(db.app.clone()) };
    let first = migrate_with(&owner, &options).await.expect("migrate");
    assert_eq!(
        (first.from, first.to, first.applied.as_slice()),
        (None, SCHEMA_VERSION, &(1..=SCHEMA_VERSION).collect::<Vec<_>>()[..])
    );
    let again = migrate_with(&owner, &options).await.expect("migrate again");
    assert!(again.applied.is_empty(), "idempotent");
    assert_eq!(schema_version(&app).await.expect("version"), Some(SCHEMA_VERSION));
    PostgresStore::connect(&app, None).await.expect("this build's schema");

    // The runtime role cannot create the schema: it may create nothing.
    let other = db.empty_schema().await;
    let app_elsewhere = PostgresConfig::from_url(&db.conn(&db.app, &other)).expect("app");
    let e = migrate_with(&app_elsewhere, &MigrateOptions::default()).await.unwrap_err();
    assert!(matches!(e, StorePostgresError::Migrate { .. }), "{e}");

    // A newer release migrated: this build refuses to run, and to migrate.
    let o = raw(&db.conn(&db.owner, &schema)).await;
    o.execute("INSERT INTO schema_migrations (version, description) VALUES (99, 'from the future')", &[])
        .await
        .expect("future");
    let e = PostgresStore::connect(&app, None).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StorePostgresError::SchemaTooNew { found: 99, .. }), "{text}");
    assert!(text.contains("99") && text.contains(&format!("({SCHEMA_VERSION})")), "{text}");
    assert!(matches!(migrate_with(&owner, &options).await, Err(StorePostgresError::SchemaTooNew { .. })));
    db.drop().await;
}
