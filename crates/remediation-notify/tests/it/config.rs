//! Config parsing and building, and the errors that name what is missing.

use std::io::Write;

use remediation_notify::{AuditSinkConfig, EventSinkConfig, LogSinkConfig, NotifierConfig, NotifierKind, NotifyError};

fn env(var: &str) -> Option<String> {
    match var {
        "EVENTS_SECRET" => Some("ev-SECRET-value".to_owned()),
        "SLACK_URL" => Some("https://hooks.slack.com/services/T1/B2/tokTOKENtok\n".to_owned()),
        "BLANK" => Some("  \n".to_owned()),
        "NOT_A_URL" => Some("hooks.slack.com/services/T1/B2/tokTOKENtok".to_owned()),
        _ => None,
    }
}

fn sink(toml_text: &str) -> Result<EventSinkConfig, toml::de::Error> {
    toml::from_str(toml_text)
}

fn notifier(toml_text: &str) -> NotifierConfig {
    toml::from_str(toml_text).expect("notifier config")
}

#[track_caller]
fn build_err(config: &NotifierConfig) -> String {
    let err = config.build_with_env(&env).expect_err("must fail");
    let text = err.to_string();
    assert!(!text.contains("tokTOKENtok"), "{text}");
    text
}

#[test]
fn event_sink_configs_parse_and_refuse_unknown_fields() {
    assert_eq!(
        sink(r#"type = "log""#).expect("log"),
        EventSinkConfig::Log(LogSinkConfig { name: None, envelope: false })
    );
    let EventSinkConfig::Webhook(w) =
        sink("type = \"webhook\"\nurl = \"https://x.example/e\"\nsecret_env = \"EVENTS_SECRET\"").expect("webhook")
    else {
        panic!("not a webhook")
    };
    assert_eq!((w.timeout_secs, w.max_attempts), (10, 3));
    assert!(sink("type = \"webhook\"\nurl = \"https://x\"\nsecret_env = \"A\"\nsecrte_file = \"b\"").is_err());
    assert!(sink("type = \"log\"\nurl = \"https://x\"").is_err());
    assert!(sink("type = \"syslog\"").is_err());
    // Names key the delivery marks; the defaults are the types.
    assert_eq!(sink(r#"type = "log""#).expect("log").name(), "log");
    let named = sink("type = \"webhook\"\nname = \"siem\"\ndeliver_from = \"beginning\"\nurl = \"https://x.example/e\"\nsecret_env = \"A\"")
        .expect("named");
    assert_eq!((named.name(), named.deliver_from()), ("siem", remediation_core::DeliverFrom::Beginning));
    assert_eq!(w.name, None);
}

#[test]
fn audit_sink_configs_parse_with_their_defaults() {
    let file: AuditSinkConfig = toml::from_str("type = \"file\"\npath = \"audit/trail.jsonl\"").expect("file");
    assert_eq!((file.name(), file.deliver_from()), ("file", remediation_core::DeliverFrom::Beginning));
    let AuditSinkConfig::File(f) = &file else { panic!("not a file") };
    assert_eq!((f.max_bytes, f.keep), (100 * 1024 * 1024, 10));
    let dir = tempfile::tempdir().expect("dir");
    assert!(file.build_with_env(dir.path(), &env).is_ok());
    let tiny: AuditSinkConfig = toml::from_str("type = \"file\"\npath = \"a\"\nmax_bytes = 10").expect("parse");
    assert!(tiny.build_with_env(dir.path(), &env).err().expect("refused").to_string().contains("max_bytes"));
    assert!(toml::from_str::<AuditSinkConfig>("type = \"file\"").is_err(), "a file needs a path");
    assert!(toml::from_str::<AuditSinkConfig>("type = \"log\"").is_err(), "the log is not an audit sink");
}

#[test]
fn event_sinks_build_and_errors_name_the_missing_source() {
    let ok = sink("type = \"webhook\"\nurl = \"https://x.example/e\"\nsecret_env = \"EVENTS_SECRET\"").expect("parse");
    let built = ok.build_with_env(&env).expect("build");
    drop(built);
    assert!(EventSinkConfig::Log(LogSinkConfig { name: None, envelope: false }).build_with_env(&env).is_ok());

    let missing = sink("type = \"webhook\"\nurl = \"https://x.example/e\"\nsecret_env = \"NOPE\"").expect("parse");
    let e = missing.build_with_env(&env).err().expect("error").to_string();
    assert_eq!(e, "environment variable `NOPE` (named by `secret_env`) is not set");

    let file = sink("type = \"webhook\"\nurl = \"https://x.example/e\"\nsecret_file = \"/nonexistent/secret\"")
        .expect("parse");
    let e = file.build_with_env(&env).err().expect("error");
    assert!(e.to_string().contains("/nonexistent/secret") && e.to_string().contains("secret_file"), "{e}");

    let neither = sink("type = \"webhook\"\nurl = \"https://x.example/e\"").expect("parse");
    let e = neither.build_with_env(&env).err().expect("error").to_string();
    assert_eq!(e, "webhook sink: set exactly one of `secret_env`, `secret_file`");

    let bad_url =
        sink("type = \"webhook\"\nurl = \"ftp://x.example/e\"\nsecret_env = \"EVENTS_SECRET\"").expect("parse");
    assert!(bad_url.build_with_env(&env).err().expect("error").to_string().contains("not a valid http(s) URL"));
    let blank = sink("type = \"webhook\"\nurl = \"https://x.example/e\"\nsecret_env = \"BLANK\"").expect("parse");
    assert_eq!(
        blank.build_with_env(&env).err().expect("error").to_string(),
        "environment variable `BLANK` (named by `secret_env`) is empty"
    );
}

#[test]
fn notifier_configs_build_and_refuse_secrets_in_plain_sight() {
    let slack = notifier("id = \"slack\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"");
    assert_eq!(slack.kind, NotifierKind::Slack);
    let built = slack.build_with_env(&env).expect("slack");
    assert!(!format!("{built:?} {slack:?}").contains("tokTOKENtok"));

    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    writeln!(file, "https://hooks.slack.com/services/T1/B2/tokTOKENtok").expect("write");
    let from_file = notifier(&format!("id = \"s\"\nkind = \"slack\"\nurl_file = {:?}", file.path()));
    assert!(from_file.build_with_env(&env).is_ok());

    let plain = notifier("id = \"s\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T1/B2/tokTOKENtok\"");
    assert!(build_err(&plain).contains("`url` is refused for Slack"));
    let missing = notifier("id = \"s\"\nkind = \"slack\"\nurl_env = \"NO_SUCH_VAR\"");
    assert_eq!(build_err(&missing), "environment variable `NO_SUCH_VAR` (named by `url_env`) is not set");
    let both = notifier("id = \"s\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\nurl_file = \"/x\"");
    assert_eq!(build_err(&both), "notifier `s`: set exactly one of `url_env`, `url_file`");
    let not_url = notifier("id = \"s\"\nkind = \"slack\"\nurl_env = \"NOT_A_URL\"");
    let text = build_err(&not_url);
    assert!(text.contains("environment variable `NOT_A_URL`") && text.contains("not a valid"), "{text}");

    let webhook =
        notifier("id = \"t\"\nkind = \"webhook\"\nurl = \"https://t.example/h\"\nsecret_env = \"EVENTS_SECRET\"");
    assert!(webhook.build_with_env(&env).is_ok());
    let unsigned = notifier("id = \"t\"\nkind = \"webhook\"\nurl = \"https://t.example/h\"");
    assert_eq!(build_err(&unsigned), "notifier `t`: set exactly one of `secret_env`, `secret_file`");
    let zero = notifier(
        "id = \"t\"\nkind = \"webhook\"\nurl = \"https://t.example/h\"\nsecret_env = \"EVENTS_SECRET\"\ntimeout_secs = 0",
    );
    assert!(build_err(&zero).contains("timeout_secs"));

    assert!(
        toml::from_str::<NotifierConfig>("id = \"s\"\nkind = \"slack\"\nurl_env = \"X\"\nchannel = \"#sec\"").is_err()
    );
    assert!(toml::from_str::<NotifierConfig>("id = \"s\"\nkind = \"email\"").is_err());
}

#[test]
fn state_file_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notifier-s.json"), "not json").expect("write");
    let config =
        notifier(&format!("id = \"s\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\nstate_dir = {:?}", dir.path()));
    let err = config.build_with_env(&env).expect_err("bad state");
    assert!(matches!(err, NotifyError::ParseState { .. }), "{err}");
    assert!(err.to_string().contains("notifier-s.json"), "{err}");
}

#[test]
fn schemas_describe_the_configs() {
    let sink = serde_json::to_string(&schemars::schema_for!(EventSinkConfig)).expect("schema");
    assert!(sink.contains("secret_env") && sink.contains("signing secret"), "{sink}");
    let notifier = serde_json::to_string(&schemars::schema_for!(NotifierConfig)).expect("schema");
    assert!(notifier.contains("url_file") && notifier.contains("state_dir"), "{notifier}");
}
