//! The shared moto server (`REMEDIATION_TEST_MOTO`) and a seeding client: plain reqwest with
//! an `Authorization` header whose credential scope names the service, which is how moto's
//! single-port server routes a request (it accepts any credentials).

use rand::Rng;
use remediation_connector_aws::{AwsConfig, AwsConnector, AwsCredentials};
use secrecy::SecretString;

/// The shared moto server's URL, or `None` after printing why the test skips.
pub(crate) fn url(test: &str) -> Option<String> {
    remediation_testkit::real_server::require(
        test,
        "REMEDIATION_TEST_MOTO",
        "the URL of a moto server; `eval \"$(.ci/setup-moto.sh)\"` starts one and sets it",
    )
}

/// A name no earlier run used: `prefix-` and random hex.
pub(crate) fn fresh(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

/// The KMS alias the test connectors take as `s3_kms_key_id`.
pub(crate) const KMS_KEY: &str = "alias/posture-test";

/// Dummy credentials with distinctive secrets, for the leak checks.
pub(crate) fn dummy_credentials() -> AwsCredentials {
    AwsCredentials::new("AKIAMOTOPOSTURE", SecretString::from(fresh("moto-secret-key")))
        .with_session_token(SecretString::from(fresh("moto-session-token")))
}

/// A connector for `url` with a short backoff, protecting `protected`.
pub(crate) fn connector(url: &str, credentials: AwsCredentials, protected: &[&str]) -> AwsConnector {
    let mut config = AwsConfig::new("us-east-1", "UNUSED_AK", "UNUSED_SK");
    config.endpoint_url = Some(url.to_owned());
    config.s3_kms_key_id = Some(KMS_KEY.to_owned());
    config.protected_resources = protected.iter().map(|s| (*s).to_owned()).collect();
    config.backoff_ms = 10;
    AwsConnector::new(&config, credentials).unwrap()
}

/// Seeds moto.
#[derive(Clone)]
pub(crate) struct Seed {
    url: String,
    http: reqwest::Client,
}

fn auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAMOTOSEED/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
    )
}

/// The text of the first `<tag>` in `xml`.
pub(crate) fn between(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

impl Seed {
    pub(crate) fn new(url: &str) -> Self {
        Self { url: url.trim_end_matches('/').to_owned(), http: reqwest::Client::new() }
    }

    /// An S3 call on `bucket` (with a `?subresource`), returning the body; panics on failure.
    pub(crate) async fn s3(&self, method: reqwest::Method, bucket: &str, sub: &str, body: &str) -> String {
        let url =
            if sub.is_empty() { format!("{}/{bucket}", self.url) } else { format!("{}/{bucket}?{sub}", self.url) };
        let r = self
            .http
            .request(method.clone(), &url)
            .header("authorization", auth("s3"))
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        text
    }

    /// A Query API call; the body; panics on failure.
    pub(crate) async fn query(&self, service: &str, params: &[(&str, &str)]) -> String {
        let version = match service {
            "ec2" => "2016-11-15",
            "iam" => "2010-05-08",
            "sts" => "2011-06-15",
            _ => "2014-10-31",
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Version", version);
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let r = self
            .http
            .post(&self.url)
            .header("authorization", auth(service))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{service} {params:?}: {status} {text}");
        text
    }

    /// A Secrets Manager call; the JSON answer; panics on failure.
    pub(crate) async fn secrets(&self, op: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(&self.url)
            .header("authorization", auth("secretsmanager"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("secretsmanager.{op}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "secretsmanager {op}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A new IAM user with one access key: the user's ARN and the key's id.
    pub(crate) async fn iam_user_with_key(&self, name: &str) -> (String, String) {
        let user = self.query("iam", &[("Action", "CreateUser"), ("UserName", name)]).await;
        let key = self.query("iam", &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
        (between(&user, "Arn").unwrap(), between(&key, "AccessKeyId").unwrap())
    }

    /// The `(id, status)` of each of `user`'s access keys.
    pub(crate) async fn keys(&self, user: &str) -> Vec<(String, String)> {
        let xml = self.query("iam", &[("Action", "ListAccessKeys"), ("UserName", user)]).await;
        xml.split("<member>")
            .skip(1)
            .map(|m| (between(m, "AccessKeyId").unwrap(), between(m, "Status").unwrap()))
            .collect()
    }

    /// A bucket with SSE-S3 default encryption and two of four public access block flags.
    pub(crate) async fn bucket(&self, name: &str) {
        self.s3(reqwest::Method::PUT, name, "", "").await;
        let sse = r#"<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#;
        self.s3(reqwest::Method::PUT, name, "encryption", sse).await;
    }

    /// Sets the bucket's public access block flags.
    pub(crate) async fn public_access_block(&self, bucket: &str, flags: [bool; 4]) {
        let [a, b, c, d] = flags;
        let xml = format!(
            r#"<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicAcls>{a}</BlockPublicAcls><IgnorePublicAcls>{b}</IgnorePublicAcls><BlockPublicPolicy>{c}</BlockPublicPolicy><RestrictPublicBuckets>{d}</RestrictPublicBuckets></PublicAccessBlockConfiguration>"#
        );
        self.s3(reqwest::Method::PUT, bucket, "publicAccessBlock", &xml).await;
    }

    /// Turns static website hosting on.
    pub(crate) async fn website(&self, bucket: &str) {
        let xml = r#"<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>"#;
        self.s3(reqwest::Method::PUT, bucket, "website", xml).await;
    }

    /// A security group with world-open SSH (IPv4 with a description, and IPv6) and a
    /// private range; its id.
    pub(crate) async fn security_group(&self) -> String {
        let name = fresh("posture-sg");
        let out = self
            .query(
                "ec2",
                &[("Action", "CreateSecurityGroup"), ("GroupName", &name), ("GroupDescription", "posture test")],
            )
            .await;
        let id = between(&out, "groupId").unwrap();
        self.query(
            "ec2",
            &[
                ("Action", "AuthorizeSecurityGroupIngress"),
                ("GroupId", &id),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "22"),
                ("IpPermissions.1.ToPort", "22"),
                ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
                ("IpPermissions.1.IpRanges.1.Description", "ssh from anywhere"),
                ("IpPermissions.1.IpRanges.2.CidrIp", "10.0.0.0/8"),
                ("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", "::/0"),
            ],
        )
        .await;
        id
    }

    /// A network interface in the default VPC's first subnet using `group`.
    pub(crate) async fn interface(&self, group: &str) {
        let subnets = self.query("ec2", &[("Action", "DescribeSubnets")]).await;
        let subnet = between(&subnets, "subnetId").unwrap();
        self.query("ec2", &[("Action", "CreateNetworkInterface"), ("SubnetId", &subnet), ("SecurityGroupId.1", group)])
            .await;
    }

    /// A PostgreSQL DB instance keeping backups for `days`; its identifier.
    pub(crate) async fn db(&self, days: u32) -> String {
        let id = fresh("posture-db");
        self.query(
            "rds",
            &[
                ("Action", "CreateDBInstance"),
                ("DBInstanceIdentifier", &id),
                ("DBInstanceClass", "db.t3.micro"),
                ("Engine", "postgres"),
                ("MasterUsername", "admin1"),
                ("MasterUserPassword", "not-a-real-password-1"),
                ("AllocatedStorage", "20"),
                ("BackupRetentionPeriod", &days.to_string()),
            ],
        )
        .await;
        id
    }

    /// Sets a DB instance's backup retention.
    pub(crate) async fn retention(&self, id: &str, days: u32) {
        self.query(
            "rds",
            &[
                ("Action", "ModifyDBInstance"),
                ("DBInstanceIdentifier", id),
                ("BackupRetentionPeriod", &days.to_string()),
                ("ApplyImmediately", "true"),
            ],
        )
        .await;
    }

    /// A CloudFront distribution whose origin is the bucket's REST endpoint; its id.
    pub(crate) async fn distribution(&self, bucket: &str) -> String {
        let xml = format!(
            r#"<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><CallerReference>{caller}</CallerReference><Origins><Quantity>1</Quantity><Items><Origin><Id>bucket</Id><DomainName>{bucket}.s3.amazonaws.com</DomainName><S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity></S3OriginConfig></Origin></Items></Origins><DefaultCacheBehavior><TargetOriginId>bucket</TargetOriginId><ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy><MinTTL>0</MinTTL></DefaultCacheBehavior><Comment>posture test</Comment><Enabled>true</Enabled></DistributionConfig>"#,
            caller = fresh("caller"),
        );
        let r = self
            .http
            .post(format!("{}/2020-05-31/distribution", self.url))
            .header("authorization", auth("cloudfront"))
            .header("content-type", "application/xml")
            .body(xml)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "CreateDistribution: {status} {text}");
        between(&text, "Id").unwrap()
    }
}
