//! Cloud posture end to end: scanner findings (Prowler OCSF, Security Hub ASFF) about
//! resources created on moto become actions on the `aws` connector; each is approved, executed,
//! read back from moto, and rolled back with a second person's approval. A resource changed by
//! hand is never overwritten: not by an execution whose plan no longer matches, and not by a
//! rollback.
//!
//! Every test creates its own uniquely named resources, so the tests run in parallel against
//! one moto server (`REMEDIATION_TEST_MOTO`, started by `.ci/setup-moto.sh`).

use remediation_e2e::Env;
use serde_json::Value;

/// The path of a findings fixture.
pub(crate) fn fixture(name: &str) -> String {
    format!("{}/fixtures/findings/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What became of each entry of a `suggest --finding` reply.
pub(crate) fn labels(reply: &Value) -> Vec<String> {
    let entries = reply["entries"].as_array().unwrap_or_else(|| panic!("no entries: {reply}"));
    entries.iter().map(|e| e["intake"].as_str().unwrap_or("?").to_owned()).collect()
}

/// One request to moto at `addr` (`host:port`), routed to `service` by the credential scope of
/// an `Authorization` header (moto accepts any credentials), with `headers` and `body`; the
/// status and the body.
pub(crate) fn moto_request(
    addr: &str,
    method: &str,
    path: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to moto {addr}: {e}"));
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("moto test setup");
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAE2E/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
    );
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("moto test setup");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("moto test setup");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// A request without a body (S3's REST API).
pub(crate) fn moto(addr: &str, method: &str, path: &str, service: &str) -> (u16, String) {
    moto_request(addr, method, path, service, &[], "")
}

/// An S3 PUT of an XML document (`?encryption`, `?publicAccessBlock`), asserted to succeed.
fn moto_put_xml(addr: &str, path: &str, xml: &str) {
    let (status, body) = moto_request(addr, "PUT", path, "s3", &[("Content-Type", "application/xml")], xml);
    assert_eq!(status, 200, "PUT {path}: {body}");
}

/// A Query API call (EC2, RDS): `POST /` with the form `params` (already URL-encoded),
/// `Action` and `Version` first; asserted to succeed, the answer's body.
pub(crate) fn moto_query(addr: &str, service: &str, version: &str, action: &str, params: &str) -> String {
    let form = format!("Action={action}&Version={version}&{params}");
    let headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")];
    let (status, body) = moto_request(addr, "POST", "/", service, &headers, &form);
    assert_eq!(status, 200, "{action} {params}: {body}");
    body
}

fn ec2(addr: &str, action: &str, params: &str) -> String {
    moto_query(addr, "ec2", "2016-11-15", action, params)
}

fn rds(addr: &str, action: &str, params: &str) -> String {
    moto_query(addr, "rds", "2014-10-31", action, params)
}

/// A KMS JSON API call (`X-Amz-Target: TrentService.<op>`), asserted to succeed, its answer.
fn kms(addr: &str, op: &str, request: &Value) -> Value {
    let target = format!("TrentService.{op}");
    let headers = [("X-Amz-Target", target.as_str()), ("Content-Type", "application/x-amz-json-1.1")];
    let (status, body) = moto_request(addr, "POST", "/", "kms", &headers, &request.to_string());
    assert_eq!(status, 200, "{op}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{op} answered {body}: {e}"))
}

/// A new KMS key on moto: its ARN.
fn kms_key(addr: &str) -> String {
    let key = kms(addr, "CreateKey", &serde_json::json!({"Description": "remediation e2e posture"}));
    key["KeyMetadata"]["Arn"].as_str().unwrap_or_else(|| panic!("no key ARN: {key}")).to_owned()
}

/// The text of the first `<tag>` in `xml`.
pub(crate) fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// The moto server the test runs against, or `None` (the test is skipped; a failure under CI).
pub(crate) struct Moto {
    /// `http://host:port`.
    pub(crate) url: String,
    /// `host:port`.
    pub(crate) addr: String,
}

impl Moto {
    pub(crate) fn require(test: &str) -> Option<Self> {
        let url = remediation_testkit::real_server::require(test, "REMEDIATION_TEST_MOTO", "run .ci/setup-moto.sh")?;
        let addr = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        Some(Self { url, addr })
    }
}

/// A name no other test (nor another run against the same moto) uses: `prefix`, the time and a
/// counter; lowercase letters, digits and hyphens.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("moto test setup").as_nanos();
    format!("{prefix}-{:x}-{n}", nanos & 0xffff_ffff_ffff)
}

/// An enabled installation whose `aws` connector talks to moto at `url`, with `extra` lines
/// added to the connector's table. `local:root` is an admin: the second person a rollback
/// waits for.
pub(crate) fn aws_env(url: &str, extra: &str) -> Env {
    let env = Env::new();
    env.init_enabled();
    let secret = env.dir().join("aws-secret");
    std::fs::write(&secret, "moto-accepts-any-secret").expect("moto test setup");
    env.edit_config(|t| {
        let t = t.replace("[actors.roles]\n", "[actors.roles]\n\"local:root\" = \"admin\"\n");
        // The harness runs remediate with USER set: moto takes any access key id.
        format!(
            "{t}\n[[connectors]]\ntype = \"aws\"\nid = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = {url:?}\naccess_key_id_env = \"USER\"\nsecret_access_key_file = {:?}\n{extra}",
            secret.display().to_string()
        )
    });
    env
}

/// The Prowler fixture's entry for `check`, rewritten to name the resource `arn` (`name`).
pub(crate) fn prowler_entry(check: &str, arn: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(fixture("prowler-ocsf.json")).expect("moto test setup");
    let entries: Value = serde_json::from_str(&text).expect("moto test setup");
    let mut entry = entries
        .as_array()
        .expect("moto test setup")
        .iter()
        .find(|e| e["metadata"]["event_code"] == check)
        .unwrap_or_else(|| panic!("the Prowler fixture has no {check}"))
        .clone();
    entry["resources"][0]["uid"] = arn.into();
    entry["resources"][0]["name"] = name.into();
    entry["resources"][0]["region"] = "us-east-1".into();
    entry["resources"][0]["data"]["metadata"]["name"] = name.into();
    entry["finding_info"]["uid"] = format!("prowler-aws-{check}-123456789012-us-east-1-{name}").into();
    Value::Array(vec![entry])
}

/// The Security Hub fixture's finding whose `Id` contains `control` (`/S3.8/`), rewritten to
/// name the resource `arn`, as a `GetFindings` answer.
pub(crate) fn asff_finding(control: &str, arn: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(fixture("securityhub-asff.json")).expect("moto test setup");
    let doc: Value = serde_json::from_str(&text).expect("moto test setup");
    let mut finding = doc["Findings"]
        .as_array()
        .expect("moto test setup")
        .iter()
        .find(|f| f["Id"].as_str().is_some_and(|id| id.contains(control)))
        .unwrap_or_else(|| panic!("the Security Hub fixture has no {control}"))
        .clone();
    let id = finding["Id"].as_str().expect("moto test setup");
    let (head, _) = id.rsplit_once("/finding/").expect("moto test setup");
    finding["Id"] = format!("{head}/finding/{name}").into();
    finding["Resources"][0]["Id"] = arn.into();
    finding["Resources"][0]["Region"] = "us-east-1".into();
    finding["ProductFields"]["Resources:0/Id"] = arn.into();
    serde_json::json!({"Findings": [finding], "NextToken": null})
}

/// Writes `doc` beside the installation's data; its path.
pub(crate) fn write_doc(env: &Env, name: &str, doc: &Value) -> String {
    let path = env.dir().join(name);
    std::fs::write(&path, doc.to_string()).expect("moto test setup");
    path.display().to_string()
}

/// `suggest --finding doc` as alice: exactly one action created; its id and `show` as JSON.
pub(crate) fn suggest_one(env: &Env, doc: &str) -> (String, Value) {
    let reply = env.expect("local:alice", &["suggest", "--finding", doc, "--output", "json"], 0).json();
    assert_eq!(labels(&reply), ["created"], "{reply}");
    let id = reply["entries"][0]["action"]["id"].as_str().unwrap_or_else(|| panic!("an action: {reply}")).to_owned();
    let shown = env.expect("local:bob", &["show", &id, "--output", "json"], 0).json();
    (id, shown)
}

pub(crate) fn state(env: &Env, id: &str) -> Value {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["action"]["state"].clone()
}

/// Approves (bob) and executes (bob) `id`: completed.
pub(crate) fn approve_and_execute(env: &Env, id: &str) {
    env.expect("local:bob", &["approve", id], 0);
    let done = env.expect("local:bob", &["execute", id, "--output", "json"], 0).json();
    assert_eq!(done["outcome"], "completed", "{done}");
}

/// Rolls `id` back the way a person must: bob asks (nothing happens yet, exit 3), `local:root`
/// approves and the rollback runs.
pub(crate) fn two_person_rollback(env: &Env, id: &str, unchanged: impl Fn()) {
    let asked = env.expect("local:bob", &["rollback", id, "--output", "json"], 3).json();
    assert_eq!(asked["outcome"], "rollback_requested", "{asked}");
    unchanged();
    env.expect("local:root", &["approve", id], 0);
    assert_eq!(state(env, id), "rolled_back");
}

const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

fn sse_s3() -> String {
    format!(
        r#"<ServerSideEncryptionConfiguration xmlns="{S3_NS}"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#
    )
}

fn sse_kms(key: &str) -> String {
    format!(
        r#"<ServerSideEncryptionConfiguration xmlns="{S3_NS}"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>{key}</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#
    )
}

/// A new bucket on moto with SSE-S3 default encryption (what AWS gives every new bucket).
fn bucket_with_sse_s3(m: &Moto) -> String {
    let bucket = unique("e2e-posture");
    assert_eq!(moto(&m.addr, "PUT", &format!("/{bucket}"), "s3").0, 200, "create bucket {bucket}");
    moto_put_xml(&m.addr, &format!("/{bucket}?encryption"), &sse_s3());
    bucket
}

/// Prowler `s3_bucket_default_encryption` on a bucket encrypted with SSE-S3: executed, the
/// bucket's default encryption is SSE-KMS with the key configured as `s3_kms_key_id` and S3
/// Bucket Keys on; the rollback waits for a second person and then restores the SSE-S3
/// configuration exactly as moto reported it before.
#[test]
fn prowler_default_encryption_sets_the_configured_kms_key_and_rolls_back() {
    let Some(m) = Moto::require("prowler_default_encryption_sets_the_configured_kms_key_and_rolls_back") else {
        return;
    };
    let key = kms_key(&m.addr);
    let bucket = bucket_with_sse_s3(&m);
    let encryption = || moto(&m.addr, "GET", &format!("/{bucket}?encryption"), "s3");
    let (status, before) = encryption();
    assert_eq!(status, 200, "{before}");
    assert_eq!(xml_text(&before, "SSEAlgorithm"), Some("AES256"), "{before}");

    let env = aws_env(&m.url, &format!("s3_kms_key_id = {key:?}\n"));
    let doc = prowler_entry("s3_bucket_default_encryption", &format!("arn:aws:s3:::{bucket}"), &bucket);
    let doc = write_doc(&env, "prowler.ocsf.json", &doc);
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["kind"]["setting"], "s3_default_encryption", "{shown}");
    assert_eq!(shown["action"]["kind"]["value"], "default", "{shown}");
    assert_eq!(shown["action"]["target"]["identity"], bucket.as_str(), "{shown}");
    assert_eq!(encryption().1, before, "suggesting writes nothing");

    approve_and_execute(&env, &id);
    let (status, after) = encryption();
    assert_eq!(status, 200, "{after}");
    assert_eq!(xml_text(&after, "SSEAlgorithm"), Some("aws:kms"), "{after}");
    assert_eq!(xml_text(&after, "KMSMasterKeyID"), Some(key.as_str()), "{after}");
    assert_eq!(xml_text(&after, "BucketKeyEnabled"), Some("true"), "{after}");

    two_person_rollback(&env, &id, || assert_eq!(encryption().1, after, "one person's request restores nothing"));
    assert_eq!(encryption(), (200, before), "the SSE-S3 configuration is back exactly");
}

/// Security Hub S3.8 (a consolidated control finding) on a bucket blocking only public ACLs:
/// executed, all four public access block flags are on; rolled back (two persons), the
/// bucket's own partial configuration is back flag for flag, not deleted and not left on.
#[test]
fn asff_s3_8_blocks_public_access_and_rolls_back_to_the_partial_block() {
    let Some(m) = Moto::require("asff_s3_8_blocks_public_access_and_rolls_back_to_the_partial_block") else {
        return;
    };
    let bucket = unique("e2e-posture");
    assert_eq!(moto(&m.addr, "PUT", &format!("/{bucket}"), "s3").0, 200, "create bucket {bucket}");
    moto_put_xml(
        &m.addr,
        &format!("/{bucket}?publicAccessBlock"),
        &format!(
            r#"<PublicAccessBlockConfiguration xmlns="{S3_NS}"><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlockConfiguration>"#
        ),
    );
    let block = || moto(&m.addr, "GET", &format!("/{bucket}?publicAccessBlock"), "s3");
    let (status, before) = block();
    assert_eq!(status, 200, "{before}");
    assert_eq!(xml_text(&before, "BlockPublicPolicy"), Some("false"), "{before}");

    let env = aws_env(&m.url, "");
    let doc = asff_finding("/S3.8/", &format!("arn:aws:s3:::{bucket}"), &bucket);
    let doc = write_doc(&env, "securityhub.json", &doc);
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["kind"]["setting"], "s3_public_access_block", "{shown}");
    assert_eq!(shown["action"]["target"]["identity"], bucket.as_str(), "{shown}");

    approve_and_execute(&env, &id);
    let (status, after) = block();
    assert_eq!(status, 200, "{after}");
    for flag in ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"] {
        assert_eq!(xml_text(&after, flag), Some("true"), "{flag} on: {after}");
    }

    two_person_rollback(&env, &id, || assert_eq!(block().1, after, "one person's request restores nothing"));
    assert_eq!(block(), (200, before), "the bucket's own partial block is back");
}

/// A new security group on moto whose tcp/22 is open to the world (with a description) and to
/// 10.0.0.0/8; its id.
fn open_security_group(m: &Moto) -> String {
    let name = unique("e2e-posture");
    let created = ec2(&m.addr, "CreateSecurityGroup", &format!("GroupName={name}&GroupDescription=e2e+posture"));
    let group = xml_text(&created, "groupId").unwrap_or_else(|| panic!("no group id: {created}")).to_owned();
    ec2(
        &m.addr,
        "AuthorizeSecurityGroupIngress",
        &format!(
            "GroupId={group}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
             &IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.IpRanges.1.Description=ssh+from+anywhere\
             &IpPermissions.1.IpRanges.2.CidrIp=10.0.0.0%2F8&IpPermissions.1.IpRanges.2.Description=office"
        ),
    );
    group
}

/// The tcp/22 ingress ranges of `group` as (cidr, description), sorted.
fn ssh_ranges(m: &Moto, group: &str) -> Vec<(String, String)> {
    let body = ec2(&m.addr, "DescribeSecurityGroups", &format!("GroupId.1={group}"));
    let ingress = body.split("<ipPermissionsEgress>").next().unwrap_or_default().to_owned()
        + body.split("</ipPermissionsEgress>").nth(1).unwrap_or_default();
    let mut out = Vec::new();
    // One <item> per permission under <ipPermissions>; the ranges are nested <item>s.
    for perm in ingress.split("<ipProtocol>").skip(1) {
        let is_ssh = perm.starts_with("tcp<")
            && xml_text(perm, "fromPort") == Some("22")
            && xml_text(perm, "toPort") == Some("22");
        if !is_ssh {
            continue;
        }
        let ranges = perm.split("<ipRanges>").nth(1).and_then(|r| r.split("</ipRanges>").next()).unwrap_or_default();
        for item in ranges.split("<item>").skip(1) {
            let cidr = xml_text(item, "cidrIp").unwrap_or_default().to_owned();
            out.push((cidr, xml_text(item, "description").unwrap_or_default().to_owned()));
        }
        let v6 = perm.split("<ipv6Ranges>").nth(1).and_then(|r| r.split("</ipv6Ranges>").next()).unwrap_or_default();
        for item in v6.split("<item>").skip(1) {
            let cidr = xml_text(item, "cidrIpv6").unwrap_or_default().to_owned();
            out.push((cidr, xml_text(item, "description").unwrap_or_default().to_owned()));
        }
    }
    out.sort();
    out
}

fn ranges(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list.iter().map(|(c, d)| ((*c).to_owned(), (*d).to_owned())).collect();
    out.sort();
    out
}

/// Prowler `ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22`: executed, the
/// world-open tcp/22 range is revoked and the private range kept; rolled back (two persons),
/// the world-open range is authorised again with its description.
#[test]
fn prowler_open_ssh_is_revoked_and_rolled_back_with_its_description() {
    let Some(m) = Moto::require("prowler_open_ssh_is_revoked_and_rolled_back_with_its_description") else {
        return;
    };
    let group = open_security_group(&m);
    let before = ranges(&[("0.0.0.0/0", "ssh from anywhere"), ("10.0.0.0/8", "office")]);
    assert_eq!(ssh_ranges(&m, &group), before);

    let env = aws_env(&m.url, "");
    let arn = format!("arn:aws:ec2:us-east-1:123456789012:security-group/{group}");
    let doc = prowler_entry("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", &arn, &group);
    let doc = write_doc(&env, "prowler.ocsf.json", &doc);
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["kind"]["type"], "revoke", "{shown}");
    assert_eq!(shown["action"]["target"]["identity"], group.as_str(), "{shown}");
    assert_eq!(shown["action"]["target"]["grant"], "tcp:22-22", "{shown}");
    assert_eq!(shown["action"]["target"]["grant_type"], "security_group_ingress", "{shown}");

    approve_and_execute(&env, &id);
    let after = ranges(&[("10.0.0.0/8", "office")]);
    assert_eq!(ssh_ranges(&m, &group), after, "no world-open 22; the private range stays");

    two_person_rollback(&env, &id, || assert_eq!(ssh_ranges(&m, &group), after));
    assert_eq!(ssh_ranges(&m, &group), before, "the world-open range is back with its description");
}

/// A new DB instance on moto without automated backups (retention 0); its identifier.
fn db_without_backups(m: &Moto) -> String {
    let db = unique("e2e-posture");
    rds(
        &m.addr,
        "CreateDBInstance",
        &format!(
            "DBInstanceIdentifier={db}&DBInstanceClass=db.t3.micro&Engine=postgres&AllocatedStorage=20\
             &MasterUsername=e2eadmin&MasterUserPassword=e2e-password-1&BackupRetentionPeriod=0"
        ),
    );
    db
}

fn retention(m: &Moto, db: &str) -> Option<String> {
    let body = rds(&m.addr, "DescribeDBInstances", &format!("DBInstanceIdentifier={db}"));
    xml_text(&body, "BackupRetentionPeriod").map(str::to_owned)
}

/// Prowler `rds_instance_backup_enabled` and Security Hub RDS.11, each on its own instance
/// with retention 0: the plan says the change is lossy; executed, the retention is the
/// configured `rds_backup_retention_days` (9, not the built-in 7); rolled back (two persons),
/// it is 0 again.
#[test]
fn rds_backup_findings_set_the_configured_retention_and_roll_back_to_zero() {
    let Some(m) = Moto::require("rds_backup_findings_set_the_configured_retention_and_roll_back_to_zero") else {
        return;
    };
    let env = aws_env(&m.url, "rds_backup_retention_days = 9\n");
    for scanner in ["prowler", "securityhub"] {
        let db = db_without_backups(&m);
        assert_eq!(retention(&m, &db).as_deref(), Some("0"));
        let arn = format!("arn:aws:rds:us-east-1:123456789012:db:{db}");
        let doc = match scanner {
            "prowler" => prowler_entry("rds_instance_backup_enabled", &arn, &db),
            _ => asff_finding("/RDS.11/", &arn, &db),
        };
        let doc = write_doc(&env, &format!("{scanner}.json"), &doc);
        let (id, shown) = suggest_one(&env, &doc);
        assert_eq!(shown["action"]["kind"]["setting"], "rds_backup_retention_days", "{scanner}: {shown}");
        // The whole ARN: an identifier is unique only within a region and an account.
        assert_eq!(shown["action"]["target"]["identity"], arn.as_str(), "{scanner}: {shown}");
        assert_eq!(shown["plan"]["reversibility"], "lossy", "{scanner}: {shown}");
        let description = shown["plan"]["description"].as_str().unwrap_or_default();
        assert!(description.contains("Lossy") && description.contains("to 9 day(s)"), "{scanner}: {shown}");

        approve_and_execute(&env, &id);
        assert_eq!(retention(&m, &db).as_deref(), Some("9"), "{scanner}: the configured retention");
        two_person_rollback(&env, &id, || assert_eq!(retention(&m, &db).as_deref(), Some("9")));
        assert_eq!(retention(&m, &db).as_deref(), Some("0"), "{scanner}: no automated backups again");
    }
}

/// A finding about a DB instance of the same name in another region, or another account, is
/// not about this one: intake fails it as not found, and nothing is planned or changed.
#[test]
fn a_finding_about_another_regions_namesake_changes_nothing() {
    let Some(m) = Moto::require("a_finding_about_another_regions_namesake_changes_nothing") else {
        return;
    };
    let env = aws_env(&m.url, "");
    let db = db_without_backups(&m);
    for arn in
        [format!("arn:aws:rds:eu-west-1:123456789012:db:{db}"), format!("arn:aws:rds:us-east-1:999999999999:db:{db}")]
    {
        let doc = write_doc(&env, "namesake.json", &prowler_entry("rds_instance_backup_enabled", &arn, &db));
        let reply = env.expect("local:alice", &["suggest", "--finding", &doc, "--output", "json"], 3).json();
        assert_eq!(labels(&reply), ["failed"], "{arn}: {reply}");
        let reason = reply["entries"][0]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("no DB instance has the ARN"), "{arn}: {reply}");
    }
    assert_eq!(retention(&m, &db).as_deref(), Some("0"));
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

/// Drift on an S3 bucket, from the older standard-specific Security Hub S3.4 finding. Before
/// execution: the bucket's encryption changed after the approval, so the execution writes
/// nothing, voids the approval and returns the action for a new one. After execution: someone
/// put another KMS key on the bucket between the rollback request and its approval, so the
/// approved rollback is refused, names the change, and leaves that key in place.
#[test]
fn s3_encryption_changed_by_hand_is_never_overwritten() {
    let Some(m) = Moto::require("s3_encryption_changed_by_hand_is_never_overwritten") else {
        return;
    };
    let key = kms_key(&m.addr);
    let other_key = kms_key(&m.addr);
    let bucket = unique("e2e-posture");
    assert_eq!(moto(&m.addr, "PUT", &format!("/{bucket}"), "s3").0, 200, "create bucket {bucket}");
    let encryption = || moto(&m.addr, "GET", &format!("/{bucket}?encryption"), "s3");
    assert_eq!(encryption().0, 404, "no default encryption yet: {}", encryption().1);

    let env = aws_env(&m.url, &format!("s3_kms_key_id = {key:?}\n"));
    let doc = asff_finding("/S3.4/", &format!("arn:aws:s3:::{bucket}"), &bucket);
    let doc = write_doc(&env, "securityhub.json", &doc);
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["kind"]["setting"], "s3_default_encryption", "{shown}");
    env.expect("local:bob", &["approve", &id], 0);

    // Changed between approval and execution: the plan no longer matches what was approved.
    moto_put_xml(&m.addr, &format!("/{bucket}?encryption"), &sse_s3());
    let by_hand = encryption();
    let run = env.expect("local:bob", &["execute", &id, "--output", "json"], 3);
    let reply = run.json();
    assert_eq!(reply["outcome"], "plan_changed", "{reply}");
    assert_eq!(reply["changes"][0]["path"], "/before/default_encryption", "the change is named: {reply}");
    assert_eq!(reply["changes"][0]["right"][0]["sse_algorithm"], "AES256", "{reply}");
    assert_eq!(encryption(), by_hand, "nothing written");
    assert_eq!(state(&env, &id), "pending_approval", "the approval is void");

    // Approved again on the new plan, it runs.
    approve_and_execute(&env, &id);
    let after = encryption().1;
    assert_eq!(xml_text(&after, "KMSMasterKeyID"), Some(key.as_str()), "{after}");

    // Changed after the rollback was asked for and before it was approved: the approved
    // rollback must not put "no encryption" back over someone's key.
    env.expect("local:bob", &["rollback", &id], 3);
    moto_put_xml(&m.addr, &format!("/{bucket}?encryption"), &sse_kms(&other_key));
    let changed = encryption();
    let refused = env.expect("local:root", &["approve", &id], 3);
    assert!(refused.stderr.contains("refused by drift: the target changed since execution"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&other_key), "the change is named: {}", refused.stderr);
    assert_eq!(encryption(), changed, "the key put by hand stays");
    assert_eq!(state(&env, &id), "rollback_requested", "nothing ran");
}

/// Drift on a security group: after the world-open tcp/22 range was revoked, someone opened
/// it again by hand with another description; asking for the rollback is refused at once (for
/// an approver and an admin alike), the refusal names the change, and the group keeps exactly
/// the rule put by hand (no second world-open rule, its description unchanged).
#[test]
fn an_ssh_rule_reopened_by_hand_is_not_touched_by_a_rollback() {
    let Some(m) = Moto::require("an_ssh_rule_reopened_by_hand_is_not_touched_by_a_rollback") else {
        return;
    };
    let group = open_security_group(&m);
    let env = aws_env(&m.url, "");
    let arn = format!("arn:aws:ec2:us-east-1:123456789012:security-group/{group}");
    let doc = prowler_entry("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", &arn, &group);
    let doc = write_doc(&env, "prowler.ocsf.json", &doc);
    let (id, _) = suggest_one(&env, &doc);
    approve_and_execute(&env, &id);
    assert_eq!(ssh_ranges(&m, &group), ranges(&[("10.0.0.0/8", "office")]));

    ec2(
        &m.addr,
        "AuthorizeSecurityGroupIngress",
        &format!(
            "GroupId={group}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
             &IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0&IpPermissions.1.IpRanges.1.Description=reopened+by+hand"
        ),
    );
    let by_hand = ranges(&[("0.0.0.0/0", "reopened by hand"), ("10.0.0.0/8", "office")]);
    assert_eq!(ssh_ranges(&m, &group), by_hand);
    // Refused as soon as it is asked for, before a second person is involved.
    let refused = env.expect("local:bob", &["rollback", &id], 3);
    assert!(refused.stderr.contains("refused by drift: the target changed since execution"), "{}", refused.stderr);
    assert!(refused.stderr.contains("reopened by hand"), "the change is named: {}", refused.stderr);
    assert_eq!(ssh_ranges(&m, &group), by_hand, "the rule put by hand is left as it is");
    assert_eq!(state(&env, &id), "completed", "nothing ran");
    // An admin is refused the same way.
    let refused = env.expect("local:root", &["rollback", &id], 3);
    assert!(refused.stderr.contains("refused by drift: the target changed since execution"), "{}", refused.stderr);
    assert_eq!(ssh_ranges(&m, &group), by_hand);
}

/// Drift before execution on a security group: after the approval, someone also opened tcp/22
/// to `::/0`; the execution revokes nothing and voids the approval. Approved again, the
/// execution revokes both world-open ranges (IPv4 and IPv6) and the rollback (two persons)
/// authorises both again, each with its description.
#[test]
fn an_ssh_range_opened_after_approval_voids_it_and_both_ranges_round_trip() {
    let Some(m) = Moto::require("an_ssh_range_opened_after_approval_voids_it_and_both_ranges_round_trip") else {
        return;
    };
    let group = open_security_group(&m);
    let env = aws_env(&m.url, "");
    let arn = format!("arn:aws:ec2:us-east-1:123456789012:security-group/{group}");
    let doc = prowler_entry("ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22", &arn, &group);
    let doc = write_doc(&env, "prowler.ocsf.json", &doc);
    let (id, _) = suggest_one(&env, &doc);
    env.expect("local:bob", &["approve", &id], 0);

    ec2(
        &m.addr,
        "AuthorizeSecurityGroupIngress",
        &format!(
            "GroupId={group}&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
             &IpPermissions.1.Ipv6Ranges.1.CidrIpv6=%3A%3A%2F0&IpPermissions.1.Ipv6Ranges.1.Description=v6+by+hand"
        ),
    );
    let before = ranges(&[("0.0.0.0/0", "ssh from anywhere"), ("10.0.0.0/8", "office"), ("::/0", "v6 by hand")]);
    assert_eq!(ssh_ranges(&m, &group), before);
    let reply = env.expect("local:bob", &["execute", &id, "--output", "json"], 3).json();
    assert_eq!(reply["outcome"], "plan_changed", "{reply}");
    assert!(reply["changes"].to_string().contains("v6 by hand"), "the change is named: {reply}");
    assert_eq!(ssh_ranges(&m, &group), before, "nothing revoked");
    assert_eq!(state(&env, &id), "pending_approval", "the approval is void");

    approve_and_execute(&env, &id);
    let after = ranges(&[("10.0.0.0/8", "office")]);
    assert_eq!(ssh_ranges(&m, &group), after, "neither world-open range is left");
    two_person_rollback(&env, &id, || assert_eq!(ssh_ranges(&m, &group), after));
    assert_eq!(ssh_ranges(&m, &group), before, "both ranges are back with their descriptions");
}

/// Drift after execution on a DB instance: someone set the retention to 3 days by hand; the
/// rollback to 0 (which would delete the backups taken meanwhile on real RDS) is refused when
/// asked for, names the change, and the instance keeps 3 days.
#[test]
fn a_retention_changed_by_hand_is_not_rolled_back_to_zero() {
    let Some(m) = Moto::require("a_retention_changed_by_hand_is_not_rolled_back_to_zero") else {
        return;
    };
    let db = db_without_backups(&m);
    let env = aws_env(&m.url, "");
    let doc = prowler_entry("rds_instance_backup_enabled", &format!("arn:aws:rds:us-east-1:123456789012:db:{db}"), &db);
    let doc = write_doc(&env, "prowler.ocsf.json", &doc);
    let (id, _) = suggest_one(&env, &doc);
    approve_and_execute(&env, &id);
    assert_eq!(retention(&m, &db).as_deref(), Some("7"), "the built-in default");

    rds(
        &m.addr,
        "ModifyDBInstance",
        &format!("DBInstanceIdentifier={db}&BackupRetentionPeriod=3&ApplyImmediately=true"),
    );
    let refused = env.expect("local:bob", &["rollback", &id], 3);
    assert!(refused.stderr.contains("refused by drift: the target changed since execution"), "{}", refused.stderr);
    assert!(refused.stderr.contains("/backup_retention_days: 7 -> 3"), "the change is named: {}", refused.stderr);
    assert_eq!(retention(&m, &db).as_deref(), Some("3"), "the retention set by hand stays");
    assert_eq!(state(&env, &id), "completed", "nothing ran");
}
