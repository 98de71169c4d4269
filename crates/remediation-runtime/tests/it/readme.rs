//! Every configuration example in the README loads with this build's loader and catalog, so
//! the documentation of each connector's settings cannot drift from the code.

use remediation_config::Config;
use remediation_runtime::Catalog;

fn toml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_readme_config_example_loads() {
    let all = cfg!(all(
        feature = "connector-okta",
        feature = "connector-entra",
        feature = "connector-scim",
        feature = "connector-google",
        feature = "connector-github",
        feature = "connector-ldap",
        feature = "connector-postgres",
        feature = "connector-aws-iam",
        feature = "connector-aws",
        feature = "connector-webhook",
        feature = "connector-notify"
    ));
    if !all {
        eprintln!(
            "skipping: the README examples need every connector feature (cargo test --workspace, or --all-features)"
        );
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let catalog = Catalog::builtin();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut types = std::collections::BTreeSet::new();
    let mut checked = 0;
    for (i, block) in toml_blocks(&readme).into_iter().enumerate() {
        if !block.contains("[[connectors]]") && !block.contains("[[events.sinks]]") {
            continue;
        }
        let path = dir.path().join(format!("example-{i}.toml"));
        std::fs::write(&path, &block).expect("write");
        let config = Config::load_with(&path, Catalog::builtin().factories())
            .unwrap_or_else(|e| panic!("README example {i} does not load: {e}\n{block}"));
        types.extend(config.connectors.iter().map(|c| c.type_name().to_owned()));
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} README examples were found");
    for t in catalog.factories().iter().map(|f| f.type_name()) {
        assert!(types.contains(t), "the README has no `[[connectors]]` example of type {t}: {types:?}");
    }
}
