// TEMPORARY while the real implementation is written on another branch.
use async_trait::async_trait;
use remediation_core::{DeliveryStore, MarkAdvance, ParkedRecord, Settlement, SinkMark, StoreError};
use time::OffsetDateTime;

#[async_trait]
impl DeliveryStore for crate::store::SqliteStore {
    async fn register_sink(&self, _: &str, _: u64, _: OffsetDateTime) -> Result<u64, StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
    async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
    async fn advance_sink(&self, _: &MarkAdvance) -> Result<(), StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
    async fn parked(&self, _: Option<String>) -> Result<Vec<ParkedRecord>, StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
    async fn request_replay(&self, _: &str, _: Option<Vec<u64>>) -> Result<u64, StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
    async fn settle_parked(&self, _: &Settlement) -> Result<(), StoreError> { Err(StoreError::Unsupported { what: "delivery" }) }
}
