//! The process exit codes, named. A leaf: every other module may use it.

/// The documented exit codes of `remediate` (see [`HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    /// The command did what was asked.
    Success = 0,
    /// Internal error (store unreadable, disk full, server unreachable).
    Internal = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// Refused by a safety rule (gate, role, lifecycle, limit, plan changed, window closed).
    Refused = 3,
    /// Not found (action, connector, or the provider's target).
    NotFound = 4,
    /// Provider failure, or a change that was not verified.
    Provider = 5,
    /// The audit chain is broken.
    AuditBroken = 6,
    /// Stopped by Ctrl-C before the end (a campaign's import): what was done is recorded and
    /// can be resumed.
    Interrupted = 130,
}

impl ExitCode {
    /// The number the process exits with.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// The exit codes as shown by `--help`.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  internal error (store unreadable, disk full, ...): the message says what failed
  2  usage or configuration error: fix the command line or the named config key
  3  refused by a safety rule (gate, role, lifecycle, limit, plan changed, window closed)
  4  not found (action, connector, or the provider's target)
  5  provider failure (the connector could not read or write, or the change was not verified)
  6  audit chain broken (`audit verify` found an edited, deleted or reordered record, a cut-off tail or a rewrite)
  7  partly done: a command on several actions (ids or a filter) did some and not others; the table says which
130  interrupted (Ctrl-C) before the end: a campaign's import recorded how far it got; `campaign resume NAME` goes on
With --server the same codes apply: HTTP 400 is 2, 401/403/409/429 are 3, 404 is 4, 502 is 5,
and a server that cannot be reached is 1 (the message names the URL).";
