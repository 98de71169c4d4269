//! Access key rotation through the real binary against moto, from the scanners' key-age
//! findings: the new key is handed over in Secrets Manager and the old one deactivated; the
//! deletion of the old key follows as its own action, not before the rollback window closes;
//! the new secret is nowhere in the installation's files or output; a rollback cancels the
//! follow-up; and a process killed between `CreateAccessKey` and the storing of the secret
//! leaves no key nobody holds.

use std::time::{Duration, Instant};

use remediation_e2e::Env;
use serde_json::{Value, json};

use crate::posture::{
    Moto, asff_finding, aws_env, moto_query, moto_request, prowler_entry, state, suggest_one, two_person_rollback,
    unique, write_doc, xml_text,
};

fn iam(addr: &str, action: &str, params: &str) -> String {
    moto_query(addr, "iam", "2010-05-08", action, params)
}

/// A new IAM user on moto with one access key: the user's name, ARN and key id.
fn user_with_key(m: &Moto) -> (String, String, String) {
    let user = unique("e2e-rotate");
    let made = iam(&m.addr, "CreateUser", &format!("UserName={user}"));
    let arn = xml_text(&made, "Arn").expect("moto test setup").to_owned();
    let key = iam(&m.addr, "CreateAccessKey", &format!("UserName={user}"));
    (user, arn, xml_text(&key, "AccessKeyId").expect("moto test setup").to_owned())
}

/// The `(id, status)` of each of the user's keys.
fn keys(m: &Moto, user: &str) -> Vec<(String, String)> {
    let xml = iam(&m.addr, "ListAccessKeys", &format!("UserName={user}"));
    xml.split("<member>")
        .skip(1)
        .map(|k| {
            let field = |tag| xml_text(k, tag).expect("moto test setup").to_owned();
            (field("AccessKeyId"), field("Status"))
        })
        .collect()
}

/// The current value of the secret `name` as JSON, or `None` when there is no such secret.
fn secret(m: &Moto, name: &str) -> Option<Value> {
    let body = json!({"SecretId": name, "VersionStage": "AWSCURRENT"}).to_string();
    let headers = [("X-Amz-Target", "secretsmanager.GetSecretValue"), ("Content-Type", "application/x-amz-json-1.1")];
    let (status, answer) = moto_request(&m.addr, "POST", "/", "secretsmanager", &headers, &body);
    if status != 200 {
        assert!(answer.contains("ResourceNotFoundException"), "{status} {answer}");
        return None;
    }
    let v: Value = serde_json::from_str(&answer).expect("moto test setup");
    Some(serde_json::from_str(v["SecretString"].as_str().expect("moto test setup")).expect("moto test setup"))
}

/// Every file under `dir`, read whole.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the data directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The action that follows `id`, from `list`.
fn follow_up_of(env: &Env, id: &str) -> Value {
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    let ids: Vec<String> =
        list.as_array().expect("a list").iter().filter_map(|a| a["id"].as_str().map(str::to_owned)).collect();
    ids.iter()
        .map(|other| env.expect("local:bob", &["show", other, "--output", "json"], 0).json())
        .find(|d| d["follows"] == id)
        .unwrap_or_else(|| panic!("no action follows {id}: {list}"))
}

/// Prowler's key-age finding about a user on moto: planned as a rotation of the user's oldest
/// key; approved and executed, the new key is in Secrets Manager and the old one inactive; the
/// secret shows up in no file of the installation and in no output; the deletion of the old
/// key is a separate action that waits for its own approval and for the rollback window; the
/// two-person rollback reactivates the old key, removes the secret and the new key, and
/// cancels the deletion.
#[test]
fn a_prowler_key_age_finding_rotates_the_key_and_schedules_the_old_ones_deletion() {
    let Some(m) = Moto::require("a_prowler_key_age_finding_rotates_the_key_and_schedules_the_old_ones_deletion") else {
        return;
    };
    let env = aws_env(&m.url, "");
    let (user, arn, old) = user_with_key(&m);
    let doc = write_doc(&env, "prowler.json", &prowler_entry("iam_rotate_access_key_90_days", &arn, &user));
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["kind"]["type"], "rotate", "{shown}");
    assert_eq!(shown["action"]["target"]["identity"], arn.as_str(), "{shown}");
    let plan = shown["plan"]["description"].as_str().unwrap_or_default();
    assert!(plan.contains(&old) && plan.contains(&format!("remediation/iam/{user}")), "{plan}");

    env.expect("local:bob", &["approve", &id], 0);
    let executed = env.expect("local:bob", &["execute", &id, "--output", "json"], 0);
    assert_eq!(executed.json()["outcome"], "completed", "{}", executed.stdout);
    let now = keys(&m, &user);
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now.iter().find(|(k, _)| *k == old).map(|(_, s)| s.as_str()), Some("Inactive"));
    let (new, status) = now.iter().find(|(k, _)| *k != old).cloned().expect("a new key");
    assert_eq!(status, "Active");
    let handed = secret(&m, &format!("remediation/iam/{user}")).expect("the secret");
    assert_eq!(handed["AccessKeyId"], new.as_str());
    let value = handed["SecretAccessKey"].as_str().expect("a secret access key").to_owned();

    // The deletion follows as its own action: an irreversible change still asks for a person.
    let follow = follow_up_of(&env, &id);
    let follow_id = follow["action"]["id"].as_str().expect("id").to_owned();
    assert_eq!(follow["action"]["kind"]["type"], "revoke", "{follow}");
    assert_eq!(follow["action"]["target"]["grant"], old.as_str(), "{follow}");
    assert_eq!(follow["action"]["state"], "pending_approval", "{follow}");
    let rollback_ends = shown_rollback_end(&env, &id);
    assert_eq!(follow["not_before"], rollback_ends, "{follow}");
    let table = env.expect("local:bob", &["show", &follow_id], 0).stdout;
    assert!(table.contains(&format!("follows    {id}; runs once its rollback window has closed")), "{table}");
    env.expect("local:root", &["approve", &follow_id], 0);
    let early = env.expect("local:root", &["execute", &follow_id], 3);
    assert!(early.stderr.contains("not before"), "{}", early.stderr);
    assert_eq!(keys(&m, &user).len(), 2, "nothing deleted early");

    // The secret is in Secrets Manager only.
    for (path, bytes) in files(env.dir()) {
        assert!(!contains(&bytes, &value), "the new secret is in {}", path.display());
    }
    for shown in [&executed.stdout, &executed.stderr] {
        assert!(!shown.contains(&value), "the new secret was printed");
    }
    for args in [&["show", id.as_str(), "--output", "json"][..], &["audit", "export"][..], &["list"][..]] {
        let run = env.run_as("local:bob", args);
        assert!(!run.stdout.contains(&value) && !run.stderr.contains(&value), "`{}` shows the secret", args.join(" "));
    }

    two_person_rollback(&env, &id, || assert_eq!(keys(&m, &user).len(), 2));
    assert_eq!(keys(&m, &user), [(old, "Active".to_owned())], "the old key works again, the new one is gone");
    assert_eq!(secret(&m, &format!("remediation/iam/{user}")), None, "the secret the rotation created is gone");
    assert_eq!(state(&env, &follow_id), "cancelled", "nothing is left to delete");
}

fn shown_rollback_end(env: &Env, id: &str) -> Value {
    env.expect("local:bob", &["show", id, "--output", "json"], 0).json()["rollback_expires_at"].clone()
}

/// Security Hub IAM.3 about a user on moto; the process executing it is killed right after
/// `CreateAccessKey`, before the secret is stored: the key it made is held by nobody. The next
/// recovery deletes that key, runs the rotation again and completes it: two keys in the end
/// (the old one inactive, a new one in the secret), the orphan gone, the audit chain intact.
#[test]
fn a_rotation_killed_after_create_access_key_leaves_no_orphan() {
    let Some(m) = Moto::require("a_rotation_killed_after_create_access_key_leaves_no_orphan") else {
        return;
    };
    let env = aws_env(&m.url, "");
    let (user, arn, old) = user_with_key(&m);
    let doc = write_doc(&env, "asff.json", &asff_finding("/IAM.3/", &arn, &user));
    let (id, shown) = suggest_one(&env, &doc);
    assert_eq!(shown["action"]["control_id"], "IAM.3", "{shown}");
    env.expect("local:bob", &["approve", &id], 0);

    crate::crash::kill_at(&env, "local:bob", "aws_rotate_after_create_access_key", &["execute", &id]);
    assert_eq!(state(&env, &id), "executing");
    let left = keys(&m, &user);
    assert_eq!(left.len(), 2, "the killed process created a key: {left:?}");
    let orphan = left.iter().find(|(k, _)| *k != old).map(|(k, _)| k.clone()).expect("the orphan");
    assert_eq!(secret(&m, &format!("remediation/iam/{user}")), None, "never stored");

    // Recovery waits for the dead worker's lease to expire, then settles the action.
    let started = Instant::now();
    let mut recovered = Vec::new();
    while state(&env, &id) == "executing" {
        assert!(started.elapsed() < Duration::from_secs(20), "still executing");
        let run = env.expect("local:dave", &["recover", "--output", "json"], 0);
        recovered.extend(run.json().as_array().cloned().unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["to"], "completed", "{recovered:?}");
    let note = recovered[0]["note"].as_str().unwrap_or_default();
    assert!(note.contains(&format!("deleted access key {orphan}")), "{note}");

    let end = keys(&m, &user);
    assert_eq!(end.len(), 2, "{end:?}");
    assert!(end.iter().all(|(k, _)| *k != orphan), "the orphan is gone: {end:?}");
    assert_eq!(end.iter().find(|(k, _)| *k == old).map(|(_, s)| s.as_str()), Some("Inactive"));
    let new = end.iter().find(|(k, _)| *k != old).map(|(k, _)| k.clone()).expect("the new key");
    let handed = secret(&m, &format!("remediation/iam/{user}")).expect("stored");
    assert_eq!(handed["AccessKeyId"], new.as_str());
    let verify = env.expect("local:bob", &["audit", "verify", "--output", "json"], 0).json();
    assert!(verify["first_break"].is_null(), "{verify}");
    let trail = env.expect("local:bob", &["audit", "export"], 0).stdout;
    assert!(trail.contains("interrupted_change_settled"), "the settling writes are in the trail");
}

/// After a rotation, someone puts the old key back in use by hand: undoing the rotation now
/// would delete the key the secret hands out while the old one stays active, so the rollback
/// is refused, names the change, and both keys stay as they are.
#[test]
fn a_rotation_changed_by_hand_is_not_rolled_back() {
    let Some(m) = Moto::require("a_rotation_changed_by_hand_is_not_rolled_back") else {
        return;
    };
    let env = aws_env(&m.url, "");
    let (user, arn, old) = user_with_key(&m);
    let doc = write_doc(&env, "prowler.json", &prowler_entry("iam_rotate_access_key_90_days", &arn, &user));
    let (id, _) = suggest_one(&env, &doc);
    env.expect("local:bob", &["approve", &id], 0);
    env.expect("local:bob", &["execute", &id], 0);
    iam(&m.addr, "UpdateAccessKey", &format!("UserName={user}&AccessKeyId={old}&Status=Active"));
    let by_hand = keys(&m, &user);
    let refused = env.expect("local:bob", &["rollback", &id], 3);
    assert!(refused.stderr.contains("drift") && refused.stderr.contains("/status"), "{}", refused.stderr);
    assert_eq!(keys(&m, &user), by_hand, "a refused rollback changed the keys");
    assert_eq!(state(&env, &id), "completed");
}
