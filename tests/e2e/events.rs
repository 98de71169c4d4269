//! Event delivery from the audit log (the outbox) through the real binaries: exactly once into
//! JetStream across a crash between a sink's acknowledgement and the move of its mark.
//!
//! NATS tests start private `nats-server`s (skipped with a printed reason without one, failing
//! under `CI=true`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use remediation_e2e::Env;
use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};
use serde_json::Value;

use crate::crash::park_at;

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
}

fn published(message: &jetstream::message::StreamMessage) -> Published {
    let event: Value = serde_json::from_slice(&message.payload).expect("a CloudEvent in JSON");
    let msg_id = header(message, "Nats-Msg-Id").unwrap_or_else(|| panic!("no Nats-Msg-Id: {event}"));
    Published {
        msg_id,
        id: event["id"].as_str().unwrap_or_else(|| panic!("no id: {event}")).to_owned(),
        auditseq: event["auditseq"].as_u64().unwrap_or_else(|| panic!("no auditseq: {event}")),
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
