//! The audit sink against the shared server: records in `seq` order, each once, whatever the
//! relay hands over again.

use remediation_audit::{AuditSink as _, verify_chain};
use remediation_core::AuditRecord;
use remediation_nats::JetStreamSinkConfig;

use crate::{chain, delete_streams, header, js, stream_messages, unique};

#[tokio::test]
async fn records_land_in_order_exactly_once_after_redeliveries() {
    let Some(url) = crate::shared().await else { return };
    let id = unique();
    let tenant = format!("t{id}");
    let mut config = JetStreamSinkConfig::new(&url);
    config.tenant = tenant.clone();
    config.stream = Some(format!("REMEDIATION_AUDIT_{id}"));
    config.subjects = Some(vec![format!("remediation.audit.{tenant}")]);
    let sink = config.build_audit().unwrap();
    let records = chain(&tenant, 10);

    sink.deliver(&records[..6]).await.unwrap();
    sink.deliver(&records[4..]).await.unwrap();
    sink.deliver(&records).await.unwrap();

    let stored = stream_messages(&js(&url).await, sink.stream()).await;
    assert_eq!(stored.len(), 10, "each record exactly once");
    let mut back = Vec::new();
    for (message, record) in stored.iter().zip(&records) {
        assert_eq!(message.subject.as_str(), format!("remediation.audit.{tenant}"));
        assert_eq!(header(message, "Nats-Msg-Id"), Some(format!("audit-{tenant}-{}", record.seq)));
        let parsed: AuditRecord = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(&parsed, record, "in seq order, with seq, prev_hash and hash");
        back.push(parsed);
    }
    assert!(verify_chain(back).is_intact(), "a receiver can verify the chain it received");
    delete_streams(&url, &[sink.stream().to_owned()]).await;
}
