//! The fixtures under `tests/fixtures/findings/` read to the expected entries, and hostile or
//! malformed documents give a clear refusal.

#![allow(clippy::unwrap_used, reason = "tests may unwrap")]
use remediation_core::{ActionKind, Finding, Severity, Target};
use serde_json::{Value, json};

use super::*;

const PROWLER: &str = include_str!("../../../../tests/fixtures/findings/prowler-ocsf.json");
const ASFF: &str = include_str!("../../../../tests/fixtures/findings/securityhub-asff.json");
const OCSF: &str = include_str!("../../../../tests/fixtures/findings/ocsf-detection.json");

/// What an entry is expected to become: a finding's (control, kind, target, severity), or a
/// label with words its reason must contain.
enum Want<'a> {
    Fix(&'static str, ActionKind, Target, Severity),
    Not(&'static str, &'a [&'a str]),
}

fn enforce(setting: &str, value: &str) -> ActionKind {
    ActionKind::Enforce { setting: setting.to_owned(), value: value.to_owned() }
}

fn target(identity: &str, grant: Option<&str>, grant_type: &str) -> Target {
    Target {
        identity: identity.to_owned(),
        resource: None,
        grant: grant.map(str::to_owned),
        grant_type: grant_type.to_owned(),
    }
}

fn bucket() -> Target {
    target("amzn-s3-demo-bucket", None, "s3_bucket")
}

fn sg() -> Target {
    target("sg-0123456789abcdef0", Some("tcp:22-22"), "security_group_ingress")
}

fn db() -> Target {
    target("arn:aws:rds:eu-west-1:123456789012:db:orders-prod", None, "db_instance")
}

fn alices_key() -> Target {
    target("arn:aws:iam::123456789012:user/alice", None, "iam_access_key")
}

#[track_caller]
fn check(doc: &ScannerDocument, source: &str, want: &[Want<'_>]) {
    assert_eq!(doc.entries.len(), want.len(), "{doc:#?}");
    for (i, (e, w)) in doc.entries.iter().zip(want).enumerate() {
        assert_eq!(e.index, i);
        match (w, &e.outcome) {
            (Want::Fix(control, kind, t, severity), EntryOutcome::Finding(f)) => {
                assert_eq!(f.control_id, *control, "entry {i}");
                assert_eq!(e.control_id.as_deref(), Some(*control), "entry {i}");
                assert_eq!(&f.suggested_kind, kind, "entry {i}");
                assert_eq!(&f.target, t, "entry {i}");
                assert_eq!(f.severity, *severity, "entry {i}");
                assert_eq!(f.source, source, "entry {i}");
                assert_eq!(f.connector.as_deref(), Some("aws"), "entry {i}");
                assert_eq!(e.finding_id.as_deref(), Some(f.id.as_str()), "entry {i}");
                assert!(!f.title.is_empty() && f.description.is_some(), "entry {i}: {f:?}");
            }
            (Want::Not(label, words), outcome) => {
                assert_eq!(outcome.label(), *label, "entry {i}: {outcome:?}");
                let reason = match outcome {
                    EntryOutcome::NothingToDo { reason }
                    | EntryOutcome::Unsupported { reason }
                    | EntryOutcome::Invalid { reason } => reason,
                    EntryOutcome::Finding(_) => unreachable!(),
                };
                for w in *words {
                    assert!(reason.contains(w), "entry {i}: `{reason}` does not say `{w}`");
                }
            }
            (_, outcome) => panic!("entry {i}: unexpected {outcome:?}"),
        }
    }
}

fn read(text: &str) -> Result<ScannerDocument, ReadError> {
    read_findings(text, None, &ReadOptions::default())
}

#[test]
fn prowler_ocsf_fixture() {
    let doc = read(PROWLER).unwrap();
    assert_eq!(doc.format, Some(DocumentFormat::ProwlerOcsf));
    check(
        &doc,
        "prowler",
        &[
            Want::Fix(
                "s3_bucket_default_encryption",
                enforce("s3_default_encryption", "default"),
                bucket(),
                Severity::Medium,
            ),
            Want::Fix(
                "s3_bucket_level_public_access_block",
                enforce("s3_public_access_block", "all"),
                bucket(),
                Severity::High,
            ),
            Want::Fix(
                "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
                ActionKind::Revoke,
                sg(),
                Severity::High,
            ),
            Want::Fix(
                "rds_instance_backup_enabled",
                enforce("rds_backup_retention_days", "default"),
                db(),
                Severity::Medium,
            ),
            Want::Fix("iam_rotate_access_key_90_days", ActionKind::Rotate, alices_key(), Severity::Medium),
            Want::Not("nothing_to_do", &["s3_bucket_kms_encryption", "PASS"]),
            Want::Not("unsupported", &["accessanalyzer_enabled", "not in the mapping table"]),
            Want::Not("nothing_to_do", &["account_security_contact_information_is_registered", "MANUAL"]),
        ],
    );
    let EntryOutcome::Finding(f) = &doc.entries[0].outcome else { panic!() };
    assert_eq!(f.id, "prowler-aws-s3_bucket_default_encryption-123456789012-eu-west-1-amzn-s3-demo-bucket");
    assert_eq!(
        f.description.as_deref(),
        Some("S3 Bucket amzn-s3-demo-bucket does not have Server Side Encryption enabled.")
    );
    // Declaring it OCSF reads it the same way; declaring it ASFF is refused.
    assert_eq!(read_findings(PROWLER, Some(DocumentFormat::Ocsf), &ReadOptions::default()).unwrap(), doc);
    let e = read_findings(PROWLER, Some(DocumentFormat::SecurityHubAsff), &ReadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "the document was declared asff but is prowler-ocsf");
}

#[test]
fn securityhub_asff_fixture() {
    let doc = read(ASFF).unwrap();
    assert_eq!(doc.format, Some(DocumentFormat::SecurityHubAsff));
    check(
        &doc,
        "aws-securityhub",
        &[
            Want::Fix("S3.8", enforce("s3_public_access_block", "all"), bucket(), Severity::High),
            Want::Fix("EC2.13", ActionKind::Revoke, sg(), Severity::High),
            Want::Fix("RDS.11", enforce("rds_backup_retention_days", "default"), db(), Severity::Medium),
            Want::Fix("IAM.3", ActionKind::Rotate, alices_key(), Severity::Medium),
            Want::Not("unsupported", &["EC2.19", "not guessed"]),
            Want::Not("nothing_to_do", &["S3.17", "PASSED"]),
            Want::Fix("S3.4", enforce("s3_default_encryption", "default"), bucket(), Severity::Medium),
            Want::Not("unsupported", &["no Security Hub control id", "cis-aws-foundations-benchmark/v/1.2.0/rule/1.4"]),
        ],
    );
    // One finding alone, and a bare array of them, read the same.
    let all: Value = serde_json::from_str(ASFF).unwrap();
    let one = read(&all["Findings"][0].to_string()).unwrap();
    assert_eq!(one.entries[0].outcome, doc.entries[0].outcome);
    let array = read(&all["Findings"].to_string()).unwrap();
    assert_eq!(array, doc);
}

#[test]
fn ocsf_fixture_from_another_product() {
    let doc = read(OCSF).unwrap();
    assert_eq!(doc.format, Some(DocumentFormat::Ocsf));
    check(
        &doc,
        "",
        &[
            Want::Not("unsupported", &["S3-PUBLIC-ACCESS", "Example Cloud Scanner"]),
            Want::Not("nothing_to_do", &["EC2-SSH-OPEN", "resolved"]),
            Want::Not("unsupported", &["RDS-NO-BACKUP", "Example Cloud Scanner"]),
        ],
    );
    assert_eq!(doc.entries[2].finding_id.as_deref(), Some("ex-0003"), "class 2001 keeps its finding in `finding`");
}

#[test]
fn prowler_asff_output_is_keyed_by_check_id() {
    let f = json!({"SchemaVersion": "2018-10-08",
        "Id": "prowler-rds_instance_backup_enabled-123456789012-eu-west-1-0a1b2c",
        "ProductArn": "arn:aws:securityhub:eu-west-1::product/prowler/prowler",
        "GeneratorId": "prowler-rds_instance_backup_enabled", "AwsAccountId": "123456789012",
        "Severity": {"Label": "medium"}, "Title": "RDS instance has backup retention period greater than 0 days",
        "Description": "RDS Instance orders-prod does not have backups enabled.",
        "Resources": [{"Id": "arn:aws:rds:eu-west-1:123456789012:db:orders-prod", "Type": "AwsRdsDbInstance"}],
        "Compliance": {"Status": "FAILED"}});
    let doc = read(&f.to_string()).unwrap();
    check(
        &doc,
        "prowler",
        &[Want::Fix(
            "rds_instance_backup_enabled",
            enforce("rds_backup_retention_days", "default"),
            db(),
            Severity::Medium,
        )],
    );
}

/// The first Prowler entry with `edit` applied.
fn prowler_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut all: Value = serde_json::from_str(PROWLER).unwrap();
    let mut first = all[0].take();
    edit(&mut first);
    json!([first]).to_string()
}

/// The first ASFF finding with `edit` applied.
fn asff_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut all: Value = serde_json::from_str(ASFF).unwrap();
    let mut first = all["Findings"][0].take();
    edit(&mut first);
    json!({"Findings": [first]}).to_string()
}

#[track_caller]
fn entry_invalid(text: &str, words: &[&str]) {
    let doc = read(text).unwrap();
    check(&doc, "", &[Want::Not("invalid", words)]);
}

#[test]
fn hostile_resources_are_refused_naming_the_finding() {
    let id = "prowler-aws-s3_bucket_default_encryption-123456789012-eu-west-1-amzn-s3-demo-bucket";
    let set_uid = |uid: &'static str| move |v: &mut Value| v["resources"][0]["uid"] = json!(uid);
    entry_invalid(
        &prowler_with(set_uid("arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1a2b3c4d")),
        &[id, "not `s3`"],
    );
    entry_invalid(&prowler_with(set_uid("arn:aws:s3:::amzn-s3-demo-bucket/../other")), &[id, "`..`"]);
    entry_invalid(&prowler_with(set_uid("arn:aws:s3:::amzn-s3-demo-bucket/key")), &[id, "inside a bucket"]);
    entry_invalid(&prowler_with(set_uid("amzn-s3-demo-bucket")), &[id, "six fields"]);
    entry_invalid(
        &prowler_with(|v| v["resources"][0]["type"] = json!("AwsEc2SecurityGroup")),
        &[id, "is about `AwsS3Bucket`"],
    );
    entry_invalid(&prowler_with(|v| v["resources"] = json!([])), &[id, "names no resource"]);
    entry_invalid(
        &prowler_with(|v| {
            let r = v["resources"][0].clone();
            v["resources"] = json!([r.clone(), r]);
        }),
        &[id, "not guessed"],
    );
    entry_invalid(&prowler_with(|v| v["resources"][0]["uid"] = json!(7)), &[id, "without `uid`"]);
    let asff_id = "security-control/S3.8/finding/";
    entry_invalid(&asff_with(|v| v["Resources"][0]["Id"] = json!("arn:aws:s3:::a/../../etc")), &[asff_id, "`..`"]);
    entry_invalid(
        &asff_with(|v| v["Resources"][0]["Id"] = json!("arn:aws:sqs:eu-west-1:123456789012:q")),
        &[asff_id, "not `s3`"],
    );
    entry_invalid(
        &asff_with(|v| v["Resources"][0]["Type"] = json!("AwsRdsDbInstance")),
        &[asff_id, "is about `AwsS3Bucket`"],
    );
}

#[test]
fn missing_fields_make_an_entry_invalid() {
    entry_invalid(&prowler_with(|v| v["status_code"] = Value::Null), &["has no `status_code`"]);
    entry_invalid(&prowler_with(|v| v["status_code"] = json!("BROKEN")), &["not FAIL, PASS or MANUAL"]);
    entry_invalid(&prowler_with(|v| v["finding_info"]["uid"] = Value::Null), &["no `finding_info.uid`"]);
    entry_invalid(&prowler_with(|v| v["severity_id"] = json!(0)), &["severity_id 0"]);
    entry_invalid(
        &prowler_with(|v| {
            v["metadata"]["event_code"] = Value::Null;
            v["finding_info"]["analytic"] = Value::Null;
        }),
        &["names no check"],
    );
    entry_invalid(
        &prowler_with(|v| v["finding_info"]["analytic"]["uid"] = json!("other_check")),
        &["two checks", "not guessed"],
    );
    entry_invalid(&asff_with(|v| v["Compliance"]["Status"] = Value::Null), &["no `Compliance.Status`"]);
    entry_invalid(&asff_with(|v| v["Resources"] = Value::Null), &["no `Resources` array"]);
    entry_invalid(&asff_with(|v| v["Id"] = Value::Null), &["no `Id`"]);
    entry_invalid(&asff_with(|v| v["Severity"] = json!({"Label": "SEVERE"})), &["Severity.Label `SEVERE`"]);
}

#[test]
fn documents_that_are_not_recognised_say_why() {
    #[track_caller]
    fn refused(text: &str, words: &[&str]) {
        let e = read(text).unwrap_err().to_string();
        for w in words {
            assert!(e.contains(w), "`{e}` does not say `{w}`");
        }
    }
    refused("not json", &["not JSON", "line 1"]);
    refused("42", &["a JSON number"]);
    refused("[1]", &["entry 0", "a JSON number"]);
    refused(r#"{"hello": "world"}"#, &["entry 0", "none of the keys", "class_uid"]);
    refused(r#"{"Findings": {}}"#, &["`Findings` is not an array"]);
    refused(r#"{"Findings": [{"class_uid": 2004}]}"#, &["holds ASFF findings"]);
    refused(r#"[{"class_uid": 2004, "SchemaVersion": "2018-10-08", "ProductArn": "x"}]"#, &["more than one format"]);
    let mixed = format!(
        "[{}, {}]",
        prowler_with(|_| {}).trim_matches(['[', ']']),
        r#"{"SchemaVersion": "1", "ProductArn": "x"}"#
    );
    refused(&mixed, &["entry 0 is prowler-ocsf but entry 1 is asff"]);
    // Nested deeper than the parser follows: an error, not a stack overflow.
    refused(&format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)), &["not JSON"]);
    // Too large and too many: refused before anything is read.
    let small = ReadOptions { max_bytes: 100, max_entries: 10 };
    let e = read_findings(&" ".repeat(101), None, &small).unwrap_err();
    assert!(matches!(e, ReadError::TooLarge { size: 101, limit: 100 }), "{e}");
    let many = format!("[{}{{}}]", "{},".repeat(ReadOptions::default().max_entries));
    let e = read(&many).unwrap_err();
    assert!(matches!(e, ReadError::TooManyEntries { count: 200_001, .. }), "{e}");
}

#[test]
fn other_classes_and_empty_documents() {
    let doc = read(r#"[{"class_uid": 3002, "metadata": {"product": {"name": "Okta"}}}]"#).unwrap();
    check(&doc, "", &[Want::Not("unsupported", &["class_uid 3002"])]);
    let empty = read("[]").unwrap();
    assert_eq!((empty.format, empty.entries.len()), (None, 0));
    let own = json!({"id": "F-1", "source": "scanner", "control_id": "CIS-1.2", "severity": "high", "title": "t",
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"}});
    assert!(is_own_finding(&own.to_string()));
    assert!(!is_own_finding(PROWLER));
    let doc = read(&json!([own, {"suggested_kind": 1}]).to_string()).unwrap();
    assert_eq!(doc.format, Some(DocumentFormat::Finding));
    assert!(
        matches!(&doc.entries[0].outcome, EntryOutcome::Finding(f) if **f == serde_json::from_value::<Finding>(own.clone()).unwrap())
    );
    assert_eq!(doc.entries[1].outcome.label(), "invalid");
}

#[test]
fn json_lines_read_as_the_array_of_their_lines() {
    let all: Value = serde_json::from_str(PROWLER).unwrap();
    let lines: Vec<String> = all.as_array().unwrap().iter().map(Value::to_string).collect();
    let jsonl = lines.join("\n") + "\n";
    assert_eq!(read(&jsonl).unwrap(), read(PROWLER).unwrap(), "JSON Lines and the array are one document");
    // A bad line is named by its line number.
    let broken = format!("{}\n{{\"class_uid\": 2004,\n{}\n", lines[0], lines[1]);
    let e = read(&broken).unwrap_err();
    assert!(matches!(e, ReadError::NotJson { line: 3, .. }), "{e:?}");
    // One value stays one value: a single finding is not an array of one.
    assert_eq!(parse_stream(&lines[0]).unwrap(), all[0]);
}
