//! Event delivery from the audit log (the outbox) through the real binaries: exactly once into
//! JetStream across a crash between a sink's acknowledgement and the move of its mark; a
//! private nats-server stopped and restarted while a server works, losing nothing and keeping
//! each action's order; findings taken in over NATS once, malformed ones dead-lettered; a
//! webhook that refuses an event parks it until it is replayed; and two replicas on one
//! PostgreSQL database of which one relay delivers, the survivor taking over after a SIGKILL.
//!
//! NATS tests start private `nats-server`s (skipped with a printed reason without one, failing
//! under `CI=true`); the replica test needs `REMEDIATION_TEST_PG` likewise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use remediation_e2e::Env;
use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};
use serde_json::{Value, json};

use crate::crash::park_at;
use crate::postgres::Db;
use crate::server::{Server, token};

/// The event stream a NATS sink creates by default.
const EVENTS_STREAM: &str = "REMEDIATION_EVENTS";

// ---------------------------------------------------------------------------------------------
// Helpers

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// A JetStream client of `url`.
async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}")))
}

/// Every message of stream `name`, in stream order; none when the stream does not exist.
fn stream_messages(url: &str, name: &str) -> Vec<jetstream::message::StreamMessage> {
    runtime().block_on(async {
        let js = js(url).await;
        let Ok(mut stream) = js.get_stream(name).await else { return Vec::new() };
        let state = stream.info().await.expect("stream info").state.clone();
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        for seq in state.first_sequence..=state.last_sequence {
            messages.push(stream.get_raw_message(seq).await.unwrap_or_else(|e| panic!("message {seq} of {name}: {e}")));
        }
        messages
    })
}

fn header(message: &jetstream::message::StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

/// One event as the stream holds it.
#[derive(Debug)]
struct Published {
    msg_id: String,
    id: String,
    auditseq: u64,
    /// The action (the CloudEvent's `subject`), when it is about one.
    action: Option<String>,
}

fn published(message: &jetstream::message::StreamMessage) -> Published {
    let event: Value = serde_json::from_slice(&message.payload).expect("a CloudEvent in JSON");
    let msg_id = header(message, "Nats-Msg-Id").unwrap_or_else(|| panic!("no Nats-Msg-Id: {event}"));
    Published {
        msg_id,
        id: event["id"].as_str().unwrap_or_else(|| panic!("no id: {event}")).to_owned(),
        auditseq: event["auditseq"].as_u64().unwrap_or_else(|| panic!("no auditseq: {event}")),
        action: event["subject"].as_str().map(str::to_owned),
    }
}

/// The audit log as `remediate audit export` gives it: `(seq, hash)` of each record.
fn audit_log(env: &Env) -> Vec<(u64, String)> {
    let export = env.expect("local:bob", &["audit", "export"], 0);
    export
        .stdout
        .lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("JSONL");
            let seq = record["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {record}"));
            (seq, record["hash"].as_str().unwrap_or_else(|| panic!("no hash: {record}")).to_owned())
        })
        .collect()
}

/// The standing of `sink` in an events status (`remediate events status`, `GET /v1/events`).
fn sink_of<'a>(status: &'a Value, sink: &str) -> &'a Value {
    status["sinks"]
        .as_array()
        .and_then(|sinks| sinks.iter().find(|s| s["sink"] == sink))
        .unwrap_or_else(|| panic!("no sink {sink} in {status}"))
}

fn backlog(status: &Value, sink: &str) -> u64 {
    sink_of(status, sink)["backlog"].as_u64().unwrap_or_else(|| panic!("no backlog: {status}"))
}

/// Polls `check` every 50 ms until it gives `Some`, for at most `limit`; `what` and `context`
/// say what was awaited when it times out.
#[track_caller]
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>, context: impl Fn() -> String) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(done) = check() {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}\n{}", context());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private nats-server, or `None` after printing why the test skips (a failure under CI).
fn nats() -> Option<PrivateNats> {
    PrivateNats::start(PrivateNatsOptions::default())
}

// ---------------------------------------------------------------------------------------------
// Actions through a server

/// The value of gauge `line_start` (name and labels) in an OpenMetrics text.
fn gauge(metrics: &str, line_start: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(line_start)?.split_whitespace().next()?.parse().ok())
}

fn user(i: usize) -> String {
    format!("u{i:03}")
}

fn group(i: usize) -> String {
    format!("g{:02}", i % 20)
}

/// A sandbox of `n` users, each in one of 20 groups, and limits that let every one of their
/// revocations run.
fn many_users(env: &Env, n: usize) {
    let users: serde_json::Map<String, Value> = (0..n).map(|i| (user(i), json!({}))).collect();
    let groups: serde_json::Map<String, Value> = (0..20)
        .map(|g| (group(g), json!({"members": (0..n).filter(|i| i % 20 == g).map(user).collect::<Vec<_>>()})))
        .collect();
    env.write_sandbox(&json!({"users": users, "groups": groups}));
    env.edit_config(|t| {
        t.replace("per_connector = { max = 50,", "per_connector = { max = 100000,")
            .replace("per_resource = { max = 10,", "per_resource = { max = 100000,")
            .replace("global = { max = 200,", "global = { max = 100000,")
    });
}

fn revoke(i: usize) -> Value {
    json!({"connector": "sandbox", "kind": {"type": "revoke"}, "reason": "standing access",
           "target": {"identity": user(i), "resource": group(i), "grant_type": "group_membership"}})
}

/// Suggests revoking user `i`'s membership through `server` and approves it; the action id.
fn suggest_and_approve(server: &Server, i: usize, requester: &str, approver: &str) -> String {
    let (status, created) = server.call("POST", "/v1/actions", Some(requester), Some(&revoke(i)));
    assert_eq!(status, 201, "suggesting {}: {created}", user(i));
    let id = created["action"]["id"].as_str().expect("id").to_owned();
    let (status, body) = server.call("POST", &format!("/v1/actions/{id}/approve"), Some(approver), None);
    assert_eq!(status, 200, "approving {id}: {body}");
    id
}

/// Completed actions, as `GET /v1/actions?state=completed` counts them (at most 500).
fn completed(server: &Server, token: &str) -> usize {
    let (status, page) = server.call("GET", "/v1/actions?state=completed&limit=500", Some(token), None);
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver of the test's own

/// One request a [`Hook`] got, and what it answered.
#[derive(Debug, Clone)]
struct Delivery {
    /// `X-Remediation-Event-Id`.
    id: String,
    /// The status it answered.
    status: u16,
}

/// A minimal HTTP/1.1 receiver on a free loopback port answering what `answer` says (status,
/// body), keeping each request's event id and the status it answered.
struct Hook {
    addr: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

impl Hook {
    fn start(status: u16, body: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new((status, body.to_owned())));
        let (keep, answers) = (got.clone(), answer.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(clone) = stream.try_clone() else { continue };
                let mut reader = BufReader::new(clone);
                let mut headers = Vec::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let field = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                let len = field("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let (status, text) = answers.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                if stream.write_all(reply.as_bytes()).is_ok() {
                    let id = field("x-remediation-event-id").unwrap_or_default();
                    keep.lock().unwrap_or_else(PoisonError::into_inner).push(Delivery { id, status });
                }
            }
        });
        Self { addr, got, answer }
    }

    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = (status, body.to_owned());
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The event ids it took (answered 2xx), with how many times each.
    fn taken(&self) -> BTreeMap<String, usize> {
        let mut taken = BTreeMap::new();
        for d in self.deliveries().into_iter().filter(|d| (200..300).contains(&d.status)) {
            *taken.entry(d.id).or_default() += 1;
        }
        taken
    }
}

/// A secret file for a webhook sink; its path.
fn webhook_secret(env: &Env) -> String {
    let path = env.dir().join("events.secret");
    std::fs::write(&path, "events-signing-secret-for-the-e2e-test").expect("secret");
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. Exactly once into JetStream across a crash between the acknowledgement and the mark

#[test]
fn a_crash_between_jetstreams_ack_and_the_mark_stores_each_event_once() {
    let started = Instant::now();
    let Some(nats) = nats() else { return };
    let env = Env::new();
    env.init_enabled();
    // Records first: the sink, configured afterwards, starts from the beginning of the log.
    for (identity, resource) in
        [("alice", "admins"), ("alice", "engineering"), ("bob", "admins"), ("carol", "engineering")]
    {
        let mut args = crate::REVOKE_ALICE_ADMINS.to_vec();
        args[6] = identity;
        args[8] = resource;
        let id = env.expect("local:alice", &args, 0).json()["action"]["id"].as_str().expect("id").to_owned();
        env.expect("local:dave", &["approve", &id], 0);
    }
    let before = audit_log(&env);
    assert!(before.len() >= 8, "four suggestions and four approvals: {before:?}");
    // Batches of 3: the killed run hands over one batch; the rest follow in the next run. The
    // killed run's relay lease lasts its flush budget plus `lease_ttl_secs`: 2 s here.
    env.edit_config(|t| {
        format!(
            "{t}\n[[events.sinks]]\ntype = \"nats\"\nname = \"js\"\ndeliver_from = \"beginning\"\nconnection = {{ url = \"{}\" }}\n\n[events.relay]\nbatch = 3\nlease_ttl_secs = 1\n",
            nats.url()
        )
    });

    // The command-line sink (events.jsonl) is caught up: the first delivery of this run is the
    // NATS sink's first batch, acknowledged by JetStream; the process stops before the mark.
    let mut parked = park_at(&env, "local:bob", "relay_after_delivery", &["events", "flush", "--timeout", "1"]);
    parked.child.kill().expect("SIGKILL");
    parked.child.wait().expect("wait");
    let after_kill = stream_messages(&nats.url(), EVENTS_STREAM);
    assert_eq!(after_kill.len(), 3, "the killed run published its first batch before the kill");
    let status = env.expect("local:bob", &["events", "status", "--output", "json"], 0).json();
    assert_eq!(sink_of(&status, "events/js")["delivered_through"], 0, "the mark never moved: {status}");

    // The next run, once the dead one's lease has expired, hands the same records over
    // again, and the rest. Until then it delivers nothing and says so (in text, not JSON).
    let flushed = wait_for(
        Duration::from_secs(10),
        "a flush after the lease expired",
        || {
            let run = env.expect("local:bob", &["events", "flush", "--output", "json"], 0);
            serde_json::from_str::<Value>(&run.stdout).ok()
        },
        String::new,
    );
    eprintln!("flushed after the crash: {flushed}");
    let log = audit_log(&env);
    let messages = stream_messages(&nats.url(), EVENTS_STREAM);
    let events: Vec<Published> = messages.iter().map(published).collect();
    assert_eq!(events.len(), log.len(), "one message per audit record: {events:?}\n{log:?}");
    let ids: BTreeSet<&str> = events.iter().map(|e| e.msg_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "every Nats-Msg-Id distinct");
    for (event, (seq, hash)) in events.iter().zip(&log) {
        assert_eq!((&event.msg_id, &event.id), (hash, hash), "Nats-Msg-Id and id are the record's hash");
        assert_eq!(event.auditseq, *seq, "in the log's order");
    }
    let status = env.expect("local:bob", &["events", "status", "--output", "json"], 0).json();
    assert_eq!(backlog(&status, "events/js"), 0, "{status}");
    assert_eq!(sink_of(&status, "events/js")["parked"], 0, "{status}");
    eprintln!("exactly once across a crash: {} records, in {:?}", log.len(), started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 2. A private nats-server stopped and restarted under load

/// Users of the outage test's sandbox: the most actions it may suggest.
const OUTAGE_USERS: usize = 300;
/// The fewest actions the outage test suggests; it goes on until 20 after NATS is back.
const OUTAGE_ACTIONS: usize = 120;

#[test]
fn a_nats_outage_under_load_delays_events_and_loses_none() {
    let started = Instant::now();
    let Some(mut nats) = nats() else { return };
    let env = Env::new();
    env.init_enabled();
    many_users(&env, OUTAGE_USERS);
    env.edit_config(|t| {
        format!("{t}\n[server]\nworker_interval_secs = 1\nrate_limit = {{ requests = 1000000, window_secs = 1 }}\n")
    });
    let requester = token(&env, "alice-svc", "requester");
    let approver = token(&env, "bob-svc", "approver");
    env.edit_config(|t| {
        format!(
            "{t}\n[[events.sinks]]\ntype = \"nats\"\nname = \"js\"\ndeliver_from = \"beginning\"\n\
             connection = {{ url = \"{}\", connect_timeout_secs = 2, request_timeout_secs = 2 }}\n\n\
             [events.relay]\nmax_backoff_secs = 1\n",
            nats.url()
        )
    });
    let server = Server::start(&env);
    let status_of = || {
        let (status, body) = server.call("GET", "/v1/events", Some(&requester), None);
        assert_eq!(status, 200, "{body}");
        body
    };

    let done = AtomicUsize::new(0);
    let restarted: Mutex<Option<usize>> = Mutex::new(None);
    let (actions, outage, backlogs) = std::thread::scope(|s| {
        // Paced, so that the load runs before, through and after the outage.
        let load = s.spawn(|| {
            for i in 0..OUTAGE_USERS {
                if restarted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some_and(|at| i >= (at + 20).max(OUTAGE_ACTIONS))
                {
                    return i;
                }
                suggest_and_approve(&server, i, &requester, &approver);
                done.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(25));
            }
            OUTAGE_USERS
        });
        let until = |n: usize| {
            wait_for(
                Duration::from_secs(60),
                &format!("{n} actions suggested"),
                || (done.load(Ordering::SeqCst) >= n || load.is_finished()).then_some(()),
                || server.log(),
            );
        };
        until(30);
        let delivered_before = sink_of(&status_of(), "events/js")["delivered_through"].as_u64().unwrap_or(0);
        assert!(delivered_before > 0, "events flowed before the outage: {}", status_of());
        let stopped_at = Instant::now();
        nats.stop();
        until(done.load(Ordering::SeqCst) + 10);
        let first = backlog(&status_of(), "events/js");
        // Down long enough for several attempts, backing off to the 1 s cap.
        until(done.load(Ordering::SeqCst) + 20);
        while stopped_at.elapsed() < Duration::from_millis(2500) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let second = backlog(&status_of(), "events/js");
        let (status, metrics) = server.call("GET", "/metrics", Some(&requester), None);
        assert_eq!(status, 200, "{metrics}");
        let metrics = metrics.as_str().unwrap_or_default().to_owned();
        let gauged = gauge(&metrics, "remediation_events_backlog{sink=\"events/js\"}");
        nats.restart();
        let at_restart = done.load(Ordering::SeqCst);
        *restarted.lock().unwrap_or_else(PoisonError::into_inner) = Some(at_restart);
        let outage = stopped_at.elapsed();
        let actions = load.join().expect("load");
        assert!(at_restart + 20 <= actions, "the load goes on after the restart: {at_restart}, then {actions}");
        assert!(first > 0 && second > first, "the backlog grows while NATS is down: {first}, then {second}");
        assert!(gauged.is_some_and(|g| g > 0.0), "the backlog gauge: {gauged:?}\n{metrics}");
        (actions, outage, (at_restart, first, second, gauged))
    });
    eprintln!(
        "{actions} actions; NATS down for {outage:?} (restarted after {} actions); backlog {} then {}, gauge {:?}",
        backlogs.0, backlogs.1, backlogs.2, backlogs.3
    );

    // Everything executes, and the stream catches up once NATS is back.
    let recovered = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "every action completed",
        || (completed(&server, &requester) == actions).then_some(()),
        || server.log(),
    );
    wait_for(
        Duration::from_secs(30),
        "backlog 0",
        || {
            let status = status_of();
            (backlog(&status, "events/js") == 0 && status["unsequenced"] == 0).then_some(())
        },
        || format!("{}\n{}", status_of(), server.log()),
    );
    eprintln!("caught up {:?} after the restart", recovered.elapsed());
    assert!(server.log().contains("sink unavailable; its events wait"), "the relay met the outage:\n{}", server.log());

    let log = audit_log(&env);
    let events: Vec<Published> = stream_messages(&nats.url(), EVENTS_STREAM).iter().map(published).collect();
    assert_eq!(events.len(), log.len(), "one message per audit record, none lost or doubled");
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let hashes: BTreeSet<&str> = log.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(ids, hashes, "the stream holds exactly the audit log's records");
    assert!(events.iter().all(|e| e.msg_id == e.id), "Nats-Msg-Id is the event id");
    let mut last: HashMap<&str, u64> = HashMap::new();
    for e in &events {
        if let Some(action) = e.action.as_deref() {
            let before = last.insert(action, e.auditseq);
            assert!(before.is_none_or(|b| b < e.auditseq), "action {action}: {before:?} then {}", e.auditseq);
        }
    }
    let in_order = events.windows(2).all(|w| w[0].auditseq < w[1].auditseq);
    eprintln!(
        "{} events of {} actions in the stream (in the log's order overall: {in_order}); {:?} in all",
        events.len(),
        last.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Findings in over NATS

fn finding(id: &str, control: &str, identity: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "source": "scanner", "control_id": control, "severity": "high",
        "title": "standing admin access", "connector": "sandbox",
        "target": {"identity": identity, "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"},
    }))
    .expect("JSON")
}

#[test]
fn findings_over_nats_are_taken_once_and_malformed_ones_dead_lettered() {
    let started = Instant::now();
    let Some(nats) = nats() else { return };
    let env = Env::new();
    env.init_enabled();
    env.edit_config(|t| format!("{t}\n[server]\nworker_interval_secs = 1\n"));
    env.expect(
        "local:admin",
        &["principal", "create", "scanner-svc", "--role", "requester", "--kind", "service", "--reason", "e2e"],
        0,
    );
    let viewer = token(&env, "viewer-svc", "viewer");
    env.edit_config(|t| {
        format!(
            "{t}\n[findings.nats]\nprincipal = \"scanner-svc\"\nconnection = {{ url = \"{}\" }}\nretry_delay_secs = 0\n",
            nats.url()
        )
    });
    let server = Server::start(&env);
    let actions = || {
        let (status, page) = server.call("GET", "/v1/actions?limit=500", Some(&viewer), None);
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    };
    let url = nats.url();
    let rt = runtime();
    let js = rt.block_on(js(&url));
    // The consumer creates its streams when it starts.
    wait_for(
        Duration::from_secs(20),
        "the findings stream",
        || rt.block_on(js.get_stream("REMEDIATION_FINDINGS")).ok().map(|_| ()),
        || server.log(),
    );
    let publish = |payload: Vec<u8>| {
        rt.block_on(async {
            let ack = js.publish("remediation.findings.scanner", payload.into()).await.expect("publish");
            ack.await.expect("the findings stream acknowledges");
        });
    };
    // Every message handled and acknowledged.
    let drained = || {
        rt.block_on(async {
            let mut consumer: jetstream::consumer::PullConsumer =
                js.get_stream("REMEDIATION_FINDINGS").await.ok()?.get_consumer("remediation-findings").await.ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0)
                .then_some(info.delivered.stream_sequence)
        })
    };

    publish(finding("F-1", "least-privilege", "alice"));
    publish(finding("F-1", "least-privilege", "alice"));
    wait_for(Duration::from_secs(20), "both findings handled", || drained().filter(|s| *s >= 2), || server.log());
    let list = actions();
    assert_eq!(list.len(), 1, "the same finding twice is one action: {list:?}");
    assert_eq!(list[0]["finding_id"], "F-1", "{list:?}");
    assert_eq!(list[0]["control_id"], "least-privilege", "{list:?}");
    assert_eq!(list[0]["state"], "pending_approval", "{list:?}");
    assert_eq!(list[0]["requested_by"], "scanner-svc", "suggested as the service principal: {list:?}");
    let log = server.log();
    let taken: Vec<&str> = log.lines().filter(|l| l.contains("finding taken in over NATS")).collect();
    assert_eq!(taken.len(), 2, "{log}");
    assert!(taken[0].contains("created") && taken[1].contains("existing"), "{taken:?}");

    publish(b"{\"id\": \"F-2\", not JSON".to_vec());
    let letters = wait_for(
        Duration::from_secs(20),
        "a dead letter",
        || {
            let letters = stream_messages(&url, "REMEDIATION_DEADLETTER");
            (!letters.is_empty()).then_some(letters)
        },
        || server.log(),
    );
    assert_eq!(letters.len(), 1);
    let reason = header(&letters[0], "Remediation-Dead-Letter-Reason").unwrap_or_default();
    assert!(!reason.is_empty(), "the dead letter says why: {:?}", letters[0].headers);
    assert_eq!(letters[0].payload.as_ref(), b"{\"id\": \"F-2\", not JSON", "the message as published");
    eprintln!("dead letter reason: {reason}");

    // The consumer goes on.
    publish(finding("F-3", "least-privilege", "bob"));
    let list = wait_for(
        Duration::from_secs(20),
        "the next finding taken",
        || {
            let list = actions();
            (list.len() == 2).then_some(list)
        },
        || server.log(),
    );
    assert_eq!(list[1]["finding_id"], "F-3", "{list:?}");
    assert!(drained().is_some(), "nothing left unacknowledged");
    assert_eq!(stream_messages(&url, "REMEDIATION_DEADLETTER").len(), 1, "no other dead letter");
    eprintln!("findings over NATS in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 4. A webhook answering 400 parks the event until it is replayed

#[test]
fn a_webhook_answering_400_parks_the_event_until_replayed() {
    let started = Instant::now();
    let hook = Hook::start(400, "schema mismatch: unknown field `auditseq`");
    let env = Env::new();
    env.init_enabled();
    let secret = webhook_secret(&env);
    env.edit_config(|t| {
        format!(
            "{t}\n[[events.sinks]]\ntype = \"webhook\"\nurl = \"http://{}/events\"\nsecret_file = {secret:?}\n",
            hook.addr
        )
    });
    env.expect("local:alice", crate::REVOKE_ALICE_ADMINS, 0);

    let status = env.expect("local:admin", &["events", "status", "--output", "json"], 0).json();
    let parked: Vec<&Value> =
        status["parked"].as_array().expect("parked").iter().filter(|p| p["sink"] == "events/webhook").collect();
    // The suggestion's record, and the `event_parked` note about it (which the sink refuses
    // too; no note is written about a note).
    assert_eq!(parked.len(), 2, "{status}");
    for p in &parked {
        let reason = p["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("400") && reason.contains("schema mismatch"), "{p}");
    }
    assert_eq!(backlog(&status, "events/webhook"), 0, "parked records do not wait: {status}");
    let export = env.expect("local:admin", &["audit", "export"], 0).stdout;
    let notes: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSONL"))
        .filter(|r| r["setting_event"] == "event_parked")
        .collect();
    assert_eq!(notes.len(), 1, "{export}");
    assert_eq!(notes[0]["value"]["sink"], "events/webhook", "{}", notes[0]);
    let refused: BTreeSet<String> = hook.deliveries().into_iter().filter(|d| d.status == 400).map(|d| d.id).collect();
    assert_eq!(refused.len(), 2, "{:?}", hook.deliveries());

    hook.answer(204, "");
    env.expect("local:admin", &["events", "replay", "--sink", "events/webhook", "--reason", "fixed"], 0);
    env.expect("local:admin", &["events", "flush"], 0);
    let taken = hook.taken();
    for id in &refused {
        assert_eq!(taken.get(id), Some(&1), "the refused event {id} delivered again, once: {taken:?}");
    }
    let status = env.expect("local:admin", &["events", "status", "--output", "json"], 0).json();
    assert_eq!(status["parked"], json!([]), "{status}");
    assert_eq!(sink_of(&status, "events/webhook")["parked"], 0, "{status}");
    assert_eq!(backlog(&status, "events/webhook"), 0, "{status}");
    eprintln!("parked and replayed in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 5. Two replicas, one relay

#[test]
fn two_replicas_deliver_through_one_relay_and_the_survivor_takes_over() {
    let started = Instant::now();
    let Some(db) = Db::create("two_replicas_deliver_through_one_relay_and_the_survivor_takes_over") else { return };
    let hook = Hook::start(200, "");
    let env = Env::new();
    env.init_enabled();
    many_users(&env, 20);
    env.edit_config(|t| {
        format!(
            "{t}\n[server]\nworker_interval_secs = 1\nrate_limit = {{ requests = 1000000, window_secs = 1 }}\n{}",
            db.store_table()
        )
    });
    env.expect("local:admin", &["migrate"], 0);
    let requester = token(&env, "alice-svc", "requester");
    let approver = token(&env, "bob-svc", "approver");
    let secret = webhook_secret(&env);
    env.edit_config(|t| {
        format!(
            "{t}\n[[events.sinks]]\ntype = \"webhook\"\nurl = \"http://{}/events\"\nsecret_file = {secret:?}\ndeliver_from = \"beginning\"\n\n[events.relay]\nlease_ttl_secs = 2\n",
            hook.addr
        )
    });
    let mut replicas = [Server::start(&env), Server::start(&env)];
    // Records sealed so far, by hash.
    let sealed = || -> BTreeSet<String> {
        db.pairs("SELECT seq::text, hash FROM audit ORDER BY seq").into_iter().map(|(_, h)| h).collect()
    };
    let pending = || db.run(true, &["SELECT COUNT(*) FROM audit_pending"])[0];
    let logs = |replicas: &[Server]| replicas.iter().map(|s| s.log()).collect::<Vec<_>>().join("\n---\n");

    for i in 0..10 {
        let (status, created) = replicas[0].call("POST", "/v1/actions", Some(&requester), Some(&revoke(i)));
        assert_eq!(status, 201, "{created}");
        let id = created["action"]["id"].as_str().expect("id").to_owned();
        let (status, body) = replicas[1].call("POST", &format!("/v1/actions/{id}/approve"), Some(&approver), None);
        assert_eq!(status, 200, "{body}");
    }
    wait_for(
        Duration::from_secs(60),
        "10 actions completed and every record delivered",
        || {
            let done = completed(&replicas[0], &requester) == 10 && pending() == 0;
            let all = sealed();
            (done && hook.taken().keys().cloned().collect::<BTreeSet<_>>() == all).then_some(())
        },
        || format!("{:?}\n{}", hook.taken().len(), logs(&replicas)),
    );
    let taken = hook.taken();
    let twice: Vec<(&String, &usize)> = taken.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "one relay delivers: no event twice: {twice:?}");
    assert_eq!(taken.len(), sealed().len(), "one delivery per audit record");
    eprintln!("{} records delivered once each by one of two replicas after {:?}", taken.len(), started.elapsed());

    // SIGKILL the replica holding the relay lease; the survivor delivers what follows.
    let holder = db
        .pairs("SELECT name, holder FROM leases WHERE name = 'event-relay' AND holder IS NOT NULL")
        .into_iter()
        .next()
        .map(|(_, h)| h)
        .unwrap_or_else(|| panic!("nobody holds the relay lease\n{}", logs(&replicas)));
    let victim = replicas
        .iter()
        .position(|s| holder.starts_with(&format!("pid{}@", s.child.id())))
        .unwrap_or_else(|| panic!("the lease holder {holder} is neither replica"));
    // When it also seals the audit log (the store's holder is `host:pid:uuid`), the survivor's
    // records wait for that lease (10 s) too.
    let sequencer = db
        .pairs("SELECT name, holder FROM leases WHERE name = 'audit-sequencer' AND holder IS NOT NULL")
        .into_iter()
        .any(|(_, h)| h.contains(&format!(":{}:", replicas[victim].child.id())));
    replicas[victim].child.kill().expect("SIGKILL");
    replicas[victim].child.wait().expect("wait");
    let killed = Instant::now();
    let survivor = &replicas[1 - victim];
    for i in 10..15 {
        suggest_and_approve(survivor, i, &requester, &approver);
    }
    let after = wait_for(
        Duration::from_secs(40),
        "the survivor delivers every record",
        || {
            let all = sealed();
            let taken = hook.taken();
            (completed(survivor, &requester) == 15 && pending() == 0 && all.iter().all(|h| taken.contains_key(h)))
                .then_some(killed.elapsed())
        },
        || format!("{} of {} taken\n{}", hook.taken().len(), sealed().len(), survivor.log()),
    );
    // The survivor may seal a few more records after that (its worker's and relay's own
    // notes); what was delivered is always part of the log, and the two meet once it is idle.
    wait_for(
        Duration::from_secs(20),
        "every sealed record delivered, and nothing else",
        || {
            let taken = hook.taken();
            let all = sealed();
            let extra: Vec<&String> = taken.keys().filter(|h| !all.contains(*h)).collect();
            assert!(extra.is_empty(), "records that are not in the log were delivered: {extra:?}");
            (taken.keys().cloned().collect::<BTreeSet<_>>() == all).then_some(())
        },
        || format!("{} of {} taken\n{}", hook.taken().len(), sealed().len(), survivor.log()),
    );
    let all = sealed();
    eprintln!(
        "replica {victim} (the relay{}) killed; the survivor delivered all {} records {after:?} later; {:?} in all",
        if sequencer { " and the audit sequencer" } else { "" },
        all.len(),
        started.elapsed()
    );
}
