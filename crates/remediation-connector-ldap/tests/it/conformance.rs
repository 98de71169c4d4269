//! Both dialects pass the semantic connector conformance suite against a real slapd.

use std::sync::Arc;

use async_trait::async_trait;
use remediation_connector_ldap::{Dialect, LdapConnector};
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};

use crate::server::{self, BASE, READER_DN, READER_PASSWORD, Slapd, WRITER_DN, WRITER_PASSWORD};
use crate::{account, block_on, config, membership, writer};

struct Ldap {
    server: Slapd,
    dialect: Dialect,
    cases: Vec<Case>,
    forbidden: Case,
}

#[async_trait]
impl Subject for Ldap {
    fn connector(&self) -> Arc<dyn Connector> {
        let mut cfg = config(&self.server, self.dialect, WRITER_DN, WRITER_PASSWORD);
        cfg.protected_dns = vec![server::user("breakglass")];
        Arc::new(LdapConnector::from_config(cfg).unwrap())
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", writer(&self.server, self.dialect))
    }

    fn secrets(&self) -> Vec<String> {
        vec![WRITER_PASSWORD.to_owned(), READER_PASSWORD.to_owned()]
    }

    async fn cases(&self) -> Vec<Case> {
        self.cases.clone()
    }

    fn missing(&self, grant_type: &str) -> Target {
        Target {
            identity: server::user("nobody-by-this-name"),
            resource: (grant_type == "group_membership").then(|| server::group("engineering")),
            grant: None,
            grant_type: grant_type.into(),
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let reader =
            LdapConnector::from_config(config(&self.server, self.dialect, READER_DN, READER_PASSWORD)).unwrap();
        Some((Arc::new(reader), self.forbidden.clone()))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        // The same entry under the attribute's other name and under its OID: the server
        // accepts both, so protection must too.
        let protected = account("breakglass");
        let alias = |dn: String| Target { identity: dn, ..protected.clone() };
        vec![
            AliasCase::new(
                "userid= for uid=",
                ActionKind::Suspend,
                protected.clone(),
                alias(format!("userid=breakglass,ou=people,{BASE}")),
            ),
            AliasCase::new(
                "OID for uid=",
                ActionKind::Suspend,
                protected.clone(),
                alias(format!("0.9.2342.19200300.100.1.1=BreakGlass, OU=People,{BASE}")),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        None
    }
}

#[test]
fn openldap_passes_the_semantic_suite() {
    let Some(server) = Slapd::start() else { return };
    let subject = Ldap {
        server,
        dialect: Dialect::Openldap,
        cases: vec![
            Case::new("revoke groupOfNames membership", ActionKind::Revoke, membership("alice", "engineering")),
            Case::new("lock account", ActionKind::Suspend, account("bob")),
        ],
        forbidden: Case::new("lock account", ActionKind::Suspend, account("judy")),
    };
    block_on(conformance::semantic(&subject));
}

#[test]
fn active_directory_passes_the_semantic_suite() {
    let Some(server) = Slapd::start() else { return };
    let subject = Ldap {
        server,
        dialect: Dialect::ActiveDirectory,
        cases: vec![
            Case::new("revoke groupOfUniqueNames membership", ActionKind::Revoke, membership("carol", "ops")),
            Case::new("disable account", ActionKind::Suspend, account("dave")),
        ],
        forbidden: Case::new("revoke membership", ActionKind::Revoke, membership("grace", "finance")),
    };
    block_on(conformance::semantic(&subject));
}
