//! The verifiable audit log: signing tree heads, the published keys, inclusion and consistency
//! proofs, and key rotation. Proofs are computed here, from the leaf hashes the store keeps;
//! signing and verification are `remediation-audit`'s.
//!
//! # When heads are signed
//!
//! [`sign_tree_head`] signs a head of the log as it stands when it grew since the latest signed
//! head (or that head names another key), only after checking the new head extends the latest
//! one ([`LogSigningKey::sign_next`]): a log that was truncated or rewritten is never signed
//! over. The CLI calls it at the end of every local command; the server after each worker
//! pass, at most once per `min_interval` by the runtime's clock.

use std::path::Path;
use std::sync::Arc;

use remediation_audit::merkle::{self, LeafHashSource as _, MerkleHash};
use remediation_audit::{
    CachedLeaves, ConsistencyBundle, ConsistencyProof, InclusionBundle, InclusionProof, LogSigningKey, PublicKeySet,
    PublishedKey, RecordProof, SignedTreeHead, TreeHeadError, TreeHeadVerdict,
};
use remediation_core::{ActionId, Actor, AuditFilter, Role, SettingsRecord, StoreError};
use remediation_runtime::Runtime;
use remediation_runtime::access::AccessError;

use crate::ServiceError;

/// Which records an inclusion proof is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofTarget {
    /// Every record of this action.
    Action(ActionId),
    /// The record with this `seq`.
    Seq(u64),
}

/// The leaf hashes of the first `size` leaves.
async fn leaves(runtime: &Runtime, size: u64) -> Result<Vec<MerkleHash>, ServiceError> {
    Ok(runtime.store().leaf_hashes(0, size).await?.into_iter().map(MerkleHash).collect())
}

/// Reads leaves `start..end`, all of them or an error.
async fn leaf_range(runtime: &Runtime, start: u64, end: u64) -> Result<Vec<MerkleHash>, ServiceError> {
    let read: Vec<MerkleHash> = runtime.store().leaf_hashes(start, end).await?.into_iter().map(MerkleHash).collect();
    if read.len() as u64 != end - start {
        return Err(ServiceError::LogIntegrity {
            message: format!(
                "the store holds {} of the leaf hashes {start}..{end} of its audit log: leaves are missing",
                read.len()
            ),
            source: None,
        });
    }
    Ok(read)
}

/// Leaves read into the subtree cache per store call while it catches up.
const CATCH_UP: u64 = 64 * remediation_audit::BLOCK_LEAVES;

/// Runs `f` on a leaf-hash source for proofs in the tree of `size` leaves about `points`
/// (leaf indexes, or the older size of a consistency proof): the runtime's subtree cache,
/// extended to the log's complete blocks first, plus the few leaves the proofs need beyond it.
/// O(log n) hashing and at most a few blocks read, once the cache has caught up.
async fn with_tree<R>(
    runtime: &Runtime,
    size: u64,
    points: &[u64],
    f: impl FnOnce(&CachedLeaves<'_>) -> R,
) -> Result<R, ServiceError> {
    let mut cache = runtime.subtree_cache().lock().await;
    let log_size = runtime.store().audit_size().await?;
    if cache.covered() > log_size {
        // The log is shorter than what was read before: start again from what it holds now
        // (the heads it no longer extends are then refused by the callers' checks).
        cache.clear();
    }
    let complete = size.min(log_size) / cache.block() * cache.block();
    while cache.covered() < complete {
        let start = cache.covered();
        let end = (start + CATCH_UP).min(complete);
        let read = leaf_range(runtime, start, end).await?;
        cache.extend(&read);
    }
    let mut windows = Vec::new();
    for (start, end) in cache.windows_for(size, points) {
        windows.push((start, leaf_range(runtime, start, end).await?));
    }
    Ok(f(&CachedLeaves::new(&cache, windows)))
}

fn stored_head(stored: remediation_core::StoredTreeHead) -> Result<SignedTreeHead, ServiceError> {
    SignedTreeHead::try_from(stored).map_err(|source| ServiceError::LogIntegrity {
        message: "a stored tree head cannot be read".to_owned(),
        source: Some(source),
    })
}

/// Signs a tree head over the log as it stands, when a signing key is configured and the log
/// grew since the latest signed head (or that head names another key); with `min_interval`,
/// only when the latest head is at least that old by the runtime's clock (the server's
/// debounce). Returns the new head, or `None` when nothing was signed (no key, nothing new,
/// too soon, or another signer stored a head meanwhile).
///
/// Fails with [`ServiceError::LogIntegrity`] when the log does not extend the latest signed
/// head: it was truncated, rewritten or forked, and is not signed over.
pub async fn sign_tree_head(
    runtime: &Runtime,
    min_interval: Option<time::Duration>,
) -> Result<Option<SignedTreeHead>, ServiceError> {
    let Some(key) = runtime.signing_key() else {
        return Ok(None);
    };
    sign_with(runtime, &key, min_interval).await
}

async fn sign_with(
    runtime: &Runtime,
    key: &LogSigningKey,
    min_interval: Option<time::Duration>,
) -> Result<Option<SignedTreeHead>, ServiceError> {
    let store = runtime.store();
    let now = runtime.clock().now();
    let size = store.audit_size().await?;
    let latest = store.latest_tree_head().await?;
    if let Some(latest) = &latest {
        let unchanged = latest.tree_size == size && latest.key_id == key.key_id();
        let too_soon = min_interval.is_some_and(|min| now - latest.timestamp < min);
        if unchanged || too_soon {
            return Ok(None);
        }
    }
    let previous = latest.clone().map(stored_head).transpose()?;
    let previous_size = previous.as_ref().map_or(0, |p| p.head.tree_size);
    let (root, proof) = with_tree(runtime, size, &[previous_size], |tree| {
        let root = if size == 0 { Ok(merkle::empty_root()) } else { tree.subtree_hash(0, size) };
        let proof = if previous_size > 0 && previous_size < size {
            merkle::consistency_path(tree, previous_size, size).map_err(|e| e.to_string())
        } else {
            Ok(Vec::new())
        };
        (root, proof)
    })
    .await?;
    let integrity = |e: String| ServiceError::LogIntegrity {
        message: format!("cannot prove the log extends the latest signed head: {e}"),
        source: None,
    };
    let root = root.map_err(|e| integrity(e.to_string()))?;
    let proof = proof.map_err(integrity)?;
    let signed = key.sign_next(previous.as_ref(), size, root, &proof, now).map_err(|source| {
        ServiceError::LogIntegrity {
            message: format!(
                "the audit log of {size} records does not extend the latest signed tree head of {previous_size} records: it was truncated, rewritten or forked, and is not signed over; run `remediate audit verify` and compare with an export or a backup"
            ),
            source: Some(source),
        }
    })?;
    store.publish_key(&key.published().to_stored(now)).await?;
    match store.store_tree_head(&signed.clone().into(), latest.map(|l| l.tree_size)).await {
        Ok(()) => Ok(Some(signed)),
        // Another signer stored a head meanwhile: its head covers the log as well.
        Err(StoreError::AuditLogConflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The latest signed tree head.
pub async fn tree_head(runtime: &Runtime) -> Result<SignedTreeHead, ServiceError> {
    let latest = runtime.store().latest_tree_head().await?.ok_or_else(no_head)?;
    stored_head(latest)
}

fn no_head() -> ServiceError {
    ServiceError::NotFound {
        what: "no tree head is signed yet: configure `[audit] signing_key` (remediate init does) and run a command that changes something".to_owned(),
    }
}

/// Every public key that signed a head, oldest first: old heads still verify after a rotation.
pub async fn published_keys(runtime: &Runtime) -> Result<PublicKeySet, ServiceError> {
    let keys = runtime.store().published_keys().await?;
    Ok(PublicKeySet { keys: keys.into_iter().map(PublishedKey::from).collect() })
}

/// The tree size and head a proof is for: `tree_size`, or the latest signed head's.
async fn proof_head(runtime: &Runtime, tree_size: Option<u64>) -> Result<(u64, Option<SignedTreeHead>), ServiceError> {
    let store = runtime.store();
    match tree_size {
        None => {
            let head = tree_head(runtime).await?;
            Ok((head.head.tree_size, Some(head)))
        }
        Some(n) => {
            let size = store.audit_size().await?;
            if n == 0 || n > size {
                return Err(ServiceError::Invalid {
                    field: "tree_size",
                    message: format!("tree_size must be between 1 and the log's size, {size}; {n} was given"),
                });
            }
            Ok((n, store.tree_head_at(n).await?.map(stored_head).transpose()?))
        }
    }
}

/// Inclusion proofs of the records of `target` in the tree of `tree_size` records (default:
/// the latest signed head's size), with the signed head of that size when there is one.
pub async fn prove_inclusion(
    runtime: &Runtime,
    target: ProofTarget,
    tree_size: Option<u64>,
) -> Result<InclusionBundle, ServiceError> {
    let (size, head) = proof_head(runtime, tree_size).await?;
    let store = runtime.store();
    let records = match target {
        ProofTarget::Action(id) => {
            let filter = AuditFilter { action: Some(id), since: None };
            let mut all = Vec::new();
            loop {
                let page =
                    store.audit_page(&filter, all.last().map(|r: &remediation_core::AuditRecord| r.seq), 1000).await?;
                let done = page.len() < 1000 || page.last().is_some_and(|r| r.seq >= size);
                all.extend(page.into_iter().filter(|r| r.seq <= size));
                if done {
                    break;
                }
            }
            all
        }
        ProofTarget::Seq(seq) => store
            .audit_page(&AuditFilter::default(), seq.checked_sub(1), 1)
            .await?
            .into_iter()
            .filter(|r| r.seq == seq && seq <= size)
            .collect(),
    };
    if records.is_empty() {
        let what = match target {
            ProofTarget::Action(id) => format!("no audit record of action {id} is in the log of {size} records"),
            ProofTarget::Seq(seq) => format!("no audit record with seq {seq} is in the log of {size} records"),
        };
        return Err(ServiceError::NotFound { what });
    }
    let points: Vec<u64> = records.iter().map(|r| r.seq - 1).collect();
    let generated = with_tree(runtime, size, &points, |tree| {
        points.iter().map(|index| InclusionProof::generate(tree, *index, size)).collect::<Vec<_>>()
    })
    .await?;
    let mut proofs = Vec::with_capacity(records.len());
    for (record, proof) in records.into_iter().zip(generated) {
        let proof = proof.map_err(|e| ServiceError::LogIntegrity {
            message: format!("cannot prove the inclusion of record {}: {e}", record.seq),
            source: None,
        })?;
        proofs.push(RecordProof { record, proof });
    }
    Ok(InclusionBundle { tree_size: size, tree_head: head, proofs })
}

/// The proof that the tree of `new_size` records (default: the latest signed head's size)
/// extends the tree of `old_size` records, with the signed heads of both sizes.
pub async fn prove_consistency(
    runtime: &Runtime,
    old_size: u64,
    new_size: Option<u64>,
) -> Result<ConsistencyBundle, ServiceError> {
    let store = runtime.store();
    let new = match new_size {
        None => tree_head(runtime).await?,
        Some(n) => store
            .tree_head_at(n)
            .await?
            .map(stored_head)
            .transpose()?
            .ok_or_else(|| ServiceError::NotFound { what: format!("no tree head of {n} records was signed") })?,
    };
    let size = new.head.tree_size;
    if old_size == 0 {
        return Err(ServiceError::Invalid {
            field: "old_size",
            message: "old_size must be at least 1: every log extends the empty one".to_owned(),
        });
    }
    if old_size > size {
        return Err(ServiceError::LogIntegrity {
            message: format!(
                "the log's signed tree head has {size} records, fewer than the {old_size} of the head you hold: records were cut off the log (or your head is of another log)"
            ),
            source: None,
        });
    }
    let proof =
        with_tree(runtime, size, &[old_size], |tree| ConsistencyProof::generate(tree, old_size, size)).await?.map_err(
            |e| ServiceError::LogIntegrity { message: format!("cannot prove consistency: {e}"), source: None },
        )?;
    let old_head = store.tree_head_at(old_size).await?.map(stored_head).transpose()?;
    Ok(ConsistencyBundle { old_head, tree_head: new, proof })
}

/// What a key rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The key that signed heads until now, if there was one.
    pub old: Option<PublishedKey>,
    /// The new key, published.
    pub new: PublishedKey,
    /// The first head signed with the new key.
    pub head: Option<SignedTreeHead>,
}

/// Rotates the tree head signing key kept at `path`: signs the log with the current key
/// first (so the last head of the old key covers the log), writes a new key to a fresh file
/// beside it (mode 0600), publishes the new public key, signs a head with it, then moves the
/// new file over `path`. The old public key stays published, so heads it signed still verify;
/// its secret is gone with the old file.
///
/// Only an admin rotates; the rotation is an audit record (`audit_key_rotated`, naming both
/// key ids), covered by the first head of the new key.
pub async fn rotate_signing_key(runtime: &Runtime, actor: &Actor, path: &Path) -> Result<Rotated, ServiceError> {
    if actor.role != Role::Admin {
        return Err(AccessError::NotAdmin {
            actor: actor.name.clone(),
            role: actor.role,
            what: "rotate the audit signing key".to_owned(),
        }
        .into());
    }
    let old = runtime.signing_key();
    if old.is_some() {
        sign_tree_head(runtime, None).await?;
    }
    let new = Arc::new(LogSigningKey::generate());
    let staged = path.with_extension(format!("{}.new", new.key_id()));
    new.write_new_file(&staged).map_err(ServiceError::KeyFile)?;
    let published = new.published();
    let result = async {
        let now = runtime.clock().now();
        let record = SettingsRecord {
            setting_event: "audit_key_rotated".to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at: now,
            comment: Some("the tree head signing key was replaced; the old public key stays published".to_owned()),
            previous: serde_json::json!({"key_id": old.as_ref().map(|k| k.key_id().to_owned())}),
            value: serde_json::json!({"key_id": published.key_id}),
            action_id: None,
        };
        runtime.store().append_note(&record).await?;
        runtime.store().publish_key(&published.to_stored(now)).await?;
        let head = sign_with(runtime, &new, None).await?;
        std::fs::rename(&staged, path).map_err(|source| {
            ServiceError::KeyFile(TreeHeadError::KeyFileIo {
                action: "replace",
                path: path.display().to_string(),
                source,
            })
        })?;
        Ok::<_, ServiceError>(head)
    }
    .await;
    let head = match result {
        Ok(head) => head,
        Err(e) => {
            // The new key signed nothing that stays unverifiable: its public key is published.
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    runtime.set_signing_key(new);
    Ok(Rotated { old: old.map(|k| k.published()), new: published, head })
}

/// Checks the log as stored against its latest signed tree head: the head's signature under
/// the published keys, that the log still holds its leaves and they give its root, and that
/// every record still stored hashes to its leaf. Reads every record once.
pub async fn verify_tree_head(runtime: &Runtime) -> Result<TreeHeadVerdict, ServiceError> {
    let store = runtime.store();
    let Some(stored) = store.latest_tree_head().await? else {
        return Ok(TreeHeadVerdict::NotSigned);
    };
    let tree_size = stored.tree_size;
    let head = match SignedTreeHead::try_from(stored) {
        Ok(head) => head,
        Err(e) => return Ok(TreeHeadVerdict::BadSignature { tree_size, reason: e.to_string() }),
    };
    if let Err(e) = published_keys(runtime).await?.verify(&head) {
        return Ok(TreeHeadVerdict::BadSignature { tree_size, reason: e.to_string() });
    }
    let log_size = store.audit_size().await?;
    if log_size < tree_size {
        return Ok(TreeHeadVerdict::Truncated { tree_size, log_size });
    }
    let leaves = leaves(runtime, log_size).await?;
    let actual = merkle::root(leaves.get(..usize::try_from(tree_size).unwrap_or(usize::MAX)).unwrap_or(&leaves));
    if actual != head.head.root_hash {
        return Ok(TreeHeadVerdict::RootMismatch {
            tree_size,
            signed_root: head.head.root_hash.to_hex(),
            actual_root: actual.to_hex(),
        });
    }
    let mut after = None;
    loop {
        let page = store.audit_page(&AuditFilter::default(), after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for record in &page {
            let stored_leaf = usize::try_from(record.seq - 1).ok().and_then(|i| leaves.get(i));
            let leaf = merkle::record_leaf_hash(record).ok();
            if stored_leaf.is_none() || leaf.as_ref() != stored_leaf {
                return Ok(TreeHeadVerdict::LeafMismatch { seq: record.seq });
            }
        }
    }
    Ok(TreeHeadVerdict::Matches { tree_size, key_id: head.head.key_id })
}

/// What an archive run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// The archive file written.
    pub file: std::path::PathBuf,
    /// How many records it holds (and were removed from the store).
    pub records: u64,
    /// The last archived record's `seq`.
    pub through_seq: u64,
    /// The size of the signed tree head its proofs are for.
    pub tree_size: u64,
}

/// Moves the audit records older than `before` out of the store into a verifiable archive
/// file at `out`: the records with their inclusion proofs against a signed tree head (an
/// [`InclusionBundle`], which `tests/verify_log.py inclusion-bundle` checks). The file is
/// written (new, 0600), fsynced and read back and verified before the store removes the
/// records, in one transaction with the archive's registration ([`remediation_core::AuditLog::archive_audit`]);
/// their leaf hashes stay, so every later proof still verifies. The archive is an audit record
/// (`audit_archived`) itself.
///
/// Only an admin archives; `before` must be at least `retention` ago (`[audit]
/// retention_days`); the archived records are the oldest ones stored, up to the first one at or
/// after `before`, never the newest record, and all covered by a signed head (a signing key is
/// needed).
pub async fn archive_audit(
    runtime: &Runtime,
    actor: &Actor,
    before: time::OffsetDateTime,
    retention: time::Duration,
    out: &Path,
) -> Result<Archived, ServiceError> {
    if actor.role != Role::Admin {
        return Err(AccessError::NotAdmin {
            actor: actor.name.clone(),
            role: actor.role,
            what: "archive audit records".to_owned(),
        }
        .into());
    }
    let now = runtime.clock().now();
    if before > now - retention {
        return Err(ServiceError::Invalid {
            field: "before",
            message: format!(
                "audit records are kept {} days (`[audit] retention_days`): --before must be on or before {}",
                retention.whole_days(),
                (now - retention).date()
            ),
        });
    }
    if out.exists() {
        return Err(ServiceError::Archive {
            message: format!("{} exists: an archive is never overwritten; name a new file", out.display()),
            source: None,
        });
    }
    if runtime.signing_key().is_none() {
        return Err(ServiceError::Invalid {
            field: "before",
            message: "archiving needs a signing key (`[audit] signing_key`): an archive proves its records against a signed tree head".to_owned(),
        });
    }
    sign_tree_head(runtime, None).await?;
    let head = tree_head(runtime).await?;
    let size = head.head.tree_size;
    let store = runtime.store();
    let mut records = Vec::new();
    let mut after = None;
    let newest = 'scan: loop {
        let page = store.audit_page(&AuditFilter::default(), after, 1000).await?;
        let Some(last) = page.last() else { break 'scan None };
        after = Some(last.seq);
        for record in page {
            if record.body.at() >= before || record.seq > size {
                break 'scan Some(record.seq);
            }
            records.push(record);
        }
    };
    // The newest record stays: the chain goes on from it.
    if newest.is_none() {
        records.pop();
    }
    let Some(last) = records.last().cloned() else {
        return Err(ServiceError::NotFound { what: format!("no audit record older than {before} can be archived") });
    };
    // A configured sink that has not received a record yet keeps it in the log: archiving it
    // would lose it for that sink.
    let marks = store.sink_marks().await?;
    for sink in runtime.relay().sinks().iter().filter(|s| s.holds_archive) {
        let mark = marks.iter().find(|m| m.sink == sink.name).map_or(0, |m| m.delivered_through);
        if mark < last.seq {
            return Err(ServiceError::Invalid {
                field: "before",
                message: format!(
                    "sink `{}` has received the audit log only through record {mark}, and archiving would remove records up to {}: deliver first (`remediate events flush`, `remediate events status`), or remove the sink from the configuration",
                    sink.name, last.seq
                ),
            });
        }
    }
    let leaves = leaves(runtime, size).await?;
    let mut proofs = Vec::with_capacity(records.len());
    for record in records {
        let proof =
            InclusionProof::generate(&leaves, record.seq - 1, size).map_err(|e| ServiceError::LogIntegrity {
                message: format!("cannot prove the inclusion of record {}: {e}", record.seq),
                source: None,
            })?;
        proofs.push(RecordProof { record, proof });
    }
    let count = proofs.len() as u64;
    let bundle = InclusionBundle { tree_size: size, tree_head: Some(head.clone()), proofs };
    let keys = published_keys(runtime).await?;
    let file_sha256 = write_archive(out, &bundle, &keys)?;
    let archive = remediation_core::AuditArchive {
        through_seq: last.seq,
        last_hash: last.hash.clone(),
        tree_size: size,
        root_hash: head.head.root_hash.to_hex(),
        file_sha256: file_sha256.clone(),
        archived_at: now,
    };
    let removed = store.archive_audit(&archive).await?;
    store
        .append_note(&SettingsRecord {
            setting_event: "audit_archived".to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at: now,
            comment: Some(format!("records 1 to {} moved to an archive file", last.seq)),
            previous: serde_json::Value::Null,
            value: serde_json::json!({"through_seq": last.seq, "records": removed, "tree_size": size, "file_sha256": file_sha256}),
            action_id: None,
        })
        .await?;
    Ok(Archived { file: out.to_owned(), records: count, through_seq: last.seq, tree_size: size })
}

/// Writes `bundle` to a new file at `out` (0600), fsyncs it and its directory, reads it back and
/// verifies every proof against the signed head under `keys`; the file's SHA-256.
fn write_archive(out: &Path, bundle: &InclusionBundle, keys: &PublicKeySet) -> Result<String, ServiceError> {
    use std::io::Write as _;
    let io = |action: &'static str, source: std::io::Error| ServiceError::Archive {
        message: format!("cannot {action} the archive file {}", out.display()),
        source: Some(source),
    };
    let text = serde_json::to_vec_pretty(bundle)
        .map_err(|e| ServiceError::Archive { message: format!("cannot write the archive: {e}"), source: None })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).map_err(|e| io("create", e))?;
    file.write_all(&text).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("write", e))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("write", e))?;
    }
    let written = std::fs::read(out).map_err(|e| io("read back", e))?;
    let bad = |why: String| ServiceError::Archive {
        message: format!(
            "the archive file {} does not verify after writing ({why}); nothing was removed",
            out.display()
        ),
        source: None,
    };
    let read: InclusionBundle = serde_json::from_slice(&written).map_err(|e| bad(e.to_string()))?;
    let head = read.tree_head.as_ref().ok_or_else(|| bad("no tree head".to_owned()))?;
    keys.verify(head).map_err(|e| bad(e.to_string()))?;
    if read != *bundle {
        return Err(bad("it reads back differently".to_owned()));
    }
    for p in &read.proofs {
        let leaf = merkle::record_leaf_hash(&p.record).map_err(|e| bad(e.to_string()))?;
        if leaf != p.proof.leaf_hash || p.proof.leaf_index + 1 != p.record.seq {
            return Err(bad(format!("record {} is not its proof's leaf", p.record.seq)));
        }
        p.proof.verify(&head.head.root_hash).map_err(|e| bad(e.to_string()))?;
    }
    Ok(remediation_core::hash::sha256_hex(&written))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use remediation_config::{Config, ConnectorConfig};
    use remediation_core::{Clock as _, ManualClock, Target};
    use remediation_runtime::RuntimeOptions;
    use remediation_testkit::{RequestBuilder, admin, approver, requester};
    use time::macros::datetime;

    use super::*;

    fn runtime(dir: &Path, clock: Arc<ManualClock>) -> Runtime {
        runtime_with(dir, clock, Vec::new())
    }

    fn runtime_with(dir: &Path, clock: Arc<ManualClock>, sinks: Vec<remediation_runtime::relay::RelaySink>) -> Runtime {
        remediation_connector_sandbox::write_sample(dir.join("sandbox.json")).expect("sandbox");
        let mut config =
            Config { connectors: vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")], ..Config::default() };
        config.policy.enabled = true;
        let options = RuntimeOptions {
            clock: Some(clock),
            signing_key: Some(Arc::new(LogSigningKey::from_seed(&[3; 32]))),
            sinks,
            ..RuntimeOptions::default()
        };
        Runtime::build(&config, dir, None, options).expect("build")
    }

    #[tokio::test]
    async fn archiving_waits_until_every_configured_sink_has_the_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(datetime!(2019-01-01 00:00 UTC)));
        let file = Arc::new(remediation_audit::JsonlFileSink::new(dir.path().join("trail.jsonl"), 1 << 20, 1));
        let sink = remediation_runtime::relay::RelaySink::audit("file", file, remediation_core::DeliverFrom::Beginning);
        let runtime = runtime_with(dir.path(), clock.clone(), vec![sink]);
        runtime.relay().register().await.expect("register");
        suggest_and_reject(&runtime, "admins").await;
        clock.advance(time::Duration::days(8 * 365));
        suggest_and_reject(&runtime, "admins").await;
        let (seven_years, before) = (time::Duration::days(2557), datetime!(2019-01-02 00:00 UTC));
        let out = dir.path().join("archive.json");

        let refused = archive_audit(&runtime, &admin(), before, seven_years, &out).await;
        let Err(ServiceError::Invalid { message, .. }) = &refused else { panic!("{refused:?}") };
        assert!(message.contains("sink `audit/file` has received the audit log only through record 0"), "{message}");
        assert!(!out.exists());
        runtime.relay().flush(std::time::Duration::from_secs(10)).await.expect("flush");
        let done = archive_audit(&runtime, &admin(), before, seven_years, &out).await.expect("archived");
        assert_eq!(done.through_seq, 2);
    }

    /// Suggests and rejects an action on `resource`: two records.
    async fn suggest_and_reject(runtime: &Runtime, resource: &str) {
        let engine = runtime.active().await.expect("active").engine;
        let target = Target {
            identity: "alice".into(),
            resource: Some(resource.into()),
            grant: None,
            grant_type: "group_membership".into(),
        };
        let s = engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");
        engine.reject(s.action.id, &approver("bob"), Some("no".into())).await.expect("reject");
    }

    #[tokio::test]
    async fn archiving_moves_old_records_to_a_verified_file_and_keeps_every_proof() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(datetime!(2019-01-01 00:00 UTC)));
        let runtime = runtime(dir.path(), clock.clone());
        suggest_and_reject(&runtime, "admins").await;
        suggest_and_reject(&runtime, "engineering").await;
        let old = sign_tree_head(&runtime, None).await.expect("sign").expect("a head");
        assert_eq!(old.head.tree_size, 4);
        clock.advance(time::Duration::days(8 * 365));
        suggest_and_reject(&runtime, "admins").await;
        let seven_years = time::Duration::days(2557);
        let out = dir.path().join("archive.json");
        let before = datetime!(2019-01-02 00:00 UTC);

        // Refusals first: nothing is written or removed.
        let not_admin = archive_audit(&runtime, &approver("bob"), before, seven_years, &out).await;
        assert!(matches!(not_admin, Err(ServiceError::Access(_))), "{not_admin:?}");
        let too_recent = archive_audit(&runtime, &admin(), clock.now(), seven_years, &out).await;
        assert!(matches!(too_recent, Err(ServiceError::Invalid { field: "before", .. })), "{too_recent:?}");
        assert!(!out.exists());

        let done = archive_audit(&runtime, &admin(), before, seven_years, &out).await.expect("archive");
        assert_eq!((done.records, done.through_seq), (4, 4), "the four records of 2019");
        // The file: the records with their proofs against a signed head, verifiable alone.
        let bundle: InclusionBundle = serde_json::from_slice(&std::fs::read(&out).expect("file")).expect("bundle");
        let head = bundle.tree_head.clone().expect("a signed head");
        published_keys(&runtime).await.expect("keys").verify(&head).expect("the head verifies");
        assert_eq!(bundle.proofs.iter().map(|p| p.record.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for p in &bundle.proofs {
            assert_eq!(merkle::record_leaf_hash(&p.record).expect("leaf"), p.proof.leaf_hash);
            p.proof.verify(&head.head.root_hash).expect("inclusion");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        // The store: the records are gone, their leaves are not; everything still verifies.
        let store = runtime.store();
        let left = store.audit_page(&AuditFilter::default(), None, 100).await.expect("page");
        assert_eq!(left.first().map(|r| r.seq), Some(5));
        assert!(left.iter().any(|r| r.body.event() == "audit_archived"), "the archive is in the log");
        let verification = crate::audit_verify(&runtime).await.expect("verify");
        assert!(verification.chain.first_break.is_none(), "{}", verification.chain);
        sign_tree_head(&runtime, None).await.expect("sign");
        assert!(matches!(verify_tree_head(&runtime).await.expect("verify"), TreeHeadVerdict::Matches { .. }));
        let consistency = prove_consistency(&runtime, old.head.tree_size, None).await.expect("consistency");
        let keys = published_keys(&runtime).await.expect("keys");
        remediation_audit::verify_extends(&keys, &old, &consistency.tree_head, &consistency.proof.path)
            .expect("the log after archiving extends the head before it");
        // An old record's proof now comes from its archive; newer ones still from the log.
        let gone = prove_inclusion(&runtime, ProofTarget::Seq(2), None).await;
        assert!(matches!(gone, Err(ServiceError::NotFound { .. })), "{gone:?}");
        prove_inclusion(&runtime, ProofTarget::Seq(5), None).await.expect("a kept record");
        // Nothing older is left, and an existing file is never overwritten.
        let again = archive_audit(&runtime, &admin(), before, seven_years, &dir.path().join("again.json")).await;
        assert!(matches!(again, Err(ServiceError::NotFound { .. })), "{again:?}");
        let taken = archive_audit(&runtime, &admin(), clock.now() - seven_years, seven_years, &out).await;
        assert!(matches!(taken, Err(ServiceError::Archive { .. })), "{taken:?}");
    }
}
