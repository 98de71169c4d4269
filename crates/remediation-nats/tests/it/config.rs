//! Building sinks and the consumer from config: every setting checked, secrets read and never
//! shown, and nothing connects until the first delivery.

use remediation_core::{DeliveryError, EventSink as _};
use remediation_nats::{FindingsConsumerConfig, JetStreamSinkConfig, NatsConnectionConfig, NatsError};

const SECRET: &str = "s3cret-Zq9-never-shown";

fn env(var: &str) -> Option<String> {
    (var == "NATS_SECRET").then(|| format!("  {SECRET}\n"))
}

#[track_caller]
fn refused(config: &JetStreamSinkConfig, expected: &str) {
    let err = config.build_events_with_env(&env).expect_err("should be refused");
    let text = err.to_string();
    assert!(text.contains(expected), "expected {expected:?} in: {text}");
    assert!(!text.contains(SECRET), "{text}");
}

fn sink() -> JetStreamSinkConfig {
    JetStreamSinkConfig::new("nats://127.0.0.1:4222")
}

#[test]
fn a_duplicate_window_under_600_seconds_is_refused() {
    let mut config = sink();
    config.duplicate_window_secs = 599;
    refused(&config, "`duplicate_window_secs` is 599; it must be at least 600");
    config.duplicate_window_secs = 600;
    config.max_age_secs = 300;
    refused(&config, "`max_age_secs` is 300; it must be 0 (no age limit) or at least `duplicate_window_secs` (600)");
    config.max_age_secs = 600;
    config.build_events_with_env(&env).unwrap();
}

#[test]
fn tenants_streams_and_subjects_are_checked() {
    let mut config = sink();
    config.tenant = "a.b".into();
    refused(&config, "`tenant` is `a.b`; it must be one subject token");
    config.tenant = "acme".into();
    config.stream = Some("BAD.NAME".into());
    refused(&config, "`stream` is `BAD.NAME`");
    config.stream = None;
    config.subjects = Some(vec!["remediation.events.other.>".into()]);
    refused(&config, "none covers `remediation.events.acme.>`");
    config.subjects = Some(vec!["remediation.events.*.>".into()]);
    let sink = config.build_events_with_env(&env).unwrap();
    assert_eq!((sink.stream(), sink.tenant()), ("REMEDIATION_EVENTS", "acme"));
    let audit = config.build_audit_with_env(&env).expect_err("event subjects do not cover the audit subject");
    assert!(audit.to_string().contains("none covers `remediation.audit.acme`"), "{audit}");
    config.subjects = None;
    assert_eq!(config.build_audit_with_env(&env).unwrap().stream(), "REMEDIATION_AUDIT");
}

#[test]
fn urls_and_credentials_are_checked() {
    let mut config = sink();
    config.connection.url = "http://127.0.0.1:4222".into();
    refused(&config, "`url` is `http://127.0.0.1:4222`; it must start with nats:// or tls://");
    config.connection.url = "nats://me:pw@127.0.0.1:4222".into();
    refused(&config, "`url` holds credentials");
    config.connection.url = "nats://127.0.0.1:4222".into();
    config.connection.token_env = Some("NATS_SECRET".into());
    config.connection.user = Some("me".into());
    config.connection.password_env = Some("NATS_SECRET".into());
    refused(&config, "different kinds of credentials; set at most one");
    config.connection.token_env = None;
    config.connection.password_env = None;
    refused(&config, "`user` is set without `password_env` or `password_file`");
    config.connection.user = None;
    config.connection.token_env = Some("NATS_MISSING".into());
    refused(&config, "environment variable `NATS_MISSING` (named by `token_env`) is not set");
    config.connection.token_env = None;
    config.connection.tls_ca_file = Some("/nonexistent/ca.pem".into());
    refused(&config, "`tls_ca_file` is set, but the URL is not tls://");
    config.connection.url = "tls://127.0.0.1:4222".into();
    refused(&config, "cannot read the file /nonexistent/ca.pem (named by `tls_ca_file`)");
    let dir = tempfile::tempdir().unwrap();
    let not_a_ca = dir.path().join("ca.pem");
    std::fs::write(&not_a_ca, "hello\n").unwrap();
    config.connection.tls_ca_file = Some(not_a_ca);
    refused(&config, "holds no PEM certificate");
}

#[test]
fn a_malformed_creds_file_is_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sink();
    let path = dir.path().join("user.creds");
    config.connection.creds_file = Some(path.clone());
    refused(&config, "cannot read the file");
    let cases = [
        ("not a creds file", "no `BEGIN NATS USER JWT` section"),
        ("-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n", "not three dot-separated parts"),
        ("-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n", "no `BEGIN USER NKEY SEED` section"),
        (
            "-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n\
             -----BEGIN USER NKEY SEED-----\nSAxyz\n------END USER NKEY SEED------\n",
            "not a user nkey seed",
        ),
        (
            "-----BEGIN NATS USER JWT-----\na.b.c\n------END NATS USER JWT------\n\
             -----BEGIN USER NKEY SEED-----\nSUAIB0-not-base32\n------END USER NKEY SEED------\n",
            "does not decode",
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(&path, content).unwrap();
        let err = config.build_events_with_env(&env).expect_err(expected);
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "the credentials file {} (named by `creds_file`) is not a NATS .creds file",
                path.display()
            )),
            "{text}"
        );
        assert!(text.contains(expected), "expected {expected:?} in: {text}");
        assert!(!text.contains("SUAIB"), "the seed is never shown: {text}");
    }
}

#[test]
fn secrets_never_show_in_debug_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut by_user = NatsConnectionConfig::new("nats://127.0.0.1:4222");
    by_user.user = Some("remediation".into());
    by_user.password_file = Some(file.clone());
    let mut by_token = NatsConnectionConfig::new("nats://127.0.0.1:4222");
    by_token.token_env = Some("NATS_SECRET".into());
    for connection in [by_user, by_token] {
        let mut config = sink();
        config.connection = connection.clone();
        for text in [
            format!("{config:?}"),
            format!("{:?}", connection.build_with_env(&env).unwrap()),
            format!("{:?}", config.build_events_with_env(&env).unwrap()),
            format!("{:?}", config.build_audit_with_env(&env).unwrap()),
        ] {
            assert!(!text.contains(SECRET), "{text}");
        }
        let mut findings = FindingsConsumerConfig::new("nats://127.0.0.1:4222");
        findings.connection = connection;
        let text = format!("{:?} {:?}", findings, findings.build_with_env(&env).unwrap());
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }
    // An empty secret is named, not shown (there is nothing to show).
    std::fs::write(&file, "  \n").unwrap();
    let mut config = sink();
    config.connection.user = Some("remediation".into());
    config.connection.password_file = Some(file.clone());
    refused(&config, &format!("file {} (named by `password_file`) is empty", file.display()));
}

#[test]
fn the_findings_dead_letter_subject_must_not_be_consumed_and_must_be_kept() {
    #[track_caller]
    fn refused(config: &FindingsConsumerConfig, expected: &str) {
        let err = config.build_with_env(&env).expect_err(expected);
        assert!(err.to_string().contains(expected), "expected {expected:?} in: {err}");
    }
    let mut config = FindingsConsumerConfig::new("nats://127.0.0.1:4222");
    config.build_with_env(&env).unwrap();
    config.dead_letter_subject = "remediation.findings.dead".into();
    refused(&config, "which the findings subject `remediation.findings.>` matches");
    config.dead_letter_subject = "remediation.deadletter.*".into();
    refused(&config, "must be a subject without wildcards");
    config.dead_letter_subject = "elsewhere.findings".into();
    refused(&config, "do not cover: dead letters would not be kept");
    config.dead_letter_subject = "remediation.deadletter.findings".into();
    config.dead_letter_stream = config.stream.clone();
    refused(&config, "must not be the findings stream");
    config.dead_letter_stream = "REMEDIATION_DEADLETTER".into();
    config.max_deliver = 0;
    refused(&config, "`max_deliver` must be at least 1");
}

#[test]
fn config_files_refuse_unknown_fields_and_fill_defaults() {
    let config: JetStreamSinkConfig = toml::from_str("[connection]\nurl = \"nats://127.0.0.1:4222\"\n").unwrap();
    assert_eq!((config.tenant.as_str(), config.duplicate_window_secs, config.max_age_secs), ("default", 600, 0));
    assert_eq!(config.connection.connect_timeout_secs, 10);
    let err = toml::from_str::<JetStreamSinkConfig>("[connection]\nurl = \"nats://x\"\npasword_env = \"X\"\n")
        .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `pasword_env`"), "{err}");
    let findings: FindingsConsumerConfig = toml::from_str("[connection]\nurl = \"nats://127.0.0.1:4222\"\n").unwrap();
    assert_eq!(
        (
            findings.stream.as_str(),
            findings.durable.as_str(),
            findings.dead_letter_subject.as_str(),
            findings.max_deliver
        ),
        ("REMEDIATION_FINDINGS", "remediation-findings", "remediation.deadletter.findings", 20)
    );
}

/// A server that is down does not stop the sink from being built; delivering is transient.
#[tokio::test]
async fn an_unreachable_server_makes_delivery_transient_not_building() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = sink();
    config.connection.url = format!("nats://127.0.0.1:{port}");
    let sink = config.build_events_with_env(&env).unwrap();
    let err = sink.deliver(&crate::events("t", 2)).await.expect_err("nothing listens");
    assert_eq!(err.delivered, 0);
    match err.error {
        DeliveryError::Transient { reason, .. } => {
            assert!(reason.starts_with(&format!("cannot connect to NATS at nats://127.0.0.1:{port}:")), "{reason}")
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(matches!(sink.ensure_stream().await, Err(NatsError::Connect { .. })));
    sink.deliver(&[]).await.unwrap();
}
