//! Tests of the golden fixture helper.

use std::collections::BTreeMap;

use crate::fakes::RecordedRequest;
use crate::golden::Golden;

fn request() -> RecordedRequest {
    let mut headers = BTreeMap::new();
    headers.insert("authorization".to_owned(), "SSWS ***".to_owned());
    headers.insert("host".to_owned(), "127.0.0.1:4242".to_owned());
    RecordedRequest {
        method: "DELETE".to_owned(),
        path: "/api/v1/groups/g/users/u".to_owned(),
        query: vec![],
        headers,
        body: None,
        status: 204,
    }
}

#[test]
fn fixtures_compare_the_documented_fields_only() {
    let dir = std::env::temp_dir().join(format!("remediation-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let g = Golden::new(&dir);
    std::fs::write(
        dir.join("ok.json"),
        r#"[{"method": "DELETE", "path": "/api/v1/groups/g/users/u", "headers": {"authorization": "SSWS ***"}}]"#,
    )
    .expect("write");
    assert_eq!(g.compare("ok", &[request()]), Ok(()));
    let mut other = request();
    other.method = "PUT".to_owned();
    assert!(g.compare("ok", &[other]).is_err_and(|e| e.contains("differ")));
    let missing = g.compare("absent", &[request()]).expect_err("missing fixture");
    assert!(missing.contains("documentation") && missing.contains("DELETE"), "{missing}");
    assert!(!dir.join("absent.json").exists(), "never written without the bless variable");
    let _ = std::fs::remove_dir_all(dir);
}
