//! Configuration: parsing, validation, and what the capabilities say.

use remediation_connector_webhook::{WebhookConfig, WebhookConnector, WebhookError};
use remediation_core::{KindName, Reversibility};

fn parse(text: &str) -> Result<WebhookConfig, toml::de::Error> {
    toml::from_str(text)
}

const BASE: &str = r#"
    id = "hr"
    url = "https://hr.example.com/remediation"
    secret_env = "HR_WEBHOOK_SECRET"
"#;

#[track_caller]
fn check_invalid(grant_types: &str, expected: &str) {
    let config = parse(&format!("{BASE}{grant_types}")).expect("parses");
    let err = config.capabilities().expect_err("invalid");
    assert_eq!(err.to_string(), expected);
}

#[test]
fn the_declared_grant_types_are_exactly_the_capabilities() {
    let config = parse(&format!(
        r#"{BASE}
        [[grant_types]]
        name = "badge_access"
        kinds = ["revoke", "reduce"]
        reversibility = "reversible"

        [[grant_types]]
        name = "badge_holder"
        kinds = ["force_password_reset"]
        reversibility = "irreversible"
        "#
    ))
    .unwrap();
    assert_eq!(config.timeout_secs, 30);
    let caps: Vec<(KindName, String, Reversibility, bool)> = config
        .capabilities()
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.grant_type, c.reversibility, c.observable))
        .collect();
    assert_eq!(
        caps,
        vec![
            (KindName::Revoke, "badge_access".to_owned(), Reversibility::Reversible, true),
            (KindName::Reduce, "badge_access".to_owned(), Reversibility::Reversible, true),
            (KindName::ForcePasswordReset, "badge_holder".to_owned(), Reversibility::Irreversible, true),
        ]
    );
}

#[test]
fn invalid_grant_types_are_refused_with_a_reason() {
    check_invalid("grant_types = []", "webhook connector `hr`: `grant_types` is empty");
    check_invalid(
        "[[grant_types]]\nname = \"x\"\nkinds = []\nreversibility = \"reversible\"",
        "webhook connector `hr`: grant type `x` lists no `kinds`",
    );
    check_invalid(
        "[[grant_types]]\nname = \"x\"\nkinds = [\"revoke\"]\nreversibility = \"reversible\"\n\
         [[grant_types]]\nname = \"x\"\nkinds = [\"revoke\"]\nreversibility = \"lossy\"",
        "webhook connector `hr`: (revoke, x) is declared more than once",
    );
    for kind in ["revoke_sessions", "force_password_reset", "notify"] {
        check_invalid(
            &format!("[[grant_types]]\nname = \"x\"\nkinds = [\"{kind}\"]\nreversibility = \"reversible\""),
            &format!(
                "webhook connector `hr`: {kind} for `x` cannot be undone by any service; declare it in an entry with reversibility = \"irreversible\""
            ),
        );
    }
}

#[test]
fn unknown_keys_and_unknown_kinds_are_refused() {
    let err = parse(&format!("{BASE}secret = \"inline\"\ngrant_types = []")).unwrap_err();
    assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    let err =
        parse(&format!("{BASE}[[grant_types]]\nname = \"x\"\nkinds = [\"delete\"]\nreversibility = \"reversible\""))
            .unwrap_err();
    assert!(err.to_string().contains("unknown variant `delete`"), "{err}");
}

#[test]
fn exactly_one_secret_source_is_required() {
    let grant = "[[grant_types]]\nname = \"x\"\nkinds = [\"revoke\"]\nreversibility = \"reversible\"";
    let both = parse(&format!("{BASE}secret_file = \"/tmp/x\"\n{grant}")).unwrap();
    assert!(matches!(WebhookConnector::from_config(&both), Err(WebhookError::SecretSource { .. })));
    let none = parse(&format!("id = \"hr\"\nurl = \"https://hr.example.com\"\n{grant}")).unwrap();
    let err = WebhookConnector::from_config(&none).unwrap_err();
    assert_eq!(err.to_string(), "webhook connector `hr`: set exactly one of `secret_env`, `secret_file`");
    let unset = parse(&format!("{BASE}{grant}")).unwrap();
    let err = WebhookConnector::from_config(&unset).unwrap_err();
    assert_eq!(err.to_string(), "webhook connector `hr`: cannot read its secret");
    let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains("HR_WEBHOOK_SECRET"), "{source}");
}

#[test]
fn a_url_that_is_not_http_is_refused() {
    let config = parse(
        "id = \"hr\"\nurl = \"ftp://hr.example.com\"\nsecret_file = \"/nonexistent\"\n\
         [[grant_types]]\nname = \"x\"\nkinds = [\"revoke\"]\nreversibility = \"reversible\"",
    )
    .unwrap();
    let err = WebhookConnector::new(&config, "s3cret-value".to_owned().into(), Default::default()).unwrap_err();
    assert!(matches!(err, WebhookError::Client { .. }), "{err}");
}
