//! `remediate report compliance` through the real binary: a lifecycle (suggest, a refused
//! self-approval, approve, execute, a rollback asked by one approver and approved by another,
//! kill-switch changes), then the report in each format; the period's bounds leave out what
//! happened outside it; a tampered store makes "chain verified" false; the same report from a
//! server; and the HTML printed to PDF by headless Chromium.

use std::process::Command;

use remediation_e2e::{Env, Run};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::run_remote;
use super::server::{Server, request, token};

const HOSTILE_CONTROL: &str = "<script>alert(1)</script>";

/// Every section's heading in the HTML form, in order.
const HEADINGS: [&str; 7] = [
    "1. Actions by control, kind and outcome",
    "2. Approvals and separation of duties",
    "3. Rollbacks",
    "4. Refused attempts",
    "5. Force-executions and overrides",
    "6. Kill switch and settings changes",
    "7. Audit status",
];

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("now")
}

/// Alice suggests revoking her own admin membership for `reason` (under `control`, if any);
/// the action's id.
fn suggest_revoke(env: &Env, reason: &str, control: Option<&str>) -> String {
    let mut args = vec![
        "suggest",
        "--connector",
        "sandbox",
        "--kind",
        "revoke",
        "--identity",
        "alice",
        "--resource",
        "admins",
        "--grant-type",
        "group_membership",
        "--reason",
        reason,
        "--output",
        "json",
    ];
    if let Some(control) = control {
        args.extend(["--control", control]);
    }
    let suggested = env.expect("local:alice", &args, 0).json();
    suggested["action"]["id"].as_str().expect("id").to_owned()
}

/// The lifecycle; returns the action's id. Every record it writes is later than the instant
/// taken before it and earlier than one taken after it.
fn lifecycle(env: &Env) -> String {
    env.init_enabled();
    let id = suggest_revoke(env, "standing admin access not needed", Some(HOSTILE_CONTROL));
    env.expect("local:alice", &["approve", &id], 3);
    env.expect("local:bob", &["approve", &id, "--note", "ok"], 0);
    env.expect("local:bob", &["execute", &id], 0);
    env.expect("local:bob", &["rollback", &id, "--note", "the team still needs it"], 3);
    env.expect("local:dave", &["approve", &id], 0);
    env.expect("local:admin", &["kill-switch", "on", "--reason", "incident drill"], 0);
    env.expect("local:admin", &["kill-switch", "off", "--reason", "drill over"], 0);
    env.confirm_pending();
    id
}

/// A second action, rejected: what happens after the first period.
fn rejected(env: &Env) {
    let id = suggest_revoke(env, "later", None);
    env.expect("local:bob", &["reject", &id, "--note", "not now"], 0);
}

fn report(env: &Env, from: &str, to: &str, format: &str) -> Run {
    env.expect("local:bob", &["report", "compliance", "--from", from, "--to", to, "--format", format], 0)
}

fn strs<'a>(v: &'a Value, key: &str, field: &str) -> Vec<&'a str> {
    v[key].as_array().expect(key).iter().map(|e| e[field].as_str().unwrap_or("")).collect()
}

#[test]
fn a_lifecycle_in_each_format_and_only_its_period() {
    let env = Env::new();
    let start = now();
    let id = lifecycle(&env);
    let middle = now();
    rejected(&env);
    let end = now();

    let json = report(&env, &start, &middle, "json").document();
    // 1. Completed, then rolled back; the rejection after the period is left out.
    assert_eq!(strs(&json, "outcomes", "outcome"), ["completed", "rolled_back"], "{json:#}");
    assert!(
        json["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .all(|o| o["action_id"] == id.as_str() && o["kind"] == "revoke" && o["control"] == HOSTILE_CONTROL)
    );
    // 2. bob approved alice's action.
    assert_eq!(json["approvals"].as_array().map(Vec::len), Some(1), "{json:#}");
    let approval = &json["approvals"][0];
    assert_eq!(
        (approval["requester"].as_str(), approval["approver"].as_str()),
        (Some("local:alice"), Some("local:bob"))
    );
    assert_eq!((approval["separate"].as_bool(), approval["distinct_approvers"].as_u64()), (Some(true), Some(1)));
    // 3. bob asked for the rollback and dave approved it.
    let rollback = &json["rollbacks"][0];
    assert_eq!(
        (rollback["requested_by"].as_str(), rollback["approved_by"].as_str(), rollback["outcome"].as_str()),
        (Some("local:bob"), Some("local:dave"), Some("rolled_back")),
        "{json:#}"
    );
    // 4. alice's approval of her own action, refused, with the reason.
    assert_eq!(strs(&json, "refusals", "event"), ["approval_refused"], "{json:#}");
    assert_eq!(json["refusals"][0]["actor"], "local:alice");
    assert!(json["refusals"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    // 5. none; 6. the kill switch on, then off.
    assert_eq!(json["overrides"], serde_json::json!([]));
    let changes = strs(&json, "settings_changes", "event");
    assert!(changes.contains(&"kill_switch_on") && changes.contains(&"kill_switch_off"), "{changes:?}");
    let on = json["settings_changes"].as_array().expect("changes").iter().find(|c| c["event"] == "kill_switch_on");
    let on = on.expect("kill_switch_on");
    assert_eq!(
        (on["actor"].as_str(), &on["before"]["kill_switch"], &on["after"]["kill_switch"]),
        (Some("local:admin"), &Value::Bool(false), &Value::Bool(true))
    );
    // 7. Verified; the head is the period's last record, not the later ones.
    assert_eq!(json["audit"]["chain_verified"], true, "{json:#}");
    assert_eq!(json["audit"]["scope"], "whole_chain");
    let head = json["audit"]["head"]["seq"].as_u64().expect("head");
    assert_eq!(head, json["records"].as_u64().expect("records"), "the period holds the log from its start");
    assert_eq!(json["audit"]["head"]["hash"].as_str().map(str::len), Some(64));
    assert!(json["audit"]["signed_tree_head"]["tree_size"].as_u64().is_some_and(|n| n > head));

    // The period after: only the rejection.
    let later = report(&env, &middle, &end, "json").document();
    assert_eq!(strs(&later, "outcomes", "outcome"), ["rejected"], "{later:#}");
    for section in ["approvals", "rollbacks", "refusals", "overrides", "settings_changes"] {
        assert_eq!(later[section], serde_json::json!([]), "{section}: {later:#}");
    }
    assert!(later["audit"]["head"]["seq"].as_u64().expect("head") > head);

    // CSV: one row per event, its section first; the hostile control is quoted text.
    let csv = report(&env, &start, &middle, "csv").stdout;
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("section,seq,at,action_id,control,kind,event,actor"), "{csv}");
    let count = |s: &str| lines.iter().filter(|l| l.starts_with(&format!("{s},"))).count();
    assert_eq!(
        [
            count("actions"),
            count("approvals"),
            count("rollbacks"),
            count("refusals"),
            count("overrides"),
            count("audit")
        ],
        [2, 1, 1, 1, 0, 1],
        "{csv}"
    );
    assert!(count("settings") >= 2, "{csv}");
    assert!(
        lines.iter().any(|l| l.starts_with("actions,") && l.contains(",completed,") && l.contains(HOSTILE_CONTROL))
    );
    assert!(!csv.contains("rejected"), "{csv}");

    // HTML: every section, the empty one saying so, the control escaped; written with --out.
    let out = env.dir().join("report.html");
    let out_arg = out.to_str().expect("utf-8 path");
    let run = env.expect(
        "local:bob",
        &["report", "compliance", "--from", &start, "--to", &middle, "--format", "html", "--out", out_arg],
        0,
    );
    assert!(run.stdout.is_empty() && run.stderr.contains("wrote the compliance report"), "{}", run.stderr);
    let html = std::fs::read_to_string(&out).expect("report.html");
    for heading in HEADINGS {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    assert!(html.contains("None in this period"));
    assert!(!html.contains(HOSTILE_CONTROL) && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("Chain verified"));
}

#[test]
fn the_bounds_are_checked() {
    let env = Env::new();
    env.init_enabled();
    let run = env.expect("local:bob", &["report", "compliance", "--from", "2026-12-02", "--to", "2026-12-01"], 2);
    assert!(run.stderr.contains("the period is empty"), "{}", run.stderr);
    let run = env.expect("local:bob", &["report", "compliance", "--from", "yesterday", "--to", "2026-12-01"], 2);
    assert!(run.stderr.contains("is not an instant"), "{}", run.stderr);
    // Dates and ages, as `audit export --since` takes them; a period before anything happened.
    let json = report(&env, "2000-01-01", "2000-01-02", "json").document();
    assert_eq!((json["records"].as_u64(), json["audit"]["head"].is_null()), (Some(0), true), "{json:#}");
    let json = report(&env, "2000-01-01", "0s", "json").document();
    assert_eq!(json["audit"]["chain_verified"], true, "{json:#}");
}

#[test]
fn a_tampered_store_is_not_verified() {
    let env = Env::new();
    let start = now();
    lifecycle(&env);
    let end = now();
    let conn = rusqlite::Connection::open(env.dir().join("remediation.db")).expect("open the store file");
    conn.execute_batch(
        r#"DROP TRIGGER audit_no_update;
           UPDATE audit SET record_json = replace(record_json, 'local:bob', 'local:mallory')
             WHERE record_json LIKE '%"event":"approve"%' AND record_json LIKE '%local:bob%';"#,
    )
    .expect("tamper");
    drop(conn);
    let run = report(&env, &start, &end, "json");
    let json = run.document();
    assert_eq!(json["audit"]["chain_verified"], false, "{json:#}");
    assert!(json["audit"]["problem"].as_str().is_some(), "{json:#}");
    assert!(run.stderr.contains("does NOT verify"), "{}", run.stderr);
    let html = report(&env, &start, &end, "html").stdout;
    assert!(html.contains("Chain NOT verified"), "{html}");
}

#[test]
fn a_server_answers_the_same_report() {
    let env = Env::new();
    let start = now();
    lifecycle(&env);
    let end = now();
    let viewer = token(&env, "viewer-svc", "viewer");
    let local = report(&env, &start, &end, "json").document();
    let server = Server::start(&env);
    let url = format!("http://{}", server.addr);
    let run =
        run_remote(&url, Some(&viewer), &["report", "compliance", "--from", &start, "--to", &end, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let remote = run.document();
    for section in ["actions", "outcomes", "approvals", "rollbacks", "refusals", "overrides"] {
        assert_eq!(remote[section], local[section], "{section}");
    }
    assert_eq!(remote["audit"]["chain_verified"], true);
    // The endpoint itself, in HTML and CSV.
    let path =
        |format: &str| format!("/v1/reports/compliance?from={start}&to={end}&format={format}").replace('+', "%2B");
    let (status, html) = request(&server.addr, "GET", &path("html"), Some(&viewer), None).expect("html");
    assert_eq!(status, 200, "{html}");
    let html = html.as_str().expect("text");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("&lt;script&gt;"), "{html}");
    let (status, csv) = request(&server.addr, "GET", &path("csv"), Some(&viewer), None).expect("csv");
    assert_eq!(status, 200, "{csv}");
    assert!(csv.as_str().expect("text").starts_with("section,"), "{csv}");
    let (status, body) =
        request(&server.addr, "GET", "/v1/reports/compliance?from=x&to=2026-12-01", Some(&viewer), None).expect("bad");
    assert_eq!((status, body["error"]["details"]["field"].as_str()), (400, Some("from")), "{body}");
}

/// Chromium: `REMEDIATION_TEST_CHROMIUM`, or `chromium` on `PATH`.
fn chromium() -> Option<String> {
    let found = std::env::var("REMEDIATION_TEST_CHROMIUM").ok().or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !path.is_empty()).then_some(path)
        })
    });
    remediation_testkit::real_server::require_value(
        "the compliance report's PDF test",
        "REMEDIATION_TEST_CHROMIUM",
        found.as_deref(),
        "Chromium; `.ci/setup-chromium.sh` installs it and prints the line",
    )
}

#[test]
fn the_html_prints_to_a_pdf_with_every_section() {
    let Some(chromium) = chromium() else { return };
    let env = Env::new();
    let start = now();
    lifecycle(&env);
    let end = now();
    let html = env.dir().join("report.html");
    let html_arg = html.to_str().expect("utf-8 path");
    env.expect(
        "local:bob",
        &["report", "compliance", "--from", &start, "--to", &end, "--format", "html", "--out", html_arg],
        0,
    );
    let pdf = env.dir().join("report.pdf");
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new(&chromium)
        // The outline (bookmarks) holds the page's headings as the PDF's own text strings.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            "--generate-pdf-document-outline",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&pdf).expect("the PDF was written");
    assert!(bytes.starts_with(b"%PDF-") && bytes.len() > 1000, "not a PDF ({} bytes)", bytes.len());
    // Each section is in the PDF: its heading is an outline entry (`/Title (...)`, which
    // Chromium writes uncompressed from the printed document's headings); and, where
    // poppler's `pdftotext` is installed (not on every machine), in the PDF's text as well.
    for heading in HEADINGS {
        let entry = format!("/Title ({heading})");
        assert!(bytes.windows(entry.len()).any(|w| w == entry.as_bytes()), "{heading} is not in the PDF's outline");
    }
    match Command::new("pdftotext").arg(&pdf).arg("-").output() {
        Ok(text) if text.status.success() => {
            let text = String::from_utf8_lossy(&text.stdout);
            for heading in HEADINGS {
                assert!(text.contains(heading), "{heading} missing from the PDF's text:\n{text}");
            }
            assert!(text.contains("None in this period"), "{text}");
        }
        _ => eprintln!("pdftotext is not installed: the PDF's sections were checked through its outline only"),
    }
}
