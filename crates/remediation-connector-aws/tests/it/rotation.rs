//! Access key rotation against moto: the new key is handed over in Secrets Manager and proved
//! by STS before the old one is deactivated; a rollback reactivates the old key, puts the
//! secret back and deletes the new key; the follow-up deletes only an inactive key; drift and
//! a missing key slot are refused; the new secret never shows in output, errors or `Debug`;
//! and a crash between `CreateAccessKey` and the storing of the secret leaves no orphan.

use std::sync::Arc;

use remediation_connector_aws::{AFTER_CREATE_ACCESS_KEY, AwsConnector, IAM_ACCESS_KEY};
use remediation_core::{Action, ActionKind, Connector, ConnectorErrorKind, OutcomeStatus, Target};
use remediation_testkit::ActionBuilder;
use serde_json::{Value, json};

use crate::block_on;
use crate::moto::{self, Seed, fresh};

fn key_action(kind: ActionKind, identity: &str, key: Option<&str>) -> Action {
    let target = Target {
        identity: identity.into(),
        resource: None,
        grant: key.map(Into::into),
        grant_type: IAM_ACCESS_KEY.into(),
    };
    ActionBuilder::new().connector("aws").kind(kind).target(target).build()
}

fn setup(test: &str) -> Option<(AwsConnector, Seed)> {
    let url = moto::url(test)?;
    Some((moto::connector(&url, moto::dummy_credentials(), &[]), Seed::new(&url)))
}

async fn secret_value(seed: &Seed, name: &str) -> Value {
    let v = seed.secrets("GetSecretValue", json!({"SecretId": name, "VersionStage": "AWSCURRENT"})).await;
    serde_json::from_str(v["SecretString"].as_str().unwrap()).unwrap()
}

#[test]
fn a_rotation_hands_over_a_proved_key_and_rolls_back_exactly() {
    let Some((c, seed)) = setup("a_rotation_hands_over_a_proved_key_and_rolls_back_exactly") else { return };
    block_on(async {
        let user = fresh("rotate");
        let (arn, old) = seed.iam_user_with_key(&user).await;
        // Named by ARN and without a key id, as a scanner names it: the user's oldest key.
        let a = key_action(ActionKind::Rotate, &arn, None);
        let before = c.snapshot(&a.target).await.unwrap();
        let secret = format!("remediation/iam/{user}");
        assert_eq!(
            before.state,
            json!({"user": user, "key_id": old, "status": "Active", "other_key": null,
                   "secret": {"name": secret, "version": null}})
        );
        assert_eq!(before.canonical.as_ref().and_then(|c| c.resource.as_deref()), Some(old.as_str()));
        let planned = c.plan(&a, &before).await.unwrap();
        assert!(planned.description.contains(&secret), "{}", planned.description);
        assert!(planned.description.contains("follow-up"), "{}", planned.description);
        assert_eq!(c.reach(&a, &before).await.unwrap(), Some(1));

        let out = c.execute(&a, &before).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::Applied);
        assert!(out.request_ids.len() >= 3, "create, store, deactivate: {:?}", out.request_ids);
        let v = c.verify(&a, &planned).await.unwrap();
        assert!(v.matches, "{} vs {}", v.observed.state, planned.expected_after.state);
        let after = v.observed;
        let new = after.state["other_key"]["key_id"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert_eq!(seed.keys(&user).await, [(old.clone(), "Inactive".into()), (new.clone(), "Active".into())]);
        let held = secret_value(&seed, &secret).await;
        assert_eq!(held["AccessKeyId"], json!(new));
        let handed = held["SecretAccessKey"].as_str().unwrap().to_owned();
        assert!(handed.len() >= 20);
        // The new secret is nowhere but in Secrets Manager.
        for shown in [
            format!("{c:?}"),
            format!("{out:?}"),
            planned.description.clone(),
            after.state.to_string(),
            format!("{after:?}"),
        ] {
            assert!(!shown.contains(&handed), "the new secret leaked: {shown}");
        }
        // Selecting by "oldest" still means the old key after the rotation.
        assert_eq!(c.snapshot(&a.target).await.unwrap(), after);
        assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);

        let follow = c.follow_up(&a, &after).unwrap();
        assert_eq!(follow.kind, ActionKind::Revoke);
        assert_eq!(follow.target.grant.as_deref(), Some(old.as_str()));
        assert_eq!(follow.target.identity, user);

        let undone = c.rollback(&a, &before, &after).await.unwrap();
        assert_eq!(undone.status, OutcomeStatus::Applied);
        assert_eq!(c.snapshot(&a.target).await.unwrap(), before, "rollback restores the key and removes the secret");
        assert_eq!(seed.keys(&user).await, [(old, "Active".into())]);
    });
}

#[test]
fn a_rollback_puts_an_existing_secret_back_at_its_previous_version() {
    let Some((c, seed)) = setup("a_rollback_puts_an_existing_secret_back_at_its_previous_version") else { return };
    block_on(async {
        let user = fresh("rotate-again");
        let (_, old) = seed.iam_user_with_key(&user).await;
        let secret = format!("remediation/iam/{user}");
        let made = seed
            .secrets("CreateSecret", json!({"Name": secret, "SecretString": "{\"AccessKeyId\": \"AKIAEARLIERKEY00\"}"}))
            .await;
        let v0 = made["VersionId"].as_str().unwrap().to_owned();
        let a = key_action(ActionKind::Rotate, &user, Some(&old));
        let before = c.snapshot(&a.target).await.unwrap();
        assert_eq!(before.state["secret"]["version"], json!(v0));
        let planned = c.plan(&a, &before).await.unwrap();
        c.execute(&a, &before).await.unwrap();
        let after = c.verify(&a, &planned).await.unwrap().observed;
        assert_ne!(after.state["secret"]["version"], json!(v0), "a new version");
        c.rollback(&a, &before, &after).await.unwrap();
        assert_eq!(c.snapshot(&a.target).await.unwrap(), before);
        assert_eq!(secret_value(&seed, &secret).await["AccessKeyId"], json!("AKIAEARLIERKEY00"));
    });
}

#[test]
fn the_follow_up_deletes_only_an_inactive_key_and_a_deleted_key_cannot_come_back() {
    let Some((c, seed)) = setup("the_follow_up_deletes_only_an_inactive_key_and_a_deleted_key_cannot_come_back") else {
        return;
    };
    block_on(async {
        let user = fresh("rotate-delete");
        let (_, old) = seed.iam_user_with_key(&user).await;
        let delete = key_action(ActionKind::Revoke, &user, Some(&old));
        let active = c.snapshot(&delete.target).await.unwrap();
        let err = c.plan(&delete, &active).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Conflict);
        assert!(err.message.contains("only once it is inactive"), "{err}");

        let rotate = key_action(ActionKind::Rotate, &user, Some(&old));
        let before = c.snapshot(&rotate.target).await.unwrap();
        c.execute(&rotate, &before).await.unwrap();
        let after = c.snapshot(&rotate.target).await.unwrap();
        let follow = c.follow_up(&rotate, &after).unwrap();
        let delete = ActionBuilder::new().connector("aws").kind(follow.kind).target(follow.target).build();
        let inactive = c.snapshot(&delete.target).await.unwrap();
        let planned = c.plan(&delete, &inactive).await.unwrap();
        assert!(planned.description.contains("Irreversible"), "{}", planned.description);
        assert_eq!(c.execute(&delete, &inactive).await.unwrap().status, OutcomeStatus::Applied);
        assert!(c.verify(&delete, &planned).await.unwrap().matches);
        let new = after.state["other_key"]["key_id"].as_str().unwrap().to_owned();
        assert_eq!(seed.keys(&user).await, [(new, "Active".into())]);
        // The rotation can no longer be undone: its old key is gone.
        let err = c.rollback(&rotate, &before, &after).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Conflict);
        assert!(err.message.contains("nothing left to reactivate"), "{err}");
    });
}

#[test]
fn a_full_key_slot_and_drift_are_refused() {
    let Some((c, seed)) = setup("a_full_key_slot_and_drift_are_refused") else { return };
    block_on(async {
        let user = fresh("rotate-full");
        let (_, old) = seed.iam_user_with_key(&user).await;
        seed.query("iam", &[("Action", "CreateAccessKey"), ("UserName", &user)]).await;
        let a = key_action(ActionKind::Rotate, &user, Some(&old));
        let before = c.snapshot(&a.target).await.unwrap();
        let err = c.plan(&a, &before).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Conflict);
        assert!(err.message.contains("second access key"), "{err}");
        assert!(c.execute(&a, &before).await.is_err(), "execute refuses as the plan does");
        assert_eq!(seed.keys(&user).await.len(), 2, "nothing created");

        let user = fresh("rotate-drift");
        let (_, old) = seed.iam_user_with_key(&user).await;
        let a = key_action(ActionKind::Rotate, &user, Some(&old));
        let before = c.snapshot(&a.target).await.unwrap();
        c.execute(&a, &before).await.unwrap();
        let after = c.snapshot(&a.target).await.unwrap();
        // Someone puts the old key back in use by hand.
        seed.query(
            "iam",
            &[("Action", "UpdateAccessKey"), ("UserName", &user), ("AccessKeyId", &old), ("Status", "Active")],
        )
        .await;
        let drifted = c.snapshot(&a.target).await.unwrap();
        let err = c.rollback(&a, &before, &after).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Conflict);
        assert!(err.message.contains("changed since"), "{err}");
        assert_eq!(c.snapshot(&a.target).await.unwrap(), drifted, "a refused rollback wrote");
    });
}

#[test]
fn the_key_the_connector_signs_with_is_never_rotated_nor_deleted() {
    let Some(url) = moto::url("the_key_the_connector_signs_with_is_never_rotated_nor_deleted") else { return };
    let seed = Seed::new(&url);
    block_on(async {
        let user = fresh("rotate-self");
        let (_, own) = seed.iam_user_with_key(&user).await;
        let credentials = remediation_connector_aws::AwsCredentials::new(
            own.clone(),
            secrecy::SecretString::from("moto-takes-any-secret".to_owned()),
        );
        let c = moto::connector(&url, credentials, &[]);
        for kind in [ActionKind::Rotate, ActionKind::Revoke] {
            let a = key_action(kind, &user, Some(&own));
            let before = c.snapshot(&a.target).await.unwrap();
            let err = c.plan(&a, &before).await.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::Conflict);
            assert!(err.message.contains("the one this connector signs with"), "{err}");
            assert!(c.execute(&a, &before).await.is_err());
        }
        assert_eq!(seed.keys(&user).await, [(own, "Active".into())], "nothing changed");
    });
}

#[test]
fn a_user_named_by_another_accounts_arn_is_not_this_accounts_namesake() {
    let Some((c, seed)) = setup("a_user_named_by_another_accounts_arn_is_not_this_accounts_namesake") else {
        return;
    };
    block_on(async {
        let user = fresh("rotate-arn");
        let (arn, _) = seed.iam_user_with_key(&user).await;
        let elsewhere = arn.replacen(&arn[13..25], "999999999999", 1);
        assert_ne!(elsewhere, arn);
        let a = key_action(ActionKind::Rotate, &elsewhere, None);
        let err = c.snapshot(&a.target).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");
    });
}

#[test]
fn a_crash_after_create_access_key_is_settled_without_an_orphan() {
    let Some(url) = moto::url("a_crash_after_create_access_key_is_settled_without_an_orphan") else { return };
    let seed = Seed::new(&url);
    let crashing = moto::connector(&url, moto::dummy_credentials(), &[]).with_failpoints(Some(Arc::new(|name| {
        if name == AFTER_CREATE_ACCESS_KEY {
            panic!("simulated crash at {name}");
        }
    })));
    let c = moto::connector(&url, moto::dummy_credentials(), &[]);
    block_on(async {
        let user = fresh("rotate-crash");
        let (_, old) = seed.iam_user_with_key(&user).await;
        let mut a = key_action(ActionKind::Rotate, &user, Some(&old));
        // The execution began now (its `executing` transition's time).
        a.updated_at = time::OffsetDateTime::now_utc();
        let before = c.snapshot(&a.target).await.unwrap();
        let (action, snapshot) = (a.clone(), before.clone());
        let died = tokio::spawn(async move { crashing.execute(&action, &snapshot).await.map(|_| ()) }).await;
        assert!(died.unwrap_err().is_panic());
        let keys = seed.keys(&user).await;
        assert_eq!(keys.len(), 2, "the crash left a key nobody holds: {keys:?}");
        let live = c.snapshot(&a.target).await.unwrap();
        assert_eq!(live.state["other_key"]["handed_over"], json!(false));

        // A key created before the execution began is not the execution's to delete.
        let mut earlier = a.clone();
        earlier.updated_at = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        assert!(c.settle_interrupted(&earlier, &before, &live).await.unwrap().is_none());

        let settled = c.settle_interrupted(&a, &before, &live).await.unwrap().expect("settled");
        assert!(settled.note.contains("never confirmed"), "{}", settled.note);
        assert!(!settled.request_ids.is_empty());
        assert_eq!(seed.keys(&user).await, [(old, "Active".into())], "the orphan is gone");
        assert_eq!(c.snapshot(&a.target).await.unwrap(), before, "back to the before-state, ready to run again");
    });
}

/// A scripted AWS whose STS answers the new key with another identity (what an emulator does
/// for a key it does not know): the rotation stops before touching the old key, the secret it
/// created is deleted and the new key with it, and the error says so without the secret.
#[test]
fn a_new_key_that_signs_as_someone_else_is_taken_back() {
    use wiremock::matchers::{body_string_contains, header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const NEW_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    let xml = |body: &str| ResponseTemplate::new(200).set_body_string(body.to_owned());
    block_on(async {
        let server = MockServer::start().await;
        let query = |action: &str| Mock::given(method("POST")).and(body_string_contains(format!("Action={action}&")));
        let secrets =
            |op: &str| Mock::given(method("POST")).and(header("x-amz-target", format!("secretsmanager.{op}")));
        query("GetUser")
            .respond_with(xml(
                "<GetUserResponse><GetUserResult><User><UserName>alice</UserName><UserId>AIDAALICE</UserId>\
                <Arn>arn:aws:iam::123456789012:user/alice</Arn></User></GetUserResult></GetUserResponse>",
            ))
            .mount(&server)
            .await;
        query("ListAccessKeys")
            .respond_with(xml("<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata><member>\
                <AccessKeyId>AKIAOLD000000000</AccessKeyId><Status>Active</Status><CreateDate>2026-01-01T00:00:00Z</CreateDate>\
                </member></AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult></ListAccessKeysResponse>"))
            .mount(&server)
            .await;
        secrets("DescribeSecret")
            .respond_with(ResponseTemplate::new(400).set_body_string(
                r#"{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}"#,
            ))
            .mount(&server)
            .await;
        query("CreateAccessKey")
            .respond_with(xml(&format!("<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey><UserName>alice</UserName>\
                <AccessKeyId>AKIANEW000000000</AccessKeyId><Status>Active</Status><SecretAccessKey>{NEW_SECRET}</SecretAccessKey>\
                </AccessKey></CreateAccessKeyResult><ResponseMetadata><RequestId>REQ-CREATE</RequestId></ResponseMetadata>\
                </CreateAccessKeyResponse>")))
            .expect(1)
            .mount(&server)
            .await;
        secrets("CreateSecret")
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(r#"{"ARN": "arn:x", "Name": "remediation/iam/alice", "VersionId": "v1"}"#),
            )
            .expect(1)
            .mount(&server)
            .await;
        query("GetCallerIdentity")
            .respond_with(xml("<GetCallerIdentityResponse><GetCallerIdentityResult>\
                <Arn>arn:aws:iam::123456789012:user/moto</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"))
            .mount(&server)
            .await;
        secrets("DeleteSecret")
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .expect(1)
            .mount(&server)
            .await;
        query("DeleteAccessKey").respond_with(xml("<DeleteAccessKeyResponse/>")).expect(1).mount(&server).await;
        query("UpdateAccessKey").respond_with(xml("<UpdateAccessKeyResponse/>")).expect(0).mount(&server).await;

        let c = moto::connector(&server.uri(), moto::dummy_credentials(), &[]);
        let a = key_action(ActionKind::Rotate, "alice", Some("AKIAOLD000000000"));
        let before = c.snapshot(&a.target).await.unwrap();
        let err = c.execute(&a, &before).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
        assert!(err.message.contains("signs as arn:aws:iam::123456789012:user/moto"), "{err}");
        assert!(err.message.contains("was deleted again and nothing else changed"), "{err}");
        assert!(!format!("{err:?}").contains(NEW_SECRET), "the secret leaked into the error");
        // The new key signed its proof itself, and the secret went to Secrets Manager only.
        let requests = server.received_requests().await.unwrap();
        let proof = requests.iter().find(|r| String::from_utf8_lossy(&r.body).contains("GetCallerIdentity")).unwrap();
        let auth = proof.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(auth.contains("Credential=AKIANEW000000000/"), "{auth}");
        let carrying: Vec<_> = requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(NEW_SECRET))
            .map(|r| r.headers.get("x-amz-target").map(|h| h.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(carrying, [Some("secretsmanager.CreateSecret".to_owned())]);
    });
}
