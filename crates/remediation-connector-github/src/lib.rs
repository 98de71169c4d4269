//! A [`Connector`](remediation_core::Connector) for GitHub over the REST API (version
//! `2022-11-28`): repository collaborators, organisation members and roles, team members.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Reversibility | Provider calls |
//! |---|---|---|---|
//! | `revoke` | `repo_collaborator` | lossy | `DELETE /repos/{o}/{r}/collaborators/{u}`, or for a pending invitation `DELETE /repos/{o}/{r}/invitations/{id}`; undo `PUT` with the permission, which sends an invitation the user must accept |
//! | `reduce` | `repo_collaborator` | reversible | `PUT /repos/{o}/{r}/collaborators/{u}` `{"permission": "pull\|triage\|push\|maintain\|admin"}` on the direct grant; refused when a team, ownership or the base permission keeps the user above the target; undo with the snapshotted permission |
//! | `revoke` | `org_member` | lossy | `DELETE /orgs/{org}/members/{u}` (also drops team memberships), or for a pending invitee `DELETE /orgs/{org}/memberships/{u}`, which cancels the invitation; undo `PUT /orgs/{org}/memberships/{u}` invites with the old role |
//! | `reduce` | `org_role` | reversible | `PUT /orgs/{org}/memberships/{u}` `{"role": "member"}`; undo with the snapshotted role |
//! | `revoke` | `team_member` | reversible | `DELETE /orgs/{org}/teams/{slug}/memberships/{u}`; undo `PUT` with `{"role": "member\|maintainer"}` |
//! | `revoke` | `outside_collaborator` | lossy | `DELETE /orgs/{org}/outside_collaborators/{u}` (every repository of the organisation); undo `PUT /repos/{o}/{r}/collaborators/{u}` per repository with its permission, which sends invitations |
//!
//! A rollback whose restoring call GitHub takes as an invitation (a 201 from the collaborator
//! `PUT`, a `pending` membership) answers
//! [`OutcomeStatus::PendingAcceptance`](remediation_core::OutcomeStatus::PendingAcceptance):
//! the access returns only once the user accepts, and the engine reports the rollback as
//! `restored_pending_acceptance`. These grants are `lossy` for that reason.
//!
//! A `repo_collaborator` snapshot keeps the direct grant (`permission`, from the `permissions`
//! flags of the direct listing: its `role_name` is the highest role from every source) apart
//! from the effective one (`effective`, `GET /repos/{o}/{r}/collaborators/{u}/permission`).
//! Planning a revoke or reduce also reads the other sources: the organisation membership
//! (an owner is admin everywhere; a member has the base permission of `GET /orgs/{org}`) and
//! `GET /repos/{o}/{r}/teams` with the user's membership of each team above the target.
//!
//! Refused up front, and never written by a rollback: an organisation `billing_manager`
//! (the membership `PUT` takes only `admin` or `member`), and the team membership of an
//! organisation owner, whose team role GitHub always reads as `maintainer` (so `revoke` and
//! the rollback of a `maintainer` first read `GET /orgs/{org}/memberships/{u}`).
//!
//! Every capability is observable. Targets name the user's login as `identity`; the
//! `resource` is `owner/repo`, the organisation, or `org/team-slug`. An outside collaborator
//! (not a member, so `org_member` reads them as absent) is the `outside_collaborator` grant
//! on the organisation; reading it lists the organisation's repositories
//! (`GET /orgs/{org}/repos`) and, on each, the user's direct grant or pending invitation. Only **direct**
//! collaborators are read (`affiliation=direct`, `Link` pagination, `per_page` at most 100):
//! access through a team or the organisation's base permission is not a collaborator grant.
//!
//! # Finding a person's account
//!
//! [`find_account`](remediation_core::Connector::find_account) refuses a person's email or
//! name as unsupported: the only emails GitHub shows are ones the account holder sets, so
//! anyone could claim the victim's. A linked login is read with `GET /users/{login}` and kept
//! when the login GitHub returns equals it (case-insensitively); the account's id is that
//! login, as every GitHub target names it.
//!
//! # Configuration
//!
//! ```toml
//! [[connectors]]
//! type = "github"
//! id = "github-acme"
//! token = { env = "GITHUB_TOKEN" }      # or { file = "/etc/remediation/github-token" }
//! protected = ["acme-admin-bot", "acme/infrastructure"]
//! # api_base = "https://api.github.com" # https://HOST/api/v3 for GitHub Enterprise Server
//! # page_size = 100
//! ```
//!
//! A snapshot also reads `GET /users/{login}`: the numeric user id it returns is the
//! snapshot's [canonical id](remediation_core::Snapshot::canonical), and protection compares
//! it and the login GitHub returns (case-insensitively) with `protected`, so a user listed by
//! login or by numeric id is protected however a target spells the login.
//!
//! The schema is [`GitHubConfig`]. [`PERMISSION_MAP`] names the classic token scope each call
//! needs (the ones in [`REQUIRED_SCOPES`] and `read:org`); `check_permissions` reads a classic
//! token's scopes from `X-OAuth-Scopes` on `GET /user` and judges each, and leaves them
//! unknown for a token that names none (fine-grained or GitHub App). The token is held as a secret and appears in no `Debug` output, error, log line or
//! audit record.
//!
//! # Example
//!
//! ```
//! use remediation_connector_github::{GitHubConfig, GitHubConnector};
//! use remediation_core::Connector;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("token"), "ghp_exampleToken0123456789\n")?;
//! let config: GitHubConfig = serde_json::from_value(serde_json::json!({
//!     "token": {"file": dir.path().join("token")},
//!     "protected": ["acme/infrastructure"],
//! }))?;
//! let github = GitHubConnector::new("github-acme", &config)?;
//! assert_eq!(github.capabilities().len(), 6);
//! assert!(!format!("{github:?}").contains("ghp_exampleToken"));
//! # Ok(())
//! # }
//! ```
//!
//! # Errors and rate limits
//!
//! GitHub's `{"message", "documentation_url"}` body is kept in the error message and
//! `X-GitHub-Request-Id` as its request id. A 403 or 429 with `x-ratelimit-remaining: 0`
//! waits until `x-ratelimit-reset`; a secondary limit honours `retry-after`; a plain 403 is
//! `Forbidden`.

mod api;
mod config;
mod connector;
mod error;
mod permissions;
mod state;

pub use config::{API_VERSION, DEFAULT_API_BASE, GitHubConfig, REQUIRED_SCOPES};
pub use connector::{GitHubConnector, capabilities};
pub use error::GitHubError;
pub use permissions::PERMISSION_MAP;

/// The catalog's entry for GitHub: `type = "github"`, settings [`GitHubConfig`] beside the
/// connector's `id`.
pub static FACTORY: remediation_core::factory::Factory<GitHubConfig> =
    remediation_core::factory::Factory::named("github", "GitHub", Some(capabilities), |id, config, _context| {
        Ok(std::sync::Arc::new(GitHubConnector::new(id, &config)?))
    });
