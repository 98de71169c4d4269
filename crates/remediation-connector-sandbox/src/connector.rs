//! [`SandboxConnector`]: the [`Connector`] implementation over the directory file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use remediation_core::{
    Account, AccountKey, Action, ActionKind, CanonicalTarget, Capability, Clock, Connector, ConnectorError,
    ConnectorErrorKind, Grant, Health, KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange,
    Reversibility, Snapshot, Step, SystemClock, Target, Verification, check_person_key, require_capability,
};

use crate::directory::{Directory, User, WriteEntry, WriteOp};
use crate::error::SandboxError;
use crate::file::{self, WriteLock};
use crate::grant_type;
use crate::state::{self, Phase, State, Subject};

/// A one-shot fault for the next write, stored in the file's `faults` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The next `execute` that changes something applies and saves its change, then fails with a
    /// [`Transient`](ConnectorErrorKind::Transient) error, as if the connection dropped
    /// after the provider acted.
    FailAfterWrite,
    /// The next `execute` first changes its target in a way unrelated to the action and saves
    /// that, then proceeds.
    DriftBeforeExecute,
    /// The next `rollback` fails with a [`Permanent`](ConnectorErrorKind::Permanent) error
    /// and changes nothing.
    FailRollback,
}

/// A connector over a directory kept in one JSON file. See the crate documentation for the
/// file format and what each action does.
///
/// Cheap to clone (clones share the cache). Every write locks the file, reads it, changes it
/// and replaces it atomically. The last version read or written is kept in memory with its
/// file held open, and reused while the file on disk is still that one (see
/// [`crate::file`]), so each change is read and parsed once.
///
/// [`SandboxConnector::in_memory`] instead keeps the directory in this process only, for
/// trials and benchmarks.
#[derive(Clone)]
pub struct SandboxConnector {
    id: String,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    storage: Arc<Storage>,
}

/// Where the directory lives.
enum Storage {
    /// In the file, replaced on every write; the last version read or written is cached.
    File(file::Cached),
    /// In this process: read from the file on first use (and until that succeeds), then
    /// changed in place; the file is never written.
    Memory(Mutex<Option<Directory>>),
}

impl std::fmt::Debug for SandboxConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConnector").field("id", &self.id).field("path", &self.path).finish_non_exhaustive()
    }
}

impl SandboxConnector {
    /// A connector named `id` over the file at `path`. Does not touch the file: a missing or
    /// malformed file shows in [`Connector::health`] and as errors from every operation.
    pub fn new(id: impl Into<String>, path: PathBuf) -> Self {
        Self { id: id.into(), path, clock: Arc::new(SystemClock), storage: Arc::new(Storage::File(Default::default())) }
    }

    /// A connector named `id` whose directory lives in this process's memory: the file at
    /// `path` is read once, on first use (a missing or malformed file shows in
    /// [`Connector::health`] and as errors, and is read again on the next call), and never
    /// written. Writes are lost when the process exits and are not seen by other processes
    /// (or other connectors over the same file). For trials and benchmarks: reads and
    /// writes cost no disk I/O, where the file sandbox rewrites the whole file on every write.
    pub fn in_memory(id: impl Into<String>, path: PathBuf) -> Self {
        Self { id: id.into(), path, clock: Arc::new(SystemClock), storage: Arc::new(Storage::Memory(Mutex::new(None))) }
    }

    /// Like [`new`](Self::new), but first checks that the file exists and parses.
    pub fn open(id: impl Into<String>, path: PathBuf) -> Result<Self, SandboxError> {
        file::load(&path)?;
        Ok(Self::new(id, path))
    }

    /// Uses `clock` for the `at` of write-log entries (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The directory file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the directory lives in memory ([`SandboxConnector::in_memory`]).
    pub fn is_in_memory(&self) -> bool {
        matches!(*self.storage, Storage::Memory(_))
    }

    /// Reads the whole directory as it is now, including the write log.
    pub fn directory(&self) -> Result<Directory, SandboxError> {
        self.read(|dir| Ok(dir.clone()))
    }

    /// Arms `fault` for the next write by setting its flag in the directory.
    pub fn inject(&self, fault: Fault) -> Result<(), SandboxError> {
        self.modify(|dir, changed| {
            let faults = &mut dir.faults;
            match fault {
                Fault::FailAfterWrite => faults.fail_after_write = true,
                Fault::DriftBeforeExecute => faults.drift_before_execute = true,
                Fault::FailRollback => faults.fail_rollback = true,
            }
            *changed = true;
            Ok::<_, SandboxError>(())
        })
    }

    /// Runs `f` on the directory as it is now.
    fn read<R, E: From<SandboxError>>(&self, f: impl FnOnce(&Directory) -> Result<R, E>) -> Result<R, E> {
        match &*self.storage {
            Storage::File(cache) => f(&cache.load(&self.path)?),
            Storage::Memory(memory) => f(memory_dir(memory, &self.path)?.get_or_insert_default()),
        }
    }

    /// Runs `f` on the directory under the writer lock; `f` sets its `bool` when it changed
    /// the directory, which is then saved (also when `f` then fails: a change made before a
    /// failure is kept, as by a provider that applied it). In memory the change is made in
    /// place.
    fn modify<R, E: From<SandboxError>>(
        &self,
        f: impl FnOnce(&mut Directory, &mut bool) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut changed = false;
        match &*self.storage {
            Storage::File(cache) => {
                let _lock = WriteLock::acquire(&self.path)?;
                let mut dir = cache.load(&self.path)?;
                let result = f(&mut dir, &mut changed);
                if changed {
                    cache.save_locked(&self.path, &dir)?;
                }
                result
            }
            Storage::Memory(memory) => f(memory_dir(memory, &self.path)?.get_or_insert_default(), &mut changed),
        }
    }

    /// The capability for the action, or `Unsupported` naming what is supported.
    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        require_capability(&capabilities(), "the sandbox", action)
    }

    fn snapshot_of(&self, dir: &Directory, target: &Target) -> Result<Snapshot, ConnectorError> {
        let target = resolve(dir, target);
        let subject = Subject::of(&target)?;
        let (state, protected) = state::read(dir, subject, &self.path)?;
        let canonical = CanonicalTarget { identity: target.identity.clone(), resource: target.resource.clone() };
        Ok(Snapshot { canonical: Some(canonical), protected, state: state.to_value() })
    }

    /// Appends a write-log entry and returns its request id.
    fn log_write(&self, dir: &mut Directory, action: &Action, op: WriteOp) -> String {
        dir.writes.push(WriteEntry {
            idempotency_key: action.idempotency_key.clone(),
            op,
            kind: action.kind.name(),
            target: action.target.clone(),
            at: self.clock.now(),
        });
        request_id(dir.writes.len() - 1)
    }
}

/// The in-memory directory, read from `path` first if it is not yet loaded; the guard holds
/// `Some` on success.
fn memory_dir<'a>(
    memory: &'a Mutex<Option<Directory>>,
    path: &Path,
) -> Result<std::sync::MutexGuard<'a, Option<Directory>>, SandboxError> {
    let mut guard = memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.is_none() {
        *guard = Some(file::load(path)?);
    }
    Ok(guard)
}

/// `target` with its identity replaced by the user's key in the directory when it names the
/// user by one of its aliases: every other name of an account is that account.
fn resolve(dir: &Directory, target: &Target) -> Target {
    if dir.users.contains_key(&target.identity) {
        return target.clone();
    }
    match dir.users.iter().find(|(_, u)| u.aliases.iter().any(|a| a.eq_ignore_ascii_case(&target.identity))) {
        Some((key, _)) => Target { identity: key.clone(), ..target.clone() },
        None => target.clone(),
    }
}

fn request_id(index: usize) -> String {
    format!("sandbox-{}", index + 1)
}

/// The request id of an earlier write of `action` with the same `op`, if there was one.
fn earlier_write(dir: &Directory, action: &Action, op: WriteOp) -> Option<String> {
    dir.writes.iter().position(|w| w.op == op && w.idempotency_key == action.idempotency_key).map(request_id)
}

fn already(request_ids: Vec<String>) -> Outcome {
    Outcome { status: OutcomeStatus::AlreadyInState, request_ids }
}

fn capability(kind: KindName, grant_type: &str, reversibility: Reversibility, observable: bool) -> Capability {
    Capability { kind, grant_type: grant_type.to_owned(), reversibility, observable }
}

/// Every (kind, grant type) the sandbox supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    use Reversibility::*;
    use grant_type::*;
    vec![
        capability(KindName::Revoke, GROUP_MEMBERSHIP, Reversible, true),
        capability(KindName::Revoke, REPO_PERMISSION, Reversible, true),
        capability(KindName::Reduce, REPO_PERMISSION, Reversible, true),
        capability(KindName::Revoke, APP_ASSIGNMENT, Lossy, true),
        capability(KindName::Suspend, ACCOUNT, Reversible, true),
        capability(KindName::RevokeSessions, ACCOUNT, Irreversible, true),
        capability(KindName::ForcePasswordReset, ACCOUNT, Irreversible, true),
        // A notification is sent, not stored in the provider: nothing to read back.
        capability(KindName::Notify, NOTIFICATION, Irreversible, false),
        capability(KindName::Enforce, RESOURCE_SETTING, Reversible, true),
    ]
}

const READ: &str = "read access to the directory file";
const WRITE: &str = "write access to the directory file";

/// What every sandbox operation needs: reading and writing its JSON directory file.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("read {path}", READ),
    PermissionNeed::read(grant_type::GROUP_MEMBERSHIP, "read {path}", READ),
    PermissionNeed::read(grant_type::REPO_PERMISSION, "read {path}", READ),
    PermissionNeed::read(grant_type::APP_ASSIGNMENT, "read {path}", READ),
    PermissionNeed::read(grant_type::ACCOUNT, "read {path}", READ),
    PermissionNeed::read(grant_type::RESOURCE_SETTING, "read {path}", READ),
    PermissionNeed::any(Step::Execute, "write {path}", WRITE),
    PermissionNeed::any(Step::Rollback, "write {path}", WRITE),
];

#[async_trait]
impl Connector for SandboxConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let place = if self.is_in_memory() { " (in memory)" } else { "" };
        let detail = self.read(|dir| {
            Ok::<_, SandboxError>(format!(
                "sandbox directory {}{place}: {} users, {} groups, {} grants, {} writes",
                self.path.display(),
                dir.users.len(),
                dir.groups.len(),
                dir.grants.len(),
                dir.writes.len()
            ))
        });
        Ok(match detail {
            Ok(detail) => Health { healthy: true, detail },
            Err(e) => Health { healthy: false, detail: ConnectorError::from(e).message },
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// Both rights are judged on the file itself: read when it loads, write when the file
    /// (or, before it exists, its directory) is writable. In memory: read when the directory
    /// was (or now is) loaded, and write always, as the file is never written.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let (readable, writable) = if self.is_in_memory() {
            (self.read(|_| Ok::<_, SandboxError>(())).is_ok(), true)
        } else {
            // Read from disk: the right to read is what is judged, not the cached content.
            (file::load(&self.path).is_ok(), !file::lacks_write_access(&self.path))
        };
        Ok(Permissions::judge(PERMISSION_MAP, |need| match (need.permission, readable, writable) {
            (READ, true, _) | (WRITE, _, true) => Grant::Granted,
            _ => Grant::Missing,
        }))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        Subject::of(target)?;
        self.read(|dir| self.snapshot_of(dir, target))
    }

    /// A suspension reaches every group the account is a member of and every grant
    /// (repository permission, application assignment) it holds; an `enforce` reaches what
    /// depends on the resource (its `dependants`). Other changes touch the one grant they
    /// name, so they are not counted.
    async fn reach(&self, action: &Action, _before: &Snapshot) -> Result<Option<u32>, ConnectorError> {
        if action.kind.name() == KindName::Enforce {
            let name = action.target.identity.as_str();
            return self.read(|dir| {
                Ok(dir.resources.get(name).map(|r| u32::try_from(r.dependants.len()).unwrap_or(u32::MAX)))
            });
        }
        if action.kind.name() != KindName::Suspend {
            return Ok(None);
        }
        let user = action.target.identity.as_str();
        self.read(|dir| {
            let groups = dir.groups.values().filter(|g| g.members.iter().any(|m| m == user)).count();
            let grants = dir.grants.iter().filter(|g| g.identity == user).count();
            Ok(Some(u32::try_from(groups + grants).unwrap_or(u32::MAX)))
        })
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        Subject::of(&action.target)?;
        // Resolved against the directory, never taken from `before`: a snapshot of another
        // account must not pass for this one.
        let (target, kind) =
            self.read(|dir| Ok::<_, ConnectorError>((resolve(dir, &action.target), with_value(dir, &action.kind)?)))?;
        let subject = Subject::of(&target)?;
        let before_state = State::parse(subject, &before.state)?;
        let after = state::transform(&kind, &before_state, Phase::Plan)?;
        Ok(PlannedChange {
            description: state::describe(&kind, &before_state, &after),
            expected_after: Snapshot {
                canonical: before.canonical.clone(),
                protected: before.protected,
                state: after.to_value(),
            },
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        // The live state, not `before`, decides what to write: the engine compares the result
        // with the plan in `verify`, and crash recovery relies on re-execution being a no-op.
        self.capability(action)?;
        Subject::of(&action.target)?;
        self.modify(|dir, changed| {
            if let Some(id) = earlier_write(dir, action, WriteOp::Execute) {
                return Ok(already(vec![id]));
            }
            let target = resolve(dir, &action.target);
            let subject = Subject::of(&target)?;
            let (mut current, _) = state::read(dir, subject, &self.path)?;
            if dir.faults.drift_before_execute {
                dir.faults.drift_before_execute = false;
                state::drift(dir, subject, &action.kind);
                *changed = true;
                current = state::read(dir, subject, &self.path)?.0;
            }
            let desired = state::transform(&with_value(dir, &action.kind)?, &current, Phase::Execute)?;
            if desired == current {
                return Ok(already(Vec::new()));
            }
            state::write(dir, subject, &current, &desired, action);
            let id = self.log_write(dir, action, WriteOp::Execute);
            *changed = true;
            if std::mem::take(&mut dir.faults.fail_after_write) {
                return Err(ConnectorError::new(ConnectorErrorKind::Transient, "injected fault: failed after write")
                    .with_request_id(id));
            }
            Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec![id] })
        })
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        let observed = self.read(|dir| self.snapshot_of(dir, &action.target))?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        // `after` is not needed: the engine has already compared it with the live state, and
        // the rollback only puts back the field the action changed.
        let capability = self.capability(action)?;
        if capability.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::unsupported(format!(
                "`{}` on a `{}` grant cannot be undone",
                capability.kind, capability.grant_type
            )));
        }
        Subject::of(&action.target)?;
        self.modify(|dir, changed| {
            let target = resolve(dir, &action.target);
            let subject = Subject::of(&target)?;
            let before_state = State::parse(subject, &before.state)?;
            if let Some(id) = earlier_write(dir, action, WriteOp::Rollback) {
                return Ok(already(vec![id]));
            }
            if dir.faults.fail_rollback {
                dir.faults.fail_rollback = false;
                *changed = true;
                return Err(ConnectorError::permanent("injected fault: rollback failed"));
            }
            let (current, _) = state::read(dir, subject, &self.path)?;
            let desired = state::restore(&action.kind, &current, &before_state)?;
            if desired == current {
                return Ok(already(Vec::new()));
            }
            state::write(dir, subject, &current, &desired, action);
            let id = self.log_write(dir, action, WriteOp::Rollback);
            *changed = true;
            Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec![id] })
        })
    }

    /// A person is found by the user's key, its admin-set `email` or one of its `aliases`; a
    /// link by the key or an alias. All case-insensitive. A key two users answer to is refused
    /// rather than settled by picking one. Reads only: no lock, no fault fires.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        check_person_key(key.value()).map_err(ConnectorError::invalid_target)?;
        self.read(|dir| {
            let mut found = dir.users.iter().filter_map(|(id, user)| matched_by(id, user, key).map(|m| (id, user, m)));
            let Some((id, user, matched_by)) = found.next() else { return Ok(None) };
            if let Some((other, _, _)) = found.next() {
                return Err(ConnectorError::permanent(format!(
                    "{key} names more than one user in sandbox directory {} (`{id}` and `{other}`); \
                     give each user distinct names",
                    self.path.display()
                )));
            }
            let groups = dir.groups.iter().filter(|(_, g)| g.members.iter().any(|m| m == id)).map(|(name, _)| name);
            Ok(Some(Account {
                id: id.clone(),
                login: id.clone(),
                matched_by: matched_by.to_owned(),
                status: Some(user.status.to_string()),
                display_name: Some(user.display_name.clone()).filter(|n| !n.is_empty()),
                groups: Some(groups.cloned().collect()),
                sessions: Some(u32::try_from(user.sessions.len()).unwrap_or(u32::MAX)),
                protected: user.protected,
            }))
        })
    }
}

/// Which of the user's names `key` matches, if any (case-insensitive): the key, the admin-set
/// email (a person only) or an alias.
fn matched_by(id: &str, user: &User, key: &AccountKey) -> Option<&'static str> {
    let value = key.value();
    let person = matches!(key, AccountKey::Person(_));
    if id.eq_ignore_ascii_case(value) {
        Some(if person { "login" } else { "id" })
    } else if person && user.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(value)) {
        Some("primary_email")
    } else if user.aliases.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        Some("alias")
    } else {
        None
    }
}

/// `kind` with an `enforce` value of `default` replaced by the directory's compliant value for
/// the setting (`setting_defaults`), which the plan then shows.
fn with_value(dir: &Directory, kind: &ActionKind) -> Result<ActionKind, ConnectorError> {
    match kind {
        ActionKind::Enforce { setting, value } if value == "default" => match dir.setting_defaults.get(setting) {
            Some(value) => Ok(ActionKind::Enforce { setting: setting.clone(), value: value.clone() }),
            None => Err(ConnectorError::permanent(format!(
                "the sandbox directory names no compliant value of `{setting}` (`setting_defaults`); give one with --value"
            ))),
        },
        other => Ok(other.clone()),
    }
}
