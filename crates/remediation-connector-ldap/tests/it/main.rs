//! Integration tests of the LDAP connector, in one binary. Each test that needs a server
//! starts its own slapd (see `server`) and skips, saying why, when `REMEDIATION_TEST_SLAPD`
//! is unset (and fails under `CI=true`).

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod conformance;
mod errors;
mod groups;
mod server;
mod tls;

use std::collections::HashSet;
use std::future::Future;

use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};
use remediation_connector_ldap::{Dialect, LdapConfig, LdapConnector};
use remediation_core::{Action, ActionId, ActionKind, Mode, State, Target};
use server::{ADMIN_DN, ADMIN_PASSWORD, BASE, Slapd};
use time::OffsetDateTime;

/// Runs a future on a fresh single-threaded runtime with I/O and timers.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A configuration binding as `bind_dn` with `password` (written to a file in the server's folder).
fn config(server: &Slapd, dialect: Dialect, bind_dn: &str, password: &str) -> LdapConfig {
    let file = server.dir().join(format!("pw-{}", bind_dn.len() + password.len()));
    std::fs::write(&file, format!("{password}\n")).unwrap();
    LdapConfig {
        id: "ldap-test".into(),
        url: server.url.clone(),
        starttls: false,
        ca_file: None,
        bind_dn: bind_dn.into(),
        bind_password_env: None,
        bind_password_file: Some(file),
        bind_password_sealed: None,
        base_dn: BASE.into(),
        dialect,
        protected_dns: Vec::new(),
        protected_groups: Vec::new(),
        timeout_secs: 5,
        page_size: 2,
    }
}

/// A connector bound as the least-privileged service account.
fn writer(server: &Slapd, dialect: Dialect) -> LdapConnector {
    LdapConnector::from_config(config(server, dialect, server::WRITER_DN, server::WRITER_PASSWORD)).unwrap()
}

fn membership(user: &str, group: &str) -> Target {
    Target {
        identity: server::user(user),
        resource: Some(server::group(group)),
        grant: None,
        grant_type: "group_membership".into(),
    }
}

fn account(user: &str) -> Target {
    Target { identity: server::user(user), resource: None, grant: None, grant_type: "account".into() }
}

fn action(kind: ActionKind, target: Target) -> Action {
    let now = OffsetDateTime::now_utc();
    Action {
        id: ActionId::new_at(now),
        kind,
        target,
        connector: "ldap-test".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test".into(),
        mode: Mode::Manual,
        idempotency_key: "test-key".into(),
        state: State::Executing,
        created_at: now,
        updated_at: now,
        handle: None,
        campaign: None,
    }
}

/// A raw connection as the directory administrator, to change or read things behind the
/// connector's back.
struct Admin(ldap3::Ldap);

impl Admin {
    async fn connect(server: &Slapd) -> Self {
        let (conn, mut ldap) = LdapConnAsync::new(&server.url).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
        Self(ldap)
    }

    async fn modify(&mut self, dn: &str, mods: Vec<Mod<&str>>) -> u32 {
        self.0.modify(dn, mods).await.unwrap().rc
    }

    async fn values(&mut self, dn: &str, attr: &str) -> Vec<String> {
        let (entries, _) =
            self.0.search(dn, Scope::Base, "(objectClass=*)", vec![attr]).await.unwrap().success().unwrap();
        let entry = SearchEntry::construct(entries.into_iter().next().unwrap());
        let mut v: Vec<String> =
            entry.attrs.into_iter().filter(|(k, _)| k.eq_ignore_ascii_case(attr)).flat_map(|(_, v)| v).collect();
        v.sort();
        v
    }
}

fn set(v: &str) -> HashSet<&str> {
    HashSet::from([v])
}

/// Every capability has its operations in the permission map, and the README lists it.
#[test]
fn the_permission_map_covers_every_capability_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "ldap",
        "",
        remediation_connector_ldap::PERMISSION_MAP,
        &remediation_connector_ldap::capabilities(),
        &[],
    );
}
