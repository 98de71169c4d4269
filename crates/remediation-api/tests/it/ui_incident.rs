//! The console's incident pages through the router: a person's accounts, responding as a
//! responder (and refused to everyone else), CSRF, playbook runs asked for, approved from the
//! run page by another principal and completed, and escaping of what the caller typed.

use axum::http::{Method, StatusCode};
use remediation_core::{PrincipalKind, Role};

use crate::support::{Env, run_store};
use crate::ui::Browser;

const ALICE: &str = "alice@example.com";

/// The test installation with a principal `responder` holding a token of that name.
fn env_with_responder() -> Env {
    let mut env = Env::new();
    let runtime = env.state.runtime().clone();
    let admin = remediation_core::Actor::new("local:test", Role::Admin);
    let now = runtime.clock().now();
    run_store(runtime.store().create_principal("responder", PrincipalKind::Person, Role::Responder, &admin, now))
        .unwrap();
    env.add_token("responder", "responder");
    env
}

async fn signed_in(env: &Env, who: &str) -> Browser {
    let mut b = Browser::new(env.app.clone());
    b.sign_in(env.token(who)).await;
    b
}

/// The value of the hidden input `name` in the page.
fn hidden(body: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let rest = body.split(&needle).nth(1).unwrap_or_else(|| panic!("no {name}: {body}"));
    rest.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_responder_sees_alices_accounts_and_cuts_her_sessions() {
    let env = env_with_responder();
    let mut b = signed_in(&env, "responder").await;
    let page = b.open("/ui/respond").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"nav-respond\" class=\"active\""), "the nav marks the page");
    assert!(!page.body.contains("id=\"accounts\""), "nothing looked up yet");

    let page = b.open("/ui/respond?person=alice%40example.com").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"account-sandbox\""), "{}", page.body);
    let row = page.body.split("id=\"account-sandbox\"").nth(1).unwrap().split("</tr>").next().unwrap();
    for needle in ["sandbox", "<code>alice</code>", "admins", ">2<", "revoke_sessions", "suspend"] {
        assert!(row.contains(needle), "{needle} in {row}");
    }
    assert!(page.body.contains("id=\"respond\""), "a responder gets the form");
    let csrf = page.csrf();

    // Without the CSRF token, or with a wrong one, nothing happens.
    let form = |csrf: &'static str| {
        vec![("csrf", csrf), ("person", ALICE), ("revoke_sessions", "1"), ("reason", "password on a paste site")]
    };
    assert_eq!(b.post("/ui/respond", &form("")[1..]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.post("/ui/respond", &form("wrong")).await.status, StatusCode::FORBIDDEN);
    let (_, actions) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(actions["items"].as_array().unwrap().len(), 0, "{actions}");

    let res = b
        .post(
            "/ui/respond",
            &[
                ("csrf", &csrf),
                ("person", ALICE),
                ("revoke_sessions", "1"),
                ("reason", "password on a paste site"),
                ("finding", "F-leak-1"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let outcome = res.body.split("id=\"result\"").nth(1).unwrap_or_else(|| panic!("no outcome: {}", res.body));
    assert!(outcome.contains("id=\"outcome\">completed<"), "{outcome}");
    assert!(outcome.contains("Every applicable step completed."), "{outcome}");
    let steps = outcome.split("id=\"outcome-steps\"").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(steps.contains("revoke_sessions") && steps.contains("state-completed"), "{steps}");
    // The action is linked by its handle.
    let (_, actions) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    let action = &actions["items"][0];
    assert_eq!(action["state"], "completed", "{actions}");
    let link = format!("<a href=\"/ui/actions/{}\">#{}</a>", action["id"].as_str().unwrap(), action["handle"]);
    assert!(steps.contains(&link), "{link} in {steps}");
    assert!(res.body.contains("id=\"respond-reason\" value=\"\""), "the form comes back empty");
    assert!(!res.body.contains("id=\"kind-revoke_sessions\" value=\"1\" checked"));
    // The accounts are read again: no session is left.
    let row = res.body.split("id=\"account-sandbox\"").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains(">0<"), "{row}");

    // Nothing ticked: the service's words.
    let res = b.post("/ui/respond", &[("csrf", &csrf), ("person", ALICE), ("reason", "again")]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("name at least one action"), "{}", res.body);
}

#[tokio::test]
async fn viewers_requesters_and_approvers_see_the_accounts_without_the_respond_form() {
    let env = env_with_responder();
    for who in ["viewer", "requester", "approver"] {
        let mut b = signed_in(&env, who).await;
        let page = b.open("/ui/respond?person=alice%40example.com").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("id=\"account-sandbox\""), "{who}: {}", page.body);
        assert!(!page.body.contains("id=\"respond\""), "{who} gets no form");
        assert!(page.body.contains("id=\"respond-note\""), "{who}: {}", page.body);
        // A forged post with the caller's own valid token: the service refuses the role.
        let csrf = page.csrf();
        let res = b
            .post("/ui/respond", &[("csrf", &csrf), ("person", ALICE), ("revoke_sessions", "1"), ("reason", "forged")])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{who}: {}", res.body);
        assert!(res.body.contains("responding needs the responder or admin role"), "{who}: {}", res.body);
        assert!(!res.body.contains("id=\"result\""));
    }
    let (_, actions) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    assert_eq!(actions["items"].as_array().unwrap().len(), 0, "nothing was done: {actions}");
    // The viewer cannot plan a run either, and is told why.
    let mut v = signed_in(&env, "viewer").await;
    let page = v.open("/ui/playbooks?playbook=compromised-account&person=alice%40example.com&reason=x").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!page.body.contains("id=\"request-run\""));
}

#[tokio::test]
async fn a_run_is_requested_approved_by_another_principal_and_completes() {
    let env = env_with_responder();
    let mut r = signed_in(&env, "requester").await;
    let page = r.open("/ui/playbooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"playbook-compromised-account\"") && page.body.contains("id=\"plan-form\""));
    let page =
        r.open("/ui/playbooks?playbook=compromised-account&person=alice%40example.com&reason=account+takeover").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let hash = hidden(&page.body, "plan_hash");
    assert!(page.body.contains(&format!("<code id=\"plan-hash\">{hash}</code>")));
    for n in 1..=5 {
        assert!(page.body.contains(&format!("id=\"step-{n}\"")), "step {n}: {}", page.body);
    }
    assert!(page.body.contains("class=\"diff\""), "each step shows its change");
    // A changed plan is refused: the page shows the plan as it is now.
    let stale = r
        .post(
            "/ui/playbooks/run",
            &[
                ("csrf", &page.csrf()),
                ("playbook", "compromised-account"),
                ("person", ALICE),
                ("reason", "account takeover"),
                ("plan_hash", "0000"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale.body.contains("the plan changed since it was shown") && stale.body.contains(&hash));
    // The shown plan is asked for.
    let res = r
        .post(
            "/ui/playbooks/run",
            &[
                ("csrf", &page.csrf()),
                ("playbook", "compromised-account"),
                ("person", ALICE),
                ("reason", "account takeover"),
                ("plan_hash", &hash),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let path = res.location().to_owned();
    assert!(path.starts_with("/ui/runs/run-"), "{path}");
    let page = r.open(&path).await;
    assert!(page.body.contains("requested; it waits for 1 approval"), "{}", page.body);
    assert!(page.body.contains("id=\"run-state\">pending_approval<"));
    assert!(!page.body.contains("id=\"form-approve\""), "the requester does not approve its own run");
    assert!(page.body.contains("id=\"approve-note\">Approvers and admins approve runs."), "{}", page.body);
    // A requester's forged approval is refused by the service.
    let forged = r.post(&format!("{path}/approve"), &[("csrf", &page.csrf()), ("plan_hash", &hash)]).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    assert!(r.open(&path).await.body.contains("Not done:"), "refused");
    let list = r.open("/ui/runs").await;
    assert!(list.body.contains("id=\"nav-runs\" class=\"active\""));
    let id = path.trim_start_matches("/ui/runs/");
    let row = list.body.split(&format!("id=\"run-{id}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
    for needle in ["compromised-account v1", ALICE, "pending_approval", "requester", "0/5"] {
        assert!(row.contains(needle), "{needle} in {row}");
    }

    // Another principal approves what the page shows.
    let mut a = signed_in(&env, "approver").await;
    let page = a.open(&path).await;
    assert!(page.body.contains("id=\"form-approve\"") && page.body.contains("id=\"form-reject\""), "{}", page.body);
    assert_eq!(hidden(&page.body, "plan_hash"), hash);
    let csrf = page.csrf();
    let res = a.post(&format!("{path}/approve"), &[("plan_hash", &hash)]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "no CSRF token");
    let res = a.post(&format!("{path}/approve"), &[("csrf", &csrf), ("plan_hash", "0000")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let page = a.open(&path).await;
    assert!(page.body.contains("Not done:") && page.body.contains("look at the new plan"), "{}", page.body);
    assert!(page.body.contains("id=\"run-state\">pending_approval<"));
    let res = a.post(&format!("{path}/approve"), &[("csrf", &csrf), ("plan_hash", &hash), ("note", "looked")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), path);
    let page = a.open(&path).await;
    assert!(page.body.contains("is now completed"), "{}", page.body);
    assert!(page.body.contains("id=\"run-state\">completed<"), "{}", page.body);
    assert!(page.body.contains("id=\"approvals\">1/1 (approver)"), "{}", page.body);
    for n in 1..=5 {
        let step = page.body.split(&format!("id=\"step-{n}\"")).nth(1).unwrap().split("</tr>").next().unwrap();
        assert!(step.contains("state-completed") && step.contains("href=\"/ui/actions/"), "step {n}: {step}");
    }
    assert!(page.body.contains("approved by approver (looked)"), "the report: {}", page.body);
    assert!(page.body.contains("id=\"form-rollback\""), "a completed run may be rolled back");
    assert!(!page.body.contains("id=\"form-approve\""));
    let list = a.open("/ui/runs").await;
    assert!(list.body.contains("5/5"), "{}", list.body);

    // Rolling back takes two principals, the reason each time.
    let res = a.post(&format!("{path}/rollback"), &[("csrf", &csrf), ("reason", "")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(a.open(&path).await.body.contains("a reason is required"));
    a.post(&format!("{path}/rollback"), &[("csrf", &csrf), ("reason", "wrong person")]).await;
    let page = a.open(&path).await;
    assert!(page.body.contains("id=\"run-state\">rollback_requested<"), "{}", page.body);
    assert!(!page.body.contains("id=\"form-rollback\""), "who asked does not approve it");
    let mut a2 = signed_in(&env, "approver2").await;
    let page = a2.open(&path).await;
    assert!(page.body.contains("Approve the rollback"), "{}", page.body);
    a2.post(&format!("{path}/rollback"), &[("csrf", &page.csrf()), ("reason", "agreed")]).await;
    let page = a2.open(&path).await;
    assert!(page.body.contains("id=\"run-state\">rolled_back<"), "{}", page.body);
    assert!(page.body.contains("state-not_undoable") && page.body.contains("state-rolled_back"), "{}", page.body);
}

#[tokio::test]
async fn a_rejected_run_and_unknown_runs_and_buttons() {
    let env = env_with_responder();
    let mut r = signed_in(&env, "responder").await;
    let page = r.open("/ui/playbooks?playbook=offboard-leaver&person=bob%40example.com&reason=leaves").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let hash = hidden(&page.body, "plan_hash");
    let form = [
        ("csrf", page.csrf()),
        ("playbook", "offboard-leaver".to_owned()),
        ("person", "bob@example.com".to_owned()),
        ("reason", "leaves".to_owned()),
        ("plan_hash", hash),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = r.post("/ui/playbooks/run", &form).await.location().to_owned();
    let mut a = signed_in(&env, "approver").await;
    let csrf = a.open(&path).await.csrf();
    assert_eq!(a.post(&format!("{path}/reject"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let page = a.open(&path).await;
    assert!(page.body.contains("id=\"run-state\">rejected<") && !page.body.contains("id=\"form-reject\""));
    assert_eq!(a.post(&format!("{path}/explode"), &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(a.open("/ui/runs/run-nope").await.status, StatusCode::NOT_FOUND);
    // A refused button on a run that does not exist goes back to the list.
    let res = a.post("/ui/runs/..%2F..%2Fx/resume", &[("csrf", &csrf)]).await;
    assert_eq!((res.status, res.location()), (StatusCode::SEE_OTHER, "/ui/runs"));
}

#[tokio::test]
async fn what_the_caller_typed_is_escaped() {
    const HOSTILE: &str = "<script>alert(1)</script>";
    let env = env_with_responder();
    let mut b = signed_in(&env, "responder").await;
    let page = b.open("/ui/respond?person=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(!page.body.contains(HOSTILE), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", page.body);
    let csrf = page.csrf();
    let res = b
        .post(
            "/ui/respond",
            &[
                ("csrf", &csrf),
                ("person", HOSTILE),
                ("revoke_sessions", "1"),
                ("reason", HOSTILE),
                ("finding", HOSTILE),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(!res.body.contains(HOSTILE), "{}", res.body);
    let page = b.open("/ui/playbooks?playbook=%3Cscript%3E&person=%3Cscript%3Ealert(1)%3C%2Fscript%3E&reason=x").await;
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;"), "{}", page.body);
}
