//! The approval page in a real browser: the real server, headless Chromium driven over
//! WebDriver (plain HTTP to chromedriver), sign-in with a token, the action and its diff on
//! the page, a click on Approve, the flash, and the approval seen through the API.
//! Needs `REMEDIATION_TEST_CHROMEDRIVER` (see `.ci/setup-chromium.sh`); skips without it (fails under `CI=true`).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::{Server, setup};

/// The W3C WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 exchange with chromedriver; the status and the JSON body.
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to chromedriver {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).expect("send");
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "chromedriver closed the connection: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "chromedriver closed the connection early");
        raw.extend_from_slice(&buf[..n]);
    }
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// chromedriver on a free loopback port, with one browser session (shared with the console's
/// test, `console.rs`).
pub(crate) struct Driver {
    child: Child,
    addr: String,
    session: String,
    profile: tempfile::TempDir,
}

impl Driver {
    pub(crate) fn start(chromedriver: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
        let addr = format!("127.0.0.1:{port}");
        let mut driver = Self { child, addr, session: String::new(), profile: tempfile::tempdir().expect("profile") };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = TcpStream::connect(&driver.addr).is_ok()
                && http(&driver.addr, "GET", "/status", None).1["value"]["ready"] == true;
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on {}", driver.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(format!("--user-data-dir={}", driver.profile.path().display()));
        let mut options = json!({"args": args});
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let (status, created) = http(&driver.addr, "POST", "/session", Some(&caps));
        assert_eq!(status, 200, "cannot start a browser session: {created}");
        driver.session = created["value"]["sessionId"].as_str().expect("session id").to_owned();
        driver
    }

    /// A WebDriver command on the session; panics on an error.
    pub(crate) fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, v) = http(&self.addr, method, &format!("/session/{}{path}", self.session), body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    pub(crate) fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json!({"url": url})));
    }

    /// The element matching `css`, waiting up to 20 s for it to appear.
    pub(crate) fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, v) = http(
                &self.addr,
                "POST",
                &format!("/session/{}/element", self.session),
                Some(&json!({"using": "css selector", "value": css})),
            );
            if status == 200 {
                return v["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("no element id for {css}: {v}"))
                    .to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}; page:\n{}", self.source());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of the element matching `css`. An element gone stale between finding and
    /// reading it (the page navigated after a click, or refreshed itself) is found again, for
    /// up to 20 s.
    pub(crate) fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let el = self.find(css);
            let (status, t) = http(&self.addr, "GET", &format!("/session/{}/element/{el}/text", self.session), None);
            if status == 200 {
                return t["value"].as_str().unwrap_or_default().to_owned();
            }
            assert!(Instant::now() < deadline, "cannot read the text of {css}: {t}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to 20 s for the element matching `css` to contain `needle` (the page may still
    /// be navigating after a click: a missing or stale element is retried); returns its text.
    pub(crate) fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        loop {
            let (status, v) = http(
                &self.addr,
                "POST",
                &format!("/session/{}/element", self.session),
                Some(&json!({"using": "css selector", "value": css})),
            );
            if let (200, Some(el)) = (status, v["value"][ELEMENT].as_str()) {
                let (status, t) =
                    http(&self.addr, "GET", &format!("/session/{}/element/{el}/text", self.session), None);
                if status == 200 {
                    last = t["value"].as_str().unwrap_or_default().to_owned();
                    if last.contains(needle) {
                        return last;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} never contained {needle:?} (last: {last:?}); page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.cmd("POST", &format!("/element/{el}/value"), Some(&json!({"text": text})));
    }

    /// Clicks the element matching `css`, finding it again when it went stale meanwhile (a page
    /// that refreshes itself), for up to 20 s.
    pub(crate) fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let el = self.find(css);
            let path = format!("/session/{}/element/{el}/click", self.session);
            let (status, v) = http(&self.addr, "POST", &path, Some(&json!({})));
            if status == 200 {
                return;
            }
            let stale = v["value"]["error"].as_str() == Some("stale element reference");
            assert!(stale && Instant::now() < deadline, "cannot click {css}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap_or_default().to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(&self.addr, "DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_approver_signs_in_and_approves_in_chromium() {
    let Some(chromedriver) = remediation_testkit::real_server::require(
        "the browser test",
        "REMEDIATION_TEST_CHROMEDRIVER",
        "chromedriver; `.ci/setup-chromium.sh` installs Chromium and prints the line",
    ) else {
        return;
    };
    let (env, requester, approver) = setup();
    // Slow the worker down so the approved action is still `approved` when checked.
    env.edit_config(|t| t.replace("worker_interval_secs = 1", "worker_interval_secs = 3600"));
    let server = Server::start(&env);
    let action = json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing <b>admin</b> access",
                        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"}});
    let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&action));
    assert_eq!(status, 201, "{created}");
    let id = created["action"]["id"].as_str().expect("id").to_owned();

    let started = Instant::now();
    let browser = Driver::start(&chromedriver);
    let url = format!("http://{}/", server.addr);
    browser.goto(&url);
    browser.type_into("#token", &approver);
    browser.click("#sign-in");
    browser.wait_text("#flash", "Signed in as bob-svc (approver)");
    assert_eq!(browser.text("#who"), "bob-svc");

    // The action, its reason shown as text (not markup), its diff and its timeline.
    let card = browser.text(&format!("#action-{id}"));
    for needle in [
        "alice",
        "admins",
        "alice-svc",
        "low (blast radius 1)",
        "standing <b>admin</b> access",
        "/member",
        "true",
        "false",
    ] {
        assert!(card.contains(needle), "card lacks {needle:?}:\n{card}");
    }
    assert!(card.contains("new → pending_approval by alice-svc"), "{card}");

    browser.type_into(&format!("#action-{id} input[name=note]"), "looks right");
    browser.click(&format!("#approve-{id}"));
    browser.wait_text("#flash", &format!("Approved action {id}; it is now approved."));
    assert!(browser.text("#empty").contains("Nothing is waiting"));

    let (_, view) = server.call("GET", &format!("/v1/actions/{id}"), Some(&requester), None);
    assert_eq!(view["action"]["state"], "approved", "{view}");
    let last = &view["transitions"][1];
    assert_eq!((last["actor"].as_str(), last["comment"].as_str()), (Some("bob-svc"), Some("looks right")), "{view}");

    // Signing out returns to the sign-in form.
    browser.click("#sign-out");
    browser.wait_text("#login", "API token");
    eprintln!("browser flow took {:?}", started.elapsed());
    let log = server.log();
    assert!(!log.contains(approver.as_str()) && !log.contains(&approver[4..20]), "the token appears in the log");
}
