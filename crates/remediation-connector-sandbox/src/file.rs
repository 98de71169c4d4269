//! Reading, locking and atomically replacing the directory file.
//!
//! Readers never lock: every write replaces the file with `rename`, so a reader sees either the
//! old or the new content, never a torn one. Writers take an exclusive lock on a sibling
//! `<file>.lock` so that each load-modify-save cycle is serialised, across processes too.
//!
//! [`Cached`] keeps the last directory read or written by this process, with the file it came
//! from held open: since writers only ever replace the file, the same file (same device and
//! inode, which cannot be reused while it is held open), the same length and modification time
//! mean the same content, so the file is read and parsed once per change, whichever process
//! made it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::directory::{Directory, sample};
use crate::error::SandboxError;

/// Reads and parses the directory file at `path`.
pub fn load(path: &Path) -> Result<Directory, SandboxError> {
    let bytes = fs::read(path).map_err(|source| SandboxError::Read { path: path.to_owned(), source })?;
    parse(path, &bytes)
}

/// The last directory this process read from or wrote to one path, and the file it is in.
#[derive(Debug, Default)]
pub(crate) struct Cached {
    last: std::sync::Mutex<Option<Entry>>,
    /// Times the file was read and parsed (for tests).
    reads: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Entry {
    /// Held open so its inode is not reused while it identifies the content.
    _file: File,
    id: FileId,
    directory: Directory,
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        FileId { dev, ino, len: meta.len(), modified: meta.modified().ok() }
    }
}

impl Cached {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Entry>> {
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The directory at `path`: the cached one when the file is still the one it came from,
    /// else read, parsed and cached.
    pub(crate) fn load(&self, path: &Path) -> Result<Directory, SandboxError> {
        let read_err = |source| SandboxError::Read { path: path.to_owned(), source };
        let current = FileId::of(&fs::metadata(path).map_err(read_err)?);
        // Off unix the identity is only length and time, too weak to trust.
        if cfg!(unix)
            && let Some(entry) = self.lock().as_ref()
            && entry.id == current
        {
            return Ok(entry.directory.clone());
        }
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut file = File::open(path).map_err(read_err)?;
        let id = FileId::of(&file.metadata().map_err(read_err)?);
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes).map_err(read_err)?;
        let directory = parse(path, &bytes)?;
        *self.lock() = Some(Entry { _file: file, id, directory: directory.clone() });
        Ok(directory)
    }

    /// [`save_locked`], then remembers `directory` as the content of the new file.
    pub(crate) fn save_locked(&self, path: &Path, directory: &Directory) -> Result<(), SandboxError> {
        let saved = save_locked(path, directory);
        let entry = saved.as_ref().ok().and_then(|()| {
            let file = File::open(path).ok()?;
            let id = FileId::of(&file.metadata().ok()?);
            Some(Entry { _file: file, id, directory: directory.clone() })
        });
        // On failure nothing is trusted: the next load reads the file.
        *self.lock() = entry;
        saved
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Directory, SandboxError> {
    serde_json::from_slice(bytes).map_err(|source| SandboxError::Parse {
        path: path.to_owned(),
        line: source.line(),
        column: source.column(),
        source,
    })
}

/// Writes `directory` to `path` atomically, under the writer lock.
///
/// Refuses to replace a file marked read-only.
pub fn save(path: &Path, directory: &Directory) -> Result<(), SandboxError> {
    let _lock = WriteLock::acquire(path)?;
    save_locked(path, directory)
}

/// Writes the [`sample`] directory to `path`, replacing any file there.
pub fn write_sample(path: impl AsRef<Path>) -> Result<(), SandboxError> {
    save(path.as_ref(), &sample())
}

/// An exclusive lock on `<path>.lock`, released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Blocks until this process holds the writer lock for `path`.
    pub(crate) fn acquire(path: &Path) -> Result<Self, SandboxError> {
        let lock = lock_path(path);
        let err = |source| SandboxError::Lock { path: path.to_owned(), lock: lock.clone(), source };
        let file = owner_only().create(true).truncate(false).write(true).open(&lock).map_err(err)?;
        file.lock().map_err(err)?;
        Ok(Self { _file: file })
    }
}

/// Options creating a file only its owner can read: the sandbox lives in the data directory,
/// whose files are all owner-only.
fn owner_only() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the file: write a temporary file in the same folder, flush it to disk, rename it
/// over the original, then flush the folder so the rename itself survives a crash.
/// The caller holds the [`WriteLock`].
pub(crate) fn save_locked(path: &Path, directory: &Directory) -> Result<(), SandboxError> {
    let write_err = |source| SandboxError::Write { path: path.to_owned(), source };
    let existing = match fs::metadata(path) {
        Ok(meta) if meta.permissions().readonly() => return Err(SandboxError::ReadOnly { path: path.to_owned() }),
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(write_err(e)),
    };
    let mut text = serde_json::to_vec_pretty(directory)
        .map_err(|source| SandboxError::Serialize { path: path.to_owned(), source })?;
    text.push(b'\n');
    let Some(name) = path.file_name() else {
        return Err(write_err(io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")));
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = owner_only().write(true).create(true).truncate(true).open(&tmp)?;
        file.write_all(&text)?;
        if let Some(permissions) = existing {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path))
    })();
    if result.is_err() {
        // Best effort: a stale temporary file is harmless, as the next save truncates it.
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Folders cannot be opened as files on other platforms; the rename is as durable as the
    // platform makes it.
    Ok(())
}

/// True when this process cannot replace the file at `path`: it is missing or marked
/// read-only, cannot be opened for writing, or its folder is read-only. Changes nothing.
pub(crate) fn lacks_write_access(path: &Path) -> bool {
    let file_ok = match fs::metadata(path) {
        Ok(meta) => !meta.permissions().readonly() && OpenOptions::new().append(true).open(path).is_ok(),
        Err(_) => false,
    };
    let dir_ok = fs::metadata(parent_dir(path)).is_ok_and(|meta| !meta.permissions().readonly());
    !(file_ok && dir_ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        write_sample(&path).unwrap();
        assert_eq!(load(&path).unwrap(), sample());
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["d.json", "d.json.lock"]);
    }

    #[test]
    fn the_file_is_read_once_per_change_whoever_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        write_sample(&path).unwrap();
        let reads = |c: &Cached| c.reads.load(std::sync::atomic::Ordering::Relaxed);
        let (ours, other_process) = (Cached::default(), Cached::default());
        assert_eq!(ours.load(&path).unwrap(), sample());
        assert_eq!(ours.load(&path).unwrap(), sample());
        assert_eq!(reads(&ours), 1);
        // Our own write is remembered, not read back.
        let mut changed = ours.load(&path).unwrap();
        changed.faults.fail_rollback = true;
        ours.save_locked(&path, &changed).unwrap();
        assert_eq!(ours.load(&path).unwrap(), changed);
        assert_eq!(reads(&ours), 1);
        // A change by another process (its own cache) is seen at the next load.
        // Same length as ours: only the file's identity tells the versions apart.
        let mut theirs = other_process.load(&path).unwrap();
        theirs.faults.fail_rollback = false;
        theirs.faults.fail_after_write = true;
        other_process.save_locked(&path, &theirs).unwrap();
        assert_eq!(ours.load(&path).unwrap(), theirs);
        assert_eq!(reads(&ours), 2);
    }

    #[test]
    fn lock_path_is_a_sibling() {
        assert_eq!(lock_path(Path::new("/a/b.json")), Path::new("/a/b.json.lock"));
        assert_eq!(parent_dir(Path::new("b.json")), Path::new("."));
    }

    #[test]
    fn missing_file_is_a_read_error_that_says_how_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let err = load(&path).unwrap_err();
        assert!(matches!(err, SandboxError::Read { .. }), "{err:?}");
        assert!(err.hint().contains("remediate init"), "{}", err.hint());
        assert!(lacks_write_access(&path));
    }
}
