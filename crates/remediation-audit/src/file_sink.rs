//! [`JsonlFileSink`]: the audit trail (or the events) appended to a JSON Lines file that
//! rotates by size, for log shippers (Filebeat, Vector, Fluent Bit) to follow.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use remediation_core::{AuditRecord, CloudEvent, DeliveryError, EventSink, Undelivered};
use serde::Serialize;

use crate::AuditSink;

/// Appends one JSON object per line to a file, and rotates it by size: when the file has
/// reached `max_bytes`, it is renamed `<path>.1` (an older `<path>.1` becomes `<path>.2`, and
/// so on; beyond `keep` rotated files the oldest is removed) and a new file is started. Each
/// delivered batch is written and synced to disk before it counts as delivered.
///
/// As an [`AuditSink`] each line is an audit record exactly as the chain holds it (`seq`, the
/// record's fields, `prev_hash`, `hash`); as an [`EventSink`] each line is a CloudEvents
/// envelope. Delivery is at least once: after a crash between the write and the relay's mark,
/// the same lines are written again, with the same `seq` (or event `id`), for the reader to
/// drop. On Unix the files are created readable by their owner only.
#[derive(Debug)]
pub struct JsonlFileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    lock: Mutex<()>,
}

impl JsonlFileSink {
    /// A sink appending to `path`, rotating at `max_bytes` (at least 1), keeping `keep` rotated
    /// files.
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64, keep: u32) -> Self {
        Self { path: path.into(), max_bytes: max_bytes.max(1), keep, lock: Mutex::new(()) }
    }

    /// The file it appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.keep == 0 {
            return fs::remove_file(&self.path);
        }
        let oldest = self.rotated(self.keep);
        if oldest.exists() {
            fs::remove_file(&oldest)?;
        }
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        fs::rename(&self.path, self.rotated(1))
    }

    fn open(&self) -> std::io::Result<File> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        options.open(&self.path)
    }

    /// Writes `items` as lines, rotating between lines when the file is full; syncs before it
    /// returns.
    fn append<T: Serialize>(&self, items: &[T]) -> Result<(), Undelivered> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let io = |delivered: usize, what: &str, e: std::io::Error| Undelivered {
            delivered,
            error: DeliveryError::transient(format!("cannot {what} {}: {e}", self.path.display())),
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| io(0, "create the folder of", e))?;
        }
        let mut file = self.open().map_err(|e| io(0, "open", e))?;
        let mut size = file.metadata().map_err(|e| io(0, "read the size of", e))?.len();
        let mut synced = 0;
        for (i, item) in items.iter().enumerate() {
            let mut line = serde_json::to_vec(item).map_err(|e| Undelivered {
                delivered: i,
                error: DeliveryError::permanent(format!("cannot serialise it: {e}")),
            })?;
            line.push(b'\n');
            if size > 0 && size + line.len() as u64 > self.max_bytes {
                file.sync_all().map_err(|e| io(synced, "sync", e))?;
                synced = i;
                drop(file);
                self.rotate().map_err(|e| io(synced, "rotate", e))?;
                file = self.open().map_err(|e| io(synced, "open", e))?;
                size = 0;
            }
            file.write_all(&line).map_err(|e| io(synced, "write to", e))?;
            size += line.len() as u64;
        }
        file.sync_all().map_err(|e| io(synced, "sync", e))?;
        Ok(())
    }
}

#[async_trait]
impl AuditSink for JsonlFileSink {
    async fn deliver(&self, records: &[AuditRecord]) -> Result<(), Undelivered> {
        self.append(records)
    }
}

#[async_trait]
impl EventSink for JsonlFileSink {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        self.append(events)
    }
}
