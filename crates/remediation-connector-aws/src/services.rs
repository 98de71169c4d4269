//! The S3, EC2, RDS and CloudFront calls, each built from validated parts, and the parsing of
//! their answers into the connector's normalised state.

use base64::Engine as _;
use remediation_core::ConnectorError;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::target::Permission;
use crate::transport::{AwsRequest, Service, Transport};
use crate::xml::{Element, escape};

/// EC2's Query API version (botocore `ec2/2016-11-15`).
const EC2_VERSION: &str = "2016-11-15";
/// RDS's Query API version (botocore `rds/2014-10-31`).
const RDS_VERSION: &str = "2014-10-31";
/// IAM's Query API version (botocore `iam/2010-05-08`).
const IAM_VERSION: &str = "2010-05-08";
/// STS's Query API version (botocore `sts/2011-06-15`).
const STS_VERSION: &str = "2011-06-15";
/// The S3 XML namespace.
const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// Pages read at most from one listing before refusing to decide on a partial answer.
pub(crate) const MAX_PAGES: u32 = 100;

/// Where requests go: AWS's regional endpoints, or one custom endpoint for every service.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) custom: Option<url::Url>,
    pub(crate) region: String,
}

fn bad_url(_: url::ParseError) -> ConnectorError {
    ConnectorError::permanent("cannot build the endpoint URL")
}

impl Endpoints {
    /// The URL of a bucket's subresource (`?encryption`), or of the service root without a
    /// bucket. Virtual-hosted style on AWS for names without dots, path style otherwise and on
    /// a custom endpoint.
    fn s3(&self, bucket: Option<&str>, subresource: Option<&str>) -> Result<url::Url, ConnectorError> {
        let mut url = match (&self.custom, bucket) {
            (Some(base), Some(b)) => {
                let mut url = base.clone();
                url.path_segments_mut()
                    .map_err(|()| ConnectorError::permanent("the endpoint URL cannot take a path"))?
                    .pop_if_empty()
                    .push(b);
                url
            }
            (Some(base), None) => base.clone(),
            (None, Some(b)) if !b.contains('.') => {
                url::Url::parse(&format!("https://{b}.s3.{}.amazonaws.com/", self.region)).map_err(bad_url)?
            }
            (None, Some(b)) => {
                let mut url =
                    url::Url::parse(&format!("https://s3.{}.amazonaws.com/", self.region)).map_err(bad_url)?;
                url.path_segments_mut()
                    .map_err(|()| ConnectorError::permanent("the endpoint URL cannot take a path"))?
                    .pop_if_empty()
                    .push(b);
                url
            }
            (None, None) => url::Url::parse(&format!("https://s3.{}.amazonaws.com/", self.region)).map_err(bad_url)?,
        };
        url.set_query(subresource);
        Ok(url)
    }

    /// The endpoint of a Query API or JSON service: the custom one, or AWS's (regional, but
    /// IAM's global endpoint in the `aws` partition).
    pub(crate) fn query(&self, service: Service) -> Result<url::Url, ConnectorError> {
        match &self.custom {
            Some(base) => Ok(base.clone()),
            None => {
                let host = match service {
                    Service::Iam => return url::Url::parse("https://iam.amazonaws.com/").map_err(bad_url),
                    Service::Ec2 => "ec2",
                    Service::Rds => "rds",
                    Service::Sts => "sts",
                    Service::SecretsManager => "secretsmanager",
                    Service::S3 | Service::CloudFront => {
                        return Err(ConnectorError::permanent("S3 and CloudFront are not Query API services"));
                    }
                };
                url::Url::parse(&format!("https://{host}.{}.amazonaws.com/", self.region)).map_err(bad_url)
            }
        }
    }

    fn cloudfront(&self, marker: Option<&str>) -> Result<url::Url, ConnectorError> {
        let mut url = match &self.custom {
            Some(base) => {
                let mut url = base.clone();
                url.path_segments_mut()
                    .map_err(|()| ConnectorError::permanent("the endpoint URL cannot take a path"))?
                    .pop_if_empty()
                    .extend(["2020-05-31", "distribution"]);
                url
            }
            None => url::Url::parse("https://cloudfront.amazonaws.com/2020-05-31/distribution").map_err(bad_url)?,
        };
        if let Some(m) = marker {
            url.query_pairs_mut().append_pair("Marker", m);
        }
        Ok(url)
    }
}

fn s3_get(op: &'static str, url: url::Url) -> AwsRequest {
    AwsRequest { op, service: Service::S3, method: reqwest::Method::GET, url, headers: Vec::new(), body: Vec::new() }
}

fn s3_put(op: &'static str, url: url::Url, xml: String) -> AwsRequest {
    let body = xml.into_bytes();
    // S3 requires an integrity checksum on these PUTs (Content-MD5 or a flexible checksum).
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
    AwsRequest {
        op,
        service: Service::S3,
        method: reqwest::Method::PUT,
        url,
        headers: vec![("content-type", "application/xml".to_owned()), ("x-amz-checksum-sha256", checksum)],
        body,
    }
}

fn s3_delete(op: &'static str, url: url::Url) -> AwsRequest {
    AwsRequest { op, service: Service::S3, method: reqwest::Method::DELETE, url, headers: Vec::new(), body: Vec::new() }
}

pub(crate) fn query_request(
    e: &Endpoints,
    service: Service,
    op: &'static str,
    params: &[(String, String)],
) -> Result<AwsRequest, ConnectorError> {
    let version = match service {
        Service::Ec2 => EC2_VERSION,
        Service::Iam => IAM_VERSION,
        Service::Sts => STS_VERSION,
        _ => RDS_VERSION,
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", op).append_pair("Version", version);
    for (k, v) in params {
        form.append_pair(k, v);
    }
    Ok(AwsRequest {
        op,
        service,
        method: reqwest::Method::POST,
        url: e.query(service)?,
        headers: vec![("content-type", "application/x-www-form-urlencoded; charset=utf-8".to_owned())],
        body: form.finish().into_bytes(),
    })
}

pub(crate) fn p(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// A bucket's two enforceable settings as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct S3State {
    /// The default encryption rules, or `null` when S3 reports none.
    pub(crate) encryption: Value,
    /// The four public access block flags, or `null` when none is configured.
    pub(crate) public_access_block: Value,
}

impl S3State {
    pub(crate) fn to_value(&self, bucket: &str) -> Value {
        json!({"bucket": bucket, "default_encryption": self.encryption, "public_access_block": self.public_access_block})
    }
}

/// SSE-KMS rules with `key` and S3 Bucket Keys on.
pub(crate) fn kms_rules(key: &str) -> Value {
    json!([{"sse_algorithm": "aws:kms", "kms_master_key_id": key, "bucket_key_enabled": true}])
}

/// All four public access block flags on.
pub(crate) fn all_blocked() -> Value {
    json!({"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true})
}

const PAB_FIELDS: [(&str, &str); 4] = [
    ("block_public_acls", "BlockPublicAcls"),
    ("ignore_public_acls", "IgnorePublicAcls"),
    ("block_public_policy", "BlockPublicPolicy"),
    ("restrict_public_buckets", "RestrictPublicBuckets"),
];

fn flag(text: Option<&str>) -> Value {
    match text {
        Some(t) => json!(t.eq_ignore_ascii_case("true")),
        None => Value::Null,
    }
}

/// Reads a bucket's default encryption and public access block.
pub(crate) async fn read_bucket(t: &Transport, e: &Endpoints, bucket: &str) -> Result<S3State, ConnectorError> {
    let encryption = match t.send_or(&s3_get("GetBucketEncryption", e.s3(Some(bucket), Some("encryption"))?)).await {
        Ok(r) => {
            let root = r.xml()?;
            let rules: Vec<Value> = root
                .all("Rule")
                .map(|rule| {
                    let by_default = rule.child("ApplyServerSideEncryptionByDefault");
                    json!({
                        "sse_algorithm": by_default.and_then(|d| d.text_of("SSEAlgorithm")),
                        "kms_master_key_id": by_default.and_then(|d| d.text_of("KMSMasterKeyID")),
                        "bucket_key_enabled": flag(rule.text_of("BucketKeyEnabled")),
                    })
                })
                .collect();
            Value::Array(rules)
        }
        Err(f) if f.code.as_deref() == Some("ServerSideEncryptionConfigurationNotFoundError") => Value::Null,
        Err(f) => return Err(f.error),
    };
    let pab = match t.send_or(&s3_get("GetPublicAccessBlock", e.s3(Some(bucket), Some("publicAccessBlock"))?)).await {
        Ok(r) => {
            let root = r.xml()?;
            let mut map = serde_json::Map::new();
            for (key, element) in PAB_FIELDS {
                // An absent flag is off (S3 defaults each to false).
                map.insert(
                    key.to_owned(),
                    json!(root.text_of(element).is_some_and(|t| t.eq_ignore_ascii_case("true"))),
                );
            }
            Value::Object(map)
        }
        Err(f) if f.code.as_deref() == Some("NoSuchPublicAccessBlockConfiguration") => Value::Null,
        Err(f) => return Err(f.error),
    };
    Ok(S3State { encryption, public_access_block: pab })
}

fn text_field<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, ConnectorError> {
    match &v[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(ConnectorError::permanent(format!("`{key}` is {other}, not text"))),
    }
}

/// Sets a bucket's default encryption to `rules` (as [`read_bucket`] reads them), or deletes
/// it when `rules` is `null`.
pub(crate) async fn put_encryption(
    t: &Transport,
    e: &Endpoints,
    bucket: &str,
    rules: &Value,
) -> Result<Vec<String>, ConnectorError> {
    let url = e.s3(Some(bucket), Some("encryption"))?;
    let req = match rules {
        Value::Null => s3_delete("DeleteBucketEncryption", url),
        Value::Array(list) => {
            let mut xml = format!(r#"<ServerSideEncryptionConfiguration xmlns="{S3_NS}">"#);
            for rule in list {
                xml.push_str("<Rule><ApplyServerSideEncryptionByDefault>");
                let algorithm = text_field(rule, "sse_algorithm")?
                    .ok_or_else(|| ConnectorError::permanent("an encryption rule has no algorithm"))?;
                xml.push_str(&format!("<SSEAlgorithm>{}</SSEAlgorithm>", escape(algorithm)));
                if let Some(key) = text_field(rule, "kms_master_key_id")? {
                    xml.push_str(&format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", escape(key)));
                }
                xml.push_str("</ApplyServerSideEncryptionByDefault>");
                if let Some(on) = rule["bucket_key_enabled"].as_bool() {
                    xml.push_str(&format!("<BucketKeyEnabled>{on}</BucketKeyEnabled>"));
                }
                xml.push_str("</Rule>");
            }
            xml.push_str("</ServerSideEncryptionConfiguration>");
            s3_put("PutBucketEncryption", url, xml)
        }
        other => return Err(ConnectorError::permanent(format!("{other} is not a list of encryption rules"))),
    };
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}

/// Sets a bucket's four public access block flags, or deletes the configuration when `flags`
/// is `null`.
pub(crate) async fn put_public_access_block(
    t: &Transport,
    e: &Endpoints,
    bucket: &str,
    flags: &Value,
) -> Result<Vec<String>, ConnectorError> {
    let url = e.s3(Some(bucket), Some("publicAccessBlock"))?;
    let req = match flags {
        Value::Null => s3_delete("DeletePublicAccessBlock", url),
        Value::Object(_) => {
            let mut xml = format!(r#"<PublicAccessBlockConfiguration xmlns="{S3_NS}">"#);
            for (key, element) in PAB_FIELDS {
                let on = flags[key]
                    .as_bool()
                    .ok_or_else(|| ConnectorError::permanent(format!("the public access block has no `{key}`")))?;
                xml.push_str(&format!("<{element}>{on}</{element}>"));
            }
            xml.push_str("</PublicAccessBlockConfiguration>");
            s3_put("PutPublicAccessBlock", url, xml)
        }
        other => return Err(ConnectorError::permanent(format!("{other} is not a public access block"))),
    };
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}

/// Whether the bucket hosts a static website.
pub(crate) async fn has_website(t: &Transport, e: &Endpoints, bucket: &str) -> Result<bool, ConnectorError> {
    match t.send_or(&s3_get("GetBucketWebsite", e.s3(Some(bucket), Some("website"))?)).await {
        Ok(_) => Ok(true),
        Err(f) if f.code.as_deref() == Some("NoSuchWebsiteConfiguration") => Ok(false),
        Err(f) => Err(f.error),
    }
}

/// The ids of CloudFront distributions with an origin in the bucket (its REST or website
/// endpoint).
pub(crate) async fn cloudfront_origins(
    t: &Transport,
    e: &Endpoints,
    bucket: &str,
) -> Result<Vec<String>, ConnectorError> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let req = AwsRequest {
            op: "ListDistributions",
            service: Service::CloudFront,
            method: reqwest::Method::GET,
            url: e.cloudfront(marker.as_deref())?,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let root = t.send(&req).await?.xml()?;
        let summaries =
            root.child("Items").map(|i| i.all("DistributionSummary").collect::<Vec<_>>()).unwrap_or_default();
        for d in summaries {
            let origins =
                d.path(&["Origins", "Items"]).map(|i| i.all("Origin").collect::<Vec<_>>()).unwrap_or_default();
            let uses = origins.iter().any(|o| {
                o.text_of("DomainName").is_some_and(|domain| {
                    let domain = domain.to_ascii_lowercase();
                    domain.starts_with(&format!("{bucket}.s3.")) || domain.starts_with(&format!("{bucket}.s3-"))
                })
            });
            if uses && let Some(id) = d.text_of("Id") {
                ids.push(id.to_owned());
            }
        }
        let truncated = root.text_of("IsTruncated").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match root.text_of("NextMarker").filter(|m| truncated && !m.is_empty()) {
            Some(next) => marker = Some(next.to_owned()),
            None => return Ok(ids),
        }
    }
    Err(ConnectorError::permanent(format!(
        "ListDistributions has more than {MAX_PAGES} pages; refusing a partial count"
    )))
}

/// How many buckets the credentials list (the health check).
pub(crate) async fn list_buckets(t: &Transport, e: &Endpoints) -> Result<usize, ConnectorError> {
    let root = t.send(&s3_get("ListBuckets", e.s3(None, None)?)).await?.xml()?;
    Ok(root.child("Buckets").map_or(0, |b| b.all("Bucket").count()))
}

/// One world-open range of an ingress permission, whole but for its rule id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorldOpen {
    /// `0.0.0.0/0` or `::/0`.
    pub(crate) cidr: String,
    /// The range's description, which a re-authorised rule must carry again.
    pub(crate) description: Option<String>,
}

impl WorldOpen {
    pub(crate) fn to_value(&self) -> Value {
        json!({"cidr": self.cidr, "description": self.description})
    }

    pub(crate) fn from_value(v: &Value) -> Result<Vec<Self>, ConnectorError> {
        let list =
            v.as_array().ok_or_else(|| ConnectorError::permanent("the state has no list of world-open ranges"))?;
        list.iter()
            .map(|r| {
                let cidr = text_field(r, "cidr")?
                    .filter(|c| *c == "0.0.0.0/0" || *c == "::/0")
                    .ok_or_else(|| ConnectorError::permanent(format!("{r} is not a world-open range")))?;
                let description = text_field(r, "description")?.map(str::to_owned);
                Ok(Self { cidr: cidr.to_owned(), description })
            })
            .collect()
    }

    fn is_v6(&self) -> bool {
        self.cidr.contains(':')
    }
}

/// The world-open ranges of the group's ingress permission matching `permission`.
pub(crate) async fn read_ingress(
    t: &Transport,
    e: &Endpoints,
    group: &str,
    permission: Permission,
) -> Result<Vec<WorldOpen>, ConnectorError> {
    let req = query_request(e, Service::Ec2, "DescribeSecurityGroups", &[p("GroupId.1", group)])?;
    let root = t.send(&req).await?.xml()?;
    let item = root
        .child("securityGroupInfo")
        .and_then(|s| s.all("item").find(|g| g.text_of("groupId") == Some(group)))
        .ok_or_else(|| ConnectorError::not_found(format!("EC2 describes no security group {group}")))?;
    let mut open = Vec::new();
    let perms = item.child("ipPermissions").map(|p| p.all("item").collect::<Vec<_>>()).unwrap_or_default();
    for perm in perms {
        let same = perm.text_of("ipProtocol") == Some(permission.protocol.as_str())
            && perm.text_of("fromPort").and_then(|v| v.parse::<i64>().ok()) == Some(i64::from(permission.from))
            && perm.text_of("toPort").and_then(|v| v.parse::<i64>().ok()) == Some(i64::from(permission.to));
        if !same {
            continue;
        }
        let ranges = |list: &str, field: &str, world: &str| -> Vec<WorldOpen> {
            perm.child(list)
                .map(|l| {
                    l.all("item")
                        .filter(|r| r.text_of(field) == Some(world))
                        .map(|r: &Element| WorldOpen {
                            cidr: world.to_owned(),
                            description: r.text_of("description").filter(|d| !d.is_empty()).map(str::to_owned),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        open.extend(ranges("ipRanges", "cidrIp", "0.0.0.0/0"));
        open.extend(ranges("ipv6Ranges", "cidrIpv6", "::/0"));
    }
    open.sort_by(|a, b| (&a.cidr, &a.description).cmp(&(&b.cidr, &b.description)));
    open.dedup();
    Ok(open)
}

/// Revokes (or, with `authorize`, authorises) `ranges` of `permission` on the group.
pub(crate) async fn change_ingress(
    t: &Transport,
    e: &Endpoints,
    group: &str,
    permission: Permission,
    ranges: &[WorldOpen],
    authorize: bool,
) -> Result<Vec<String>, ConnectorError> {
    let op = if authorize { "AuthorizeSecurityGroupIngress" } else { "RevokeSecurityGroupIngress" };
    let mut params = vec![
        p("GroupId", group),
        p("IpPermissions.1.IpProtocol", permission.protocol.as_str()),
        p("IpPermissions.1.FromPort", permission.from.to_string()),
        p("IpPermissions.1.ToPort", permission.to.to_string()),
    ];
    let (mut v4, mut v6) = (0, 0);
    for r in ranges {
        let (prefix, field) = if r.is_v6() {
            v6 += 1;
            (format!("IpPermissions.1.Ipv6Ranges.{v6}"), "CidrIpv6")
        } else {
            v4 += 1;
            (format!("IpPermissions.1.IpRanges.{v4}"), "CidrIp")
        };
        params.push(p(format!("{prefix}.{field}"), r.cidr.clone()));
        if authorize && let Some(d) = &r.description {
            params.push(p(format!("{prefix}.Description"), d.clone()));
        }
    }
    let req = query_request(e, Service::Ec2, op, &params)?;
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}

/// How many network interfaces use the group.
pub(crate) async fn count_interfaces(t: &Transport, e: &Endpoints, group: &str) -> Result<u32, ConnectorError> {
    let mut count = 0u32;
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = vec![p("Filter.1.Name", "group-id"), p("Filter.1.Value.1", group)];
        if let Some(tk) = &token {
            params.push(p("NextToken", tk.clone()));
        }
        let root = t.send(&query_request(e, Service::Ec2, "DescribeNetworkInterfaces", &params)?).await?.xml()?;
        let n = root.child("networkInterfaceSet").map_or(0, |s| s.all("item").count());
        count = count.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        match root.text_of("nextToken").filter(|t| !t.is_empty()) {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(count),
        }
    }
    Err(ConnectorError::permanent(format!(
        "DescribeNetworkInterfaces has more than {MAX_PAGES} pages; refusing a partial count"
    )))
}

/// A DB instance as RDS describes it.
#[derive(Debug, Clone)]
pub(crate) struct DbInstance {
    pub(crate) identifier: String,
    pub(crate) resource_id: String,
    pub(crate) arn: String,
    pub(crate) retention: u32,
    pub(crate) read_replicas: Vec<String>,
}

/// Describes one DB instance.
pub(crate) async fn read_db(t: &Transport, e: &Endpoints, id: &str) -> Result<DbInstance, ConnectorError> {
    let req = query_request(e, Service::Rds, "DescribeDBInstances", &[p("DBInstanceIdentifier", id)])?;
    let root = t.send(&req).await?.xml()?;
    let db = root
        .find("DBInstances")
        .and_then(|l| {
            l.all("DBInstance").find(|d| d.text_of("DBInstanceIdentifier").is_some_and(|i| i.eq_ignore_ascii_case(id)))
        })
        .ok_or_else(|| ConnectorError::not_found(format!("RDS describes no DB instance {id}")))?;
    let retention = db.text_of("BackupRetentionPeriod").and_then(|v| v.parse().ok()).ok_or_else(|| {
        ConnectorError::permanent(format!("RDS describes DB instance {id} without a backup retention"))
    })?;
    Ok(DbInstance {
        identifier: db.text_of("DBInstanceIdentifier").unwrap_or(id).to_owned(),
        resource_id: db.text_of("DbiResourceId").unwrap_or_default().to_owned(),
        arn: db.text_of("DBInstanceArn").unwrap_or_default().to_owned(),
        retention,
        read_replicas: db
            .child("ReadReplicaDBInstanceIdentifiers")
            .map(|l| l.all("ReadReplicaDBInstanceIdentifier").map(|r| r.text.trim().to_owned()).collect())
            .unwrap_or_default(),
    })
}

/// Sets the backup retention, applied immediately.
pub(crate) async fn set_retention(
    t: &Transport,
    e: &Endpoints,
    id: &str,
    days: u32,
) -> Result<Vec<String>, ConnectorError> {
    let params =
        [p("DBInstanceIdentifier", id), p("BackupRetentionPeriod", days.to_string()), p("ApplyImmediately", "true")];
    let req = query_request(e, Service::Rds, "ModifyDBInstance", &params)?;
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}
