//! The approval page through the router: sign-in, cookie flags, CSRF, what each role sees,
//! approving through the page, separation of duties and HTML escaping.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use remediation_api::{ApiOptions, ApiState, router};
use serde_json::json;
use tower::ServiceExt as _;

use crate::support::Env;

/// A browser: a cookie jar over the router.
pub(crate) struct Browser {
    app: Router,
    pub(crate) cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` received, as sent.
    set_cookies: Vec<String>,
}

/// One response.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    /// The first CSRF token in a form of the page.
    pub(crate) fn csrf(&self) -> String {
        let rest = self.body.split("name=\"csrf\" value=\"").nth(1).unwrap_or_else(|| panic!("no csrf: {}", self.body));
        rest.split('"').next().unwrap().to_owned()
    }

    pub(crate) fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

impl Browser {
    pub(crate) fn new(app: Router) -> Self {
        Self { app, cookies: BTreeMap::new(), set_cookies: Vec::new() }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Page {
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "approvals.test");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match form {
            Some(f) => req
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(encode(f)))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap().to_owned();
            let (name, value) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(c);
        }
        let body = String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Page { status, headers, body }
    }

    pub(crate) async fn get(&mut self) -> Page {
        self.send(Method::GET, "/", None, &[]).await
    }

    /// `GET path`.
    pub(crate) async fn open(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None, &[]).await
    }

    /// The response header `name`, for the last page `open` returned.
    pub(crate) fn header<'p>(page: &'p Page, name: &str) -> &'p str {
        page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form), &[]).await
    }

    /// Signs in with `token`; returns the page after the redirect.
    pub(crate) async fn sign_in(&mut self, token: &str) -> Page {
        let login = self.get().await;
        let csrf = login.csrf();
        let res = self.post("/login", &[("csrf", &csrf), ("token", token)]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        assert_eq!(res.location(), "/");
        let page = self.get().await;
        assert_eq!(page.status, StatusCode::OK);
        page
    }
}

fn cookie_named<'a>(b: &'a Browser, name: &str) -> &'a str {
    b.set_cookies
        .iter()
        .rev()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test]
async fn sign_in_with_a_good_token_and_not_with_a_bad_one() {
    let env = Env::new();
    let mut b = Browser::new(env.app.clone());
    let login = b.get().await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("action=\"/login\""), "{}", login.body);
    assert!(login.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));

    // A bad token: 401, the form again, no session.
    let csrf = login.csrf();
    let bad = b.post("/login", &[("csrf", &csrf), ("token", "rmt_not-a-token")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("unknown or revoked token"), "{}", bad.body);
    assert!(!b.cookies.contains_key("remediation_session"));

    // A good one: a session cookie with every flag and nothing of the token in it.
    let token = env.token("approver").to_owned();
    let page = b.sign_in(&token).await;
    assert!(page.body.contains("Signed in as approver (approver)"), "{}", page.body);
    let session = cookie_named(&b, "remediation_session");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(!session.contains("Secure"), "plain HTTP without secure_cookies: {session}");
    assert!(!session.contains(&token) && !session.contains(&token[4..20]), "the token is never in the cookie");
    let sid = b.cookies["remediation_session"].clone();
    assert_eq!(sid.len(), 64, "an opaque 256-bit id");

    // The flash shows once.
    assert!(!b.get().await.body.contains("Signed in as approver (approver)."));

    // Signing out ends the session server-side: the old id no longer works.
    let csrf = b.get().await.csrf();
    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("remediation_session"));
    b.cookies.insert("remediation_session".into(), sid);
    assert!(b.get().await.body.contains("action=\"/login\""), "the old session id is dead");
}

#[tokio::test]
async fn cookies_are_secure_behind_tls_or_when_configured() {
    let env = Env::new();
    let token = env.token("viewer").to_owned();
    // Behind a TLS-terminating proxy.
    let mut b = Browser::new(env.app.clone());
    let csrf = b.send(Method::GET, "/", None, &[("x-forwarded-proto", "https")]).await.csrf();
    assert!(cookie_named(&b, "remediation_login").contains("; Secure"));
    b.send(Method::POST, "/login", Some(&[("csrf", &csrf), ("token", &token)]), &[("x-forwarded-proto", "https")])
        .await;
    assert!(cookie_named(&b, "remediation_session").contains("; Secure"));
    // Configured.
    let state = ApiState::new(
        Arc::clone(env.state.runtime()),
        ApiOptions { body_limit_bytes: 4096, secure_cookies: true, ..ApiOptions::default() },
    );
    let mut b = Browser::new(router(state));
    b.sign_in(&token).await;
    assert!(cookie_named(&b, "remediation_session").contains("; Secure"));
}

#[tokio::test]
async fn the_page_sends_its_security_headers() {
    let env = Env::new();
    let mut b = Browser::new(env.app.clone());
    let page = b.get().await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for part in ["default-src 'none'", "style-src 'self'", "form-action 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(!page.body.contains("<script"), "the page has no script at all");
    let css = b.send(Method::GET, "/ui/style.css", None, &[]).await;
    assert_eq!(css.status, 200);
    assert!(css.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    // The JSON API is untouched: its own 404 shape.
    let missing = b.send(Method::GET, "/nope", None, &[]).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("\"not_found\""), "{}", missing.body);
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_or_from_another_site_are_403() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let approve = format!("/ui/actions/{id}/approve");

    // Sign-in: no double-submit cookie, or a wrong token.
    let mut fresh = Browser::new(env.app.clone());
    let t = env.token("approver").to_owned();
    assert_eq!(fresh.post("/login", &[("csrf", "x"), ("token", &t)]).await.status, 403);
    fresh.get().await;
    assert_eq!(fresh.post("/login", &[("token", &t)]).await.status, 403);
    assert_eq!(fresh.post("/login", &[("csrf", &"0".repeat(64)), ("token", &t)]).await.status, 403);
    assert!(!fresh.cookies.contains_key("remediation_session"));

    let mut b = Browser::new(env.app.clone());
    let csrf = b.sign_in(&t).await.csrf();
    for (form, extra, why) in [
        (vec![], vec![], "missing"),
        (vec![("csrf", "")], vec![], "empty"),
        (vec![("csrf", "0000")], vec![], "wrong"),
        (vec![("csrf", &csrf[..63])], vec![], "truncated"),
        (vec![("csrf", csrf.as_str())], vec![("origin", "https://evil.example")], "foreign origin"),
        (vec![("csrf", csrf.as_str())], vec![("referer", "https://evil.example/")], "foreign referer"),
        (vec![("csrf", csrf.as_str())], vec![("sec-fetch-site", "cross-site")], "cross-site fetch"),
    ] {
        let res = b.send(Method::POST, &approve, Some(&form), &extra).await;
        assert_eq!(res.status, 403, "{why}: {}", res.body);
    }
    // A post with no session at all.
    let mut anon = Browser::new(env.app.clone());
    assert_eq!(anon.post(&approve, &[("csrf", &csrf)]).await.status, 403);
    // Another session's token does not work either.
    let mut other = Browser::new(env.app.clone());
    other.sign_in(env.token("approver2")).await;
    assert_eq!(other.post(&approve, &[("csrf", &csrf)]).await.status, 403);
    // Logout is guarded too.
    assert_eq!(b.post("/logout", &[("csrf", "nope")]).await.status, 403);

    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "pending_approval", "nothing was approved");
    // The same origin (and a `null` one, as sent under no-referrer) passes.
    let res = b
        .send(
            Method::POST,
            &approve,
            Some(&[("csrf", &csrf)]),
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

#[tokio::test]
async fn viewers_see_the_page_without_forms() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let mut b = Browser::new(env.app.clone());
    let page = b.sign_in(env.token("viewer")).await;
    assert!(page.body.contains(&format!("id=\"action-{id}\"")), "{}", page.body);
    assert!(page.body.contains("read-only"), "{}", page.body);
    assert!(!page.body.contains("/approve\""), "no approve form for a viewer: {}", page.body);
    assert!(!page.body.contains("/reject\""), "no reject form for a viewer");
    // And a post is refused by the role check (the engine's, for approvals), shown as a flash.
    let csrf = page.csrf();
    let res = b.post(&format!("/ui/actions/{id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let after = b.get().await;
    assert!(after.body.contains("flash error"), "{}", after.body);
    assert!(after.body.contains("role viewer may not approve"), "{}", after.body);
}

#[tokio::test]
async fn an_approver_approves_through_the_page() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let mut b = Browser::new(env.app.clone());
    let page = b.sign_in(env.token("approver")).await;
    // The card: who, what, the plan diff and the timeline.
    let card = page.body.split(&format!("id=\"action-{id}\"")).nth(1).unwrap();
    for needle in [
        "alice",
        "admins",
        "sandbox",
        "requester",
        "low (blast radius 1)",
        "reversible",
        "standing admin access",
        "pending_approval",
    ] {
        assert!(card.contains(needle), "card lacks {needle}: {card}");
    }
    assert!(card.contains("class=\"diff\""), "a diff table: {card}");
    assert!(
        card.contains(
            "<code>/member</code></td><td class=\"before\"><code>true</code></td><td class=\"after\"><code>false</code>"
        ),
        "the diff: alice's membership goes from true to false: {card}"
    );
    assert!(card.contains("new &rarr; <strong>pending_approval</strong> by requester"), "{card}");
    assert!(card.contains(&format!("/ui/actions/{id}/approve")), "{card}");

    // Posted from the dashboard: back to it; from elsewhere: to the action's page.
    let res = b
        .post(
            &format!("/ui/actions/{id}/approve"),
            &[("csrf", &page.csrf()), ("note", "ok by me"), ("back", "dashboard")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/");
    let after = b.get().await;
    assert!(after.body.contains(&format!("Approved action {id}; it is now approved.")), "{}", after.body);
    assert!(!after.body.contains(&format!("id=\"action-{id}\"")), "no longer waiting");

    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "approved");
    let last = view["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["comment"].as_str()), (Some("approver"), Some("ok by me")));
}

#[tokio::test]
async fn an_approver_rejects_through_the_page() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let mut b = Browser::new(env.app.clone());
    let csrf = b.sign_in(env.token("admin")).await.csrf();
    let res = b.post(&format!("/ui/actions/{id}/reject"), &[("csrf", &csrf), ("note", "")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(b.get().await.body.contains("it is now rejected"));
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "rejected");
}

#[tokio::test]
async fn the_requester_sees_no_approve_button_on_its_own_action() {
    let env = Env::new();
    let own = env.suggest("approver", "admins").await;
    let theirs = env.suggest("requester", "engineering").await;
    let mut b = Browser::new(env.app.clone());
    let page = b.sign_in(env.token("approver")).await;
    assert!(!page.body.contains(&format!("/ui/actions/{own}/approve")), "{}", page.body);
    assert!(page.body.contains("You requested this action"), "{}", page.body);
    assert!(page.body.contains(&format!("/ui/actions/{theirs}/approve")));
    // Posting anyway: the engine refuses; its message comes back as a flash.
    let res = b.post(&format!("/ui/actions/{own}/approve"), &[("csrf", &page.csrf())]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let after = b.get().await;
    assert!(after.body.contains("approver requested this action and cannot approve it"), "{}", after.body);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{own}"), None).await;
    assert_eq!(view["action"]["state"], "pending_approval");
}

#[tokio::test]
async fn a_rollback_request_is_decided_on_the_page_by_another_approver() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/approve"), None).await;
    env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/execute"), None).await;
    let (s, _) = env.call(Some("approver"), Method::POST, &format!("/v1/actions/{id}/rollback"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // Whoever asked for the rollback sees it, without the forms.
    let mut asker = Browser::new(env.app.clone());
    let page = asker.sign_in(env.token("approver")).await;
    let card = page.body.split(&format!("id=\"action-{id}\"")).nth(1).unwrap();
    assert!(card.contains("rollback_requested") && card.contains("Rollback requested"), "{card}");
    assert!(card.contains("You requested this rollback"), "{card}");
    assert!(!page.body.contains(&format!("/ui/actions/{id}/approve")), "{}", page.body);

    // Another approver approves it: the rollback runs.
    let mut b = Browser::new(env.app.clone());
    let page = b.sign_in(env.token("approver2")).await;
    assert!(page.body.contains(&format!("/ui/actions/{id}/approve")), "{}", page.body);
    let res = b.post(&format!("/ui/actions/{id}/approve"), &[("csrf", &page.csrf()), ("note", "confirmed")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let after = b.get().await;
    assert!(after.body.contains(&format!("Approved action {id}; it is now rolled_back.")), "{}", after.body);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "rolled_back");
}

#[tokio::test]
async fn provider_and_user_strings_are_escaped() {
    let env = Env::new();
    let body = json!({
        "connector": "sandbox",
        "kind": {"type": "revoke"},
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "reason": "<script>alert(1)</script> & \"quotes\" 'too'",
        "control_id": "<img src=x onerror=alert(2)>"
    });
    let (status, created) = env.call(Some("requester"), Method::POST, "/v1/actions", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let mut b = Browser::new(env.app.clone());
    let page = b.sign_in(env.token("approver")).await;
    let reason = "&#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;quotes&#34; &#39;too&#39;";
    assert!(page.body.contains(&format!("<dd class=\"reason\">{reason}</dd>")), "{}", page.body);
    assert!(page.body.contains("<dd>&#60;img src=x onerror=alert(2)&#62;</dd>"), "{}", page.body);
    assert!(!page.body.contains("<script"), "no live script tag: {}", page.body);
    assert!(!page.body.contains("<img"), "no live img tag");
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let env = Env::new();
    let mut b = Browser::new(env.app.clone());
    b.sign_in(env.token("viewer")).await;
    let test = remediation_core::Actor::new("local:test", remediation_core::Role::Admin);
    assert!(env.state.runtime().store().revoke_token("viewer", &test, time::OffsetDateTime::now_utc()).await.unwrap());
    let page = b.get().await;
    assert!(page.body.contains("action=\"/login\""), "back to the sign-in form: {}", page.body);
}

#[tokio::test]
async fn sessions_end_after_eight_hours() {
    use remediation_core::{Clock as _, ManualClock};
    let dir = tempfile::tempdir().unwrap();
    remediation_connector_sandbox::write_sample(dir.path().join("sandbox.json")).unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let options = remediation_runtime::RuntimeOptions { clock: Some(clock.clone()), ..Default::default() };
    let config = crate::support::config(|_| {});
    let runtime = remediation_runtime::Runtime::build(
        &config,
        dir.path(),
        Some(remediation_audit::AuditKey::generate()),
        options,
    )
    .unwrap();
    let test = remediation_core::Actor::new("local:test", remediation_core::Role::Admin);
    let viewer = remediation_core::Role::Viewer;
    let person = remediation_core::PrincipalKind::Person;
    runtime.store().create_principal("viewer", person, viewer, &test, clock.now()).await.unwrap();
    let token = crate::support::add_token(&runtime, "viewer", "viewer");
    let mut b = Browser::new(router(ApiState::new(Arc::new(runtime), ApiOptions::default())));
    b.sign_in(&token).await;
    clock.advance(time::Duration::hours(8) - time::Duration::minutes(1));
    assert!(b.get().await.body.contains("Signed in as"), "still signed in just before the end");
    clock.advance(time::Duration::minutes(2));
    assert!(b.get().await.body.contains("action=\"/login\""), "signed out after eight hours");
}

#[tokio::test]
async fn the_page_counts_against_the_principals_rate() {
    let clock = Arc::new(remediation_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let limit = remediation_api::RateLimit { requests: 3, window: time::Duration::seconds(60) };
    let env = Env::with_options(|_| {}, clock.clone(), ApiOptions { rate_limit: limit, ..ApiOptions::default() });
    let mut b = Browser::new(env.app.clone());
    // Signing in shows the page once (one call); two more fit in the window.
    b.sign_in(env.token("viewer")).await;
    assert_eq!(b.get().await.status, StatusCode::OK);
    assert_eq!(b.get().await.status, StatusCode::OK);
    let refused = b.get().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
    clock.advance(time::Duration::seconds(60));
    assert_eq!(b.get().await.status, StatusCode::OK);
}

/// Another server of the installation in `dir`: its own runtime (engine, rate limiter,
/// nothing in memory shared) over `store`, or over the SQLite file in `dir` when `None`.
fn replica(dir: &std::path::Path, audit_key_hex: &str, store: Option<Arc<dyn remediation_core::Store>>) -> Router {
    let key = remediation_audit::AuditKey::from_hex(audit_key_hex).unwrap();
    let options = remediation_runtime::RuntimeOptions {
        store,
        signing_key: Some(Arc::new(remediation_audit::LogSigningKey::from_seed(&[9; 32]))),
        ..remediation_runtime::RuntimeOptions::default()
    };
    let runtime =
        remediation_runtime::Runtime::build(&crate::support::config(|_| {}), dir, Some(key), options).unwrap();
    router(ApiState::new(Arc::new(runtime), ApiOptions { body_limit_bytes: 4096, ..ApiOptions::default() }))
}

#[tokio::test]
async fn a_session_started_on_one_replica_works_on_another_sharing_the_store() {
    let env = Env::new();
    let id = env.suggest("requester", "admins").await;
    let approve = format!("/ui/actions/{id}/approve");
    let other = replica(env.dir.path(), &env.audit_key_hex, Some(Arc::clone(env.state.runtime().store())));
    // Signed in through replica A; the same browser's next requests land on B.
    let mut a = Browser::new(env.app.clone());
    a.sign_in(env.token("approver")).await;
    let mut b = Browser::new(other);
    b.cookies = a.cookies.clone();
    let page = b.get().await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&approve), "B knows the session: {}", page.body);
    let res = b.post(&approve, &[("csrf", &page.csrf()), ("note", "from B")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let (_, view) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{id}"), None).await;
    assert_eq!(view["action"]["state"], "approved");
    // The flash B set is shown once, by whichever replica renders next.
    let shown = format!("Approved action {id}; it is now approved.");
    assert!(a.get().await.body.contains(&shown), "A shows B's flash");
    assert!(!b.get().await.body.contains(&shown), "and only once");

    // Signing out on B ends the session on A too.
    let csrf = b.get().await.csrf();
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert!(a.get().await.body.contains("action=\"/login\""), "A refuses the cookie");
    let other_id = env.suggest("requester", "engineering").await;
    let refused = a.post(&format!("/ui/actions/{other_id}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

#[tokio::test]
async fn a_session_survives_a_restart() {
    let env = Env::new();
    let mut b = Browser::new(env.app.clone());
    b.sign_in(env.token("approver")).await;
    let csrf = b.get().await.csrf();
    // A new server process over the same SQLite file: nothing in memory is kept.
    let Env { dir, state, app, audit_key_hex, .. } = env;
    drop((state, app));
    b.app = replica(dir.path(), &audit_key_hex, None);
    let page = b.get().await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("action=\"/login\""), "still signed in after the restart: {}", page.body);
    assert_eq!(page.csrf(), csrf, "the same session");
}

/// The console manages connections: an admin adds one (its secret typed once, sealed, never
/// shown again), tests, disables, enables and deletes it (deleting needs its id typed); a
/// viewer sees them without any form, and a requester's post changes nothing.
#[tokio::test]
async fn connections_are_managed_from_the_console() {
    const SECRET: &str = "console-secret-never-shown-9d2c";
    let env = Env::new();
    remediation_connector_sandbox::write_sample(env.dir.path().join("console.json")).unwrap();
    let mut b = Browser::new(env.app.clone());
    b.sign_in(env.token("admin")).await;
    let page = b.open("/ui/connections").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"connection-sandbox\"") && page.body.contains("configuration file"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let added = b
        .post(
            "/ui/connections",
            &[
                ("csrf", &csrf),
                ("id", "console-sbx"),
                ("type", "sandbox"),
                ("settings", "{\"path\": \"console.json\"}"),
                ("domains", "example.com"),
                ("secret_name_1", "token"),
                ("secret_value_1", SECRET),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let page = b.open("/ui/connections").await;
    assert!(page.body.contains("Connection console-sbx added"), "{}", page.body);
    assert!(page.body.contains("id=\"connection-console-sbx\""));
    assert!(page.body.contains("domains: example.com"));
    assert!(!page.body.contains(SECRET), "the secret is never shown");
    let csrf = page.csrf();
    for (button, says) in [("test", "healthy"), ("disable", "disabled"), ("enable", "enabled")] {
        let res = b.post(&format!("/ui/connections/console-sbx/{button}"), &[("csrf", &csrf)]).await;
        assert_eq!(res.status, 303, "{button}: {}", res.body);
        let page = b.open("/ui/connections").await;
        assert!(page.body.contains(says), "{button}: {}", page.body);
    }
    // Deleting needs the id typed.
    b.post("/ui/connections/console-sbx/delete", &[("csrf", &csrf), ("confirm", "nope")]).await;
    assert!(b.open("/ui/connections").await.body.contains("Not deleted"));
    b.post("/ui/connections/console-sbx/delete", &[("csrf", &csrf), ("confirm", "console-sbx")]).await;
    let page = b.open("/ui/connections").await;
    assert!(
        page.body.contains("Connection console-sbx deleted") && !page.body.contains("id=\"connection-console-sbx\"")
    );
    // A forged post without the CSRF token is refused.
    let forged = b.post("/ui/connections/sandbox/disable", &[("csrf", "wrong")]).await;
    assert_eq!(forged.status, 403);

    // A viewer sees the list without forms; a requester's post changes nothing.
    let mut v = Browser::new(env.app.clone());
    v.sign_in(env.token("viewer")).await;
    let page = v.open("/ui/connections").await;
    assert!(page.body.contains("id=\"connection-sandbox\"") && !page.body.contains("id=\"add-connection\""));
    let mut r = Browser::new(env.app.clone());
    r.sign_in(env.token("requester")).await;
    let csrf = r.open("/ui/connections").await.csrf();
    let res = r
        .post(
            "/ui/connections",
            &[("csrf", &csrf), ("id", "x"), ("type", "sandbox"), ("settings", "{\"path\": \"console.json\"}")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(r.open("/ui/connections").await.body.contains("Not done"), "only admins add connections");
    let (_, listed) = env.call(Some("viewer"), Method::GET, "/v1/connections", None).await;
    assert!(!listed.to_string().contains("\"x\""));
}
