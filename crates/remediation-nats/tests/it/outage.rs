//! A private server stopped (or killed) in the middle of a delivery: the failed delivery
//! counts only what was acknowledged, and after the restart the stream holds every event once,
//! in order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use remediation_core::{CloudEvent, DeliveryError, EventSink as _};
use remediation_nats::JetStreamEventSink;
use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};

use crate::{events, events_config, header, js, stream_messages, unique};

/// What the relay saw fail: the mark, how many of the batch were delivered, and why not more.
type Failure = (usize, usize, DeliveryError);

/// What a relay does: delivers everything from its mark in one batch, moves the mark by what
/// was delivered, and retries a transient failure after a short pause, until `events` are all
/// delivered.
async fn relay(sink: Arc<JetStreamEventSink>, events: Vec<CloudEvent>, mark: Arc<AtomicUsize>) -> Vec<Failure> {
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while mark.load(Ordering::SeqCst) < events.len() {
        assert!(Instant::now() < deadline, "the relay did not finish within 30 s: {failures:?}");
        let from = mark.load(Ordering::SeqCst);
        match sink.deliver(&events[from..]).await {
            Ok(()) => mark.store(events.len(), Ordering::SeqCst),
            Err(undelivered) => {
                mark.store(from + undelivered.delivered, Ordering::SeqCst);
                failures.push((from, undelivered.delivered, undelivered.error));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    failures
}

async fn outage(kill: bool) {
    let Some(server) = PrivateNats::start(PrivateNatsOptions::default()) else { return };
    let url = server.url();
    let server = Arc::new(Mutex::new(server));
    let config = events_config(&url, &unique());
    let stream = config.stream.clone().unwrap();
    let sink = Arc::new(config.build_events().unwrap());
    sink.ensure_stream().await.unwrap();
    let events = events(&config.tenant, 3000);

    // A plain subscriber sees each event as the server takes it, and stops (or kills) the
    // server right after the 300th: in the middle of the batch.
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut subscription = watcher.subscribe(format!("remediation.events.{}.>", config.tenant)).await.unwrap();
    watcher.flush().await.unwrap(); // subscribed before the first event is published
    let stopper = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while subscription.next().await.is_some() {
                seen += 1;
                if seen == 300 {
                    let mut server = server.lock().unwrap();
                    tokio::task::block_in_place(|| if kill { server.kill() } else { server.stop() });
                    return;
                }
            }
        })
    };

    let mark = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(relay(sink.clone(), events.clone(), mark.clone()));
    tokio::time::timeout(Duration::from_secs(10), stopper).await.expect("the server was stopped").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during_outage = mark.load(Ordering::SeqCst);
    tokio::task::block_in_place(|| server.lock().unwrap().restart());
    let failures = task.await.unwrap();

    let (from, delivered, error) = failures.first().expect("the outage was seen").clone();
    assert_eq!(from, 0);
    assert!(0 < delivered && delivered < events.len(), "the batch was cut in the middle: {delivered}");
    for (_, _, error) in &failures {
        assert!(matches!(error, DeliveryError::Transient { .. }), "an outage is transient: {error:?}");
    }
    let stored = stream_messages(&js(&url).await, &stream).await;
    // Each event counted delivered was acknowledged, so stored: the mark never ran ahead.
    assert!(during_outage <= stored.len() && delivered == during_outage, "{during_outage} {delivered} {error:?}");
    // And the stream holds each event once, in the relay's order.
    assert_eq!(stored.len(), events.len(), "failures: {failures:?}");
    for (i, (message, event)) in stored.iter().zip(&events).enumerate() {
        assert_eq!(header(message, "Nats-Msg-Id").as_deref(), Some(event.id.as_str()), "message {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_mid_batch_loses_nothing_and_duplicates_nothing() {
    outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    outage(true).await;
}
