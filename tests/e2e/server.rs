//! End-to-end tests of `remediation-server`: tokens made with the CLI, the real binary
//! serving HTTP on a loopback port, its worker executing an approved action, and SIGTERM
//! stopping it cleanly without losing work.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use remediation_e2e::{Env, server_bin};
use serde_json::{Value, json};

/// A running server and everything it wrote to standard error.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(env: &Env) -> Self {
        let mut child = Command::new(server_bin())
            .arg("--data-dir")
            .arg(env.dir())
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("REMEDIATION_CONFIG")
            .env_remove("REMEDIATION_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start remediation-server: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
                let mut log = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the server did not report its address; log:\n{}", log.lock().expect("log"))
        });
        Self { child, addr, log }
    }

    /// One HTTP/1.1 request; returns the status and the body as JSON (or a string).
    pub(crate) fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        request(&self.addr, method, path, token, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(crate) fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
    }

    /// Waits for the process to exit; its exit code and how long it took.
    pub(crate) fn wait_exit(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("the server did not stop within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to `addr`; the status and the body as JSON (or a string), or the I/O
/// error of a server that is not there or died before answering.
pub(crate) fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let Some(status) = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no HTTP answer"));
    };
    let value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    Ok((status, value))
}

/// Creates principal `name` holding `role` (an admin confirmed by a second local admin) and a
/// token of the same name for it; the token.
pub(crate) fn token(env: &Env, name: &str, role: &str) -> String {
    let run = env.expect("local:admin", &["principal", "create", name, "--role", role, "--reason", "e2e"], 0);
    if role == "admin" {
        assert!(run.stdout.contains("waiting for a second admin"), "{}", run.stdout);
        let pending = env.expect("local:admin2", &["pending", "list", "--output", "json"], 0).json();
        let id = pending[0]["id"].as_str().expect("a pending change").to_owned();
        env.expect("local:admin2", &["pending", "confirm", &id], 0);
    }
    let run = env.expect("local:admin", &["token", "create", "--principal", name, "--name", name], 0);
    let token = run.stdout.trim().to_owned();
    assert!(token.starts_with("rmt_") && token.len() == 68, "{}", run.stdout);
    token
}

pub(crate) fn setup() -> (Env, String, String) {
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| format!("{t}\n[server]\nworker_interval_secs = 1\nshutdown_grace_secs = 20\n"));
    let requester = token(&env, "alice-svc", "requester");
    let approver = token(&env, "bob-svc", "approver");
    (env, requester, approver)
}

fn revoke(group: &str) -> Value {
    json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
           "target": {"identity": "alice", "resource": group, "grant_type": "group_membership"}})
}

#[test]
fn tokens_are_shown_once_listed_without_secrets_and_revoked() {
    let (env, requester, _) = setup();
    let list = env.expect("local:admin", &["token", "list", "--output", "json"], 0);
    assert!(!list.stdout.contains(&requester), "token list never shows tokens");
    let tokens = list.json();
    let names: Vec<(&str, &str)> = tokens
        .as_array()
        .expect("list")
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or(""), t["principal"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(names, [("alice-svc", "alice-svc"), ("bob-svc", "bob-svc")]);
    // Only local admins manage tokens and principals: a viewer or an approver cannot mint an
    // admin's token.
    env.expect("local:admin", &["principal", "create", "root-svc", "--role", "admin", "--reason", "x"], 0);
    for actor in ["local:alice", "local:bob", "local:nobody"] {
        let run = env.expect(actor, &["token", "create", "--principal", "bob-svc", "--name", "mine"], 3);
        assert!(run.stderr.contains("only an admin may create tokens"), "{}", run.stderr);
        env.expect(actor, &["principal", "create", "eve", "--role", "approver"], 3);
        env.expect(actor, &["token", "revoke", "alice-svc"], 3);
    }
    env.expect("local:admin", &["token", "create", "--principal", "bob-svc", "--name", "alice-svc"], 3);
    env.expect("local:admin", &["token", "revoke", "alice-svc"], 0);
    env.expect("local:admin", &["token", "revoke", "alice-svc"], 4);
    // A revoked token's name never passes to another principal.
    let run = env.expect("local:admin", &["token", "create", "--principal", "bob-svc", "--name", "alice-svc"], 3);
    assert!(run.stderr.contains("belongs to principal `alice-svc`"), "{}", run.stderr);
    let run = env.expect(
        "local:admin",
        &["token", "create", "--principal", "bob-svc", "--name", "b2", "--expires", "400d"],
        2,
    );
    assert!(run.stderr.contains("366 days"), "{}", run.stderr);
    let db = std::fs::read(env.dir().join("remediation.db")).expect("store");
    assert!(!String::from_utf8_lossy(&db).contains(&requester), "the store keeps only the hash");
}

#[test]
fn the_server_serves_the_api_and_its_worker_executes_approved_actions() {
    let (env, requester, approver) = setup();
    let server = Server::start(&env);
    assert_eq!(server.call("GET", "/healthz", None, None).0, 200);
    assert_eq!(server.call("GET", "/readyz", None, None).0, 200);
    let (status, body) = server.call("GET", "/v1/actions", None, None);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
    let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&revoke("admins")));
    assert_eq!(status, 201, "{created}");
    let id = created["action"]["id"].as_str().expect("id").to_owned();
    let (status, body) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&requester), None);
    assert_eq!(status, 403, "a requester does not approve: {body}");
    let (status, body) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
    assert_eq!((status, body["action"]["state"].as_str()), (200, Some("approved")), "{body}");
    // The worker (interval 1 s) executes it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, view) = server.call("GET", &format!("/v1/actions/{id}"), Some(&requester), None);
        if view["action"]["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "not executed in time: {view}\nlog:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log();
    for t in [&requester, &approver] {
        assert!(!log.contains(t.as_str()), "a token appears in the log");
    }
}

/// Polls action `id` until it is in `state`.
fn wait_for_state(server: &Server, token: &str, id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, view) = server.call("GET", &format!("/v1/actions/{id}"), Some(token), None);
        if view["action"]["state"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never reached {state}: {view}\nlog:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_claiming_finishes_in_flight_and_loses_nothing() {
    let (env, requester, approver) = setup();
    // One execution at a time, so the second action is still unclaimed when the first blocks.
    env.edit_config(|t| {
        let t = t.replace("worker_interval_secs = 1", "worker_interval_secs = 2");
        if t.contains("\n[execution]\n") {
            t.replacen("\n[execution]\n", "\n[execution]\nconcurrency = 1\n", 1)
        } else {
            format!("{t}\n[execution]\nconcurrency = 1\n")
        }
    });
    let mut server = Server::start(&env);
    let mut ids = Vec::new();
    for group in ["admins", "engineering"] {
        let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&revoke(group)));
        assert_eq!(status, 201, "{created}");
        ids.push(created["action"]["id"].as_str().expect("id").to_owned());
    }
    // Hold the sandbox's writer lock: the worker's first execution blocks inside the provider
    // write, with the action `executing`, until it is released.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.dir().join("sandbox.json.lock"))
        .expect("lock file");
    lock.lock().expect("lock");
    for id in &ids {
        let (status, _) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
        assert_eq!(status, 200);
    }
    wait_for_state(&server, &requester, &ids[0], "executing");
    server.sigterm();
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.child.try_wait().expect("wait").is_none(), "the server exited with work in flight");
    drop(lock);
    let (code, took) = server.wait_exit();
    assert_eq!(code, Some(0), "clean exit; log:\n{}", server.log());
    assert!(took < Duration::from_secs(20), "stopped in {took:?}");
    assert!(server.log().contains("stopped cleanly"), "{}", server.log());
    // The execution in flight finished; the other action was not claimed.
    let list = env.expect("local:bob", &["list", "--output", "json"], 0).json();
    let states: Vec<&str> = list.as_array().expect("list").iter().map(|a| a["state"].as_str().unwrap_or("")).collect();
    assert_eq!(states, ["completed", "approved"], "log:\n{}", server.log());
    env.expect("local:bob", &["audit", "verify"], 0);
    // What was not claimed runs after a restart.
    let server = Server::start(&env);
    wait_for_state(&server, &requester, &ids[1], "completed");
}

/// One request a webhook receiver got: its headers (lower-cased names) and raw body.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 receiver on a free loopback port that answers 200 to everything and
/// keeps what it got.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line); // request line
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len =
                headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            keep.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Received { headers, body });
        }
    });
    (addr, got)
}

#[test]
fn configured_event_sinks_get_every_transition_signed_and_logged() {
    let (env, requester, approver) = setup();
    let (addr, got) = receiver();
    let secret = "events-signing-secret-for-the-test";
    let secret_file = env.dir().join("events.secret");
    std::fs::write(&secret_file, secret).expect("secret");
    env.edit_config(|t| {
        format!(
            "{t}\n[[events.sinks]]\ntype = \"log\"\n\n[[events.sinks]]\ntype = \"webhook\"\nurl = \"http://{addr}/events\"\nsecret_file = {:?}\n",
            secret_file.display().to_string()
        )
    });
    let server = Server::start(&env);
    let (status, created) = server.call("POST", "/v1/actions", Some(&requester), Some(&revoke("admins")));
    assert_eq!(status, 201, "{created}");
    let id = created["action"]["id"].as_str().expect("id").to_owned();
    server.call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
    wait_for_state(&server, &requester, &id, "completed");

    let wanted = ["pending_approval", "approved", "executing", "completed"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let secret = secrecy::SecretString::from(secret.to_owned());
    loop {
        let seen: Vec<String> = {
            let got = got.lock().expect("received");
            got.iter()
                .map(|r| {
                    let header = |name: &str| {
                        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
                    };
                    remediation_notify::verify_signature(
                        &secret,
                        &header("x-remediation-timestamp"),
                        &r.body,
                        &header("x-remediation-signature"),
                        time::OffsetDateTime::now_utc(),
                        remediation_notify::DEFAULT_TOLERANCE,
                    )
                    .unwrap_or_else(|e| panic!("a delivery does not verify: {e}"));
                    // A CloudEvents envelope: its type names the state the event's data moved to.
                    let event: Value = serde_json::from_slice(&r.body).expect("event JSON");
                    let to = event["data"]["record"]["to"].as_str().unwrap_or_default().to_owned();
                    assert_eq!(event["type"], format!("dev.remediation.action.{to}"), "{event}");
                    to
                })
                .collect()
        };
        if wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
            break;
        }
        assert!(Instant::now() < deadline, "events received so far: {seen:?}\nlog:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    assert!(log.contains("remediation::events"), "the log sink writes structured event lines:\n{log}");
    assert!(!log.contains("events-signing-secret"), "the signing secret never appears in the log");
}
