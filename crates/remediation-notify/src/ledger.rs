//! The notifier's record of delivered notifications: in memory, and in a small JSON file when
//! a state directory is configured, so that a restart does not send a notification again.

use std::io::Write;
use std::path::{Path, PathBuf};

use remediation_core::{ActionId, Target};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::NotifyError;

/// One delivered notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveredNotification {
    /// The action's idempotency key: at most one entry per key.
    pub idempotency_key: String,
    /// The action.
    pub action_id: ActionId,
    /// What the notification was about.
    pub target: Target,
    /// When it was delivered.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's request id, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    delivered: Vec<DeliveredNotification>,
}

/// Delivered notifications, optionally backed by a file.
#[derive(Debug)]
pub(crate) struct Ledger {
    entries: Vec<DeliveredNotification>,
    path: Option<PathBuf>,
}

impl Ledger {
    /// An empty in-memory ledger.
    pub(crate) fn in_memory() -> Self {
        Self { entries: Vec::new(), path: None }
    }

    /// The ledger kept in `path`, created (with its folder) when missing.
    pub(crate) fn open(path: PathBuf) -> Result<Self, NotifyError> {
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<LedgerFile>(&bytes)
                    .map_err(|source| NotifyError::ParseState { path: path.clone(), source })?
                    .delivered
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| NotifyError::WriteState { path: path.clone(), source })?;
                }
                Vec::new()
            }
            Err(source) => return Err(NotifyError::ReadState { path, source }),
        };
        Ok(Self { entries, path: Some(path) })
    }

    /// The entry for `key`, if that notification was delivered.
    pub(crate) fn get(&self, key: &str) -> Option<&DeliveredNotification> {
        self.entries.iter().find(|e| e.idempotency_key == key)
    }

    /// How many notifications about `target` were delivered.
    pub(crate) fn count(&self, target: &Target) -> usize {
        self.entries.iter().filter(|e| &e.target == target).count()
    }

    /// Every entry, oldest first.
    pub(crate) fn entries(&self) -> &[DeliveredNotification] {
        &self.entries
    }

    /// Records a delivery and saves the file. The entry is kept in memory even when saving
    /// fails, so this process never sends it again.
    pub(crate) fn record(&mut self, entry: DeliveredNotification) -> Result<(), NotifyError> {
        self.entries.push(entry);
        match &self.path {
            Some(path) => save(path, &self.entries),
            None => Ok(()),
        }
    }
}

/// Replaces the file atomically: a temporary file in the same folder, `fsync`, rename.
fn save(path: &Path, entries: &[DeliveredNotification]) -> Result<(), NotifyError> {
    let err = |source| NotifyError::WriteState { path: path.to_owned(), source };
    let file = LedgerFile { delivered: entries.to_vec() };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| err(std::io::Error::other(e)))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        // Makes the rename durable; not every platform can sync a folder, hence no error.
        let _ = d.sync_all();
    }
    Ok(())
}
