//! The AWS IAM connector passes the semantic connector conformance suite against moto.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_iam::Client;
use remediation_connector_aws_iam::{ACCESS_KEY, AwsCredentials, GROUP_MEMBERSHIP, LOGIN_PROFILE, USER_POLICY};
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};
use secrecy::{ExposeSecret, SecretString};

use crate::block_on;
use crate::moto::{self, AuthMoto, fresh};

struct Moto {
    url: String,
    admin: Client,
    credentials: AwsCredentials,
    /// A user the connector protects, configured under another case of its name.
    breakglass: String,
    /// The private server of the forbidden check, stopped with the subject.
    auth: Mutex<Option<AuthMoto>>,
}

fn target(grant_type: &str, user: &str, resource: Option<&str>) -> Target {
    Target { identity: user.into(), resource: resource.map(Into::into), grant: None, grant_type: grant_type.into() }
}

#[async_trait]
impl Subject for Moto {
    fn connector(&self) -> Arc<dyn Connector> {
        let listed = self.breakglass.to_uppercase();
        Arc::new(moto::connector(&self.url, "aws-iam", self.credentials.clone(), &[&listed]))
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", moto::connector(&self.url, "aws-iam", self.credentials.clone(), &[]))
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.credentials.secret_access_key.expose_secret().to_owned()];
        secrets.extend(self.credentials.session_token.as_ref().map(|t| t.expose_secret().to_owned()));
        secrets
    }

    async fn cases(&self) -> Vec<Case> {
        let iam = &self.admin;
        let policy_user = fresh("policy-user");
        moto::user(iam, &policy_user).await;
        let arn = moto::policy(iam, &fresh("policy")).await;
        iam.attach_user_policy().user_name(&policy_user).policy_arn(&arn).send().await.unwrap();

        let group_user = fresh("group-user");
        let group = fresh("group");
        moto::user(iam, &group_user).await;
        iam.create_group().group_name(&group).send().await.unwrap();
        iam.add_user_to_group().group_name(&group).user_name(&group_user).send().await.unwrap();

        let key_user = fresh("key-user");
        moto::user(iam, &key_user).await;
        let (key_id, _) = moto::access_key(iam, &key_user).await;

        let login_user = fresh("login-user");
        moto::user(iam, &login_user).await;
        iam.create_login_profile()
            .user_name(&login_user)
            .password("Initial-Passw0rd!")
            .password_reset_required(false)
            .send()
            .await
            .unwrap();

        vec![
            Case::new("detach user policy", ActionKind::Revoke, target(USER_POLICY, &policy_user, Some(&arn))),
            Case::new("remove from group", ActionKind::Revoke, target(GROUP_MEMBERSHIP, &group_user, Some(&group))),
            Case::new("deactivate access key", ActionKind::Suspend, target(ACCESS_KEY, &key_user, Some(&key_id))),
            Case::new("delete login profile", ActionKind::Revoke, target(LOGIN_PROFILE, &login_user, None)),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        let resource = match grant_type {
            USER_POLICY => Some("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            GROUP_MEMBERSHIP => Some("no-such-group"),
            ACCESS_KEY => Some("AKIANOSUCHKEY0000000"),
            _ => None,
        };
        target(grant_type, &fresh("no-such-user"), resource)
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let auth = AuthMoto::start()?;
        // Until `enforce`, moto accepts any credentials: seed a reader that may only read,
        // and a user with an access key for it to try to deactivate.
        let iam = moto::admin(&auth.url);
        let reader = fresh("reader");
        moto::user(&iam, &reader).await;
        let (reader_key, reader_secret) = moto::access_key(&iam, &reader).await;
        let read_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}"#;
        iam.put_user_policy()
            .user_name(&reader)
            .policy_name("read-only")
            .policy_document(read_only)
            .send()
            .await
            .unwrap();
        let victim = fresh("victim");
        moto::user(&iam, &victim).await;
        let (key_id, _) = moto::access_key(&iam, &victim).await;
        auth.enforce();
        let credentials = AwsCredentials::new(reader_key, SecretString::from(reader_secret));
        let connector = moto::connector(&auth.url, "aws-iam-reader", credentials, &[]);
        *self.auth.lock().unwrap() = Some(auth);
        Some((
            Arc::new(connector),
            Case::new("deactivate without permission", ActionKind::Suspend, target(ACCESS_KEY, &victim, Some(&key_id))),
        ))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        let user = self.admin.get_user().user_name(&self.breakglass).send().await.unwrap();
        let arn = user.user().unwrap().arn().to_owned();
        vec![AliasCase::new(
            "the user's ARN",
            ActionKind::Revoke,
            target(LOGIN_PROFILE, &self.breakglass, None),
            target(LOGIN_PROFILE, &arn, None),
        )]
    }

    fn requests_served(&self) -> Option<u64> {
        None
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(50)
    }
}

#[test]
fn aws_iam_passes_the_semantic_suite_against_moto() {
    let Some(url) = moto::url("aws_iam_passes_the_semantic_suite_against_moto") else {
        return;
    };
    let admin = moto::admin(&url);
    let breakglass = fresh("breakglass");
    block_on(async {
        moto::user(&admin, &breakglass).await;
        admin.create_login_profile().user_name(&breakglass).password("Initial-Passw0rd!").send().await.unwrap();
    });
    let subject = Moto { admin, url, credentials: moto::dummy_credentials(), breakglass, auth: Mutex::new(None) };
    block_on(conformance::semantic(&subject));
}
