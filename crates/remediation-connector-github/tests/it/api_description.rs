//! Every request in the golden fixtures is defined by the published description of
//! GitHub's REST API, with values it accepts (`api-descriptions/` at the repository root).

use std::path::Path;

use remediation_testkit::api_description::ApiDescription;

#[test]
fn every_golden_request_is_defined_by_the_providers_api_description() {
    let description = ApiDescription::github().expect("the committed description parses");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    match description.validate_fixtures(&dir, &|_| false) {
        Ok(checked) => assert!(checked > 0, "no request validated in {}", dir.display()),
        Err(v) => panic!("golden requests the description does not allow:\n{}", v.0.join("\n")),
    }
}
