//! Incident response across several directories at once: one runtime whose connections are
//! the testkit's fake Okta org, fake Entra tenant and fake Google Workspace, built through
//! the configuration (`[[connectors]]` settings, secrets in files), plus the sandbox, with the
//! same person `alice@example.com` in each. Every effect is checked on the provider's side.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::Method;
use remediation_config::{Config, ConnectorConfig};
use remediation_connector_sandbox::{Directory, UserStatus, load, write_sample};
use remediation_core::{Actor, KindName, Role};
use remediation_runtime::{Catalog, Runtime, RuntimeOptions};
use remediation_service::incident::{RespondOutcome, RespondRequest, StepStatus, identity, respond};
use remediation_service::playbooks::{self, Run, RunState, StepState};
use remediation_testkit::InMemoryStore;
use remediation_testkit::fakes::RecordedRequest;
use remediation_testkit::fakes::entra::{self, EntraFake};
use remediation_testkit::fakes::google::{AdminRole, GoogleFake};
use remediation_testkit::fakes::okta::FakeOkta;

/// The person, as the organisation names her everywhere.
const ALICE: &str = "alice@example.com";
/// Her Okta user id.
const OKTA_ALICE: &str = "00ualice0000001";
/// A second Okta group she is in, which no privileged-group list names.
const OKTA_ENGINEERING: &str = "00gengineering01";
/// The privileged group of every provider with groups: its id is literally `admins`, which
/// the built-in `compromised-account` playbook names.
const ADMINS: &str = "admins";
/// Okta's API token.
const OKTA_TOKEN: &str = "00fake-okta-api-token-directories";
/// The Google administrator the connector acts as.
const GOOGLE_ADMIN: &str = "admin@example.com";
/// Alice's Google group (its email is its key; the Google connector does not list groups).
const GOOGLE_ADMINS: &str = "admins@example.com";

fn rita() -> Actor {
    Actor::new("local:rita", Role::Responder)
}
fn ann() -> Actor {
    Actor::new("local:ann", Role::Requester)
}
fn ben() -> Actor {
    Actor::new("local:ben", Role::Approver)
}

/// One runtime over four directories.
struct World {
    _dir: tempfile::TempDir,
    sandbox: PathBuf,
    okta: FakeOkta,
    entra: EntraFake,
    google: GoogleFake,
    /// Alice's Google user id (the fake mints it).
    google_alice: String,
    rt: Runtime,
}

fn table(pairs: &[(&str, toml::Value)]) -> toml::Table {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn text(s: impl Into<String>) -> toml::Value {
    toml::Value::String(s.into())
}

fn secret_file(dir: &Path, name: &str, value: &str) -> toml::Value {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    toml::Value::Table(table(&[("file", text(path.display().to_string()))]))
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("dir");

        let okta = FakeOkta::start().await.expect("okta starts");
        let org = okta.org();
        org.add_api_token(OKTA_TOKEN);
        org.add_user(OKTA_ALICE, "ACTIVE");
        org.set_login(OKTA_ALICE, ALICE);
        org.sign_in(OKTA_ALICE);
        for group in [ADMINS, OKTA_ENGINEERING] {
            org.add_group(group, "OKTA_GROUP");
            org.add_member(group, OKTA_ALICE);
        }

        let mut tenant = entra::sample_tenant();
        tenant.users.get_mut(entra::ALICE).expect("alice").user_principal_name = ALICE.to_owned();
        tenant.groups.insert(
            ADMINS.to_owned(),
            entra::Group { display_name: "Admins".into(), group_types: vec![], members: vec![entra::ALICE.into()] },
        );
        let entra = EntraFake::start(tenant).await.expect("entra starts");

        let google = GoogleFake::start(|s| {
            s.add_user(GOOGLE_ADMIN, AdminRole::Super);
            s.add_user(ALICE, AdminRole::None);
            s.add_member(GOOGLE_ADMINS, ALICE, "MEMBER", "ALL_MAIL");
        })
        .await
        .expect("google starts");
        let google_alice = google.state().user(ALICE).expect("alice").id.clone();
        let key = dir.path().join("google-sa.json");
        std::fs::write(&key, google.service_account_json()).expect("write key");

        let sandbox = dir.path().join("directory.json");
        write_sample(&sandbox).expect("sample");

        let okta_settings = table(&[
            ("org_url", text(okta.org_url())),
            (
                "auth",
                toml::Value::Table(table(&[
                    ("method", text("ssws")),
                    ("token", secret_file(dir.path(), "okta-token", OKTA_TOKEN)),
                ])),
            ),
        ]);
        let entra_settings = table(&[
            ("tenant_id", text(entra::TENANT)),
            ("client_id", text(entra::CLIENT_ID)),
            (
                "credential",
                toml::Value::Table(table(&[
                    ("type", text("client_secret")),
                    ("secret", secret_file(dir.path(), "entra-secret", entra::CLIENT_SECRET)),
                ])),
            ),
            ("login_url", text(entra.base_url())),
            ("graph_url", text(entra.graph_url())),
            ("scope", text("https://graph.microsoft.com/.default")),
        ]);
        let google_settings = table(&[
            ("credentials_file", text(key.display().to_string())),
            ("admin", text(GOOGLE_ADMIN)),
            ("api_base", text(google.api_base())),
            ("token_url", text(google.token_url())),
        ]);
        // Entra last: the compensation test fails its suspension after the others'.
        let mut config = Config {
            connectors: vec![
                ConnectorConfig::new("okta", "okta", okta_settings),
                ConnectorConfig::new("google", "google", google_settings),
                ConnectorConfig::sandbox("sandbox", &sandbox),
                ConnectorConfig::new("entra", "entra", entra_settings),
            ],
            ..Config::default()
        };
        config.policy.enabled = true;
        // Limits are not what these tests are about: a playbook acts on many grants of one person.
        config.limits.per_identity.max = 100;
        let catalog = Catalog::builtin()
            .with(&remediation_connector_okta::FACTORY)
            .with(&remediation_connector_entra::FACTORY)
            .with(&remediation_connector_google::FACTORY);
        let options = RuntimeOptions {
            store: Some(Arc::new(InMemoryStore::new())),
            catalog: Some(catalog),
            ..RuntimeOptions::default()
        };
        let rt = Runtime::build(&config, dir.path(), None, options).expect("runtime");
        Self { _dir: dir, sandbox, okta, entra, google, google_alice, rt }
    }

    fn sandbox(&self) -> Directory {
        load(&self.sandbox).expect("load")
    }

    fn sandbox_member(&self, group: &str) -> bool {
        self.sandbox().groups[group].members.iter().any(|m| m == "alice")
    }

    fn entra_alice(&self) -> entra::User {
        self.entra.tenant().users[entra::ALICE].clone()
    }

    fn entra_member(&self, group: &str) -> bool {
        self.entra.tenant().groups[group].members.iter().any(|m| m == entra::ALICE)
    }

    fn google_alice(&self) -> remediation_testkit::fakes::google::FakeUser {
        self.google.state().user(ALICE).expect("alice").clone()
    }

    fn google_member(&self) -> bool {
        self.google.state().group(GOOGLE_ADMINS).expect("group").members.contains_key(ALICE)
    }
}

/// Requests with `method` whose path ends with `tail`.
fn sent(log: &[RecordedRequest], method: &str, tail: &str) -> usize {
    log.iter().filter(|r| r.method == method && r.path.ends_with(tail) && r.status < 300).count()
}

fn step_states(run: &Run) -> Vec<(String, String, StepState)> {
    run.steps.iter().map(|s| (s.connector.clone(), format!("{} {}", s.kind, s.target), s.state)).collect()
}

async fn approved_run(w: &World, name: &str) -> Run {
    let plan = playbooks::plan_playbook(&w.rt, &ann(), name, ALICE, "account takeover").await.expect("plan");
    let run = playbooks::start_run(&w.rt, &ann(), name, ALICE, "account takeover", Some(&plan.plan_hash))
        .await
        .expect("start");
    assert_eq!(run.state, RunState::PendingApproval);
    playbooks::approve_run(&w.rt, &ben(), &run.id, Some(&run.plan_hash), None).await.expect("approve")
}

#[tokio::test]
async fn identity_is_found_in_every_directory() {
    let w = World::new().await;
    let view = identity(&w.rt, ALICE).await.expect("identity");
    assert!(view.problems.is_empty() && view.not_found.is_empty(), "{view:#?}");
    let mut found: Vec<(&str, &str, &str, &str)> = view
        .accounts
        .iter()
        .map(|a| (a.connector.as_str(), a.type_name.as_str(), a.account.id.as_str(), a.account.matched_by.as_str()))
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        [
            ("entra", "entra", entra::ALICE, "user_principal_name"),
            ("google", "google", w.google_alice.as_str(), "primary_email"),
            ("okta", "okta", OKTA_ALICE, "login"),
            ("sandbox", "sandbox", "alice", "primary_email"),
        ],
        "{view:#?}"
    );
    for found in &view.accounts {
        // Only fields the organisation's admins set may link a person to an account.
        assert!(
            ["login", "primary_email", "alias", "user_principal_name", "id", "link"]
                .contains(&found.account.matched_by.as_str()),
            "{found:?}"
        );
        let login = if found.connector == "sandbox" { "alice" } else { ALICE };
        assert!(found.account.login.eq_ignore_ascii_case(login), "{found:?}");
        assert!(!found.account.protected, "{found:?}");
    }
    let groups = |connector: &str| {
        view.accounts.iter().find(|a| a.connector == connector).and_then(|a| a.account.groups.clone())
    };
    assert_eq!(groups("okta"), Some(vec![OKTA_ENGINEERING.to_owned(), ADMINS.to_owned()]));
    assert!(groups("entra").is_some_and(|g| g.contains(&ADMINS.to_owned())), "{view:#?}");
    assert_eq!(groups("google"), None, "the Google connector does not list a user's groups");
    let entra = view.accounts.iter().find(|a| a.connector == "entra").expect("entra");
    assert!(!entra.can.contains(&KindName::ForcePasswordReset) && entra.can.contains(&KindName::RevokeSessions));
}

#[tokio::test]
async fn respond_cuts_alice_off_everywhere() {
    let w = World::new().await;
    let request = RespondRequest {
        actions: vec!["revoke_sessions".into(), "force_password_reset".into()],
        reason: "credentials found on a paste site".into(),
        finding: Some("F-leak-1".into()),
    };
    let result = respond(&w.rt, &rita(), ALICE, &request).await.expect("respond");
    let mut steps: Vec<(&str, KindName, StepStatus)> =
        result.steps.iter().map(|s| (s.connector.as_str(), s.action, s.status)).collect();
    steps.sort_unstable_by_key(|(c, k, _)| (c.to_string(), k.as_str()));
    assert_eq!(
        steps,
        [
            ("entra", KindName::ForcePasswordReset, StepStatus::NotApplicable),
            ("entra", KindName::RevokeSessions, StepStatus::Completed),
            ("google", KindName::ForcePasswordReset, StepStatus::Completed),
            ("google", KindName::RevokeSessions, StepStatus::Completed),
            ("okta", KindName::ForcePasswordReset, StepStatus::Completed),
            ("okta", KindName::RevokeSessions, StepStatus::Completed),
            ("sandbox", KindName::ForcePasswordReset, StepStatus::Completed),
            ("sandbox", KindName::RevokeSessions, StepStatus::Completed),
        ],
        "{result:#?}"
    );
    assert_eq!(result.outcome, RespondOutcome::Completed, "not-applicable steps do not count: {result:#?}");

    // Okta: every session cleared (with OAuth tokens) and the password expired.
    let okta_log = w.okta.log().all();
    assert_eq!(sent(&okta_log, "DELETE", &format!("/api/v1/users/{OKTA_ALICE}/sessions")), 1, "{okta_log:#?}");
    assert_eq!(sent(&okta_log, "POST", &format!("/api/v1/users/{OKTA_ALICE}/lifecycle/expire_password")), 1);
    assert_eq!(w.okta.org().status(OKTA_ALICE).as_deref(), Some("PASSWORD_EXPIRED"));
    // Google: signed out, and a new password at next sign-in.
    let google = w.google_alice();
    assert_eq!(google.sign_outs, 1, "{google:?}");
    assert!(google.change_password_at_next_login && !google.suspended, "{google:?}");
    // Entra: revokeSignInSessions called, so sessions before now are invalid; still enabled.
    let entra_log = w.entra.log().all();
    assert_eq!(sent(&entra_log, "POST", &format!("/users/{}/revokeSignInSessions", entra::ALICE)), 1);
    let alice = w.entra_alice();
    assert!(alice.sessions_valid_from > time::macros::datetime!(2026-01-01 00:00 UTC), "{alice:?}");
    assert!(alice.account_enabled);
    // The sandbox.
    let sandbox = w.sandbox().users["alice"].clone();
    assert!(sandbox.sessions.is_empty() && sandbox.password_must_change, "{sandbox:?}");
    assert_eq!(sandbox.status, UserStatus::Active);
}

#[tokio::test]
async fn compromised_account_runs_against_every_directory() {
    let w = World::new().await;
    let done = approved_run(&w, "compromised-account").await;
    assert_eq!(done.state, RunState::Completed, "{:#?}\n{:#?}", done.report, step_states(&done));
    assert!(
        done.steps.iter().all(|s| matches!(s.state, StepState::Completed | StepState::Skipped)),
        "{:#?}",
        step_states(&done)
    );

    // Suspended wherever a connection can suspend. Okta suspends only ACTIVE users, and the
    // password expiry before it leaves alice PASSWORD_EXPIRED: the plan skips it, saying why.
    let okta_suspend = done
        .steps
        .iter()
        .find(|s| s.connector == "okta" && s.kind.name() == KindName::Suspend)
        .expect("okta suspend step");
    assert_eq!(okta_suspend.state, StepState::Skipped, "{:#?}", step_states(&done));
    let why = okta_suspend.message.as_deref().unwrap_or_default();
    assert!(why.contains("Okta suspends only ACTIVE users"), "{why}");
    assert_eq!(w.okta.org().status(OKTA_ALICE).as_deref(), Some("PASSWORD_EXPIRED"));
    assert_eq!(sent(&w.okta.log().all(), "DELETE", &format!("/api/v1/users/{OKTA_ALICE}/sessions")), 1);
    assert!(w.google_alice().suspended);
    assert!(!w.entra_alice().account_enabled);
    assert_eq!(w.sandbox().users["alice"].status, UserStatus::Suspended);
    // Out of `admins` wherever the groups are readable, and only out of privileged groups.
    assert!(!w.okta.org().is_member(ADMINS, OKTA_ALICE) && w.okta.org().is_member(OKTA_ENGINEERING, OKTA_ALICE));
    assert!(!w.entra_member(ADMINS) && w.entra_member(entra::ENGINEERING));
    assert!(!w.sandbox_member(ADMINS) && w.sandbox_member("engineering"));
    assert!(w.google_member(), "the Google connector does not read groups: the step is skipped there");
    let skipped_google_revoke = done
        .steps
        .iter()
        .any(|s| s.connector == "google" && s.kind.name() == KindName::Revoke && s.state == StepState::Skipped);
    assert!(skipped_google_revoke, "{:#?}", step_states(&done));
}

#[tokio::test]
async fn offboard_leaver_runs_against_every_directory() {
    let w = World::new().await;
    let done = approved_run(&w, "offboard-leaver").await;
    assert_eq!(done.state, RunState::Completed, "{:#?}\n{:#?}", done.report, step_states(&done));

    assert_eq!(w.okta.org().status(OKTA_ALICE).as_deref(), Some("SUSPENDED"));
    assert!(w.google_alice().suspended);
    assert!(!w.entra_alice().account_enabled);
    assert_eq!(w.sandbox().users["alice"].status, UserStatus::Suspended);
    // Every group, wherever groups are readable.
    assert!(!w.okta.org().is_member(ADMINS, OKTA_ALICE) && !w.okta.org().is_member(OKTA_ENGINEERING, OKTA_ALICE));
    assert!(!w.entra_member(ADMINS) && !w.entra_member(entra::ENGINEERING));
    // A dynamic group's members follow its rule: the plan skips it, saying why.
    assert!(w.entra_member(entra::DYNAMIC_GROUP));
    let dynamic = done
        .steps
        .iter()
        .find(|s| s.connector == "entra" && s.target.resource.as_deref() == Some(entra::DYNAMIC_GROUP))
        .expect("dynamic group step");
    assert_eq!(dynamic.state, StepState::Skipped, "{:#?}", step_states(&done));
    assert!(dynamic.message.as_deref().is_some_and(|m| m.contains("dynamic membership")), "{dynamic:?}");
    let d = w.sandbox();
    let left: Vec<&String> =
        d.groups.iter().filter(|(_, g)| g.members.iter().any(|m| m == "alice")).map(|(n, _)| n).collect();
    assert!(left.is_empty(), "alice is still in {left:?}");
    // Sessions ended everywhere.
    assert_eq!(w.google_alice().sign_outs, 1);
    assert!(w.entra_alice().sessions_valid_from > time::macros::datetime!(2026-01-01 00:00 UTC));
    assert_eq!(sent(&w.okta.log().all(), "DELETE", &format!("/api/v1/users/{OKTA_ALICE}/sessions")), 1);
    assert!(d.users["alice"].sessions.is_empty());
}

#[tokio::test]
async fn a_provider_failure_in_the_middle_compensates() {
    let w = World::new().await;
    let plan = playbooks::plan_playbook(&w.rt, &ann(), "compromised-account", ALICE, "takeover").await.expect("plan");
    let run = playbooks::start_run(&w.rt, &ann(), "compromised-account", ALICE, "takeover", Some(&plan.plan_hash))
        .await
        .expect("start");
    // Entra's first write of the account is the suspension (a PATCH); Graph refuses it.
    w.entra.faults().fail_next_for(Method::PATCH, 1, 400);
    let done = playbooks::approve_run(&w.rt, &ben(), &run.id, None, None).await.expect("approve");
    assert_eq!(done.state, RunState::Compensated, "{:#?}\n{:#?}", done.report, step_states(&done));

    let state_of = |connector: &str, kind: KindName| {
        done.steps
            .iter()
            .find(|s| s.connector == connector && s.kind.name() == kind && s.state != StepState::Skipped)
            .map(|s| s.state)
    };
    assert_eq!(state_of("entra", KindName::Suspend), Some(StepState::Failed), "{:#?}", step_states(&done));
    // Completed reversible steps before the failure are undone ...
    for connector in ["google", "sandbox"] {
        assert_eq!(state_of(connector, KindName::Suspend), Some(StepState::RolledBack), "{connector}");
    }
    assert_eq!(state_of("okta", KindName::Suspend), None, "Okta does not suspend a PASSWORD_EXPIRED user");
    assert_eq!(state_of("google", KindName::ForcePasswordReset), Some(StepState::RolledBack));
    // ... in reverse order of execution.
    let rolled: Vec<String> = done
        .report
        .iter()
        .filter_map(|l| l.split_once(": step ").and_then(|(_, r)| r.strip_suffix(" rolled back")).map(str::to_owned))
        .collect();
    let numbers: Vec<u32> = rolled.iter().map(|n| n.parse().expect("number")).collect();
    let mut descending = numbers.clone();
    descending.sort_unstable_by(|a, b| b.cmp(a));
    assert!(numbers.len() == 3 && numbers == descending, "{:#?}", done.report);
    // ... irreversible ones stay done, and nothing after the failure ran.
    for connector in ["okta", "google", "sandbox", "entra"] {
        assert_eq!(state_of(connector, KindName::RevokeSessions), Some(StepState::NotUndoable), "{connector}");
    }
    for connector in ["okta", "sandbox"] {
        assert_eq!(state_of(connector, KindName::ForcePasswordReset), Some(StepState::NotUndoable), "{connector}");
    }
    assert!(
        done.steps
            .iter()
            .filter(|s| s.kind.name() == KindName::Revoke)
            .all(|s| matches!(s.state, StepState::Planned | StepState::Skipped)),
        "{:#?}",
        step_states(&done)
    );

    // The providers are as they were, but for what cannot be undone.
    assert_eq!(w.okta.org().status(OKTA_ALICE).as_deref(), Some("PASSWORD_EXPIRED"), "an expiry stays");
    assert!(w.okta.org().is_member(ADMINS, OKTA_ALICE));
    let google = w.google_alice();
    assert!(!google.suspended && !google.change_password_at_next_login && google.sign_outs == 1, "{google:?}");
    assert!(w.entra_alice().account_enabled && w.entra_member(ADMINS));
    let sandbox = w.sandbox().users["alice"].clone();
    assert_eq!(sandbox.status, UserStatus::Active);
    assert!(sandbox.sessions.is_empty() && sandbox.password_must_change, "ended sessions stay ended: {sandbox:?}");
    assert!(w.sandbox_member(ADMINS));
}
