//! `remediate`: the command-line interface of the remediation engine.
//!
//! Thin by design: it parses arguments, loads the configuration, wires the library crates
//! together and maps their errors to the documented exit codes.

mod admin;
mod app;
mod backend;
mod bulk;
mod connectionscmd;
mod controlscmd;
mod demo;
mod events;
mod eventscmd;
mod examples;
mod exit;
mod failure;
mod handle;
mod import;
mod incidentcmd;
mod keys;
mod output;
mod reportcmd;
mod storecmd;
mod tenantscmd;
mod text;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, FromArgMatches as _, Parser, Subcommand};
use remediation_core::{ActionId, KindName, State};

use crate::output::{Format, errln};

/// Turn security findings into safe, auditable, reversible fixes.
#[derive(Debug, Parser)]
#[command(name = "remediate", version, about, after_help = exit::HELP)]
pub(crate) struct Cli {
    /// Data directory holding remediation.toml, the store and connector files.
    #[arg(long, global = true, env = "REMEDIATION_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Configuration file (default: <data dir>/remediation.toml).
    #[arg(long, global = true, env = "REMEDIATION_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Who is acting, as recorded in the audit (default: local:$USER); the role comes from
    /// [actors] in the configuration. SELF-ASSERTED: nothing checks that you are this actor,
    /// so anyone who can run remediate on the data directory can act as anyone. Use the server
    /// (tokens of principals) where that matters.
    #[arg(long, global = true)]
    pub(crate) actor: Option<String>,
    /// Run the command against this remediation-server (e.g. http://127.0.0.1:8080) instead
    /// of the local data directory, authenticating with the bearer token in
    /// REMEDIATION_TOKEN (never on the command line).
    #[arg(long, global = true, env = "REMEDIATION_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,
    /// The tenant to act in (`remediate tenants list` shows them). Everything a command
    /// reads or changes is that tenant's: actions, settings, kill switch, audit log. With
    /// --server, the server's `/v1/tenants/TENANT/` routes, with a token of that tenant.
    #[arg(long, global = true, env = "REMEDIATION_TENANT", default_value = "default", value_parser = parse_tenant)]
    pub(crate) tenant: remediation_core::TenantId,
    /// Output format. Tables are coloured on a terminal unless NO_COLOR is set to a non-empty
    /// value, and never when standard output is not a terminal.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The actions a command that may act on many acts on: ids, or every action a filter selects.
/// One id acts as before; several, or a filter, print what will be done first, ask for a
/// confirmation on a terminal (`--yes` skips it, and is required off a terminal), then print
/// one outcome per action and exit 7 when some of them failed.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Selection {
    /// Action ids, or their handles (`#1234` or `1234`).
    #[arg(required_unless_present_any = ["state", "control", "connector", "campaign"], conflicts_with_all = ["state", "control", "connector", "campaign"])]
    #[arg(value_parser = crate::handle::parse_action)]
    pub(crate) ids: Vec<ActionId>,
    /// Every action in this state (default: the states the command applies to).
    #[arg(long, value_parser = one_of(State::ALL.map(State::as_str), |s| s.parse::<State>().map_err(|e| e.to_string())))]
    pub(crate) state: Option<State>,
    /// Only actions for this control.
    #[arg(long)]
    pub(crate) control: Option<String>,
    /// Only actions on this connector.
    #[arg(long)]
    pub(crate) connector: Option<String>,
    /// Only actions created by this campaign (`remediate import --campaign`).
    #[arg(long)]
    pub(crate) campaign: Option<String>,
    /// Act on several actions without asking (required when standard input is not a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// `remediate campaign ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CampaignCommand {
    /// Every campaign, newest first: how far its import got and how many actions it created.
    List,
    /// Where a campaign stands: its import, its actions by state, throughput and an estimate of
    /// the time left, and what waits (held by a limit until its window frees up, or backing off
    /// after a provider's throttling).
    Show {
        /// The campaign's name.
        name: String,
    },
    /// Take in what an interrupted import left, from where it stopped; nothing is created twice.
    Resume {
        /// The campaign's name.
        name: String,
    },
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the data directory with a commented remediation.toml (remediation disabled) and a sample sandbox directory.
    Init {
        /// Overwrite an existing configuration and sandbox file.
        #[arg(long)]
        force: bool,
    },
    /// Suggest an action: validate, run the gates, plan, and store it for approval.
    Suggest(Box<SuggestArgs>),
    /// Take many findings in at once as a named campaign: a JSON array or JSON Lines of
    /// findings, or a scanner's document (Prowler OCSF, Security Hub ASFF, OCSF), from FILE or
    /// standard input (`-`). Each is taken in as `suggest --finding` takes one (one open action
    /// per control and target); a progress bar shows on a terminal and a summary table follows,
    /// with the reasons of what was not taken. The campaign is stored first: interrupted
    /// (Ctrl-C, a kill), `campaign resume NAME` goes on and creates nothing twice. Exits 0 when
    /// nothing was refused or invalid, 7 when some were, 3 when all were, 130 when interrupted.
    Import {
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// The format of the document; detected when left out.
        #[arg(
            long,
            value_parser = one_of(remediation_service::scanner::DocumentFormat::ALL.map(remediation_service::scanner::DocumentFormat::as_str), parse_document_format)
        )]
        format: Option<remediation_service::scanner::DocumentFormat>,
        /// Connector id for every finding (default: the one each names, else the one able to).
        #[arg(long)]
        connector: Option<String>,
        /// The campaign's name (letters, digits, `-`, `_`, `.`); default `import-YYYYMMDD-HHMMSS`.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Campaigns: named imports of many findings, their progress, and resuming one.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// List actions: id, state, risk (level and blast-radius score of the plan), kind, target,
    /// connector, requester and age (since suggested). On a terminal the table fits its width
    /// (long free text cut with `…`, ids and states whole); piped, nothing is cut. `--output
    /// json` prints the actions with RFC 3339 timestamps.
    List {
        /// Only actions in this state.
        #[arg(long, value_parser = one_of(State::ALL.map(State::as_str), |s| s.parse::<State>().map_err(|e| e.to_string())))]
        state: Option<State>,
        /// Print at most this many actions (the oldest first); all when not given. Actions are
        /// read and printed a page at a time either way.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Only actions created by this campaign (`remediate import --campaign`).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Show one action: plan, snapshots and every transition.
    Show {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
    },
    /// Approve an action waiting for approval (not your own), or a requested rollback (not one
    /// you requested), which then runs.
    Approve {
        /// Which actions.
        #[command(flatten)]
        sel: Selection,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject an action waiting for approval, or a requested rollback (the change stays).
    Reject {
        /// Which actions.
        #[command(flatten)]
        sel: Selection,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Execute an approved action (re-validates and re-plans first).
    Execute {
        /// Which actions.
        #[command(flatten)]
        sel: Selection,
        /// Run every check and show the plan; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll back a completed action inside its rollback window. When the kind's rollback needs
    /// approval, this requests it (exit 3, the action waits in `rollback_requested`) and a
    /// different approver runs `approve` (or `rollback`) to carry it out.
    Rollback {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Cancel an action that has not started.
    Cancel {
        /// Which actions.
        #[command(flatten)]
        sel: Selection,
        /// Note kept in the audit.
        #[arg(long)]
        note: Option<String>,
    },
    /// Turn advisory guidance into a request for approval (admin).
    Promote {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
    },
    /// Execute a held action despite its limit (admin; audited override).
    ForceExecute {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
        /// Why the limit is overridden.
        #[arg(long)]
        reason: String,
    },
    /// Return a held action to approved (admin).
    Release {
        /// Which actions.
        #[command(flatten)]
        sel: Selection,
    },
    /// Reconcile actions an interrupted process left executing or rolling back, from the provider's live state.
    Recover,
    /// Show an action's plan: before, expected after, reversibility and hash.
    Plan {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
    },
    /// Policy settings kept in the store (seeded from the config file).
    Settings {
        /// What to do.
        #[command(subcommand)]
        command: admin::SettingsCommand,
    },
    /// Tenants: one installation for several directories, each with its own actions,
    /// settings, principals, tokens, kill switch and audit log (`--tenant` picks one).
    Tenants {
        /// What to do.
        #[command(subcommand)]
        command: admin::TenantsCommand,
    },
    /// Controls: modes, never_auto, disabling, status and prerequisites.
    Controls {
        /// What to do.
        #[command(subcommand)]
        command: admin::ControlsCommand,
    },
    /// The kill switch (admin).
    KillSwitch {
        /// What to do.
        #[command(subcommand)]
        command: admin::KillSwitchCommand,
    },
    /// The circuit breaker tripped by the global limit.
    Breaker {
        /// What to do.
        #[command(subcommand)]
        command: admin::BreakerCommand,
    },
    /// Blast-radius limits.
    Limits {
        /// What to do.
        #[command(subcommand)]
        command: admin::LimitsCommand,
    },
    /// Actions held by a limit or the breaker.
    Held {
        /// What to do.
        #[command(subcommand)]
        command: admin::HeldCommand,
    },
    /// Event and audit delivery: each sink's backlog, delivering now, replaying what a sink
    /// refused.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: eventscmd::EventsCommand,
    },
    /// Break-glass (emergency) access verification.
    EmergencyAccess {
        /// What to do.
        #[command(subcommand)]
        command: admin::EmergencyCommand,
    },
    /// List configured connectors with health and capabilities (`connectors check` also
    /// checks their write permissions and exits 5 when one is unhealthy or lacks one).
    Connectors {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<ConnectorsCommand>,
    },
    /// Managed connections: connectors created at run time with their secrets sealed in the
    /// store (add, list, show, test, update, disable, enable, rm); the configuration file's
    /// connectors are listed read-only. Local data directory only.
    Connections {
        /// What to do.
        #[command(subcommand)]
        command: connectionscmd::ConnectionsCommand,
    },
    /// A person's accounts across every connection, and explicit links to accounts.
    Identities {
        /// What to do.
        #[command(subcommand)]
        command: incidentcmd::IdentitiesCommand,
    },
    /// Cut an exposed person off everywhere now: each action on every connection that can.
    /// Emergency kinds (`[policy] emergency_kinds`: revoke_sessions, force_password_reset)
    /// run at once for a responder or admin; others wait for approval. Exits 0 when every
    /// applicable step completed, 5 when every one failed at the provider, 7 when partly done.
    Respond(Box<incidentcmd::RespondArgs>),
    /// Playbooks: plan a whole response for a person, approve it once, run it step by step,
    /// compensated if a step fails.
    Playbook {
        /// What to do.
        #[command(subcommand)]
        command: incidentcmd::PlaybookCommand,
    },
    /// The master key that seals managed connections' secrets (`keys rotate`). Local only.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: connectionscmd::KeysCommand,
    },
    /// Audit trail commands.
    Audit {
        /// What to do with the audit trail.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Reports made from the audit log over a period: `report compliance` (for an auditor) and
    /// `report metrics` (outcomes, rates and time to remediation).
    Report {
        /// Which report.
        #[command(subcommand)]
        command: reportcmd::ReportCommand,
    },
    /// API bearer tokens of `remediation-server` (local admins only). A token is a credential
    /// of one principal; it is printed once, expires, and the store keeps only its SHA-256 hash.
    Token {
        /// What to do.
        #[command(subcommand)]
        command: admin::TokenCommand,
    },
    /// Principals of `remediation-server`: people and services holding a role (local admins
    /// only). Making or unmaking an admin waits for a second admin.
    Principal {
        /// What to do.
        #[command(subcommand)]
        command: admin::PrincipalCommand,
    },
    /// Changes waiting for a second admin: loosening settings, turning the kill switch off,
    /// changing who is admin.
    Pending {
        /// What to do.
        #[command(subcommand)]
        command: admin::PendingCommand,
    },
    /// Run a complete walk-through in a fresh temporary directory (remediation enabled there).
    Demo,
    /// Create or upgrade the store's schema to this version's (PostgreSQL: as `[store]
    /// migrate_user`). Servers on a shared store never migrate it unless started with
    /// `--migrate`; the SQLite file is migrated whenever it is opened.
    Migrate,
    /// The store itself: copy an installation to another store.
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Print a shell completion script to standard output.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff, section 1) to standard output.
    Man,
}

/// `remediate store ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy everything (actions with their transitions, leases and due times, principals and
    /// token hashes, pending changes, safety state, limit slots, the audit log byte for byte
    /// with its checkpoint) from one store into a new, empty one. Stop every server and CLI
    /// run on the source first. The source's audit log must verify; afterwards the target's
    /// is verified to hold the same records and head. Progress goes to standard error.
    Copy {
        /// The store to copy: `sqlite:PATH` or `postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full`.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new store (created when missing; it must be empty): `sqlite:PATH` or a
        /// `postgres://` URL. Default: the store `[store]` configures.
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// The environment variable holding the password of a `postgres://` --from.
        #[arg(long, value_name = "VAR")]
        from_password_env: Option<String>,
        /// The environment variable holding the password of a `postgres://` --to.
        #[arg(long, value_name = "VAR")]
        to_password_env: Option<String>,
        /// Items read and written per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        page_size: usize,
    },
}

/// Audit subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the hash chain; reports the first broken link.
    Verify,
    /// Export audit records as JSON Lines (one canonical record per line).
    Export {
        /// Only records at or after this instant: a date (2026-12-01, midnight UTC), an RFC 3339
        /// timestamp (2026-12-01T08:00:00Z) or an age (30m, 12h, 7d, 2w ago).
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        since: Option<time::OffsetDateTime>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public keys that verify signed tree heads, current and retired (`--output
    /// json`: the key set `tests/verify_log.py` reads).
    Key,
    /// Replace the tree head signing key (`[audit] signing_key`) with a new one (local only):
    /// the old public key stays published, so heads it signed still verify; new heads name
    /// the new key id.
    RotateKey,
    /// Print the latest signed tree head: the log's size and Merkle root, signed with Ed25519.
    TreeHead,
    /// Move audit records older than DATE (at least `[audit] retention_days` ago) to a
    /// verifiable archive file: the records with inclusion proofs against a signed tree head
    /// (check it with `tests/verify_log.py inclusion-bundle`). The file is written and verified
    /// before anything is removed; leaf hashes stay, so later proofs still verify (admin, local).
    Archive {
        /// Archive the records recorded before this instant: a date (2019-01-01, midnight UTC),
        /// an RFC 3339 timestamp (2019-01-01T00:00:00Z) or an age (400d ago).
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        before: time::OffsetDateTime,
        /// The archive file to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print inclusion proofs of every audit record of an action, against the latest signed
    /// tree head (or the tree of --tree-size records).
    Prove {
        /// Action id, or its handle (`#1234` or `1234`).
        #[arg(value_parser = crate::handle::parse_action)]
        id: ActionId,
        /// Prove inclusion in the tree of this many records (a head you hold) instead of the
        /// latest signed head.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        tree_size: Option<u64>,
    },
    /// Prove that the log at the latest signed tree head (or --new-size) extends the log of
    /// OLD_SIZE records, the size of a tree head you hold.
    Consistency {
        /// The size of the tree head you hold.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        old_size: u64,
        /// Prove against the signed head of this size instead of the latest.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        new_size: Option<u64>,
    },
}

/// Arguments of `suggest`.
#[derive(Debug, Args)]
pub(crate) struct SuggestArgs {
    /// A finding as JSON (see schemas/finding.schema.json): supplies the target, kind, control,
    /// finding id and reason; flags given as well override it. Or a scanner's document
    /// (Prowler json-ocsf, Security Hub ASFF, OCSF, an array of findings): each failing check
    /// goes through intake and each entry is reported (created, existing, unsupported,
    /// nothing_to_do, invalid, failed, ...; with --dry-run, dry_run: planned and not stored as
    /// an action to carry out); only --connector, --dry-run and --finding-format combine with
    /// it, and the command exits 3 when an entry failed or was invalid.
    #[arg(long, value_name = "FILE")]
    pub(crate) finding: Option<PathBuf>,
    /// The format of the --finding document; it is detected when left out, and a document of
    /// another format is refused.
    #[arg(
        long,
        value_parser = one_of(remediation_service::scanner::DocumentFormat::ALL.map(remediation_service::scanner::DocumentFormat::as_str), parse_document_format),
        requires = "finding"
    )]
    pub(crate) finding_format: Option<remediation_service::scanner::DocumentFormat>,
    /// Connector id (see `remediate connectors`). Without it (and without one named by the
    /// finding) the one healthy connector able to do it is chosen; when none or several are,
    /// the command exits 2 listing each connector and why it was passed over.
    #[arg(long)]
    pub(crate) connector: Option<String>,
    /// Action kind.
    #[arg(long, value_parser = one_of(KindName::ALL.map(KindName::as_str), parse_kind), required_unless_present = "finding")]
    pub(crate) kind: Option<KindName>,
    /// Level to reduce to (with --kind reduce).
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// The setting to enforce (with --kind enforce), in the connector's vocabulary
    /// (`s3_default_encryption`, `s3_public_access_block`, `rds_backup_retention_days`).
    #[arg(long, requires = "value")]
    pub(crate) setting: Option<String>,
    /// The compliant value of --setting (with --kind enforce); `default` takes the value the
    /// connector's configuration names for it.
    #[arg(long, requires = "setting")]
    pub(crate) value: Option<String>,
    /// Target as JSON: {"identity": "...", "resource": "...", "grant": "...", "grant_type": "..."}.
    #[arg(long, conflicts_with_all = ["identity", "resource", "grant", "grant_type"])]
    pub(crate) target: Option<String>,
    /// Target identity (instead of --target).
    #[arg(long)]
    pub(crate) identity: Option<String>,
    /// Target resource (instead of --target).
    #[arg(long)]
    pub(crate) resource: Option<String>,
    /// Target grant (instead of --target).
    #[arg(long)]
    pub(crate) grant: Option<String>,
    /// Target grant type (instead of --target).
    #[arg(long)]
    pub(crate) grant_type: Option<String>,
    /// Why the action is needed (shown to approvers, kept in the audit).
    #[arg(long, required_unless_present = "finding")]
    pub(crate) reason: Option<String>,
    /// Control being remediated.
    #[arg(long)]
    pub(crate) control: Option<String>,
    /// Id of the finding being remediated (without --finding).
    #[arg(long)]
    pub(crate) finding_id: Option<String>,
    /// Run every check and produce the plan; store it as a dry run and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

fn parse_kind(s: &str) -> Result<KindName, String> {
    KindName::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        format!("unknown kind `{s}`; expected one of {}", KindName::ALL.map(KindName::as_str).join(", "))
    })
}

fn parse_document_format(s: &str) -> Result<remediation_service::scanner::DocumentFormat, String> {
    use remediation_service::scanner::DocumentFormat;
    DocumentFormat::from_name(s).ok_or_else(|| {
        format!("unknown format `{s}`; expected one of {}", DocumentFormat::ALL.map(DocumentFormat::as_str).join(", "))
    })
}

/// A value parser that accepts only `names`, which `--help` and the shell completions list,
/// and reads the accepted word with `parse`.
pub(crate) fn one_of<T: Clone + Send + Sync + 'static>(
    names: impl IntoIterator<Item = &'static str>,
    parse: fn(&str) -> Result<T, String>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    PossibleValuesParser::new(names).try_map(move |s: String| parse(&s))
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&examples::command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("error: {failure}");
            ExitCode::from(failure.code())
        }
    }
}

/// `remediate connectors ...`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum ConnectorsCommand {
    /// Each connector's health, missing write permissions and capabilities; exit 5 when a
    /// connector is unhealthy or lacks a permission.
    Check,
}

/// A tenant name as `--tenant` takes it.
fn parse_tenant(s: &str) -> Result<remediation_core::TenantId, String> {
    remediation_core::TenantId::new(s).map_err(|e| e.to_string())
}
