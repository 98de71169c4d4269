//! Logging in: a token, a user and password, and a `.creds` file from an operator-mode
//! server; right and wrong credentials.

use remediation_core::EventSink as _;
use remediation_nats::testing::{PrivateAuth, PrivateNats, PrivateNatsOptions};
use remediation_nats::{JetStreamSinkConfig, NatsError};

use crate::{events, events_config, unique};

fn env(var: &str) -> Option<String> {
    match var {
        "RIGHT" => Some("correct-horse".to_owned()),
        "WRONG" => Some("battery-staple".to_owned()),
        _ => None,
    }
}

#[track_caller]
fn assert_refused(err: NatsError, url: &str) {
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot connect to NATS at {url}: ")), "{text}");
    assert!(text.contains("authorization violation"), "{text}");
    assert!(!text.contains("correct-horse") && !text.contains("battery-staple"), "{text}");
}

async fn works(config: &JetStreamSinkConfig) {
    config.build_events_with_env(&env).unwrap().deliver(&events(&config.tenant, 2)).await.unwrap();
}

#[tokio::test]
async fn a_token_is_needed_and_checked() {
    let auth = PrivateAuth::Token("correct-horse".into());
    let Some(server) = PrivateNats::start(PrivateNatsOptions { auth, ..Default::default() }) else { return };
    let mut config = events_config(&server.url(), &unique());
    config.connection.token_env = Some("RIGHT".into());
    works(&config).await;
    config.connection.token_env = Some("WRONG".into());
    assert_refused(config.build_events_with_env(&env).unwrap().ensure_stream().await.unwrap_err(), &server.url());
    config.connection.token_env = None;
    assert_refused(config.build_events_with_env(&env).unwrap().ensure_stream().await.unwrap_err(), &server.url());
}

#[tokio::test]
async fn a_user_and_password_are_needed_and_checked() {
    let auth = PrivateAuth::UserPassword { user: "remediation".into(), password: "correct-horse".into() };
    let Some(server) = PrivateNats::start(PrivateNatsOptions { auth, ..Default::default() }) else { return };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "correct-horse\n").unwrap();
    let mut config = events_config(&server.url(), &unique());
    config.connection.user = Some("remediation".into());
    config.connection.password_file = Some(password_file);
    works(&config).await;
    config.connection.password_file = None;
    config.connection.password_env = Some("WRONG".into());
    assert_refused(config.build_events_with_env(&env).unwrap().ensure_stream().await.unwrap_err(), &server.url());
    config.connection.user = Some("someone-else".into());
    config.connection.password_env = Some("RIGHT".into());
    assert_refused(config.build_events_with_env(&env).unwrap().ensure_stream().await.unwrap_err(), &server.url());
}

#[tokio::test]
async fn a_creds_file_logs_in_to_an_operator_mode_server() {
    let auth = PrivateAuth::Operator;
    let Some(server) = PrivateNats::start(PrivateNatsOptions { auth, ..Default::default() }) else { return };
    let mut config = events_config(&server.url(), &unique());
    config.connection.creds_file = Some(server.creds_file());
    works(&config).await;

    // The same user's JWT with another user's seed: the signature does not match.
    let creds = std::fs::read_to_string(server.creds_file()).unwrap();
    let own_seed = creds.lines().find(|l| l.starts_with("SU")).unwrap();
    let other_seed = nkeys::KeyPair::new_user().seed().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("forged.creds");
    std::fs::write(&forged, creds.replace(own_seed, &other_seed)).unwrap();
    config.connection.creds_file = Some(forged);
    let err = config.build_events_with_env(&env).unwrap().ensure_stream().await.unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot connect to NATS at {}: ", server.url())), "{err}");
    assert!(!err.to_string().contains(&other_seed), "{err}");
}
