//! Configuration: parsing, credential resolution, and secrets kept out of `Debug` and errors.

use std::collections::HashMap;
use std::io::Write as _;

use remediation_connector_aws_iam::{
    AwsCredentials, AwsIamConfig, AwsIamConnector, AwsIamError, CredentialsError, IamCredentials,
};
use remediation_core::Connector;
use secrecy::{ExposeSecret, SecretString};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLE-session-token";

fn parse(text: &str) -> Result<AwsIamConfig, toml::de::Error> {
    toml::from_str(text)
}

fn base() -> AwsIamConfig {
    parse(
        r#"
        id = "aws-prod"
        access_key_id_env = "AK"
        secret_access_key_env = "SK"
        session_token_env = "TOKEN"
        protected_users = ["break-glass"]
        "#,
    )
    .unwrap()
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn defaults_fill_what_is_not_written() {
    let config = base();
    assert_eq!(config.region, "us-east-1");
    assert_eq!(config.endpoint_url, None);
    assert_eq!(config.protected_users, vec!["break-glass".to_owned()]);
    assert_eq!((config.max_attempts, config.verify_attempts), (3, 5));
}

#[test]
fn unknown_keys_and_inline_secrets_are_refused() {
    let err = parse(
        r#"
        id = "aws"
        access_key_id_env = "AK"
        secret_access_key = "inline-secret-value"
        "#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("secret_access_key"), "{err}");
    assert!(parse("id = \"aws\"\nregion = \"us-east-1\"\n").is_err(), "access_key_id_env is required");
}

#[test]
fn the_schema_describes_the_config() {
    let schema = serde_json::to_value(schemars::schema_for!(AwsIamConfig)).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["protected_users"]["description"].is_string());
}

#[test]
fn credentials_come_from_the_named_variables() {
    let creds = AwsCredentials::resolve(&base(), env(&[("AK", "AKIAX"), ("SK", SECRET), ("TOKEN", TOKEN)])).unwrap();
    assert_eq!(creds.access_key_id, "AKIAX");
    assert_eq!(creds.secret_access_key.expose_secret(), SECRET);
    assert_eq!(creds.session_token.as_ref().map(|t| t.expose_secret().to_owned()), Some(TOKEN.to_owned()));
}

#[test]
fn the_secret_can_come_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{SECRET}").unwrap();
    let mut config = base();
    config.secret_access_key_env = None;
    config.secret_access_key_file = Some(file.path().to_owned());
    config.session_token_env = None;
    let creds = AwsCredentials::resolve(&config, env(&[("AK", "AKIAX")])).unwrap();
    assert_eq!(creds.secret_access_key.expose_secret(), SECRET);
}

#[test]
fn resolution_errors_name_the_variable_never_a_value() {
    let missing = AwsCredentials::resolve(&base(), env(&[("AK", "AKIAX"), ("SK", SECRET)])).unwrap_err();
    assert!(
        matches!(&missing, AwsIamError::Credentials(CredentialsError::MissingEnv { name, .. }) if name == "TOKEN"),
        "{missing:?}"
    );
    let text = format!("{missing} {missing:?}");
    assert!(!text.contains(SECRET), "{text}");

    let mut both = base();
    both.secret_access_key_file = Some("/nonexistent".into());
    let err = AwsCredentials::resolve(&both, env(&[("AK", "AKIAX"), ("SK", SECRET), ("TOKEN", TOKEN)])).unwrap_err();
    assert!(matches!(err, AwsIamError::Credentials(CredentialsError::SecretSource { .. })), "{err:?}");

    let mut unreadable = base();
    unreadable.secret_access_key_env = None;
    unreadable.secret_access_key_file = Some("/nonexistent/secret".into());
    let err = AwsCredentials::resolve(&unreadable, env(&[("AK", "AKIAX"), ("TOKEN", TOKEN)])).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/secret"), "{err}");
}

#[test]
fn invalid_settings_are_refused() {
    let creds = || AwsCredentials::new("AKIAX", SecretString::from(SECRET));
    let mut config = base();
    config.endpoint_url = Some("ftp://example".into());
    assert!(matches!(AwsIamConnector::new(&config, creds()), Err(AwsIamError::Invalid { key: "endpoint_url", .. })));
    let mut config = base();
    config.max_attempts = 0;
    assert!(matches!(AwsIamConnector::new(&config, creds()), Err(AwsIamError::Invalid { key: "max_attempts", .. })));
}

#[test]
fn secrets_never_show_in_debug() {
    let creds = AwsCredentials::new("AKIAX", SecretString::from(SECRET)).with_session_token(SecretString::from(TOKEN));
    let shown = format!("{creds:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("AKIAX"), "{shown}");
    let connector = AwsIamConnector::new(&base(), creds).unwrap();
    let shown = format!("{connector:?} {:#?}", connector);
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    assert_eq!(connector.id(), "aws-prod");
}
