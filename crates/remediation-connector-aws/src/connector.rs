//! [`AwsConnector`]: the [`Connector`] implementation over S3, EC2, RDS, IAM, STS and
//! Secrets Manager.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_connector_http::{Sleeper, TokioSleeper};
use remediation_core::{
    Action, ActionKind, CanonicalTarget, Capability, Clock, Connector, ConnectorError, ConnectorErrorKind,
    FailpointHook, FollowUp, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Settled, Snapshot, SystemClock, Target, Verification, refuse_protected, require_capability,
};
use serde_json::{Value, json};

use crate::config::AwsConfig;
use crate::credentials::AwsCredentials;
use crate::error::AwsError;
use crate::services::{self, DbInstance, Endpoints, WorldOpen};
use crate::target::{
    DB_INSTANCE, Defaults, Enforcement, IAM_ACCESS_KEY, Permission, S3_BUCKET, SECURITY_GROUP_INGRESS, access_key_of,
    bucket_of, db_instance_of, iam_user_of, security_group_of,
};
use crate::transport::Transport;

/// Every AWS call the connector makes and the IAM action that allows it.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("ListBuckets", "s3:ListAllMyBuckets"),
    PermissionNeed::read(S3_BUCKET, "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    PermissionNeed::read(S3_BUCKET, "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    PermissionNeed::read(S3_BUCKET, "GetBucketWebsite", "s3:GetBucketWebsite"),
    PermissionNeed::read(S3_BUCKET, "ListDistributions", "cloudfront:ListDistributions"),
    PermissionNeed::execute(KindName::Enforce, S3_BUCKET, "PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    PermissionNeed::execute(KindName::Enforce, S3_BUCKET, "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    PermissionNeed::rollback(KindName::Enforce, S3_BUCKET, "PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    PermissionNeed::rollback(KindName::Enforce, S3_BUCKET, "DeleteBucketEncryption", "s3:PutEncryptionConfiguration"),
    PermissionNeed::rollback(KindName::Enforce, S3_BUCKET, "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    PermissionNeed::rollback(KindName::Enforce, S3_BUCKET, "DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    PermissionNeed::read(SECURITY_GROUP_INGRESS, "DescribeSecurityGroups", "ec2:DescribeSecurityGroups"),
    PermissionNeed::read(SECURITY_GROUP_INGRESS, "DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaces"),
    PermissionNeed::execute(
        KindName::Revoke,
        SECURITY_GROUP_INGRESS,
        "RevokeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
    ),
    PermissionNeed::rollback(
        KindName::Revoke,
        SECURITY_GROUP_INGRESS,
        "AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress",
    ),
    PermissionNeed::read(DB_INSTANCE, "DescribeDBInstances", "rds:DescribeDBInstances"),
    PermissionNeed::execute(KindName::Enforce, DB_INSTANCE, "ModifyDBInstance", "rds:ModifyDBInstance"),
    PermissionNeed::rollback(KindName::Enforce, DB_INSTANCE, "ModifyDBInstance", "rds:ModifyDBInstance"),
    PermissionNeed::read(IAM_ACCESS_KEY, "GetUser", "iam:GetUser"),
    PermissionNeed::read(IAM_ACCESS_KEY, "ListAccessKeys", "iam:ListAccessKeys"),
    PermissionNeed::read(IAM_ACCESS_KEY, "DescribeSecret", "secretsmanager:DescribeSecret"),
    PermissionNeed::read(IAM_ACCESS_KEY, "GetSecretValue", "secretsmanager:GetSecretValue"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "CreateAccessKey", "iam:CreateAccessKey"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "CreateSecret", "secretsmanager:CreateSecret"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "PutSecretValue", "secretsmanager:PutSecretValue"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "GetCallerIdentity", "sts:GetCallerIdentity"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "UpdateAccessKey", "iam:UpdateAccessKey"),
    PermissionNeed::execute(KindName::Rotate, IAM_ACCESS_KEY, "DeleteAccessKey", "iam:DeleteAccessKey"),
    PermissionNeed::rollback(KindName::Rotate, IAM_ACCESS_KEY, "UpdateAccessKey", "iam:UpdateAccessKey"),
    PermissionNeed::rollback(
        KindName::Rotate,
        IAM_ACCESS_KEY,
        "UpdateSecretVersionStage",
        "secretsmanager:UpdateSecretVersionStage",
    ),
    PermissionNeed::rollback(KindName::Rotate, IAM_ACCESS_KEY, "DeleteSecret", "secretsmanager:DeleteSecret"),
    PermissionNeed::rollback(KindName::Rotate, IAM_ACCESS_KEY, "DeleteAccessKey", "iam:DeleteAccessKey"),
    PermissionNeed::execute(KindName::Revoke, IAM_ACCESS_KEY, "DeleteAccessKey", "iam:DeleteAccessKey"),
];

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    vec![
        Capability::new(KindName::Enforce, S3_BUCKET, Reversibility::Reversible),
        Capability::new(KindName::Revoke, SECURITY_GROUP_INGRESS, Reversibility::Reversible),
        // A rollback to 0 days deletes the automated backups taken meanwhile, on real RDS.
        Capability::new(KindName::Enforce, DB_INSTANCE, Reversibility::Lossy),
        // Undone while the old key exists: until the rollback window closes.
        Capability::new(KindName::Rotate, IAM_ACCESS_KEY, Reversibility::Reversible),
        // Deletes an inactive key: the follow-up of a rotation.
        Capability::new(KindName::Revoke, IAM_ACCESS_KEY, Reversibility::Irreversible),
    ]
}

/// How `rotate` hands a new key over and proves it.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    pub(crate) secret_name: String,
    pub(crate) kms_key_id: Option<String>,
    pub(crate) check_attempts: u32,
}

/// A cloud-posture connector for one AWS account and region. See the crate documentation.
///
/// Cheap to clone. The credentials never appear in `Debug`.
#[derive(Clone)]
pub struct AwsConnector {
    pub(crate) id: String,
    pub(crate) endpoints: Endpoints,
    pub(crate) transport: Transport,
    defaults: Defaults,
    pub(crate) rotation: Rotation,
    protected: BTreeSet<String>,
    failpoints: Option<FailpointHook>,
}

impl fmt::Debug for AwsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConnector")
            .field("id", &self.id)
            .field("region", &self.transport.region)
            .field("endpoint", &self.endpoints.custom.as_ref().map(url::Url::as_str))
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

/// The parsed form of an action's target, validated before any request.
#[derive(Debug, Clone)]
enum Subject<'a> {
    Bucket(&'a str),
    Ingress { group: &'a str, permission: Permission },
    Db { id: String, arn: Option<&'a str> },
    AccessKey { user: &'a str, arn: Option<&'a str>, key: Option<&'a str> },
}

impl<'a> Subject<'a> {
    fn of(target: &'a Target) -> Result<Self, ConnectorError> {
        match target.grant_type.as_str() {
            S3_BUCKET => Ok(Self::Bucket(bucket_of(&target.identity)?)),
            SECURITY_GROUP_INGRESS => Ok(Self::Ingress {
                group: security_group_of(&target.identity)?,
                permission: Permission::parse(target.grant.as_deref())?,
            }),
            DB_INSTANCE => {
                let (id, arn) = db_instance_of(&target.identity)?;
                Ok(Self::Db { id, arn })
            }
            IAM_ACCESS_KEY => Ok(Self::AccessKey {
                user: iam_user_of(&target.identity)?,
                arn: target.identity.starts_with("arn:").then_some(target.identity.as_str()),
                key: target.grant.as_deref().map(access_key_of).transpose()?,
            }),
            other => Err(ConnectorError::unsupported(format!("AWS has no grant type `{}`", other.escape_debug()))),
        }
    }
}

impl AwsConnector {
    /// A connector configured by `config`, with credentials read from the environment (and
    /// the secret file) it names.
    pub fn from_config(config: &AwsConfig) -> Result<Self, AwsError> {
        Self::new(config, AwsCredentials::from_env(config)?)
    }

    /// A connector configured by `config` that signs with `credentials`. Makes no request.
    pub fn new(config: &AwsConfig, credentials: AwsCredentials) -> Result<Self, AwsError> {
        config.validate()?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(remediation_connector_http::USER_AGENT)
            .build()
            .map_err(|source| AwsError::Client { connector: config.id.clone(), source })?;
        let custom = match &config.endpoint_url {
            Some(u) => Some(url::Url::parse(u).map_err(|_| AwsError::Invalid {
                connector: config.id.clone(),
                key: "endpoint_url",
                reason: "is not a URL".to_owned(),
            })?),
            None => None,
        };
        let mut protected = BTreeSet::new();
        for p in &config.protected_resources {
            protected.insert(p.to_ascii_lowercase());
            if let Ok((id, _)) = db_instance_of(p) {
                protected.insert(id);
            }
            if let Ok(bucket) = bucket_of(p) {
                protected.insert(bucket.to_owned());
            }
            if let Ok(user) = iam_user_of(p) {
                protected.insert(user.to_ascii_lowercase());
            }
        }
        Ok(Self {
            id: config.id.clone(),
            endpoints: Endpoints { custom, region: config.region.clone() },
            transport: Transport {
                http,
                credentials,
                region: config.region.clone(),
                clock: Arc::new(SystemClock),
                sleeper: Arc::new(TokioSleeper),
                attempts: config.max_attempts,
                backoff: Duration::from_millis(config.backoff_ms),
            },
            defaults: Defaults {
                s3_kms_key_id: config.s3_kms_key_id.clone(),
                rds_backup_retention_days: config.rds_backup_retention_days,
            },
            rotation: Rotation {
                secret_name: config.rotation_secret_name.clone(),
                kms_key_id: config.rotation_secret_kms_key_id.clone(),
                check_attempts: config.rotation_check_attempts,
            },
            protected,
            failpoints: None,
        })
    }

    /// Calls `hook` at the connector's failpoints ([`crate::AFTER_CREATE_ACCESS_KEY`]), as
    /// crash tests do.
    pub fn with_failpoints(mut self, hook: Option<FailpointHook>) -> Self {
        self.failpoints = hook;
        self
    }

    pub(crate) fn failpoint(&self, name: &'static str) {
        if let Some(hook) = &self.failpoints {
            hook(name);
        }
    }

    /// Uses `sleeper` for the delays between retries (the tokio timer by default).
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.transport.sleeper = sleeper;
        self
    }

    /// Signs requests at `clock`'s time (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.transport.clock = clock;
        self
    }

    pub(crate) fn is_protected(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.protected.contains(&n.to_ascii_lowercase()))
    }

    /// The capability and, for `enforce`, the resolved setting: all checked before any request.
    fn check(&self, action: &Action) -> Result<Option<Enforcement>, ConnectorError> {
        require_capability(&capabilities(), "AWS", action)?;
        let enforcement = match action.kind.name() {
            KindName::Enforce => Some(Enforcement::of(&action.kind, &action.target.grant_type, &self.defaults)?),
            _ => None,
        };
        Subject::of(&action.target)?;
        Ok(enforcement)
    }

    pub(crate) async fn read(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let t = &self.transport;
        let e = &self.endpoints;
        match Subject::of(target)? {
            Subject::Bucket(bucket) => {
                let state = services::read_bucket(t, e, bucket).await?;
                let protected = self.is_protected(&[bucket, &format!("arn:aws:s3:::{bucket}")]);
                Ok(Snapshot {
                    protected,
                    canonical: Some(CanonicalTarget::identity(bucket)),
                    state: state.to_value(bucket),
                })
            }
            Subject::Ingress { group, permission } => {
                let open = services::read_ingress(t, e, group, permission).await?;
                let protected = self.is_protected(&[group]);
                Ok(Snapshot {
                    protected,
                    canonical: Some(CanonicalTarget::with_resource(group, permission.label())),
                    state: ingress_value(group, permission, &open),
                })
            }
            Subject::Db { id, arn } => {
                let db = services::read_db(t, e, &id).await?;
                if let Some(arn) = arn
                    && !db.arn.is_empty()
                    && !arn.eq_ignore_ascii_case(&db.arn)
                {
                    return Err(ConnectorError::not_found(format!("no DB instance has the ARN {arn}")));
                }
                let protected = self.is_protected(&[&db.identifier, &db.resource_id, &db.arn]);
                let canonical = if db.resource_id.is_empty() { db.arn.clone() } else { db.resource_id.clone() };
                Ok(Snapshot { protected, canonical: Some(CanonicalTarget::identity(canonical)), state: db_value(&db) })
            }
            Subject::AccessKey { user, arn, key } => self.read_access_key(user, arn, key).await,
        }
    }

    /// The state `enforcement` (or the revocation) leads to from `before`.
    fn after_state(before: &Value, enforcement: Option<&Enforcement>) -> Value {
        let mut after = before.clone();
        if let Some(map) = after.as_object_mut() {
            match enforcement {
                Some(Enforcement::S3Encryption { kms_key }) => {
                    map.insert("default_encryption".into(), services::kms_rules(kms_key));
                }
                Some(Enforcement::S3PublicAccessBlock) => {
                    map.insert("public_access_block".into(), services::all_blocked());
                }
                Some(Enforcement::RdsRetention { days }) => {
                    map.insert("backup_retention_days".into(), json!(days));
                }
                None => {
                    map.insert("world_open".into(), json!([]));
                }
            }
        }
        after
    }

    /// Writes what it takes to move `target` from `live` to `desired`; the request ids.
    async fn write(
        &self,
        target: &Target,
        enforcement: Option<&Enforcement>,
        live: &Value,
        desired: &Value,
    ) -> Result<Vec<String>, ConnectorError> {
        let t = &self.transport;
        let e = &self.endpoints;
        match (Subject::of(target)?, enforcement) {
            (Subject::Bucket(bucket), Some(Enforcement::S3Encryption { .. })) => {
                services::put_encryption(t, e, bucket, &desired["default_encryption"]).await
            }
            (Subject::Bucket(bucket), Some(Enforcement::S3PublicAccessBlock)) => {
                services::put_public_access_block(t, e, bucket, &desired["public_access_block"]).await
            }
            (Subject::Ingress { group, permission }, None) => {
                let live_open = WorldOpen::from_value(&live["world_open"])?;
                let want_open = WorldOpen::from_value(&desired["world_open"])?;
                let remove: Vec<WorldOpen> = live_open.iter().filter(|r| !want_open.contains(r)).cloned().collect();
                let add: Vec<WorldOpen> = want_open.iter().filter(|r| !live_open.contains(r)).cloned().collect();
                let mut ids = Vec::new();
                if !remove.is_empty() {
                    ids.extend(services::change_ingress(t, e, group, permission, &remove, false).await?);
                }
                if !add.is_empty() {
                    ids.extend(services::change_ingress(t, e, group, permission, &add, true).await?);
                }
                Ok(ids)
            }
            (Subject::Db { id, .. }, Some(Enforcement::RdsRetention { .. })) => {
                let days = desired["backup_retention_days"]
                    .as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| ConnectorError::permanent("the state names no backup retention"))?;
                services::set_retention(t, e, &id, days).await
            }
            _ => Err(ConnectorError::unsupported(format!("AWS cannot apply this action to {target}"))),
        }
    }

    /// Moves `target` to `desired` unless it is there already, then reads it back.
    async fn converge(
        &self,
        target: &Target,
        enforcement: Option<&Enforcement>,
        desired: Value,
        expect_live: Option<&Value>,
        refuse: bool,
    ) -> Result<Outcome, ConnectorError> {
        let live = self.read(target).await?;
        if refuse {
            refuse_protected(target, &live)?;
        }
        if live.state == desired {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        if let Some(expected) = expect_live
            && &live.state != expected
        {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Conflict,
                format!(
                    "{target} changed since the action ran (now {}, after the action {expected}); restoring could undo someone else's change",
                    live.state
                ),
            ));
        }
        let mut request_ids = self.write(target, enforcement, &live.state, &desired).await?;
        let now = self.read(target).await?;
        if now.state != desired {
            let mut e = ConnectorError::permanent(format!(
                "{target}: AWS accepted the change but reads back {} instead of {desired}",
                now.state
            ));
            if let Some(id) = request_ids.pop() {
                e = e.with_request_id(id);
            }
            return Err(e);
        }
        tracing::info!(connector = %self.id, target = %target, "AWS change applied");
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids })
    }

    /// Dependants of the target and a sentence naming them.
    async fn dependants(&self, target: &Target) -> Result<(u32, String), ConnectorError> {
        let t = &self.transport;
        let e = &self.endpoints;
        match Subject::of(target)? {
            Subject::Bucket(bucket) => {
                let website = services::has_website(t, e, bucket).await?;
                let distributions = services::cloudfront_origins(t, e, bucket).await?;
                let count = u32::from(website) + u32::try_from(distributions.len()).unwrap_or(u32::MAX);
                let mut parts = vec![if website {
                    "static website hosting is configured".to_owned()
                } else {
                    "no static website hosting".to_owned()
                }];
                parts.push(if distributions.is_empty() {
                    "no CloudFront distribution has the bucket as its origin".to_owned()
                } else {
                    format!("CloudFront distribution(s) {} use it as an origin", distributions.join(", "))
                });
                Ok((count, format!("Dependants: {}.", parts.join("; "))))
            }
            Subject::Ingress { group, .. } => {
                let n = services::count_interfaces(t, e, group).await?;
                Ok((n, format!("{n} network interface(s) use security group {group}.")))
            }
            Subject::Db { id, .. } => {
                let db = services::read_db(t, e, &id).await?;
                let n = u32::try_from(db.read_replicas.len()).unwrap_or(u32::MAX);
                let names = if db.read_replicas.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", db.read_replicas.join(", "))
                };
                Ok((n, format!("{n} read replica(s){names} depend on DB instance {id}.")))
            }
            // IAM does not say which workloads hold a key; it reaches what its user may do.
            Subject::AccessKey { .. } => Ok((1, String::new())),
        }
    }
}

fn ingress_value(group: &str, permission: Permission, open: &[WorldOpen]) -> Value {
    json!({
        "group_id": group,
        "permission": permission.label(),
        "world_open": open.iter().map(WorldOpen::to_value).collect::<Vec<_>>(),
    })
}

fn db_value(db: &DbInstance) -> Value {
    json!({"db_instance": db.identifier, "backup_retention_days": db.retention})
}

#[async_trait]
impl Connector for AwsConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        match services::list_buckets(&self.transport, &self.endpoints).await {
            Ok(n) => Ok(Health {
                healthy: true,
                detail: format!("S3 in {} answers; {n} bucket(s) listed", self.transport.region),
            }),
            Err(e)
                if matches!(
                    e.kind,
                    ConnectorErrorKind::Unauthenticated
                        | ConnectorErrorKind::Transient
                        | ConnectorErrorKind::Throttled { .. }
                ) =>
            {
                Ok(Health { healthy: false, detail: e.to_string() })
            }
            Err(e) => Ok(Health { healthy: true, detail: format!("S3 answers ({e})") }),
        }
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        Ok(Permissions::unknown(
            PERMISSION_MAP,
            "AWS tells a principal its permissions only through iam:SimulatePrincipalPolicy, which the connector's policy does not grant",
        ))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.read(target).await
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        let enforcement = self.check(action)?;
        let target = &action.target;
        if let Subject::AccessKey { .. } = Subject::of(target)? {
            return self.plan_access_key(action, before);
        }
        let (_, dependants) = self.dependants(target).await?;
        let description = match (Subject::of(target)?, &enforcement) {
            (Subject::Bucket(b), Some(Enforcement::S3Encryption { kms_key })) => format!(
                "Set the default encryption of S3 bucket {b} to SSE-KMS with key {kms_key} and S3 Bucket Keys on \
                 (PutBucketEncryption); now {}. Rollback restores the previous rules exactly. {dependants}",
                before.state["default_encryption"]
            ),
            (Subject::Bucket(b), Some(Enforcement::S3PublicAccessBlock)) => format!(
                "Turn on all four public access block flags of S3 bucket {b} (PutPublicAccessBlock); now {}. \
                 Rollback restores the previous flags, or deletes the configuration if there was none. {dependants}",
                before.state["public_access_block"]
            ),
            (Subject::Ingress { group, permission }, None) => format!(
                "Revoke the world-open ranges {} of ingress {} on security group {group} \
                 (RevokeSecurityGroupIngress). A rollback re-authorises them and reopens the exposure. {dependants}",
                before.state["world_open"],
                permission.label()
            ),
            (Subject::Db { id, .. }, Some(Enforcement::RdsRetention { days })) => format!(
                "Set the automated backup retention of DB instance {id} to {days} day(s) (ModifyDBInstance, \
                 ApplyImmediately); now {}. Lossy: a rollback to 0 days deletes the automated backups on real RDS, \
                 and real RDS may briefly restart the instance when retention changes between 0 and non-zero \
                 (moto applies changes at once). {dependants}",
                before.state["backup_retention_days"]
            ),
            _ => return Err(ConnectorError::unsupported(format!("AWS cannot plan {} on {target}", action.kind))),
        };
        let expected_after = Snapshot {
            protected: before.protected,
            canonical: before.canonical.clone(),
            state: Self::after_state(&before.state, enforcement.as_ref()),
        };
        Ok(PlannedChange { expected_after, description })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        let enforcement = self.check(action)?;
        let live = self.read(&action.target).await?;
        refuse_protected(&action.target, &live)?;
        if let Subject::AccessKey { .. } = Subject::of(&action.target)? {
            return self.execute_access_key(action, live).await;
        }
        let desired = Self::after_state(&live.state, enforcement.as_ref());
        self.converge(&action.target, enforcement.as_ref(), desired, None, true).await
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.check(action)?;
        let observed = self.read(&action.target).await?;
        let matches = if action.kind == ActionKind::Rotate {
            // The plan cannot know the new key's id nor the secret's new version.
            observed.protected == planned.expected_after.protected
                && observed.canonical == planned.expected_after.canonical
                && crate::access_key::rotation_matches(&planned.expected_after.state, &observed.state)
        } else {
            observed == planned.expected_after
        };
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let enforcement = self.check(action)?;
        if let Subject::AccessKey { .. } = Subject::of(&action.target)? {
            return self.rollback_access_key(action, before, after).await;
        }
        // Only the part the action changed goes back; the rest must still be as the action left it.
        let mut desired = after.state.clone();
        let key = match enforcement {
            Some(Enforcement::S3Encryption { .. }) => "default_encryption",
            Some(Enforcement::S3PublicAccessBlock) => "public_access_block",
            Some(Enforcement::RdsRetention { .. }) => "backup_retention_days",
            None => "world_open",
        };
        let previous = before.state.get(key).cloned().ok_or_else(|| {
            ConnectorError::permanent(format!("the before-state of {} has no `{key}`", action.target))
        })?;
        if let Some(map) = desired.as_object_mut() {
            map.insert(key.to_owned(), previous);
        }
        self.converge(&action.target, enforcement.as_ref(), desired, Some(&after.state), false).await
    }

    fn follow_up(&self, action: &Action, after: &Snapshot) -> Option<FollowUp> {
        Self::access_key_follow_up(action, after)
    }

    async fn settle_interrupted(
        &self,
        action: &Action,
        before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Option<Settled>, ConnectorError> {
        self.check(action)?;
        self.settle_access_key(action, before, live).await
    }

    async fn reach(&self, action: &Action, _before: &Snapshot) -> Result<Option<u32>, ConnectorError> {
        self.check(action)?;
        let (n, _) = self.dependants(&action.target).await?;
        Ok(Some(n))
    }
}
