//! Integration tests of the Entra ID connector against the stateful fake in the testkit, in
//! one binary: both conformance suites, golden request fixtures, certificate credentials,
//! permission checks, dynamic groups and secrets.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod api_description;
mod behaviour;
mod conformance;
mod golden;
mod live;
mod lookup;
mod secrets;

use std::path::PathBuf;
use std::sync::Arc;

use remediation_connector_entra::{Credential, EntraConfig, EntraConnector};
use remediation_connector_http::{RecordingSleeper, SecretSource};
use remediation_core::{Action, ActionId, ActionKind, Mode, State, SystemClock, Target};
use remediation_testkit::api_description::ApiDescription;
use remediation_testkit::fakes::entra::{self, EntraFake, Tenant};
use tempfile::TempDir;
use time::macros::datetime;

/// A fake tenant, and credential files for its two clients.
struct Fixture {
    fake: EntraFake,
    dir: TempDir,
    /// Records the waits of `verify`'s read-backs.
    sleeper: RecordingSleeper,
}

impl Fixture {
    async fn start() -> Self {
        Self::with(entra::sample_tenant()).await
    }

    async fn with(tenant: Tenant) -> Self {
        let fake = EntraFake::start(tenant).await.unwrap();
        // Every request the connector sends must be one Graph's API description defines.
        fake.faults().describe(Some(ApiDescription::graph().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), format!("{}\n", entra::CLIENT_SECRET)).unwrap();
        std::fs::write(dir.path().join("reader"), entra::READER_SECRET).unwrap();
        std::fs::write(dir.path().join("key.pem"), entra::CERT_PRIVATE_KEY).unwrap();
        Self { fake, dir, sleeper: RecordingSleeper::new() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A config for `client_id` with `credential`, pointing at the fake.
    fn config(&self, client_id: &str, credential: Credential) -> EntraConfig {
        EntraConfig {
            allow_insecure_http: false,
            id: "entra".into(),
            tenant_id: entra::TENANT.into(),
            client_id: client_id.into(),
            credential,
            login_url: self.fake.base_url().to_owned(),
            graph_url: self.fake.graph_url(),
            scope: Some("https://graph.microsoft.com/.default".into()),
            protected: vec![entra::BREAK_GLASS.into()],
        }
    }

    fn secret_config(&self) -> EntraConfig {
        self.config(entra::CLIENT_ID, Credential::ClientSecret { secret: SecretSource::File(self.file("secret")) })
    }

    fn certificate_config(&self) -> EntraConfig {
        self.config(
            entra::CLIENT_ID,
            Credential::Certificate {
                private_key: SecretSource::File(self.file("key.pem")),
                thumbprint: entra::CERT_THUMBPRINT.into(),
            },
        )
    }

    fn reader_config(&self) -> EntraConfig {
        self.config(entra::READER_ID, Credential::ClientSecret { secret: SecretSource::File(self.file("reader")) })
    }

    /// A connector for `config` whose retries never sleep.
    fn connector_for(&self, config: &EntraConfig) -> EntraConnector {
        EntraConnector::with_http(config, Arc::new(SystemClock), |b| b.sleeper(Arc::new(RecordingSleeper::new())))
            .unwrap()
            .with_sleeper(Arc::new(self.sleeper.clone()))
    }

    fn connector(&self) -> EntraConnector {
        self.connector_for(&self.secret_config())
    }

    /// A new user (its own target for each case), member of engineering, with User
    /// Administrator and the sample app role.
    fn fresh_user(&self) -> String {
        let mut t = self.fake.tenant();
        let n = t.users.len() + 1000;
        let id = format!("f0000000-0000-4000-8000-{n:012x}");
        t.add_user(&id, &format!("user{n}@contoso.example"));
        if let Some(g) = t.groups.get_mut(entra::ENGINEERING) {
            g.members.push(id.clone());
        }
        let role = t.new_id("ra-");
        t.role_assignments.push(entra::RoleAssignment {
            id: role,
            principal_id: id.clone(),
            role_definition_id: entra::USER_ADMINISTRATOR.into(),
            directory_scope_id: "/".into(),
        });
        let app = t.new_id("ara-");
        t.app_role_assignments.push(entra::AppRoleAssignment {
            id: app,
            principal_id: id.clone(),
            resource_id: entra::RESOURCE_SP.into(),
            app_role_id: entra::APP_ROLE.into(),
        });
        id
    }
}

fn target(grant_type: &str, identity: &str, resource: Option<&str>, grant: Option<&str>) -> Target {
    Target {
        identity: identity.into(),
        resource: resource.map(Into::into),
        grant: grant.map(Into::into),
        grant_type: grant_type.into(),
    }
}

fn account(user: &str) -> Target {
    target("account", user, None, None)
}

fn membership(user: &str, group: &str) -> Target {
    target("group_membership", user, Some(group), None)
}

fn directory_role(principal: &str) -> Target {
    target("directory_role", principal, Some(entra::USER_ADMINISTRATOR), None)
}

fn app_role(principal: &str) -> Target {
    target("app_role_assignment", principal, Some(entra::RESOURCE_SP), Some(entra::APP_ROLE))
}

/// An action in `executing`, as the engine hands it to a connector.
fn action(kind: ActionKind, target: Target) -> Action {
    let at = datetime!(2026-01-01 00:00 UTC);
    Action {
        id: ActionId::new_at(at),
        kind,
        target,
        connector: "entra".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test reason".into(),
        mode: Mode::Manual,
        idempotency_key: uuid_key(),
        state: State::Executing,
        created_at: at,
        updated_at: at,
        handle: None,
        campaign: None,
    }
}

fn uuid_key() -> String {
    format!("key-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
