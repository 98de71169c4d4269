//! A real [`Connector`](remediation_core::Connector) over a directory kept in one JSON file:
//! every action kind, no credentials, and injectable faults. The CLI demo and the tests use it.
//!
//! # Example
//!
//! ```
//! use remediation_connector_sandbox::{SandboxConnector, write_sample};
//! use remediation_core::{Connector, Target};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("sandbox.json");
//! write_sample(&path)?;
//! let sandbox = SandboxConnector::open("sandbox", path)?;
//!
//! let target = Target {
//!     identity: "alice".into(),
//!     resource: Some("admins".into()),
//!     grant: None,
//!     grant_type: "group_membership".into(),
//! };
//! let before = sandbox.snapshot(&target).await?;
//! assert_eq!(before.state, serde_json::json!({"user": "alice", "group": "admins", "member": true}));
//! assert!(!before.protected);
//! # Ok(())
//! # }
//! ```
//!
//! # The file
//!
//! ```json
//! {
//!   "users": {
//!     "alice": {"display_name": "Alice", "status": "active", "sessions": ["s1", "s2"],
//!               "password_must_change": false, "protected": false}
//!   },
//!   "groups": {
//!     "admins": {"members": ["alice", "bob"], "protected": false}
//!   },
//!   "grants": [
//!     {"identity": "alice", "resource": "repo-payments", "grant_type": "repo_permission", "level": "admin"},
//!     {"identity": "alice", "resource": "crm", "grant_type": "app_assignment", "level": "user",
//!      "profile": {"title": "Sales"}}
//!   ],
//!   "notifications": [],
//!   "writes": [],
//!   "faults": {"fail_after_write": false, "drift_before_execute": false, "fail_rollback": false}
//! }
//! ```
//!
//! Its schema is [`Directory`] (which derives `JsonSchema`). Every section and every field
//! with an obvious default may be left out; unknown fields are refused.
//!
//! - `users`: `status` is `active` or `suspended`. A `protected` user (a break-glass
//!   account) makes every target naming it [protected](remediation_core::Snapshot::protected).
//! - `groups`: a `protected` group makes every membership in it protected.
//! - A user's `aliases` are other names a target may use for it (case-insensitive); the
//!   sandbox acts on the user's key in `users`, which is the snapshot's
//!   [canonical id](remediation_core::Snapshot::canonical), so an alias of a protected user is
//!   protected too.
//! - A user's `email` is its primary email as the directory's admins set it. It finds the
//!   person ([`find_account`](remediation_core::Connector::find_account)) but is not a name a
//!   target may use.
//! - `grants`: `grant_type` is `repo_permission` (`level` one of `pull` < `triage` < `push` <
//!   `maintain` < `admin`) or `app_assignment` (`level` is the application role, `profile`
//!   optional attributes).
//! - `notifications`: appended by `notify`: `{"to", "message" (the action's reason),
//!   "idempotency_key"}`.
//! - `writes`: the append-only log of every write the connector applied:
//!   `{"idempotency_key", "op" ("execute" | "rollback"), "kind", "target", "at" (RFC 3339)}`.
//!   At most one entry exists per key and op: this is what makes a re-execution after a crash
//!   a no-op, and how tests count that a change was applied exactly once. Request ids are
//!   `sandbox-<n>`, `n` being the entry's 1-based position.
//! - `faults`: one-shot faults, each reset to `false` once it fires (also set by
//!   [`SandboxConnector::inject`]):
//!   - `fail_after_write`: the next `execute` that changes something applies and saves its
//!     change, then returns a `Transient` error "injected fault: failed after write" (a retry
//!     with the same idempotency key then finds it done).
//!   - `drift_before_execute`: the next `execute` first changes its target in a way unrelated
//!     to the action and saves that: `drift-user` joins the group, or gets a grant on the same
//!     repository or application; the account gets a session `drift-session` (or, for
//!     `revoke_sessions`, a flipped `password_must_change`). Drift on an account shows in the
//!     account's snapshot, so verification fails; drift on a group or resource does not show
//!     in a membership or grant snapshot, which is about one identity only.
//!   - `fail_rollback`: the next `rollback` returns a `Permanent` error and changes nothing.
//!
//! # Targets, snapshots and actions
//!
//! | kind | `grant_type` | target | effect | reversibility | observable |
//! |---|---|---|---|---|---|
//! | revoke | `group_membership` | identity = user, resource = group | leave the group | reversible | yes |
//! | revoke | `repo_permission` | identity, resource = repository | remove the grant | reversible | yes |
//! | reduce `{to}` | `repo_permission` | identity, resource = repository | lower `level` to `to` | reversible | yes |
//! | revoke | `app_assignment` | identity, resource = application | remove the grant | lossy | yes |
//! | suspend | `account` | identity = user | `status` becomes `suspended` | reversible | yes |
//! | revoke_sessions | `account` | identity = user | `sessions` becomes empty | irreversible | yes |
//! | force_password_reset | `account` | identity = user | `password_must_change` becomes true | irreversible | yes |
//! | notify | `notification` | identity = user | a notification is appended | irreversible | no |
//!
//! Snapshot states, per grant type (`null` where there is no grant):
//!
//! - `group_membership`: `{"user", "group", "member": bool}`
//! - `repo_permission`: `{"identity", "resource", "level": string | null}`
//! - `app_assignment`: `{"identity", "resource", "assigned": bool, "level": string | null,
//!   "profile": object | null}` (an assignment without a profile shows `{}`)
//! - `account`: `{"user", "status", "sessions", "password_must_change"}`, shared by suspend,
//!   revoke sessions and force password reset because a snapshot is of a target, not of an
//!   action.
//! - `notification`: the account state plus `"notifications"`, the count of notifications sent
//!   to the user, so that a `notify` plan is not a no-op; kept apart from `account` so that a
//!   notification never counts as drift against another account action.
//!
//! # Finding a person's account
//!
//! [`find_account`](remediation_core::Connector::find_account) with a person key finds the
//! user whose key, `email` or alias equals it, case-insensitively; with a link key, the user
//! whose key or alias does. The account's id is the user's key, its groups the names of the
//! groups it is a member of (the `resource` of its `group_membership` targets), its sessions
//! their count. A key more than one user answers to is an error, never settled by choice.
//!
//! An unknown user, group, repository or application is `NotFound`; a missing membership or
//! grant is a state (`"member": false`), so revoking it plans a no-op. A repository or
//! application is known while some grant or the write log names it.
//!
//! Reducing to a level that is not lower than the current one is refused as "not a
//! reduction". Rolling back an application assignment re-creates it with its role and an empty
//! profile: the profile is lost, which the plan's description says. Rollback puts back only the
//! field the action changed, so it never undoes someone else's change to another field.
//!
//! # Concurrency and durability
//!
//! Writers take an exclusive lock on `<file>.lock` and replace the file atomically (temporary
//! file in the same folder, `fsync`, rename, `fsync` of the folder). Readers do not lock.
//! All I/O is synchronous inside the async methods: the file is small.
//!
//! With `storage = "memory"` ([`SandboxStorage::Memory`], [`SandboxConnector::in_memory`])
//! the file is read once and the directory then lives in the process: writes change it in
//! place under a mutex and never reach the disk. This is for trials and benchmarks (the file
//! sandbox rewrites its whole file on every write, which bounds any benchmark by itself); its
//! state is lost at exit and not shared with other processes.

mod connector;
mod directory;
mod error;
mod file;
mod state;

pub use connector::{Fault, PERMISSION_MAP, SandboxConnector, capabilities};
pub use directory::{
    Directory, Faults, Grant, GrantType, Group, Notification, RepoLevel, Resource, UnknownLevel, User, UserStatus,
    WriteEntry, WriteOp, sample,
};
pub use error::SandboxError;
pub use file::{load, save, write_sample};

/// The grant types the sandbox understands, as written in [`Target::grant_type`](remediation_core::Target::grant_type).
pub mod grant_type {
    /// A user's membership of a group (`resource` is the group).
    pub const GROUP_MEMBERSHIP: &str = "group_membership";
    /// A permission on a repository (`resource` is the repository).
    pub const REPO_PERMISSION: &str = "repo_permission";
    /// An assignment to an application (`resource` is the application).
    pub const APP_ASSIGNMENT: &str = "app_assignment";
    /// The user's account itself.
    pub const ACCOUNT: &str = "account";
    /// Notifications sent to a user (the `notify` kind).
    pub const NOTIFICATION: &str = "notification";
    /// The settings of a resource in `resources` (the kind `enforce`).
    pub const RESOURCE_SETTING: &str = "resource_setting";
    /// Every grant type, in a stable order.
    pub const ALL: [&str; 6] =
        [GROUP_MEMBERSHIP, REPO_PERMISSION, APP_ASSIGNMENT, ACCOUNT, NOTIFICATION, RESOURCE_SETTING];
}

/// The sandbox's settings in `[[connectors]]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Connector id used in actions.
    pub id: String,
    /// The directory file; relative paths are relative to the data directory.
    pub path: std::path::PathBuf,
    /// Where the directory is kept: `file` (the default) or `memory`.
    #[serde(default)]
    pub storage: SandboxStorage,
}

/// Where a sandbox keeps its directory.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStorage {
    /// In the file at `path`, replaced atomically (and flushed to disk) on every write: what
    /// the CLI demo and every process sharing the data directory see.
    #[default]
    File,
    /// In the memory of the process, starting from the file at `path` (read once, never
    /// written): for trials and benchmarks. Every write is lost when the process exits and no
    /// other process (a CLI next to the server) sees it; no disk I/O per write.
    Memory,
}

/// The catalog's entry for the built-in sandbox: `type = "sandbox"`, settings [`SandboxConfig`].
pub static FACTORY: remediation_core::factory::Factory<SandboxConfig> =
    remediation_core::factory::Factory::new("sandbox", "Sandbox", Some(capabilities), |id, config, context| {
        let path = context.data_dir.join(config.path);
        Ok(std::sync::Arc::new(match config.storage {
            SandboxStorage::File => SandboxConnector::new(id, path),
            SandboxStorage::Memory => SandboxConnector::in_memory(id, path),
        }))
    });
