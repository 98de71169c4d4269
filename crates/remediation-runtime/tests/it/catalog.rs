//! A connector defined here, outside the workspace's connector crates, is configured, checked,
//! built and used through the same catalog path as the built-in ones: one factory and one
//! catalog line are all a new connector needs.

use std::sync::Arc;

use remediation_config::Config;
use remediation_core::factory::Factory;
use remediation_runtime::{Catalog, Runtime, RuntimeOptions};
use remediation_testkit::{FakeConnector, RequestBuilder, default_target, requester};

/// The settings of the test's connector, as its crate would declare them.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoConfig {
    /// A required setting, to see the loader check it.
    region: String,
}

/// The test connector's factory: what its crate would export as `FACTORY`.
static ECHO: Factory<EchoConfig> = Factory::named("echo", "Echo", None, |id, config, _context| {
    assert_eq!(config.region, "eu");
    Ok(Arc::new(FakeConnector::new(id).with_target(default_target(), serde_json::json!({"granted": true}))))
});

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("remediation.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_connector_registered_in_the_catalog_is_configured_and_used_like_a_builtin_one() {
    let dir = tempfile::tempdir().unwrap();
    // The one catalog line.
    let catalog = Catalog::builtin().with(&ECHO);

    // Its settings are checked through its factory, naming line and key.
    let path = write(dir.path(), "[[connectors]]\ntype = \"echo\"\nid = \"echo-1\"\nregion = 7\n");
    let e = Config::load_with(&path, catalog.factories()).unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("connectors.region")), "{e}");
    let path = write(dir.path(), "[[connectors]]\ntype = \"echo\"\nid = \"echo-1\"\nregion = \"eu\"\ncolour = 1\n");
    let e = Config::load_with(&path, catalog.factories()).unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("connectors.colour")), "{e}");
    // Without the line, the type is unknown, and the error says which types there are.
    let path = write(dir.path(), "[[connectors]]\ntype = \"echo\"\nid = \"echo-1\"\nregion = \"eu\"\n");
    let e = Config::load_with(&path, Catalog::builtin().factories()).unwrap_err();
    assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("connectors.type")), "{e}");
    assert!(e.message.contains("unknown variant `echo`") && e.message.contains("`sandbox`"), "{e}");

    // With it, the connector loads, builds and serves the engine.
    let config = Config::load_with(&path, catalog.factories()).unwrap();
    let options = RuntimeOptions { catalog: Some(catalog.clone()), ..RuntimeOptions::default() };
    let runtime = Runtime::build(&config, dir.path(), None, options).unwrap();
    assert_eq!(runtime.connectors().await.unwrap()[0].id(), "echo-1");
    let engine = runtime.active().await.unwrap().engine;
    let suggestion = engine.suggest(RequestBuilder::new().connector("echo-1").build(), &requester()).await.unwrap();
    assert_eq!(suggestion.action.connector, "echo-1");

    // Its settings are part of the configuration's schema.
    let schema = catalog.config_schema().as_value().to_string();
    assert!(schema.contains("\"const\":\"echo\"") && schema.contains("A required setting"), "{schema}");

    // A runtime built without it refuses the configuration, naming the connector.
    let Err(e) = Runtime::build(&config, dir.path(), None, RuntimeOptions::default()) else { panic!("built") };
    assert!(e.to_string().contains("connector `echo-1` has type echo"), "{e}");
}
