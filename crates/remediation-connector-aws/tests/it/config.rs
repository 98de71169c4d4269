//! Configuration: defaults, validation, credentials shared with the IAM connector, redaction.

use remediation_connector_aws::{AwsConfig, AwsConnector, AwsCredentials, AwsError, CredentialsError};
use remediation_core::Connector;
use secrecy::SecretString;

fn creds() -> AwsCredentials {
    AwsCredentials::new("AKIAX", SecretString::from("config-test-secret"))
}

#[test]
fn defaults_and_redaction() {
    let config: AwsConfig = toml::from_str(
        r#"
        region = "eu-west-1"
        access_key_id_env = "AK"
        secret_access_key_env = "SK"
        "#,
    )
    .unwrap();
    assert_eq!(config.id, "aws");
    assert_eq!(config.rds_backup_retention_days, 7);
    assert_eq!(config.s3_kms_key_id, None);
    let connector = AwsConnector::new(&config, creds()).unwrap();
    assert_eq!(connector.id(), "aws");
    assert!(!format!("{connector:?}").contains("config-test-secret"));
    assert!(toml::from_str::<AwsConfig>("region = \"eu-west-1\"\naccess_key_id_env = \"AK\"\ncolour = 1").is_err());
}

#[track_caller]
fn refused(edit: impl FnOnce(&mut AwsConfig), key: &str) {
    let mut config = AwsConfig::new("eu-west-1", "AK", "SK");
    edit(&mut config);
    match AwsConnector::new(&config, creds()) {
        Err(AwsError::Invalid { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected `{key}` refused, got {other:?}"),
    }
}

#[test]
fn invalid_settings_are_refused() {
    refused(|c| c.region = "eu-west-1/../x".into(), "region");
    refused(|c| c.endpoint_url = Some("ftp://x".into()), "endpoint_url");
    refused(|c| c.endpoint_url = Some("http://x/?a=b".into()), "endpoint_url");
    refused(|c| c.s3_kms_key_id = Some("not a key".into()), "s3_kms_key_id");
    refused(|c| c.rds_backup_retention_days = 0, "rds_backup_retention_days");
    refused(|c| c.rds_backup_retention_days = 36, "rds_backup_retention_days");
    refused(|c| c.max_attempts = 0, "max_attempts");
}

#[test]
fn credentials_are_read_as_the_iam_connector_reads_them() {
    let mut config = AwsConfig::new("eu-west-1", "AK", "SK");
    config.session_token_env = Some("TOKEN".into());
    let lookup = |n: &str| match n {
        "AK" => Some("AKIAX".to_owned()),
        "SK" => Some("shared-secret".to_owned()),
        _ => None,
    };
    let err = AwsCredentials::resolve_source(&config, lookup).unwrap_err();
    assert!(matches!(&err, CredentialsError::MissingEnv { name, .. } if name == "TOKEN"), "{err:?}");
    config.session_token_env = None;
    let c = AwsCredentials::resolve_source(&config, lookup).unwrap();
    assert_eq!(c.access_key_id, "AKIAX");
    assert!(!format!("{c:?}").contains("shared-secret"));
    config.secret_access_key_file = Some("/nonexistent".into());
    assert!(matches!(AwsCredentials::resolve_source(&config, lookup), Err(CredentialsError::SecretSource { .. })));
}
