//! Integration tests of the SCIM connector against the stateful fake in the testkit, in one
//! binary: both conformance suites, golden request fixtures, ETag conflicts and secrets.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod behaviour;
mod conformance;
mod golden;
mod live;
mod lookup;

use std::sync::Arc;

use remediation_connector_http::{RecordingSleeper, SecretSource};
use remediation_connector_scim::{ScimConfig, ScimConnector};
use remediation_core::{Action, ActionId, ActionKind, Mode, State, Target};
use remediation_testkit::fakes::scim::{self, Directory, ScimFake};
use tempfile::TempDir;
use time::macros::datetime;

/// A fake service and token files for its two tokens.
struct Fixture {
    fake: ScimFake,
    dir: TempDir,
}

impl Fixture {
    async fn start() -> Self {
        Self::with(scim::sample_directory()).await
    }

    async fn with(directory: Directory) -> Self {
        let fake = ScimFake::start(directory).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("write"), format!("{}\n", scim::WRITE_TOKEN)).unwrap();
        std::fs::write(dir.path().join("read"), scim::READ_TOKEN).unwrap();
        Self { fake, dir }
    }

    fn config(&self, token_file: &str) -> ScimConfig {
        ScimConfig {
            allow_insecure_http: false,
            id: "scim".into(),
            base_url: self.fake.base_url(),
            token: SecretSource::File(self.dir.path().join(token_file)),
            protected: vec![scim::BREAK_GLASS.into()],
            page_size: 100,
        }
    }

    fn connector_for(&self, config: &ScimConfig) -> ScimConnector {
        ScimConnector::with_http(config, |b| b.sleeper(Arc::new(RecordingSleeper::new()))).unwrap()
    }

    fn connector(&self) -> ScimConnector {
        self.connector_for(&self.config("write"))
    }

    /// A new user (its own target for each case), member of Tour Guides.
    fn fresh_user(&self) -> String {
        let mut d = self.fake.directory();
        let n = d.users.len() + 1000;
        let id = format!("f0000000-5c13-4000-8000-{n:012x}");
        d.add_user(&id, &format!("user{n}@example.com"));
        if let Some(g) = d.groups.get_mut(scim::TOUR_GUIDES) {
            g.members.push(id.clone());
        }
        id
    }
}

fn account(user: &str) -> Target {
    Target { identity: user.into(), resource: None, grant: None, grant_type: "account".into() }
}

fn membership(user: &str, group: &str) -> Target {
    Target { identity: user.into(), resource: Some(group.into()), grant: None, grant_type: "group_membership".into() }
}

/// An action in `executing`, as the engine hands it to a connector.
fn action(kind: ActionKind, target: Target) -> Action {
    let at = datetime!(2026-01-01 00:00 UTC);
    Action {
        id: ActionId::new_at(at),
        kind,
        target,
        connector: "scim".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test reason".into(),
        mode: Mode::Manual,
        idempotency_key: "key-1".into(),
        state: State::Executing,
        created_at: at,
        updated_at: at,
        handle: None,
        campaign: None,
    }
}

/// A managed connection's `{ sealed = "token" }` builds while its secrets are in scope (the
/// runtime's build of a managed connection) and fails clearly, naming the secret and never a
/// value, outside it (a configuration file's connector cannot use a sealed reference).
#[tokio::test]
async fn a_sealed_token_builds_inside_a_managed_build_only() {
    use remediation_core::factory::{BuildContext, ConnectorFactory as _};
    use remediation_core::secret_source::with_sealed;
    use secrecy::SecretString;

    let fake = ScimFake::start(scim::sample_directory()).await.unwrap();
    let settings = serde_json::json!({"id": "scim-managed", "base_url": fake.base_url(), "token": {"sealed": "token"}});
    let context = BuildContext {
        data_dir: std::env::temp_dir(),
        clock: Arc::new(remediation_core::SystemClock),
        failpoints: None,
    };
    let secrets = std::collections::BTreeMap::from([("token".to_owned(), SecretString::from(scim::WRITE_TOKEN))]);
    let built =
        with_sealed(&secrets, || remediation_connector_scim::FACTORY.build("scim-managed", &settings, &context))
            .expect("builds inside the scope");
    assert!(built.health().await.unwrap().healthy, "the sealed token authenticates");
    let outside = match remediation_connector_scim::FACTORY.build("scim-managed", &settings, &context) {
        Ok(_) => panic!("a sealed reference outside a managed build must fail"),
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    assert!(outside.contains("sealed") && outside.contains("managed connection"), "{outside}");
    assert!(!outside.contains(scim::WRITE_TOKEN));
}
