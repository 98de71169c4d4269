//! The event sink against the shared server: subjects, headers, the duplicate window, stream
//! creation and a stream that exists with another configuration.

use remediation_core::{CloudEvent, DeliveryError, EventSink as _};
use remediation_nats::{NatsError, Retention};

use crate::{delete_streams, events, events_config, header, js, stream_messages, unique};

#[tokio::test]
async fn events_land_on_the_tenant_subject_with_their_id_and_are_stored_once() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let config = events_config(&url, &id);
    let stream = config.stream.clone().unwrap();
    let sink = config.build_events().unwrap();
    let events = events(&config.tenant, 8);

    sink.deliver(&events[..5]).await.unwrap();
    // The relay hands a batch over again (a crash before its mark moved), then the rest with
    // some of it again: each event is stored once.
    sink.deliver(&events[..5]).await.unwrap();
    sink.deliver(&events[3..]).await.unwrap();

    let js = js(&url).await;
    let stored = stream_messages(&js, &stream).await;
    assert_eq!(stored.len(), 8, "each event exactly once");
    assert_eq!(stored[0].subject.as_str(), format!("remediation.events.t{id}.action.completed"));
    for (message, event) in stored.iter().zip(&events) {
        assert_eq!(header(message, "Nats-Msg-Id").as_deref(), Some(event.id.as_str()));
        assert_eq!(header(message, "Content-Type").as_deref(), Some("application/cloudevents+json"));
        let back: CloudEvent = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(&back, event, "in order, as sent");
    }
    assert_eq!(stored[1].subject.as_str(), format!("remediation.events.t{id}.safety.changed"));
    delete_streams(&url, &[stream]).await;
}

#[tokio::test]
async fn the_stream_is_created_with_the_configured_retention_and_window() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let mut config = events_config(&url, &id);
    config.retention = Retention::Interest;
    config.duplicate_window_secs = 900;
    config.max_age_secs = 3600;
    let stream = config.stream.clone().unwrap();
    config.build_events().unwrap().ensure_stream().await.unwrap();

    let js = js(&url).await;
    let info = js.get_stream(&stream).await.unwrap().info().await.unwrap().clone();
    assert_eq!(info.config.subjects, vec![format!("remediation.events.t{id}.>")]);
    assert_eq!(info.config.retention, async_nats::jetstream::stream::RetentionPolicy::Interest);
    assert_eq!(info.config.duplicate_window.as_secs(), 900);
    assert_eq!(info.config.max_age.as_secs(), 3600);
    // Building again with the same settings finds it as configured.
    config.build_events().unwrap().ensure_stream().await.unwrap();
    delete_streams(&url, &[stream]).await;
}

#[tokio::test]
async fn a_stream_that_exists_with_another_configuration_is_reported_not_changed() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let mut config = events_config(&url, &id);
    config.duplicate_window_secs = 700;
    let stream = config.stream.clone().unwrap();
    config.build_events().unwrap().ensure_stream().await.unwrap();

    config.duplicate_window_secs = 600;
    let sink = config.build_events().unwrap();
    let err = sink.ensure_stream().await.expect_err("the window differs");
    assert!(matches!(err, NatsError::StreamMismatch { field: "duplicate window", .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("stream `{stream}` exists with duplicate window 700s, but 600s is configured; change one of them")
    );
    // Delivering waits (transient) with the same reason, rather than parking every event.
    let undelivered = sink.deliver(&events(&config.tenant, 1)).await.expect_err("mismatch");
    assert_eq!(undelivered.delivered, 0);
    assert!(
        matches!(&undelivered.error, DeliveryError::Transient { reason, .. } if reason.contains("duplicate window 700s"))
    );

    config.duplicate_window_secs = 700;
    config.subjects = Some(vec![format!("remediation.events.t{id}.>"), format!("remediation.extra.t{id}")]);
    let err = config.build_events().unwrap().ensure_stream().await.expect_err("the subjects differ");
    assert!(err.to_string().contains("exists with subjects"), "{err}");

    config.subjects = None;
    config.retention = Retention::Workqueue;
    config.subjects = Some(vec![format!("remediation.events.t{id}.>")]);
    let err = config.build_events().unwrap().ensure_stream().await.expect_err("the retention differs");
    assert!(err.to_string().contains("exists with retention limits, but workqueue is configured"), "{err}");

    let info = js(&url).await.get_stream(&stream).await.unwrap().info().await.unwrap().clone();
    assert_eq!(info.config.duplicate_window.as_secs(), 700, "never changed");
    delete_streams(&url, &[stream]).await;
}

#[tokio::test]
async fn an_event_larger_than_the_server_takes_is_permanent_after_those_before_it() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let config = events_config(&url, &id);
    let stream = config.stream.clone().unwrap();
    let sink = config.build_events().unwrap();
    let mut events = events(&config.tenant, 3);
    if let remediation_core::EngineEvent::SafetyChanged { actor, .. } = &mut events[1].data {
        *actor = "x".repeat(2 * 1024 * 1024);
    } else {
        panic!("expected a safety event: {:?}", events[1].data);
    }
    let err = sink.deliver(&events).await.expect_err("too large");
    assert_eq!(err.delivered, 1);
    assert!(
        matches!(&err.error, DeliveryError::Permanent { reason } if reason.contains("larger than the server accepts")),
        "{err:?}"
    );
    assert_eq!(stream_messages(&js(&url).await, &stream).await.len(), 1);
    delete_streams(&url, &[stream]).await;
}

#[tokio::test]
async fn a_stream_deleted_under_the_sink_is_transient_then_created_again() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let config = events_config(&url, &id);
    let stream = config.stream.clone().unwrap();
    let sink = config.build_events().unwrap();
    let events = events(&config.tenant, 4);
    sink.deliver(&events[..2]).await.unwrap();
    delete_streams(&url, std::slice::from_ref(&stream)).await;

    let err = sink.deliver(&events[2..]).await.expect_err("no stream takes the subject");
    assert_eq!(err.delivered, 0);
    assert!(
        matches!(&err.error, DeliveryError::Transient { reason, .. } if reason.contains("no stream takes")),
        "{err:?}"
    );
    // The relay retries: the stream is created again and the events land.
    sink.deliver(&events[2..]).await.unwrap();
    let stored = stream_messages(&js(&url).await, &stream).await;
    assert_eq!(stored.len(), 2);
    delete_streams(&url, &[stream]).await;
}
