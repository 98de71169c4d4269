//! [`DeliveryStore`]: where each sink stands in the audit log, the outbox every event and
//! every audit sink is delivered from.
//!
//! The audit log is the outbox: every event the engine reports (each transition, a held
//! action, the breaker, a switch or setting, a refusal, a fix that did not hold) is an audit
//! record, written in the same transaction as the change it reports. A relay reads the
//! sequenced log in `seq` order and delivers it to each sink; the store keeps one high-water
//! mark per sink (the last `seq` the sink has acknowledged) and the records a sink refused for
//! good ("parked", with the reason), so nothing is dropped and nothing is kept per event.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

/// One sink's position in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SinkMark {
    /// The sink's configured name (`events/siem`, `audit/file`).
    pub sink: String,
    /// The last `seq` the sink acknowledged (or parked): every record up to it is settled.
    pub delivered_through: u64,
    /// When the mark last moved (or was registered).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

/// A record a sink refused for good (an HTTP 4xx other than 408 and 429, say), kept with the
/// reason until an operator replays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ParkedRecord {
    /// The sink that refused it.
    pub sink: String,
    /// The audit record's `seq`.
    pub seq: u64,
    /// The sink's answer, in plain words.
    pub reason: String,
    /// When it was parked (or last refused on a replay).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub parked_at: OffsetDateTime,
    /// An operator asked for it to be delivered again; the relay does so before new records.
    pub replay: bool,
}

/// The single-leader lease a write is fenced by: the write happens only while the store still
/// holds this lease (same holder and epoch, unexpired by the store's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease's name ([`super::LeaseStore`]).
    pub name: String,
    /// Its holder.
    pub holder: String,
    /// Its epoch.
    pub epoch: u64,
}

/// One move of a sink's mark: from `from` to `to`, parking the records in `parked` on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkAdvance {
    /// The sink.
    pub sink: String,
    /// The mark the relay read: the move happens only while it is still stored.
    pub from: u64,
    /// The new mark (greater than `from`).
    pub to: u64,
    /// Records in `from + 1 ..= to` the sink refused for good: `(seq, reason)`.
    pub parked: Vec<(u64, String)>,
    /// When.
    pub at: OffsetDateTime,
    /// The relay's lease; `None` only for a store with a single process.
    pub fence: Option<Fence>,
}

/// A replayed parked record, settled ([`DeliveryStore::settle_parked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The sink.
    pub sink: String,
    /// The record's `seq`.
    pub seq: u64,
    /// How the replay went.
    pub outcome: ReplayOutcome,
    /// When.
    pub at: OffsetDateTime,
    /// The relay's lease; `None` only for a store with a single process.
    pub fence: Option<Fence>,
}

/// How a replayed parked record went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The sink took it: the parked record is removed.
    Delivered,
    /// The sink refused it again: the reason is replaced and the replay request cleared.
    RefusedAgain(String),
}

/// The delivery marks and parked records of every sink.
///
/// Every write is one transaction; a write naming a [`Fence`] happens only while that named
/// lease is still the stored one and live by the store's clock, else
/// [`StoreError::LeaseLost`] and nothing is written (a relay that was paused past its lease
/// and replaced cannot move a mark its successor moved).
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The sink's mark, registering it at `start` (and `at`) when it has none, atomically: two
    /// callers registering one new sink both get the one stored mark.
    async fn register_sink(&self, sink: &str, start: u64, at: OffsetDateTime) -> Result<u64, StoreError>;

    /// Every registered sink's mark, by name.
    async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError>;

    /// Moves a mark (see [`MarkAdvance`]) and parks its refused records, in one transaction:
    /// only when the stored mark is `advance.from` (else [`StoreError::DeliveryConflict`]),
    /// `advance.to` is greater than it, and the fence holds.
    async fn advance_sink(&self, advance: &MarkAdvance) -> Result<(), StoreError>;

    /// Parked records, of one sink or of all, by sink and `seq`.
    async fn parked(&self, sink: Option<String>) -> Result<Vec<ParkedRecord>, StoreError>;

    /// Asks for parked records of `sink` to be delivered again: those with the given `seq`s,
    /// or all when `seqs` is `None`. Returns how many are now marked for replay.
    async fn request_replay(&self, sink: &str, seqs: Option<Vec<u64>>) -> Result<u64, StoreError>;

    /// Settles one replayed parked record (fenced like [`DeliveryStore::advance_sink`]).
    /// Settling a record that is no longer parked does nothing.
    async fn settle_parked(&self, settlement: &Settlement) -> Result<(), StoreError>;
}
