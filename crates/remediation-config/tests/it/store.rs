//! `[store]`: parsing of each form, and a refusal naming the line and key for every insecure
//! or contradictory combination.

use std::path::{Path, PathBuf};

use remediation_config::{
    Config, ConfigError, PasswordError, PasswordSource, PostgresTarget, PostgresTls, StoreTarget,
};
use secrecy::ExposeSecret;

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("remediation.toml");
    std::fs::write(&path, text).expect("write");
    Config::load(&path)
}

#[track_caller]
fn target(text: &str) -> StoreTarget {
    load(text).expect("loads").store.target().expect("valid")
}

#[track_caller]
fn pg(text: &str) -> PostgresTarget {
    match target(text) {
        StoreTarget::Postgres(pg) => pg,
        other => panic!("not postgres: {other:?}"),
    }
}

#[track_caller]
fn refused(text: &str, line: usize, key: &str, fragment: &str) {
    let e = load(text).expect_err("must be refused");
    let shown = e.to_string();
    assert_eq!((e.line, e.key.as_deref()), (Some(line), Some(key)), "{shown}");
    assert!(shown.contains(fragment), "{shown}");
    assert!(shown.contains("remediation.toml"), "{shown}");
}

#[test]
fn no_store_table_is_the_sqlite_file_in_the_data_dir() {
    assert_eq!(target(""), StoreTarget::Sqlite { path: PathBuf::from("remediation.db") });
    assert_eq!(target("[store]\n"), StoreTarget::default_sqlite());
    assert_eq!(
        target("[store]\ntype = \"sqlite\"\npath = \"other.db\"\n"),
        StoreTarget::Sqlite { path: "other.db".into() }
    );
    assert_eq!(
        target("[store]\nurl = \"sqlite:/var/lib/r/r.db\"\n"),
        StoreTarget::Sqlite { path: "/var/lib/r/r.db".into() }
    );
    // The default is not written back out: a config that never named a store stays so.
    let config = load("").expect("load");
    assert!(!toml::to_string(&config).expect("serialise").contains("[store]"));
}

#[test]
fn a_postgres_url_with_defaults() {
    let pg = pg("[store]\nurl = \"postgres://app@db.example.com/remediation\"\npassword_env = \"PGPW\"\n");
    assert_eq!(
        (pg.host.as_str(), pg.port, pg.database.as_str(), pg.user.as_str()),
        ("db.example.com", 5432, "remediation", "app")
    );
    assert_eq!(pg.tls, PostgresTls::VerifyFull { root_certificates: None });
    assert_eq!(pg.password, Some(PasswordSource::Env("PGPW".into())));
    assert_eq!(pg.pool_size, 16);
    assert_eq!(pg.url(), "postgres://app@db.example.com:5432/remediation?sslmode=verify-full");
    assert_eq!(pg.for_migrations(), pg);
}

#[test]
fn a_postgres_url_with_tls_roots_and_an_owner_role() {
    let pg = pg("[store]\nurl = \"postgresql://app@10.0.0.5:6432/rem?sslmode=verify-full&sslrootcert=/etc/ca.pem\"\n\
                 pool_size = 4\nmigrate_user = \"owner\"\nmigrate_password_file = \"/run/owner\"\npassword_file = \"pw\"\n");
    assert_eq!(pg.tls, PostgresTls::VerifyFull { root_certificates: Some("/etc/ca.pem".into()) });
    assert_eq!((pg.port, pg.pool_size), (6432, 4));
    let owner = pg.for_migrations();
    assert_eq!((owner.user.as_str(), owner.password), ("owner", Some(PasswordSource::File("/run/owner".into()))));
    assert_eq!(owner.database, "rem");
}

#[test]
fn postgres_by_fields() {
    let pg = self::pg(
        "[store]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 5433\ndatabase = \"test\"\nuser = \"remediation\"\nsslmode = \"disable\"\n",
    );
    assert_eq!(pg.tls, PostgresTls::Disable);
    assert_eq!(pg.url(), "postgres://remediation@127.0.0.1:5433/test?sslmode=disable");
    let pg = self::pg(
        "[store]\ntype = \"postgres\"\nhost = \"db\"\ndatabase = \"a b\"\nuser = \"u@x\"\nroot_certificates = \"ca.pem\"\n",
    );
    assert_eq!(pg.url(), "postgres://u%40x@db:5432/a%20b?sslmode=verify-full");
    assert_eq!(pg.root_certificates(), Some(Path::new("ca.pem")));
    for local in ["localhost", "::1", "/var/run/postgresql"] {
        let pg = self::pg(&format!(
            "[store]\ntype = \"postgres\"\nhost = \"{local}\"\ndatabase = \"d\"\nuser = \"u\"\nsslmode = \"disable\"\n"
        ));
        assert_eq!(pg.tls, PostgresTls::Disable, "{local}");
    }
}

#[test]
fn insecure_and_contradictory_combinations_are_refused_with_their_line() {
    let fields = "[store]\ntype = \"postgres\"\nhost = \"db.example.com\"\ndatabase = \"d\"\nuser = \"u\"\n";
    refused(&format!("{fields}sslmode = \"disable\"\n"), 6, "store.sslmode", "only for a server on this host");
    refused(&format!("{fields}sslmode = \"require\"\n"), 6, "store.sslmode", "does not verify");
    refused(&format!("{fields}sslmode = \"verify-ca\"\n"), 6, "store.sslmode", "does not verify");
    refused(&format!("{fields}sslmode = \"prefer\"\n"), 6, "store.sslmode", "use `verify-full`");
    refused(&format!("{fields}sslmode = \"nope\"\n"), 6, "store.sslmode", "unknown variant");
    refused(&format!("{fields}pool_size = 0\n"), 6, "store.pool_size", "at least 1");
    refused(&format!("{fields}password_env = \"A\"\npassword_file = \"b\"\n"), 7, "store.password_file", "not both");
    refused(
        &format!("{fields}migrate_password_env = \"A\"\n"),
        6,
        "store.migrate_password_env",
        "needs `migrate_user`",
    );
    refused(&format!("{fields}path = \"x.db\"\n"), 6, "store.path", "SQLite setting");
    refused(&format!("{fields}passwd = \"x\"\n"), 6, "store.passwd", "unknown field");
    refused("[store]\ntype = \"postgres\"\ndatabase = \"d\"\nuser = \"u\"\n", 1, "store.host", "needs `host`");
    refused("[store]\ntype = \"postgres\"\nhost = \"h\"\nuser = \"u\"\n", 1, "store.database", "needs `database`");
    refused(
        "[store]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"d\"\nuser = \"u\"\nsslmode = \"disable\"\nroot_certificates = \"ca.pem\"\n",
        7,
        "store.root_certificates",
        "useless",
    );
    refused("[store]\ntype = \"mysql\"\n", 2, "store.type", "unknown variant");
    refused("[store]\nhost = \"db\"\n", 2, "store.host", "PostgreSQL setting");
    refused("[store]\npath = \"a.db\"\nurl = \"sqlite:b.db\"\n", 2, "store.path", "not both");
}

#[test]
fn urls_are_refused_with_their_line() {
    let url = |u: &str| format!("[policy]\nenabled = false\n\n[store]\nurl = \"{u}\"\n");
    refused(&url("postgres://u:hunter2@db/d"), 5, "store.url", "holds a password");
    refused(&url("postgres://u@db.example.com/d?sslmode=disable"), 5, "store.url", "only for a server on this host");
    refused(&url("postgres://u@db/d?sslmode=require"), 5, "store.url", "does not verify");
    refused(&url("postgres://u@db/d?connect_timeout=3"), 5, "store.url", "`connect_timeout` is not understood");
    refused(&url("postgres://db/d"), 5, "store.url", "names no user");
    refused(&url("postgres://u@db/"), 5, "store.url", "names no database");
    refused(&url("mysql://u@db/d"), 5, "store.url", "unknown store scheme");
    refused(&url("sqlite:"), 5, "store.url", "needs a file");
    refused(&format!("{}host = \"db\"\n", url("postgres://u@db/d")), 6, "store.host", "belongs inside the `url`");
    refused(&format!("{}type = \"sqlite\"\n", url("postgres://u@db/d")), 6, "store.type", "contradicts");
    refused(
        &format!("{}sslmode = \"verify-full\"\n", url("postgres://u@db/d?sslmode=verify-full")),
        6,
        "store.sslmode",
        "one place",
    );
    refused(&format!("{}sslmode = \"require\"\n", url("postgres://u@db/d")), 6, "store.sslmode", "does not verify");
    refused(
        &format!("{}sslmode = \"disable\"\n", url("postgres://u@db.example.com/d")),
        6,
        "store.sslmode",
        "on this host",
    );
    let local = pg(&format!("{}sslmode = \"disable\"\n", url("postgres://u@localhost/d")));
    assert_eq!(local.tls, PostgresTls::Disable);
    refused(
        &format!("{}root_certificates = \"b.pem\"\n", url("postgres://u@db/d?sslrootcert=a.pem")),
        6,
        "store.root_certificates",
        "one place",
    );
    // The password never shows in the error.
    let e = load(&url("postgres://u:hunter2@db/d")).expect_err("refused");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn passwords_are_read_from_env_or_file_and_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw"), "s3cret-file\n").expect("write");
    let secret = PasswordSource::File("pw".into()).read(dir.path()).expect("file");
    assert_eq!(secret.expose_secret(), "s3cret-file");
    assert!(!format!("{secret:?}").contains("s3cret"));
    // Any variable set for the test process will do; PATH always is.
    let path = std::env::var("PATH").expect("PATH is set");
    assert_eq!(PasswordSource::Env("PATH".into()).read(dir.path()).expect("env").expose_secret(), path);
    let missing = PasswordSource::Env("REMEDIATION_CONFIG_TEST_UNSET".into()).read(dir.path()).expect_err("unset");
    assert!(matches!(missing, PasswordError::EnvMissing { .. }), "{missing}");
    std::fs::write(dir.path().join("empty"), "\n").expect("write");
    let empty = PasswordSource::File("empty".into()).read(dir.path()).expect_err("empty");
    assert!(empty.to_string().contains("empty"), "{empty}");
    let gone = PasswordSource::File("nope".into()).read(dir.path()).expect_err("missing");
    assert!(gone.to_string().contains("nope"), "{gone}");
    // A parsed target's Debug names where the password comes from, never a password.
    let pg = pg("[store]\nurl = \"postgres://u@db/d\"\npassword_env = \"PGPW\"\n");
    assert!(format!("{pg:?}").contains("PGPW"));
}

#[test]
fn the_annotated_example_documents_every_store_key() {
    let example = remediation_config::initial_config("local:alice");
    for key in ["url", "password_env", "sslmode", "root_certificates", "pool_size", "migrate_user"] {
        assert!(example.contains(&format!("# {key} = ")), "{key} is not in the example");
    }
    // Uncommented, the example's [store] table is a valid store.
    let table: String = example
        .lines()
        .skip_while(|l| *l != "# [store]")
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let pg = pg(&table);
    assert_eq!(pg.tls, PostgresTls::VerifyFull { root_certificates: Some("/etc/remediation/db-ca.pem".into()) });
}

#[test]
fn the_readme_store_examples_load() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("[store]"))
        .collect();
    assert!(!blocks.is_empty(), "the README shows a [store] example");
    for block in blocks {
        let pg = pg(block);
        assert_eq!(pg.tls, PostgresTls::VerifyFull { root_certificates: Some("/etc/remediation/db-ca.pem".into()) });
        assert!(pg.for_migrations().user != pg.user, "the example separates the owner from the runtime role");
    }
}
