//! Moving a whole installation from one store to another (`remediate store copy`): the
//! store-agnostic export and import contract, and [`copy_installation`], which drives it.
//!
//! A store that can be copied from implements [`InstallationExport`]; one that can be copied
//! into implements [`InstallationImport`]. Both work a [`Section`] at a time, in pages with an
//! opaque cursor, so an installation of any size is copied in bounded memory. Sections are
//! copied in [`Section::ALL`] order, which respects every reference between them (credentials
//! name principals, slots name actions, parked records name their sink's mark).
//!
//! Audit records travel as the exact text the source stores (its canonical JSON), with their
//! `seq`, `prev_hash` and `hash`: the target holds the same bytes, so the chain, every
//! inclusion proof and the HMAC checkpoint (carried over as it is) still verify. Nothing is
//! resealed: a copy never vouches for anything the source did not. The verifiable log's state
//! travels too: every published key, and the latest signed tree head (the copied records
//! give the same leaves, so its root holds), so the target answers for the log as the source did and heads signed
//! before the copy still verify under the published keys. Each sink's delivery mark and its
//! parked records travel as well: they name `seq`s the copy keeps, so the sinks resume on the
//! target where they stood. An installation whose oldest
//! records were archived is refused before anything is written
//! ([`CopyError::ArchivedRecords`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    ActionDetail, AuditBody, AuditLog, ChainReport, ParkedRecord, PendingChange, PrincipalKind, SinkMark, StoreError,
    TransitionRecord,
};
use crate::hash::HexDigest;
use crate::{ActionId, Role, SafetyState};

/// One part of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// Principals and their role per tenant.
    Principals,
    /// API token credentials (hashes only).
    Credentials,
    /// Changes waiting for (or decided by) a second admin.
    PendingChanges,
    /// The safety state (kill switch, breaker, settings).
    Safety,
    /// Actions with their detail, lease columns and any transitions kept outside the audit.
    Actions,
    /// Reserved blast-radius slots.
    LimitSlots,
    /// Named leases of single-leader jobs (epochs must keep growing on the target).
    NamedLeases,
    /// The sequenced audit records, byte for byte.
    Audit,
    /// Audit entries written but not yet sequenced.
    PendingAudit,
    /// Each event and audit sink's delivery mark: the records keep their `seq`s, so every
    /// sink resumes where it stood instead of receiving the whole log again.
    DeliveryMarks,
    /// Records sinks refused for good, with their reason and replay request (after the marks
    /// they belong to).
    ParkedRecords,
    /// The HMAC checkpoint of the chain head, as sealed by the source.
    Checkpoint,
}

impl Section {
    /// Every section, in the order a copy writes them.
    pub const ALL: [Section; 12] = [
        Section::Principals,
        Section::Credentials,
        Section::PendingChanges,
        Section::Safety,
        Section::Actions,
        Section::LimitSlots,
        Section::NamedLeases,
        Section::Audit,
        Section::PendingAudit,
        Section::DeliveryMarks,
        Section::ParkedRecords,
        Section::Checkpoint,
    ];

    /// The snake_case name shown in progress and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Principals => "principals",
            Section::Credentials => "credentials",
            Section::PendingChanges => "pending_changes",
            Section::Safety => "safety",
            Section::Actions => "actions",
            Section::LimitSlots => "limit_slots",
            Section::NamedLeases => "named_leases",
            Section::Audit => "audit",
            Section::PendingAudit => "pending_audit",
            Section::DeliveryMarks => "delivery_marks",
            Section::ParkedRecords => "parked_records",
            Section::Checkpoint => "checkpoint",
        }
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A principal as stored: its roles in every tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedPrincipal {
    /// Its name.
    pub name: String,
    /// Person or service.
    pub kind: PrincipalKind,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Its role per tenant.
    pub roles: BTreeMap<String, Role>,
}

/// A token credential as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedCredential {
    /// The tenant.
    pub tenant: String,
    /// The token's name.
    pub name: String,
    /// Its principal.
    pub principal: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A change for a second admin, with its tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedPendingChange {
    /// The tenant.
    pub tenant: String,
    /// The change.
    pub change: PendingChange,
}

/// The lease columns of an action: the epoch survives the lease, so fencing stays exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseColumns {
    /// The holder of a live (or expired, not yet taken over) lease.
    pub holder: Option<String>,
    /// The last epoch granted (0: never leased).
    pub epoch: u64,
    /// When the lease expires, by the store's clock.
    pub expires_at: Option<OffsetDateTime>,
}

/// An action as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedAction {
    /// The tenant.
    pub tenant: String,
    /// Everything recorded about it (due time and not-before included).
    pub detail: ActionDetail,
    /// Its lease columns.
    pub lease: LeaseColumns,
    /// Transitions a store keeps outside the audit log (written by old versions, before every
    /// transition had its audit record); usually empty.
    pub legacy_transitions: Vec<TransitionRecord>,
}

/// A reserved blast-radius slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSlot {
    /// The limit key.
    pub key: String,
    /// When it was reserved.
    pub at: OffsetDateTime,
    /// The action holding it (`None` only in test stores that reserve slots directly).
    pub action_id: Option<ActionId>,
}

/// A named lease of a single-leader job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedNamedLease {
    /// The tenant.
    pub tenant: String,
    /// The job's name.
    pub name: String,
    /// Its lease columns.
    pub lease: LeaseColumns,
}

/// A sequenced audit record exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedAuditRecord {
    /// The log (tenant) it belongs to.
    pub tenant: String,
    /// Its `seq`.
    pub seq: u64,
    /// The stored text: the record's canonical JSON, `hash` included. The target stores
    /// these bytes, never a re-serialisation.
    pub json: String,
}

/// An audit entry written but not sequenced yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedPendingAudit {
    /// The log it goes to.
    pub tenant: String,
    /// What it records.
    pub body: AuditBody,
}

/// A sink's delivery mark, with its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSinkMark {
    /// The tenant.
    pub tenant: String,
    /// The mark.
    pub mark: SinkMark,
}

/// A record a sink refused for good, with its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedParkedRecord {
    /// The tenant.
    pub tenant: String,
    /// The parked record.
    pub record: ParkedRecord,
}

/// The HMAC-sealed chain head, as the source keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedCheckpoint {
    /// The last record's `seq`.
    pub count: u64,
    /// The last record's `hash`.
    pub head: HexDigest,
    /// The seal (hex HMAC-SHA256).
    pub mac: String,
}

/// The items of one page, by section.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SectionItems {
    /// Principals.
    Principals(Vec<ExportedPrincipal>),
    /// Credentials.
    Credentials(Vec<ExportedCredential>),
    /// Pending changes.
    PendingChanges(Vec<ExportedPendingChange>),
    /// The safety state, when one was ever written.
    Safety(Option<SafetyState>),
    /// Actions.
    Actions(Vec<ExportedAction>),
    /// Limit slots.
    LimitSlots(Vec<ExportedSlot>),
    /// Named leases.
    NamedLeases(Vec<ExportedNamedLease>),
    /// Sequenced audit records, by `seq`.
    Audit(Vec<ExportedAuditRecord>),
    /// Unsequenced audit entries, oldest first.
    PendingAudit(Vec<ExportedPendingAudit>),
    /// Delivery marks.
    DeliveryMarks(Vec<ExportedSinkMark>),
    /// Parked records.
    ParkedRecords(Vec<ExportedParkedRecord>),
    /// The checkpoint, when one is kept.
    Checkpoint(Option<ExportedCheckpoint>),
}

impl SectionItems {
    /// The section these items belong to.
    pub fn section(&self) -> Section {
        match self {
            Self::Principals(_) => Section::Principals,
            Self::Credentials(_) => Section::Credentials,
            Self::PendingChanges(_) => Section::PendingChanges,
            Self::Safety(_) => Section::Safety,
            Self::Actions(_) => Section::Actions,
            Self::LimitSlots(_) => Section::LimitSlots,
            Self::NamedLeases(_) => Section::NamedLeases,
            Self::Audit(_) => Section::Audit,
            Self::PendingAudit(_) => Section::PendingAudit,
            Self::DeliveryMarks(_) => Section::DeliveryMarks,
            Self::ParkedRecords(_) => Section::ParkedRecords,
            Self::Checkpoint(_) => Section::Checkpoint,
        }
    }

    /// How many items (a present safety state or checkpoint counts one).
    pub fn len(&self) -> usize {
        match self {
            Self::Principals(v) => v.len(),
            Self::Credentials(v) => v.len(),
            Self::PendingChanges(v) => v.len(),
            Self::Safety(v) => usize::from(v.is_some()),
            Self::Actions(v) => v.len(),
            Self::LimitSlots(v) => v.len(),
            Self::NamedLeases(v) => v.len(),
            Self::Audit(v) => v.len(),
            Self::PendingAudit(v) => v.len(),
            Self::DeliveryMarks(v) => v.len(),
            Self::ParkedRecords(v) => v.len(),
            Self::Checkpoint(v) => usize::from(v.is_some()),
        }
    }

    /// True when there is nothing in the page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of a section.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    /// The items.
    pub items: SectionItems,
    /// Where the next page starts; `None` after the last.
    pub next: Option<String>,
}

/// A store that can be read out whole.
///
/// Pages are read in separate snapshots: stop every writer (servers, CLI runs) before a copy.
/// [`copy_installation`] checks the counts and the audit head again at the end and fails when
/// the source changed meanwhile.
#[async_trait]
pub trait InstallationExport: AuditLog + Send + Sync {
    /// How many items each section holds now.
    async fn export_counts(&self) -> Result<BTreeMap<Section, u64>, StoreError>;

    /// Up to `limit` items of `section` after the cursor `after` (`None`: from the start), in
    /// a stable order ([`Section::Audit`] by `seq`, [`Section::PendingAudit`] oldest first).
    async fn export_page(
        &self,
        section: Section,
        after: Option<String>,
        limit: usize,
    ) -> Result<ExportPage, StoreError>;
}

/// A store that can be filled from another.
#[async_trait]
pub trait InstallationImport: AuditLog + Send + Sync {
    /// The first section that already holds something (the default safety state and an
    /// absent checkpoint count as nothing); `None` when the store is empty. Only an empty
    /// store is imported into.
    async fn occupied(&self) -> Result<Option<Section>, StoreError>;

    /// Writes one page as it is, in one transaction. Audit records are stored with their
    /// exact text and must extend what was imported before.
    async fn import_page(&self, items: &SectionItems) -> Result<(), StoreError>;

    /// Completes the import after every section: derived state (the chain head the sequencer
    /// starts from) is set from what was written.
    async fn finish_import(&self) -> Result<(), StoreError>;
}

/// A store that can be copied from and into: every concern of [`super::Store`] plus the
/// transfer contract. `Arc<dyn TransferStore>` upcasts to `Arc<dyn Store>`.
pub trait TransferStore: super::Store + InstallationExport + InstallationImport {}

impl<T: super::Store + InstallationExport + InstallationImport + ?Sized> TransferStore for T {}

/// How a copy went, section by section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Items copied per section.
    pub copied: BTreeMap<Section, u64>,
    /// The source's audit chain, verified before the copy.
    pub source_audit: ChainReport,
    /// The target's audit chain, verified after it: same records, same head.
    pub target_audit: ChainReport,
}

/// Where a copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyProgress {
    /// The section being copied.
    pub section: Section,
    /// Items of it copied so far.
    pub done: u64,
    /// Items it holds.
    pub total: u64,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The source's audit log does not verify: copying would carry tampering over.
    #[error("the source's audit log does not verify, so it is not copied: {report}")]
    SourceTampered {
        /// The source's verification.
        report: ChainReport,
    },
    /// The target already holds data.
    #[error("the target store is not empty (it holds {section}); copy only into a new, empty store")]
    TargetNotEmpty {
        /// The first section found occupied.
        section: Section,
    },
    /// The source's oldest audit records were moved to archives: a copy of what is left
    /// would lack their leaf hashes and the archive registrations, so signed heads and proofs
    /// would stop verifying on the target.
    #[error(
        "the source's audit records 1 to {through_seq} were moved to archive files (`remediate audit archive`), and a copy cannot carry the leaf hashes and archive registrations they leave behind; nothing was written: keep using the source, or move it with the database's own backup tools (a SQLite backup, pg_dump of the schema)"
    )]
    ArchivedRecords {
        /// The last archived record's `seq`.
        through_seq: u64,
    },
    /// The source changed while it was copied.
    #[error(
        "the source changed during the copy ({what}); stop every server and CLI run on it, delete the target and copy again"
    )]
    SourceChanged {
        /// What differs.
        what: String,
    },
    /// The copy does not verify as the source did.
    #[error(
        "the copied audit log does not match the source ({what}); the target must not be used: delete it and copy again"
    )]
    TargetMismatch {
        /// What differs.
        what: String,
    },
    /// A store call failed in a section.
    #[error("copying {section} failed")]
    Store {
        /// The section.
        section: Section,
        /// What failed.
        #[source]
        source: StoreError,
    },
    /// A store call failed outside a section (verification, counting).
    #[error("cannot {step}")]
    Check {
        /// What was being done.
        step: &'static str,
        /// What failed.
        #[source]
        source: StoreError,
    },
}

/// Copies every section of `from` into the empty store `to`, `page_size` items per page,
/// calling `progress` after every page.
///
/// Refuses a source whose audit log does not verify (with the key it was opened with) or
/// whose oldest records were archived, and a target that is not empty. After the sections,
/// publishes every key of the source on the target and stores the source's latest signed
/// tree head there. Afterwards the target's audit log must verify with the same number of
/// records and the same head, and the source must still hold what it held at the start;
/// otherwise the copy fails and the target must be discarded.
pub async fn copy_installation(
    from: &dyn InstallationExport,
    to: &dyn InstallationImport,
    page_size: usize,
    progress: &mut (dyn FnMut(CopyProgress) + Send),
) -> Result<CopyReport, CopyError> {
    let source_audit = from
        .verify_audit()
        .await
        .map_err(|source| CopyError::Check { step: "verify the source's audit log", source })?;
    if !source_audit.is_intact() {
        return Err(CopyError::SourceTampered { report: source_audit });
    }
    // Records 1 to n - 1 are gone when the oldest record left has seq n: they are archived.
    let first = from
        .audit_page(&super::AuditFilter::default(), None, 1)
        .await
        .map_err(|source| CopyError::Check { step: "read the start of the source's audit log", source })?;
    if let Some(through_seq) = first.first().map(|r| r.seq.saturating_sub(1)).filter(|&n| n > 0) {
        return Err(CopyError::ArchivedRecords { through_seq });
    }
    if let Some(section) =
        to.occupied().await.map_err(|source| CopyError::Check { step: "check that the target is empty", source })?
    {
        return Err(CopyError::TargetNotEmpty { section });
    }
    let counts =
        from.export_counts().await.map_err(|source| CopyError::Check { step: "count the source's items", source })?;
    let page_size = page_size.max(1);
    let mut copied = BTreeMap::new();
    for section in Section::ALL {
        let total = counts.get(&section).copied().unwrap_or(0);
        let mut done = 0u64;
        let mut cursor = None;
        loop {
            let page = from
                .export_page(section, cursor.take(), page_size)
                .await
                .map_err(|source| CopyError::Store { section, source })?;
            if !page.items.is_empty() {
                to.import_page(&page.items).await.map_err(|source| CopyError::Store { section, source })?;
                done += u64::try_from(page.items.len()).unwrap_or(u64::MAX);
                progress(CopyProgress { section, done, total: total.max(done) });
            }
            match page.next {
                Some(next) if !page.items.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        copied.insert(section, done);
    }
    to.finish_import().await.map_err(|source| CopyError::Check { step: "complete the import", source })?;
    let after =
        from.export_counts().await.map_err(|source| CopyError::Check { step: "count the source's items", source })?;
    if after != counts {
        let what = Section::ALL
            .into_iter()
            .find(|s| after.get(s) != counts.get(s))
            .map_or_else(|| "counts".to_owned(), |s| format!("{s}: {:?} then {:?}", counts.get(&s), after.get(&s)));
        return Err(CopyError::SourceChanged { what });
    }
    if let Some(section) = Section::ALL.into_iter().find(|s| copied.get(s) != counts.get(s).or(Some(&0))) {
        return Err(CopyError::SourceChanged {
            what: format!(
                "{section}: {} counted, {} read",
                counts.get(&section).copied().unwrap_or(0),
                copied.get(&section).copied().unwrap_or(0)
            ),
        });
    }
    // The log's end, by seq (one record, not the whole log again): the same last record.
    let tail = from
        .audit_page(&super::AuditFilter::default(), source_audit.records.checked_sub(1), 2)
        .await
        .map_err(|source| CopyError::Check { step: "read the end of the source's audit log", source })?;
    let tail_head = tail.last().map(|r| r.hash.clone());
    if tail.len() > 1 || tail_head != source_audit.head {
        return Err(CopyError::SourceChanged { what: "its audit log changed".to_owned() });
    }
    // The verifiable log: every key (so heads signed before a rotation still verify), then
    // the latest head, which the copied leaves must reproduce.
    let keys = from
        .published_keys()
        .await
        .map_err(|source| CopyError::Check { step: "read the source's published keys", source })?;
    for key in &keys {
        to.publish_key(key)
            .await
            .map_err(|source| CopyError::Check { step: "publish the source's keys on the target", source })?;
    }
    let head = from
        .latest_tree_head()
        .await
        .map_err(|source| CopyError::Check { step: "read the source's latest signed tree head", source })?;
    if let Some(head) = &head {
        to.store_tree_head(head, None)
            .await
            .map_err(|source| CopyError::Check { step: "store the source's latest signed tree head", source })?;
    }
    let target_audit =
        to.verify_audit().await.map_err(|source| CopyError::Check { step: "verify the target's audit log", source })?;
    if !target_audit.is_intact()
        || target_audit.records != source_audit.records
        || target_audit.head != source_audit.head
    {
        return Err(CopyError::TargetMismatch { what: target_audit.to_string() });
    }
    Ok(CopyReport { copied, source_audit, target_audit })
}
