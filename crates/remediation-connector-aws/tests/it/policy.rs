//! The permission map covers every capability's read, execute and rollback calls, and the
//! README's `aws` permission table is the map's.

use remediation_connector_aws::{PERMISSION_MAP, capabilities};

#[test]
fn the_permission_map_is_complete_and_in_the_readme() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "aws",
        "",
        PERMISSION_MAP,
        &capabilities(),
        &[],
    );
}
