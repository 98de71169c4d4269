//! The IAM, STS and Secrets Manager calls of an access key rotation, each built from
//! validated parts. A new key's secret lives in a [`SecretString`] from the answer that
//! carries it to the request that stores it; no `Debug`, log or error shows it.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use remediation_core::{ConnectorError, ConnectorErrorKind};

use crate::credentials::AwsCredentials;
use crate::services::{Endpoints, MAX_PAGES, p, query_request};
use crate::transport::{AwsFailure, AwsRequest, Service, Transport};

/// An IAM user as `GetUser` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IamUser {
    pub(crate) name: String,
    pub(crate) arn: String,
    /// The stable id (`AIDA...`): a user deleted and created again under the same name has
    /// another one.
    pub(crate) id: String,
}

/// One access key of a user, as `ListAccessKeys` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessKey {
    pub(crate) id: String,
    /// `Active` or `Inactive`.
    pub(crate) status: String,
    pub(crate) created: Option<OffsetDateTime>,
}

/// Describes one user.
pub(crate) async fn get_user(t: &Transport, e: &Endpoints, user: &str) -> Result<IamUser, ConnectorError> {
    let req = query_request(e, Service::Iam, "GetUser", &[p("UserName", user)])?;
    let root = t.send(&req).await?.xml()?;
    let u = root.find("User").ok_or_else(|| ConnectorError::not_found(format!("IAM describes no user {user}")))?;
    let field = |name: &str| u.text_of(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    Ok(IamUser {
        name: field("UserName").unwrap_or_else(|| user.to_owned()),
        arn: field("Arn")
            .ok_or_else(|| ConnectorError::permanent(format!("IAM describes user {user} without an ARN")))?,
        id: field("UserId").unwrap_or_default(),
    })
}

/// Every access key of `user`.
pub(crate) async fn list_keys(t: &Transport, e: &Endpoints, user: &str) -> Result<Vec<AccessKey>, ConnectorError> {
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = vec![p("UserName", user)];
        if let Some(m) = &marker {
            params.push(p("Marker", m.clone()));
        }
        let root = t.send(&query_request(e, Service::Iam, "ListAccessKeys", &params)?).await?.xml()?;
        let members = root.find("AccessKeyMetadata").map(|l| l.all("member").collect::<Vec<_>>()).unwrap_or_default();
        for m in members {
            let Some(id) = m.text_of("AccessKeyId").map(str::trim).filter(|v| !v.is_empty()) else { continue };
            keys.push(AccessKey {
                id: id.to_owned(),
                status: m.text_of("Status").unwrap_or_default().trim().to_owned(),
                created: m.text_of("CreateDate").and_then(|d| OffsetDateTime::parse(d.trim(), &Rfc3339).ok()),
            });
        }
        let truncated = root.find("IsTruncated").is_some_and(|v| v.text.trim().eq_ignore_ascii_case("true"));
        match root.find("Marker").map(|m| m.text.trim().to_owned()).filter(|m| truncated && !m.is_empty()) {
            Some(next) => marker = Some(next),
            None => return Ok(keys),
        }
    }
    Err(ConnectorError::permanent(format!("ListAccessKeys has more than {MAX_PAGES} pages")))
}

/// Creates an access key for `user`: its credentials and the request id.
pub(crate) async fn create_key(
    t: &Transport,
    e: &Endpoints,
    user: &str,
) -> Result<(AwsCredentials, Option<String>), ConnectorError> {
    let req = query_request(e, Service::Iam, "CreateAccessKey", &[p("UserName", user)])?;
    let response = t.send(&req).await?;
    let root = response.xml()?;
    let key = root.find("AccessKey");
    let id = key.and_then(|k| k.text_of("AccessKeyId")).map(str::trim).filter(|v| !v.is_empty());
    let secret = key.and_then(|k| k.text_of("SecretAccessKey")).map(str::trim).filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => {
            Ok((AwsCredentials::new(id, SecretString::from(secret.to_owned())), response.request_id.clone()))
        }
        _ => Err(ConnectorError::permanent(format!(
            "CreateAccessKey for {user} answered without a key id and secret; check ListAccessKeys for a key nobody holds"
        ))),
    }
}

/// Sets a key's status (`Active` or `Inactive`).
pub(crate) async fn set_key_status(
    t: &Transport,
    e: &Endpoints,
    user: &str,
    key: &str,
    active: bool,
) -> Result<Vec<String>, ConnectorError> {
    let status = if active { "Active" } else { "Inactive" };
    let params = [p("UserName", user), p("AccessKeyId", key), p("Status", status)];
    let req = query_request(e, Service::Iam, "UpdateAccessKey", &params)?;
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}

/// Deletes a key.
pub(crate) async fn delete_key(
    t: &Transport,
    e: &Endpoints,
    user: &str,
    key: &str,
) -> Result<Vec<String>, ConnectorError> {
    let req = query_request(e, Service::Iam, "DeleteAccessKey", &[p("UserName", user), p("AccessKeyId", key)])?;
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}

/// The ARN `credentials` sign as (`sts:GetCallerIdentity`, signed with them).
pub(crate) async fn caller_arn(
    t: &Transport,
    e: &Endpoints,
    credentials: &AwsCredentials,
) -> Result<String, AwsFailure> {
    let plain = |error| AwsFailure { error, code: None };
    let req = query_request(e, Service::Sts, "GetCallerIdentity", &[]).map_err(plain)?;
    let root = t.send_signed_by(&req, credentials).await?.xml().map_err(plain)?;
    root.find("Arn")
        .map(|a| a.text.trim().to_owned())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| plain(ConnectorError::permanent("GetCallerIdentity answered without an ARN")))
}

fn secrets_request(e: &Endpoints, op: &'static str, body: &Value) -> Result<AwsRequest, ConnectorError> {
    Ok(AwsRequest {
        op,
        service: Service::SecretsManager,
        method: reqwest::Method::POST,
        url: e.query(Service::SecretsManager)?,
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("x-amz-target", format!("secretsmanager.{op}")),
        ],
        body: body.to_string().into_bytes(),
    })
}

/// A secret's current version (the one labelled `AWSCURRENT`), or `None` when no secret of
/// that name exists.
pub(crate) async fn current_version(
    t: &Transport,
    e: &Endpoints,
    name: &str,
) -> Result<Option<String>, ConnectorError> {
    let req = secrets_request(e, "DescribeSecret", &json!({"SecretId": name}))?;
    let body = match t.send_or(&req).await {
        Ok(r) => r.body,
        Err(f) if f.error.kind == ConnectorErrorKind::NotFound => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| ConnectorError::permanent(format!("DescribeSecret of {name} is not JSON")))?;
    // A secret scheduled for deletion is not one a rotation may write to.
    if v.get("DeletedDate").is_some_and(|d| !d.is_null()) {
        return Err(ConnectorError::new(
            ConnectorErrorKind::Conflict,
            format!("secret {name} is scheduled for deletion; restore it or name another secret"),
        ));
    }
    let stages = v["VersionIdsToStages"].as_object().cloned().unwrap_or_default();
    let current = stages
        .iter()
        .find(|(_, labels)| labels.as_array().is_some_and(|l| l.iter().any(|x| x.as_str() == Some("AWSCURRENT"))));
    Ok(current.map(|(version, _)| version.clone()))
}

/// The access key id the secret's current value holds (the key handed over), if it holds
/// one. The rest of the value (the secret key) is dropped unread.
pub(crate) async fn held_key_id(t: &Transport, e: &Endpoints, name: &str) -> Result<Option<String>, ConnectorError> {
    // The stage named: an emulator (moto 5.2) otherwise answers the last written version even
    // after `UpdateSecretVersionStage` moved `AWSCURRENT` back.
    let req = secrets_request(e, "GetSecretValue", &json!({"SecretId": name, "VersionStage": "AWSCURRENT"}))?;
    let body = match t.send_or(&req).await {
        Ok(r) => r.body,
        Err(f) if f.error.kind == ConnectorErrorKind::NotFound => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| ConnectorError::permanent(format!("GetSecretValue of {name} is not JSON")))?;
    let held = v["SecretString"]
        .as_str()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|inner| inner["AccessKeyId"].as_str().map(str::to_owned));
    Ok(held)
}

/// Stores `credentials` as the secret's new current version (creating the secret when it
/// does not exist), idempotently under `token`: the new version's id and the request ids.
pub(crate) async fn store_key(
    t: &Transport,
    e: &Endpoints,
    name: &str,
    exists: bool,
    credentials: &AwsCredentials,
    token: &str,
    kms_key: Option<&str>,
) -> Result<(String, Vec<String>), ConnectorError> {
    let value = SecretString::from(
        json!({
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key.expose_secret(),
        })
        .to_string(),
    );
    let (op, mut body) = if exists {
        ("PutSecretValue", json!({"SecretId": name, "ClientRequestToken": token}))
    } else {
        let mut body = json!({
            "Name": name,
            "ClientRequestToken": token,
            "Description": "AWS access key handed over by remediation's rotation",
        });
        if let Some(key) = kms_key {
            body["KmsKeyId"] = json!(key);
        }
        ("CreateSecret", body)
    };
    body["SecretString"] = json!(value.expose_secret());
    let req = secrets_request(e, op, &body)?;
    drop(body);
    let response = t.send(&req).await?;
    let v: Value = serde_json::from_slice(&response.body)
        .map_err(|_| ConnectorError::permanent(format!("{op} of {name} is not JSON")))?;
    let version = v["VersionId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ConnectorError::permanent(format!("{op} of {name} answered without a version id")))?;
    Ok((version, response.request_id.into_iter().collect()))
}

/// Puts the secret back as it was: its current version `previous` again (moved off
/// `current`), or, when there was no secret, deletes it without a recovery window (it only
/// ever held the key the rotation is taking back).
pub(crate) async fn restore_secret(
    t: &Transport,
    e: &Endpoints,
    name: &str,
    previous: Option<&str>,
    current: &str,
) -> Result<Vec<String>, ConnectorError> {
    let req = match previous {
        Some(previous) => secrets_request(
            e,
            "UpdateSecretVersionStage",
            &json!({
                "SecretId": name,
                "VersionStage": "AWSCURRENT",
                "MoveToVersionId": previous,
                "RemoveFromVersionId": current,
            }),
        )?,
        None => secrets_request(e, "DeleteSecret", &json!({"SecretId": name, "ForceDeleteWithoutRecovery": true}))?,
    };
    Ok(t.send(&req).await?.request_id.into_iter().collect())
}
