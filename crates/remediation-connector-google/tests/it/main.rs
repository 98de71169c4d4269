//! Integration tests of the Google Workspace connector against the stateful fake provider in
//! the testkit, in one binary: the semantic and HTTP protocol conformance suites, golden
//! requests, and secrets.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod api_description;
mod conformance;
mod golden;
mod lookup;
mod secrets;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use remediation_connector_google::{GoogleConfig, GoogleConnector};
use remediation_connector_http::{HttpClient, RecordingSleeper, RetryPolicy, ThrottleSignal};
use remediation_core::{Action, ActionId, ActionKind, Mode, State, SystemClock, Target};
use remediation_testkit::api_description::ApiDescription;
use remediation_testkit::fakes::google::{AdminRole, GoogleFake, GoogleState};
use tempfile::TempDir;

/// The administrator the connector acts as.
const ADMIN: &str = "admin@example.com";

/// A fake Google with a key file for its service account.
struct Fixture {
    fake: GoogleFake,
    dir: TempDir,
    next: AtomicU32,
}

impl Fixture {
    async fn start(seed: impl FnOnce(&mut GoogleState)) -> Self {
        let fake = GoogleFake::start(|s| {
            s.add_user(ADMIN, AdminRole::Super);
            s.add_user("reader@example.com", AdminRole::ReadOnly);
            seed(s);
        })
        .await
        .unwrap();
        // Every request the connector sends must be one the Admin SDK description defines.
        fake.faults().describe(Some(ApiDescription::google().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sa.json"), fake.service_account_json()).unwrap();
        Self { fake, dir, next: AtomicU32::new(0) }
    }

    fn config(&self, admin: &str) -> GoogleConfig {
        GoogleConfig {
            allow_insecure_http: false,
            credentials_file: self.dir.path().join("sa.json"),
            admin: admin.to_owned(),
            api_base: self.fake.api_base(),
            token_url: Some(self.fake.token_url()),
            protected: vec!["break-glass@example.com".to_owned()],
            protect_admins: true,
        }
    }

    /// A connector acting as `admin`, whose retries never sleep.
    fn connector_as(&self, admin: &str) -> GoogleConnector {
        let config = self.config(admin);
        let auth = GoogleConnector::token_source(&config, Arc::new(SystemClock)).unwrap();
        let client = HttpClient::builder(config.api_base.clone())
            .auth(Arc::new(auth))
            .retry(RetryPolicy::new(ThrottleSignal::Google))
            .sleeper(Arc::new(RecordingSleeper::new()))
            .build()
            .unwrap();
        GoogleConnector::with_client("google", &config, client).unwrap()
    }

    fn connector(&self) -> GoogleConnector {
        self.connector_as(ADMIN)
    }

    /// A new user, so every case acts on its own target.
    fn fresh_user(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let email = format!("{prefix}-{n}@example.com");
        self.fake.state().add_user(&email, AdminRole::None);
        email
    }

    /// A new user who is a `MANAGER` with `DIGEST` delivery in `eng@example.com`.
    fn fresh_member(&self) -> String {
        let email = self.fresh_user("member");
        self.fake.state().add_member("eng@example.com", &email, "MANAGER", "DIGEST");
        email
    }
}

fn account(user: &str) -> Target {
    Target { identity: user.to_owned(), resource: None, grant: None, grant_type: "account".to_owned() }
}

fn membership(user: &str, group: &str) -> Target {
    Target {
        identity: user.to_owned(),
        resource: Some(group.to_owned()),
        grant: None,
        grant_type: "group_membership".to_owned(),
    }
}

/// An action in `executing`, as the engine hands it to a connector.
fn action(kind: ActionKind, target: Target) -> Action {
    let at = time::OffsetDateTime::now_utc();
    Action {
        id: ActionId::new_at(at),
        kind,
        target,
        connector: "google".into(),
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
