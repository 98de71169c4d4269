//! The console in a real browser: the real server, headless Chromium over WebDriver (the
//! helpers of `ui.rs`), sign-in, every console page (dashboard, a filtered list, an action,
//! reports, a response to an exposed person, a playbook run approved from its page) with a
//! screenshot of each under `<target>/console-screenshots/`, a check that no
//! page is empty, and the typed confirmation of an irreversible change: the wrong name is
//! refused, the right one approves it and the worker executes it.
//! Needs `REMEDIATION_TEST_CHROMEDRIVER` (see `.ci/setup-chromium.sh`); skips without it (fails under `CI=true`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::server::{Server, setup, token};
use crate::ui::Driver;

/// The least text a page's `<main>` shows: a page below it rendered nothing useful.
const MIN_TEXT: usize = 120;

/// Where the screenshots go: `$CARGO_TARGET_DIR`, else the target directory the test
/// executable runs from (`<target>/debug/deps/e2e-...`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("the test executable");
        exe.ancestors()
            .nth(3)
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from)
    });
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Checks the page has a heading and content in `<main>`, and saves a screenshot as `name`.
fn capture(browser: &Driver, name: &str, heading: &str) {
    let h2 = browser.text("main h2");
    assert!(h2.contains(heading), "{name}: the heading is {h2:?}, not {heading:?}");
    let text = browser.text("main");
    assert!(text.len() >= MIN_TEXT, "{name}: the page shows almost nothing ({} chars): {text:?}", text.len());
    let shot = browser.cmd("GET", "/screenshot", None);
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().expect("a base64 screenshot"))
        .expect("the screenshot decodes");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
}

/// The state of action `id`, through the API.
fn state_of(server: &Server, token: &str, id: &str) -> String {
    let (_, view) = server.call("GET", &format!("/v1/actions/{id}"), Some(token), None);
    view["action"]["state"].as_str().unwrap_or_default().to_owned()
}

fn create(server: &Server, token: &str, body: &Value) -> String {
    let (status, created) = server.call("POST", "/v1/actions", Some(token), Some(body));
    assert_eq!(status, 201, "{created}");
    created["action"]["id"].as_str().expect("id").to_owned()
}

#[test]
fn every_console_page_in_chromium() {
    let Some(chromedriver) = remediation_testkit::real_server::require(
        "the console's browser test",
        "REMEDIATION_TEST_CHROMEDRIVER",
        "chromedriver; `.ci/setup-chromium.sh` installs Chromium and prints the line",
    ) else {
        return;
    };
    let (env, requester, approver) = setup();
    let responder = token(&env, "rita-svc", "responder");
    let server = Server::start(&env);
    let revoke = |identity: &str, group: &str| {
        json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing admin access",
               "target": {"identity": identity, "resource": group, "grant_type": "group_membership"}})
    };
    // History for the charts and the list: one change made, one rejected.
    let done = create(&server, &requester, &revoke("alice", "admins"));
    let (status, body) = server.call("POST", &format!("/v1/actions/{done}/approve"), Some(&approver), None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call("POST", &format!("/v1/actions/{done}/execute"), Some(&approver), None);
    assert_eq!(status, 200, "{body}");
    let rejected = create(&server, &requester, &revoke("bob", "engineering"));
    server.call("POST", &format!("/v1/actions/{rejected}/reject"), Some(&approver), None);
    // Waiting: ending alice's sessions cannot be undone, so it asks for her name.
    let sessions = json!({"connector": "sandbox", "kind": {"type": "revoke_sessions"}, "reason": "stolen laptop",
                          "target": {"identity": "alice", "grant_type": "account"}});
    let risky = create(&server, &requester, &sessions);

    let started = Instant::now();
    let browser = Driver::start(&chromedriver);
    browser.cmd("POST", "/window/rect", Some(&json!({"width": 1280, "height": 1400})));
    let base = format!("http://{}", server.addr);
    browser.goto(&format!("{base}/"));
    browser.type_into("#token", &approver);
    browser.click("#sign-in");
    browser.wait_text("#flash", "Signed in as bob-svc (approver)");

    // The dashboard: the tiles, both charts and the waiting action.
    for needle in ["Circuit breaker", "Kill switch", "sandbox", "chain verified", "Waiting for a decision (1)"] {
        browser.wait_text("main", needle);
    }
    browser.find("#chart-outcomes svg rect");
    browser.find("#chart-ttr svg rect");
    capture(&browser, "dashboard", "Dashboard");

    // The list, filtered through its form.
    browser.click("#nav-actions");
    browser.wait_text("main h2", "Actions");
    browser.type_into("#f-q", "alice");
    browser.click("#f-apply");
    // The filtered page, not the one the click left.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !browser.cmd("GET", "/url", None).as_str().is_some_and(|u| u.contains("q=alice")) {
        assert!(Instant::now() < deadline, "the filter was never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.find(&format!("#row-{done}"));
    let rows = browser.text("#actions tbody");
    assert!(rows.contains("completed") && rows.contains("pending_approval") && !rows.contains("bob"), "{rows}");
    capture(&browser, "actions", "Actions");

    // The action page, and the confirmation: a wrong name is refused, nothing changes.
    browser.click(&format!("#row-{risky} a"));
    browser.wait_text("#title", "revoke_sessions");
    browser.find("#confirm-note");
    capture(&browser, "action", "revoke_sessions");
    browser.type_into("#confirm-approve", "bob");
    browser.click(&format!("#approve-{risky}"));
    browser.wait_text("#flash", "type the target's name, alice, to confirm");
    assert_eq!(state_of(&server, &requester, &risky), "pending_approval");
    browser.type_into("#confirm-approve", "alice");
    browser.click(&format!("#approve-{risky}"));
    browser.wait_text("#flash", &format!("Approved action {risky}"));
    // The server's worker executes it (every second): wait for the outcome.
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(&server, &requester, &risky) != "completed" {
        assert!(Instant::now() < deadline, "the approved action was never executed");
        std::thread::sleep(Duration::from_millis(200));
    }
    browser.goto(&format!("{base}/ui/actions/{risky}"));
    browser.wait_text("#outcome", "completed");
    capture(&browser, "action-executed", "revoke_sessions");

    // A campaign, its page (it refreshes itself while actions are open) and the controls.
    let findings = json!({"name": "q4-console", "findings": [
        {"id": "F-1", "source": "e2e", "control_id": "CIS-1", "severity": "high", "title": "carol in engineering",
         "target": {"identity": "carol", "resource": "engineering", "grant_type": "group_membership"},
         "suggested_kind": {"type": "revoke"}, "connector": "sandbox"},
        {"id": "F-2", "source": "e2e", "control_id": "CIS-1", "severity": "high", "title": "carol again",
         "target": {"identity": "carol", "resource": "engineering", "grant_type": "group_membership"},
         "suggested_kind": {"type": "revoke"}, "connector": "sandbox"}]});
    let (status, body) = server.call("POST", "/v1/campaigns", Some(&requester), Some(&findings));
    assert_eq!(status, 201, "{body}");
    browser.click("#nav-campaigns");
    browser.wait_text("#campaigns", "q4-console");
    capture(&browser, "campaigns", "Campaigns");
    browser.goto(&format!("{base}/ui/campaigns/q4-console"));
    browser.wait_text("#import", "2/2 (100 %)");
    browser.wait_text("#actions", "1 created, 1 open");
    assert!(browser.source().contains("http-equiv=\"refresh\""), "an open campaign refreshes itself");
    capture(&browser, "campaign", "q4-console");
    browser.click("#nav-controls");
    browser.wait_text("main h2", "Controls");
    capture(&browser, "controls", "Controls");

    // Connections: the configuration's sandbox, health read from a live check.
    browser.click("#nav-connections");
    browser.wait_text("#connections", "sandbox");
    capture(&browser, "connections", "Connections");

    // Reports.
    browser.click("#nav-reports");
    browser.wait_text("main h2", "Reports");
    browser.find("#r-download");
    capture(&browser, "reports", "Reports");

    // A playbook's plan for bob, then a run of it asked for by the requester and approved
    // from its page.
    browser.goto(&format!("{base}/ui/playbooks"));
    browser.wait_text("#playbooks", "compromised-account");
    browser.type_into("#pb-person", "bob@example.com");
    browser.type_into("#pb-reason", "account takeover");
    browser.click("#plan-button");
    let hash = browser.wait_text("#plan-hash", "");
    browser.find("#request-run-button");
    capture(&browser, "playbook-plan", "Playbooks");
    let run = json!({"identity": "bob@example.com", "reason": "account takeover", "plan_hash": hash.trim()});
    let (status, body) = server.call("POST", "/v1/playbooks/compromised-account/runs", Some(&requester), Some(&run));
    assert_eq!(status, 201, "{body}");
    let run_id = body["id"].as_str().expect("a run id").to_owned();
    browser.click("#nav-runs");
    browser.wait_text("#runs", &run_id);
    browser.click(&format!("#run-{run_id} a"));
    browser.wait_text("#run-state", "pending_approval");
    browser.click("#approve");
    browser.wait_text("#flash", "is now completed");
    browser.wait_text("#run-state", "completed");
    let steps = browser.text("#steps tbody");
    assert!(steps.contains("completed"), "{steps}");
    capture(&browser, "run", "compromised-account");

    // alice signs in again (a session of hers appears), then a responder cuts her off
    // everywhere from the respond page.
    let mut directory = env.sandbox();
    directory["users"]["alice"]["sessions"] = json!(["s-alice-3"]);
    env.write_sandbox(&directory);
    browser.click("#sign-out");
    browser.wait_text("#login", "API token");
    browser.type_into("#token", &responder);
    browser.click("#sign-in");
    browser.wait_text("#flash", "Signed in as rita-svc (responder)");
    browser.click("#nav-respond");
    browser.type_into("#person", "alice@example.com");
    browser.click("#look-up");
    browser.wait_text("#accounts", "sandbox");
    browser.click("#kind-revoke_sessions");
    browser.click("#kind-force_password_reset");
    browser.type_into("#respond-reason", "password found on a paste site");
    browser.click("#respond-button");
    browser.wait_text("#outcome", "completed");
    capture(&browser, "respond", "Respond");

    browser.click("#sign-out");
    browser.wait_text("#login", "API token");
    eprintln!("console browser flow took {:?}", started.elapsed());
}
