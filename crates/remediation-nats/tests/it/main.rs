//! Integration tests of the JetStream sinks and the findings consumer, in one binary: against
//! the shared server named by `REMEDIATION_TEST_NATS` (each test with its own tenant, streams
//! and subjects, deleted at the end) and private `nats-server`s of their own. Without a server
//! they skip, saying why (and fail under `CI=true`).

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod config;
mod events;
mod findings;
mod outage;
mod tls;

use async_nats::jetstream;
use remediation_audit::seal;
use remediation_core::{AuditRecord, ChainHead, CloudEvent, SettingsRecord};
use remediation_nats::JetStreamSinkConfig;

/// A short random id for this test's names.
pub(crate) fn unique() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// A chain of `n` audit records (settings changes) for `tenant`.
pub(crate) fn chain(tenant: &str, n: u64) -> Vec<AuditRecord> {
    let mut records: Vec<AuditRecord> = Vec::new();
    for i in 0..n {
        let body = SettingsRecord {
            setting_event: "settings_changed".to_owned(),
            actor: "admin".to_owned(),
            credential: None,
            at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + i as i64),
            comment: Some(format!("change {i} of {tenant}")),
            previous: serde_json::json!({"i": i}),
            value: serde_json::json!({"i": i + 1}),
            action_id: None,
        };
        let head = records.last().map(|r| ChainHead { seq: r.seq, hash: r.hash.clone() });
        records.push(seal(head.as_ref(), body).unwrap());
    }
    records
}

/// The events of `n` audit records of `tenant`; the first reports an action completing.
pub(crate) fn events(tenant: &str, n: u64) -> Vec<CloudEvent> {
    let mut events: Vec<CloudEvent> =
        chain(tenant, n).iter().map(|r| CloudEvent::from_record(r, &CloudEvent::source_of(tenant))).collect();
    if let Some(first) = events.first_mut() {
        first.event_type = "dev.remediation.action.completed".to_owned();
    }
    events
}

/// An event sink config of its own on `url`: tenant `t<id>`, stream `REMEDIATION_EVENTS_<id>`
/// over `remediation.events.t<id>.>`.
pub(crate) fn events_config(url: &str, id: &str) -> JetStreamSinkConfig {
    let mut config = JetStreamSinkConfig::new(url);
    config.tenant = format!("t{id}");
    config.stream = Some(format!("REMEDIATION_EVENTS_{id}"));
    config.subjects = Some(vec![format!("remediation.events.t{id}.>")]);
    config
}

/// A plain JetStream client of `url`.
pub(crate) async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

/// Every message of stream `name`, in order.
pub(crate) async fn stream_messages(js: &jetstream::Context, name: &str) -> Vec<jetstream::message::StreamMessage> {
    let mut stream = js.get_stream(name).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return messages;
    }
    for seq in state.first_sequence..=state.last_sequence {
        messages.push(stream.get_raw_message(seq).await.unwrap());
    }
    messages
}

/// The header `name` of `message`, as text.
pub(crate) fn header(message: &jetstream::message::StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

/// Deletes the streams a test made on the shared server (ignoring those that are gone).
pub(crate) async fn delete_streams(url: &str, names: &[String]) {
    let js = js(url).await;
    for name in names {
        let _ = js.delete_stream(name).await;
    }
}

/// The shared server's URL (or `None`, skipping), with the anchor stream in place.
///
/// nats-server 2.9 removes an account's stream folder when its last stream is deleted, and a
/// stream created at that moment fails ("could not create storage directory"). Tests create and
/// delete streams side by side, so one stream that is never deleted keeps the folder.
pub(crate) async fn shared() -> Option<String> {
    let url = remediation_nats::testing::shared_nats()?;
    let config = jetstream::stream::Config {
        name: "REMEDIATION_TEST_ANCHOR".to_owned(),
        subjects: vec!["remediation.test.anchor".to_owned()],
        ..Default::default()
    };
    js(&url).await.get_or_create_stream(config).await.unwrap();
    Some(url)
}
