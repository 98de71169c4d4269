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

use remediation_audit::merkle::{self, MerkleHash};
use remediation_audit::{
    ConsistencyBundle, ConsistencyProof, InclusionBundle, InclusionProof, LogSigningKey, PublicKeySet, PublishedKey,
    RecordProof, SignedTreeHead, TreeHeadError, TreeHeadVerdict,
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
    let leaves = leaves(runtime, size).await?;
    let root = merkle::root(&leaves);
    let previous_size = previous.as_ref().map_or(0, |p| p.head.tree_size);
    let proof = if previous_size > 0 && previous_size < size {
        merkle::consistency_path(&leaves, previous_size, size).map_err(|e| ServiceError::LogIntegrity {
            message: format!("cannot prove the log extends the latest signed head: {e}"),
            source: None,
        })?
    } else {
        Vec::new()
    };
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
    let leaves = leaves(runtime, size).await?;
    let proof = ConsistencyProof::generate(&leaves, old_size, size)
        .map_err(|e| ServiceError::LogIntegrity { message: format!("cannot prove consistency: {e}"), source: None })?;
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
