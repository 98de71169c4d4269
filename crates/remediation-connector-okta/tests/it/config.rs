//! Configuration: parsing, refusal of unknown keys, secret loading.

use remediation_connector_okta::{OktaAuth, OktaConfig, OktaConnector, OktaParts};

#[test]
fn a_private_key_jwt_config_parses_with_default_scopes() {
    let c: OktaConfig = toml::from_str(
        r#"
        id = "okta-prod"
        org_url = "https://example.okta.com"
        [auth]
        method = "private_key_jwt"
        client_id = "0oa1"
        private_key = { file = "/etc/remediation/okta-key.pem" }
        "#,
    )
    .expect("parses");
    let OktaAuth::PrivateKeyJwt { scopes, key_id, .. } = c.auth else { panic!("private_key_jwt") };
    assert_eq!(scopes, ["okta.users.manage", "okta.groups.manage", "okta.apps.manage", "okta.logs.read"]);
    assert_eq!(key_id, None);
    assert_eq!((c.page_size, c.max_pages, c.max_retry_wait_secs), (200, 50, 120));
}

#[test]
fn unknown_keys_are_refused() {
    let e = toml::from_str::<OktaConfig>(
        r#"
        id = "x"
        org_url = "https://example.okta.com"
        auth = { method = "ssws", token = { env = "T" } }
        deactivate = true
        "#,
    )
    .expect_err("unknown key");
    assert!(e.to_string().contains("deactivate"), "{e}");
    let e = toml::from_str::<OktaConfig>(
        r#"
        id = "x"
        org_url = "https://example.okta.com"
        auth = { method = "ssws", token = "00inline-token" }
        "#,
    )
    .expect_err("a token is never written inline");
    // The message (what the configuration loader reports with file, line and key) does not
    // quote the value; toml's own Display shows the source line, which the loader never prints.
    assert!(!e.message().contains("00inline-token"), "{}", e.message());
    assert!(e.message().contains("never written in the configuration"), "{}", e.message());
}

#[test]
fn a_missing_token_is_a_setup_error_naming_the_variable() {
    let c: OktaConfig = toml::from_str(
        r#"
        id = "okta-x"
        org_url = "https://example.okta.com"
        auth = { method = "ssws", token = { env = "REMEDIATION_TEST_OKTA_TOKEN_THAT_IS_NOT_SET" } }
        "#,
    )
    .expect("parses");
    let e = OktaConnector::new(&c, OktaParts::default()).expect_err("no token");
    let chain = format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("REMEDIATION_TEST_OKTA_TOKEN_THAT_IS_NOT_SET"), "{chain}");
}

#[test]
fn the_schema_describes_the_auth_methods() {
    let schema = serde_json::to_string(&schemars::schema_for!(OktaConfig)).expect("schema");
    assert!(schema.contains("private_key_jwt") && schema.contains("ssws"));
    assert!(schema.contains("additionalProperties"));
}

#[test]
fn a_cleartext_org_url_is_refused_unless_loopback_or_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "00token\n").expect("write");
    let parse = |org_url: &str, allow: bool| -> OktaConfig {
        toml::from_str(&format!(
            "id = \"okta-x\"\norg_url = \"{org_url}\"\nallow_insecure_http = {allow}\nauth = {{ method = \"ssws\", token = {{ file = {:?} }} }}\n",
            token.display().to_string()
        ))
        .expect("parses")
    };
    let e = OktaConnector::new(&parse("http://example.okta.com", false), OktaParts::default()).expect_err("cleartext");
    let chain = format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
    assert!(chain.contains("allow_insecure_http"), "{chain}");
    OktaConnector::new(&parse("http://example.okta.com", true), OktaParts::default()).expect("allowed");
    OktaConnector::new(&parse("http://127.0.0.1:8080", false), OktaParts::default()).expect("loopback");
    OktaConnector::new(&parse("https://example.okta.com", false), OktaParts::default()).expect("https");
}
