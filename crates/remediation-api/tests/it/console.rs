//! The console through the router: the dashboard, the action list's filters and paging, the
//! action page's buttons by role (release and force-execute for admins with a reason, the
//! typed confirmation of irreversible or high-risk changes, CSRF), the reports download, and
//! hostile strings escaped on every page, the SVG charts included.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::Env;
use crate::ui::{Browser, Page};

/// The state of action `id`, through the API.
async fn state_of(env: &Env, id: &str) -> String {
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    view["action"]["state"].as_str().unwrap_or_default().to_owned()
}

/// A signed-in browser for `who`, and its CSRF token.
async fn signed(env: &Env, who: &str) -> (Browser, String) {
    let mut b = Browser::new(env.app.clone());
    let csrf = b.sign_in(env.token(who)).await.csrf();
    (b, csrf)
}

/// Posts `form` (with the CSRF token) to the button `button` of action `id`; asserts the 303
/// to the action's page and returns the flash shown there.
async fn press(b: &mut Browser, csrf: &str, id: &str, button: &str, form: &[(&str, &str)]) -> String {
    let mut fields = vec![("csrf", csrf)];
    fields.extend_from_slice(form);
    let res = b.post(&format!("/ui/actions/{id}/{button}"), &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{button}: {}", res.body);
    assert_eq!(res.location(), format!("/ui/actions/{id}"));
    flash(&b.open(res.location()).await)
}

/// The flash of a page (empty when none).
fn flash(page: &Page) -> String {
    page.body.split("id=\"flash\">").nth(1).and_then(|rest| rest.split("</p>").next()).unwrap_or_default().to_owned()
}

/// Suggests `body` as `who`; the new action's id.
async fn suggest(env: &Env, who: &str, body: Value) -> String {
    let (status, created) = env.call(Some(who), Method::POST, "/v1/actions", Some(body)).await;
    assert!(status.is_success(), "{created}");
    created["action"]["id"].as_str().unwrap().to_owned()
}

/// Ends sessions of alice (irreversible: high risk).
fn revoke_sessions(identity: &str) -> Value {
    json!({"connector": "sandbox", "kind": {"type": "revoke_sessions"}, "reason": "stolen laptop",
           "target": {"identity": identity, "grant_type": "account"}})
}

#[tokio::test]
async fn every_console_page_renders_for_a_viewer() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let finding = json!({"id": "F-1", "source": "t", "control_id": "CIS-1", "severity": "high", "title": "t",
        "target": {"identity": "alice", "resource": "engineering", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"}, "connector": "sandbox"});
    let body = json!({"name": "q4", "findings": [finding.clone(), finding]});
    let (status, created) = env.call(Some("requester"), Method::POST, "/v1/campaigns", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["campaign"]["outcomes"], json!({"created": 1, "existing": 1}), "{created}");
    let (mut b, _) = signed(&env, "viewer").await;
    for (path, needles) in [
        (
            "/",
            &[
                "<h2>Dashboard</h2>",
                "id=\"chart-outcomes\"",
                "id=\"chart-ttr\"",
                "chain verified",
                "Waiting for a decision (2)",
            ][..],
        ),
        ("/ui/actions", &["<h2>Actions</h2>", &format!("id=\"row-{id}\""), "state-pending_approval"][..]),
        (&format!("/ui/actions/{id}"), &["class=\"diff\"", "Rollback window", "Timeline", "risk-low"][..]),
        ("/ui/reports", &["<h2>Reports</h2>", "action=\"/ui/reports/compliance\""][..]),
        ("/ui/campaigns", &["<h2>Campaigns</h2>", "href=\"/ui/campaigns/q4\"", "2/2 (100 %)"][..]),
        (
            "/ui/campaigns/q4",
            &[
                "Campaign <code id=\"campaign-name\">q4</code>",
                "1 created, 1 open",
                "http-equiv=\"refresh\"",
                "campaign=q4",
            ][..],
        ),
        ("/ui/controls", &["<h2>Controls</h2>"][..]),
    ] {
        let page = b.open(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        for needle in needles {
            assert!(page.body.contains(needle), "{path} lacks {needle}: {}", page.body);
        }
        for nav in ["href=\"/\"", "href=\"/ui/actions\"", "href=\"/ui/reports\"", "id=\"sign-out\""] {
            assert!(page.body.contains(nav), "{path} lacks the nav's {nav}");
        }
        assert!(!page.body.contains("<script"), "{path} has no script");
    }
    let missing = b.open("/ui/campaigns/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    // A viewer sees no button on the action's page.
    let page = b.open(&format!("/ui/actions/{id}")).await;
    for form in ["/approve\"", "/reject\"", "/release\"", "/force-execute\"", "/rollback\""] {
        assert!(!page.body.contains(form), "no {form} form for a viewer");
    }
    // Signed out, every page is the sign-in form.
    let mut anon = Browser::new(env.app.clone());
    for path in [
        "/ui/actions",
        &format!("/ui/actions/{id}"),
        "/ui/reports",
        "/ui/reports/compliance?from=2026-01-01&to=2027-01-01&format=csv",
        "/ui/campaigns",
        "/ui/campaigns/q4",
        "/ui/controls",
    ] {
        assert!(anon.open(path).await.body.contains("action=\"/login\""), "{path} asks to sign in");
    }
}

#[tokio::test]
async fn buttons_follow_the_api_roles() {
    let env = Env::with(|c| c.limits.per_connector.max = 1);
    let mut ids = Vec::new();
    for g in ["admins", "engineering"] {
        let id = env.suggest("requester", g).await;
        env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
        ids.push(id);
    }
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{}/execute", ids[0]), None).await;
    let (s, _) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{}/execute", ids[1]), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let held = ids[1].as_str();
    assert_eq!(state_of(&env, held).await, "held");

    // Below admin: release and force-execute are refused by the API's role check.
    for who in ["viewer", "requester", "approver"] {
        let (mut b, csrf) = signed(&env, who).await;
        let page = b.open(&format!("/ui/actions/{held}")).await;
        assert!(!page.body.contains("/force-execute\""), "no force form for {who}");
        for button in ["release", "force-execute"] {
            let shown = press(&mut b, &csrf, held, button, &[("reason", "limit is too low")]).await;
            assert!(shown.contains("this needs the admin role"), "{who} {button}: {shown}");
        }
    }
    // A viewer and a requester may not approve, nor roll back.
    let (mut b, csrf) = signed(&env, "viewer").await;
    let bob = json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
                     "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"}});
    let pending = suggest(&env, "requester", bob).await;
    let shown = press(&mut b, &csrf, &pending, "approve", &[]).await;
    assert!(shown.contains("role viewer may not approve"), "{shown}");
    let (mut b, csrf) = signed(&env, "requester").await;
    let shown = press(&mut b, &csrf, &ids[0], "rollback", &[]).await;
    assert!(shown.contains("this needs the approver role"), "{shown}");
    assert_eq!(state_of(&env, &pending).await, "pending_approval");
    assert_eq!(state_of(&env, &ids[0]).await, "completed");

    // An admin: the forms are there; a reason is required.
    let (mut b, csrf) = signed(&env, "admin").await;
    let page = b.open(&format!("/ui/actions/{held}")).await;
    assert!(page.body.contains(&format!("/ui/actions/{held}/force-execute")), "{}", page.body);
    assert!(page.body.contains(&format!("/ui/actions/{held}/release")));
    for reason in [None, Some("   ")] {
        let form: Vec<(&str, &str)> = reason.map(|r| ("reason", r)).into_iter().collect();
        let shown = press(&mut b, &csrf, held, "force-execute", &form).await;
        assert!(shown.contains("give a reason"), "{shown}");
    }
    assert_eq!(state_of(&env, held).await, "held", "nothing was forced without a reason");
    let shown = press(&mut b, &csrf, held, "force-execute", &[("reason", "incident 42")]).await;
    assert!(shown.contains(&format!("Force-executed action {held}: completed; it is now completed.")), "{shown}");
    assert_eq!(state_of(&env, held).await, "completed");
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{held}"), None).await;
    let forced = view["transitions"].as_array().unwrap().iter().any(|t| t["comment"].as_str() == Some("incident 42"));
    assert!(forced, "the reason is in the audit trail: {view}");

    // An approver rolls back a completed action from its page.
    let (mut b, csrf) = signed(&env, "approver").await;
    let page = b.open(&format!("/ui/actions/{}", ids[0])).await;
    assert!(page.body.contains(&format!("/ui/actions/{}/rollback", ids[0])), "{}", page.body);
    let shown = press(&mut b, &csrf, &ids[0], "rollback", &[("note", "undo")]).await;
    assert!(shown.contains("Rolled back action"), "{shown}");
}

#[tokio::test]
async fn an_irreversible_change_needs_the_target_typed() {
    let env = Env::new();
    let id = suggest(&env, "requester", revoke_sessions("alice")).await;
    let (mut b, csrf) = signed(&env, "approver").await;
    let page = b.open(&format!("/ui/actions/{id}")).await;
    assert!(page.body.contains("risk-high") && page.body.contains("id=\"confirm-note\""), "{}", page.body);
    assert!(page.body.contains("name=\"confirm\""), "a confirmation field");
    // The dashboard's approve form asks for it too.
    let dashboard = b.get().await;
    let card = dashboard.body.split(&format!("id=\"action-{id}\"")).nth(1).unwrap();
    assert!(card.contains("name=\"confirm\""), "{card}");

    for typed in [None, Some(""), Some("bob"), Some("Alice"), Some("alice2")] {
        let form: Vec<(&str, &str)> = typed.map(|t| ("confirm", t)).into_iter().collect();
        let shown = press(&mut b, &csrf, &id, "approve", &form).await;
        assert!(shown.contains("type the target&#39;s name, alice, to confirm"), "{typed:?}: {shown}");
        assert_eq!(state_of(&env, &id).await, "pending_approval", "{typed:?}: nothing was approved");
    }
    let shown = press(&mut b, &csrf, &id, "approve", &[("confirm", " alice ")]).await;
    assert!(shown.contains(&format!("Approved action {id}; it is now approved.")), "{shown}");
    assert_eq!(state_of(&env, &id).await, "approved");

    // A low-risk, reversible change needs none.
    let low = env.suggest("requester", "admins").await;
    let page = b.open(&format!("/ui/actions/{low}")).await;
    assert!(!page.body.contains("name=\"confirm\""), "{}", page.body);
    let shown = press(&mut b, &csrf, &low, "approve", &[]).await;
    assert!(shown.contains("it is now approved"), "{shown}");
}

#[tokio::test]
async fn every_button_needs_the_csrf_token() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let (mut b, csrf) = signed(&env, "admin").await;
    for button in ["approve", "reject", "release", "force-execute", "rollback"] {
        let path = format!("/ui/actions/{id}/{button}");
        for form in [vec![("reason", "r")], vec![("csrf", "0000"), ("reason", "r")]] {
            let res = b.post(&path, &form).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{button} {form:?}: {}", res.body);
        }
        let mut anon = Browser::new(env.app.clone());
        assert_eq!(anon.post(&path, &[("csrf", &csrf), ("reason", "r")]).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(state_of(&env, &id).await, "pending_approval");
}

#[tokio::test]
async fn the_list_filters_sorts_and_pages() {
    let env = Env::new();
    let a = env.suggest("requester", "admins").await;
    let e = env.suggest("requester", "engineering").await;
    let s = suggest(&env, "requester", revoke_sessions("bob")).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{e}/reject"), None).await;
    let (mut b, _) = signed(&env, "viewer").await;
    let rows = |page: &Page| -> Vec<String> {
        page.body.split("<tr id=\"row-").skip(1).map(|r| r.split('"').next().unwrap().to_owned()).collect()
    };
    #[track_caller]
    fn check(got: &[String], expected: &[&str], query: &str) {
        assert_eq!(got, expected, "{query}");
    }
    for (query, expected) in [
        ("", vec![s.as_str(), e.as_str(), a.as_str()]),
        ("?sort=asc", vec![a.as_str(), e.as_str(), s.as_str()]),
        ("?state=rejected", vec![e.as_str()]),
        ("?state=pending_approval&sort=asc", vec![a.as_str(), s.as_str()]),
        ("?kind=revoke_sessions", vec![s.as_str()]),
        ("?kind=revoke&connector=sandbox", vec![e.as_str(), a.as_str()]),
        ("?q=BOB", vec![s.as_str()]),
        (&format!("?q={}", &a[..13]), vec![a.as_str()]),
        ("?control=nope", vec![]),
        ("?state=", vec![s.as_str(), e.as_str(), a.as_str()]),
    ] {
        let page = b.open(&format!("/ui/actions{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.body);
        check(&rows(&page), &expected, query);
    }
    // Paging: two per page, both orders, the filters kept in the next page's link.
    for (sort, order) in [("asc", [&a, &e, &s]), ("desc", [&s, &e, &a])] {
        let first = b.open(&format!("/ui/actions?sort={sort}&limit=2&kind=")).await;
        check(&rows(&first), &[order[0], order[1]], sort);
        let next = first.body.split("id=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap().to_owned();
        let next = next.split('"').next().unwrap().replace("&#38;", "&");
        assert!(next.contains(&format!("sort={sort}")) && next.contains("limit=2"), "{next}");
        let second = b.open(&next).await;
        check(&rows(&second), &[order[2]], sort);
        assert!(!second.body.contains("id=\"next\""), "the last page");
    }
    // A cursor whose action left the filter since: the next page goes on with the older ones.
    let first = b.open("/ui/actions?state=pending_approval&limit=1").await;
    check(&rows(&first), &[s.as_str()], "pending, newest");
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{s}/reject"), None).await;
    let second = b.open(&format!("/ui/actions?state=pending_approval&limit=1&after={s}")).await;
    check(&rows(&second), &[a.as_str()], "after a cursor that left the filter");
    // Bad queries are a 400 with the reason, not an error page.
    for bad in ["?state=nope", "?sort=sideways", "?limit=0", "?after=zzz", "?kind=nope"] {
        let page = b.open(&format!("/ui/actions{bad}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("id=\"list-error\""), "{bad}: {}", page.body);
    }
}

#[tokio::test]
async fn the_compliance_report_downloads_in_each_format() {
    let env = Env::new();
    env.suggest("requester", "admins").await;
    let (mut b, _) = signed(&env, "viewer").await;
    for (format, media) in [("html", "text/html"), ("csv", "text/csv"), ("json", "application/json")] {
        let res = b.open(&format!("/ui/reports/compliance?from=2020-01-01&to=2100-01-01&format={format}")).await;
        assert_eq!(res.status, StatusCode::OK, "{format}: {}", res.body);
        assert!(Browser::header(&res, "content-type").starts_with(media), "{format}");
        let disposition = Browser::header(&res, "content-disposition");
        assert_eq!(disposition, format!("attachment; filename=\"compliance-2020-01-01-2100-01-01.{format}\""));
        assert!(res.body.len() > 100, "{format}: {}", res.body);
    }
    // The API's refusal comes back on the form.
    let res = b.open("/ui/reports/compliance?from=2026-02-01&to=2026-01-01&format=csv").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("flash error") && res.body.contains("<h2>Reports</h2>"), "{}", res.body);
    let res = b.open("/ui/reports/compliance?from=2026-01-01&to=2026-02-01&format=pdf").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("unknown format"), "{}", res.body);
}

#[tokio::test]
async fn a_hostile_identity_is_escaped_on_every_page_and_in_the_charts() {
    let env = Env::new();
    let hostile = "<script>alert(1)</script>";
    // The sandbox knows a person by that name, a member of admins.
    let path = env.dir.path().join("sandbox.json");
    let mut dir: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    dir["users"][hostile] = dir["users"]["alice"].clone();
    dir["groups"]["admins"]["members"].as_array_mut().unwrap().push(json!(hostile));
    std::fs::write(&path, dir.to_string()).unwrap();
    let body = json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "test <b>",
                      "control_id": "<img src=x onerror=alert(2)>",
                      "target": {"identity": hostile, "resource": "admins", "grant_type": "group_membership"}});
    let done = suggest(&env, "requester", body.clone()).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{done}/approve"), None).await;
    let (s, out) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{done}/execute"), None).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let waiting = suggest(&env, "requester", revoke_sessions("alice")).await;

    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    let (mut b, _) = signed(&env, "approver").await;
    for path in [
        "/".to_owned(),
        "/ui/actions".to_owned(),
        format!("/ui/actions?q={}", "%3Cscript"),
        format!("/ui/actions/{done}"),
        format!("/ui/actions/{waiting}"),
    ] {
        let page = b.open(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            !page.body.contains("<script") && !page.body.contains("<img") && !page.body.contains("<b>"),
            "{path}: {}",
            page.body
        );
        if path != format!("/ui/actions/{waiting}") {
            assert!(page.body.contains(escaped), "{path} shows the identity escaped: {}", page.body);
        }
    }
    // The search box echoes the query escaped.
    let page = b.open("/ui/actions?q=%22%3E%3Cscript%3E").await;
    assert!(page.body.contains("value=\"&#34;&#62;&#60;script&#62;\""), "{}", page.body);
    // In the time-to-remediation chart, the slowest identity is named in a tooltip.
    let dashboard = b.get().await;
    let svg = dashboard.body.split("id=\"chart-ttr\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert!(svg.contains(&format!("slowest: {escaped}</title>")), "{svg}");
}

#[tokio::test]
async fn the_dashboard_shows_the_safety_switches_and_the_counts() {
    let env = Env::new();
    env.suggest("requester", "admins").await;
    let (mut b, _) = signed(&env, "viewer").await;
    let page = b.get().await;
    for needle in [
        "Kill switch: <strong class=\"good\">off</strong>",
        "not tripped",
        "state-pending_approval\" href=\"/ui/actions?state=pending_approval\">pending_approval</a> 1",
    ] {
        assert!(page.body.contains(needle), "lacks {needle}: {}", page.body);
    }
    assert!(!page.body.contains("wait for a second admin"), "{}", page.body);

    let body = json!({"on": true, "reason": "incident"});
    let (s, v) = env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.propose_auto("admin").await;
    let page = b.get().await;
    assert!(page.body.contains("on: nothing executes"), "{}", page.body);
    assert!(page.body.contains("wait for a second admin"), "{}", page.body);
    // The kill switch cancelled the waiting action: the counts say so.
    assert!(page.body.contains(">cancelled</a> 1"), "{}", page.body);
}
