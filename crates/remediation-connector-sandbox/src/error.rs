//! Errors reading, locking and writing the sandbox directory file.

use std::io;
use std::path::PathBuf;

use remediation_core::{ConnectorError, ConnectorErrorKind};

/// Why the sandbox directory file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read sandbox directory {}", path.display())]
    Read {
        /// The directory file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid JSON, or not a valid sandbox directory.
    #[error("sandbox directory {} is not valid at line {line}, column {column}", path.display())]
    Parse {
        /// The directory file.
        path: PathBuf,
        /// Line of the error, 1-based.
        line: usize,
        /// Column of the error, 1-based.
        column: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The directory could not be serialised.
    #[error("cannot serialise the sandbox directory for {}", path.display())]
    Serialize {
        /// The directory file.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The file is marked read-only, so the connector refuses to replace it.
    #[error("sandbox directory {} is read-only", path.display())]
    ReadOnly {
        /// The directory file.
        path: PathBuf,
    },
    /// The lock file next to the directory file could not be created or locked.
    #[error("cannot lock sandbox directory {} (lock file {})", path.display(), lock.display())]
    Lock {
        /// The directory file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file could not be written or replaced.
    #[error("cannot write sandbox directory {}", path.display())]
    Write {
        /// The directory file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    /// The directory file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. }
            | Self::Parse { path, .. }
            | Self::Serialize { path, .. }
            | Self::ReadOnly { path }
            | Self::Lock { path, .. }
            | Self::Write { path, .. } => path,
        }
    }

    /// What the operator should do about it.
    pub fn hint(&self) -> String {
        match self {
            Self::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                "create it with `remediate init` (or `remediation_connector_sandbox::write_sample`), or fix the \
                 connector's `path`"
                    .to_owned()
            }
            Self::Read { .. } => "make the file readable by this process".to_owned(),
            Self::Parse { .. } => "fix the file at that position; its format is described in the \
                                   remediation-connector-sandbox crate documentation"
                .to_owned(),
            Self::Serialize { .. } => "this is a bug in the sandbox connector; please report it".to_owned(),
            Self::ReadOnly { .. } => "make the file writable to let the connector change it".to_owned(),
            Self::Lock { source, .. } | Self::Write { source, .. }
                if source.kind() == io::ErrorKind::StorageFull || source.kind() == io::ErrorKind::QuotaExceeded =>
            {
                "free some space on the disk that holds the file, then retry".to_owned()
            }
            Self::Lock { .. } | Self::Write { .. } => {
                "make the file and the folder that holds it writable by this process".to_owned()
            }
        }
    }

    fn source_text(&self) -> String {
        match self {
            Self::Read { source, .. } | Self::Lock { source, .. } | Self::Write { source, .. } => source.to_string(),
            // serde_json ends its message with the position, which the outer message already gives.
            Self::Parse { source, .. } => {
                let text = source.to_string();
                let position = format!(" at line {} column {}", source.line(), source.column());
                text.strip_suffix(&position).unwrap_or(&text).to_owned()
            }
            Self::Serialize { source, .. } => source.to_string(),
            Self::ReadOnly { .. } => String::new(),
        }
    }
}

impl From<SandboxError> for ConnectorError {
    /// A read-only file is [`ConnectorErrorKind::Forbidden`] (the connector lacks a write
    /// permission); everything else is [`ConnectorErrorKind::Permanent`], because retrying
    /// will not help until someone fixes the file. `ConnectorError` carries no source chain,
    /// so the message holds the whole story: what failed, why, and what to fix.
    fn from(e: SandboxError) -> Self {
        let kind = match e {
            SandboxError::ReadOnly { .. } => ConnectorErrorKind::Forbidden,
            _ => ConnectorErrorKind::Permanent,
        };
        let cause = e.source_text();
        let message =
            if cause.is_empty() { format!("{e}; {}", e.hint()) } else { format!("{e}: {cause}; {}", e.hint()) };
        ConnectorError::new(kind, message)
    }
}
