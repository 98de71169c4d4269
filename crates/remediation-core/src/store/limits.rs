//! [`LimitStore`]: blast-radius windows, read without reserving.
//!
//! Slots are reserved only by [`super::ActionStore::begin_execution`], in the transaction that
//! starts the execution.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{LimitReached, SlotRequest, StoreError};

/// Reads of the limit slots.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// The first full window among `slots` at `at`, without reserving anything (dry runs),
    /// in one read snapshot. Each window costs one count on an index on (key, time), the same
    /// however many slots are stored.
    async fn check_limits(&self, slots: &[SlotRequest], at: OffsetDateTime)
    -> Result<Option<LimitReached>, StoreError>;

    /// Every limit slot reserved at or after `since`, as (key, instant), oldest first.
    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError>;
}
