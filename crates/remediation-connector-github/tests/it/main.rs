//! Integration tests of the GitHub connector against the stateful fake provider in the
//! testkit, in one binary: the semantic and HTTP protocol conformance suites, golden
//! requests, permissions and secrets.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod api_description;
mod conformance;
mod effective;
mod golden;
mod invitations;
mod lookup;
mod outside;
mod pending;
mod roles;
mod secrets;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use remediation_connector_github::{GitHubConfig, GitHubConnector};
use remediation_connector_http::{RecordingSleeper, SecretSource};
use remediation_core::{Action, ActionId, ActionKind, Mode, State, Target};
use remediation_testkit::api_description::ApiDescription;
use remediation_testkit::fakes::github::{ADMIN_TOKEN, GitHubFake, GitHubState};
use tempfile::TempDir;

/// A fake GitHub with token files for its accounts.
struct Fixture {
    fake: GitHubFake,
    dir: TempDir,
    next: AtomicU32,
    page_size: u32,
}

impl Fixture {
    async fn start(page_size: u32, seed: impl FnOnce(&mut GitHubState)) -> Self {
        let fake = GitHubFake::start(|s| {
            s.add_team("acme", "platform");
            seed(s);
        })
        .await
        .unwrap();
        // Every request the connector sends must be one GitHub's API description defines.
        fake.faults().describe(Some(ApiDescription::github().unwrap()));
        Self { fake, dir: tempfile::tempdir().unwrap(), next: AtomicU32::new(0), page_size }
    }

    fn config(&self, token: &str) -> GitHubConfig {
        let path = self.dir.path().join(format!("token-{}", &token[..12]));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        GitHubConfig {
            allow_insecure_http: false,
            token: SecretSource::File(path),
            api_base: self.fake.base_url().to_owned(),
            // A login in another case than GitHub stores it: logins compare case-insensitively.
            protected: vec!["acme/infrastructure".to_owned(), "BreakGlass-Bot".to_owned()],
            page_size: self.page_size,
        }
    }

    /// A connector with `token`, whose retries never sleep.
    fn connector_with(&self, token: &str) -> GitHubConnector {
        let config = self.config(token);
        let client = GitHubConnector::client_builder(&config)
            .unwrap()
            .sleeper(Arc::new(RecordingSleeper::new()))
            .build()
            .unwrap();
        GitHubConnector::with_client("github", &config, client)
    }

    fn connector(&self) -> GitHubConnector {
        self.connector_with(ADMIN_TOKEN)
    }

    /// A new login, so every case acts on its own target.
    fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
}

/// The requests after `mark` that are not reads.
fn writes_since(fake: &GitHubFake, mark: u64) -> Vec<String> {
    fake.log()
        .since(mark)
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn target(grant_type: &str, login: &str, resource: &str) -> Target {
    Target {
        identity: login.to_owned(),
        resource: Some(resource.to_owned()),
        grant: None,
        grant_type: grant_type.to_owned(),
    }
}

fn reduce(to: &str) -> ActionKind {
    ActionKind::Reduce { to: to.to_owned() }
}

/// An action in `executing`, as the engine hands it to a connector.
fn action(kind: ActionKind, target: Target) -> Action {
    let at = time::OffsetDateTime::now_utc();
    Action {
        id: ActionId::new_at(at),
        kind,
        target,
        connector: "github".into(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:test".into(),
        reason: "test".into(),
        mode: Mode::Manual,
        idempotency_key: format!("key-{}", ActionId::new_at(at)),
        state: State::Executing,
        created_at: at,
        updated_at: at,
        handle: None,
        campaign: None,
    }
}
