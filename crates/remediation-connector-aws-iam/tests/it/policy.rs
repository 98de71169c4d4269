//! `iam-policy.json` is a valid IAM policy that grants every action the connector calls.

use std::collections::BTreeSet;

use remediation_connector_aws_iam::REQUIRED_ACTIONS;

const POLICY: &str = include_str!("../../iam-policy.json");

#[test]
fn the_policy_file_grants_exactly_the_actions_the_connector_calls() {
    let policy: serde_json::Value = serde_json::from_str(POLICY).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        for action in statement["Action"].as_array().unwrap() {
            granted.insert(action.as_str().unwrap().to_owned());
        }
    }
    let required: BTreeSet<String> = REQUIRED_ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    assert_eq!(granted, required);
}

#[test]
fn every_required_action_is_called_in_the_source() {
    let source = include_str!("../../src/connector.rs");
    for action in REQUIRED_ACTIONS {
        let op = action.trim_start_matches("iam:");
        assert!(source.contains(&format!("\"{op}\"")), "{op} is listed but never called");
    }
    // And the other way round: every operation name the connector sends is listed.
    let called: BTreeSet<&str> =
        source.split("self.call(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    for op in called {
        assert!(REQUIRED_ACTIONS.contains(&format!("iam:{op}").as_str()), "{op} is called but not in the policy");
    }
}

#[test]
fn the_readme_shows_the_same_policy() {
    let readme = include_str!("../../../../README.md");
    let policy: serde_json::Value = serde_json::from_str(POLICY).unwrap();
    for action in REQUIRED_ACTIONS {
        assert!(readme.contains(action), "README lacks {action}");
    }
    assert!(policy["Statement"].is_array());
}

/// Every operation the source calls has a permission entry, the map names exactly the
/// policy's actions, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    use remediation_connector_aws_iam::PERMISSION_MAP;
    let source = include_str!("../../src/connector.rs");
    let called: BTreeSet<&str> = source.split(".call(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    for op in called {
        assert!(PERMISSION_MAP.iter().any(|n| n.call == op), "{op} is called but has no permission entry");
    }
    let in_map: BTreeSet<&str> = PERMISSION_MAP.iter().map(|n| n.permission).collect();
    assert_eq!(in_map, REQUIRED_ACTIONS.into_iter().collect::<BTreeSet<_>>());
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "aws_iam",
        "",
        PERMISSION_MAP,
        &remediation_connector_aws_iam::capabilities(),
        &[],
    );
}
