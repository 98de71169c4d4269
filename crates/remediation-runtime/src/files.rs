//! The data directory's permissions: the directory is created 0700 and every file the runtime
//! creates in it 0600, because it holds the store (every action with its before-state, the
//! audit trail, API token hashes) and, unless moved elsewhere, the audit key.
//!
//! SQLite creates its `-wal` and `-shm` files with the permissions of the database file, so a
//! store file created 0600 here keeps its companions private too.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use crate::RuntimeError;

/// Mode of the data directory: owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file created in it: owner read and write only.
pub const FILE_MODE: u32 = 0o600;

/// Creates the data directory `dir` (and missing parents) readable only by its owner. A
/// directory that exists already is left as it is: its owner chose its mode.
pub fn create_data_dir(dir: &Path) -> Result<(), RuntimeError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir).map_err(|source| RuntimeError::DataDirCreate { dir: dir.to_owned(), source })
}

/// Open options that create a file readable and writable by its owner only.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Writes `contents` to `path`, replacing what was there, as a file only its owner can read.
/// An existing file with a wider mode is narrowed first, before the new contents reach it.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::PrivateFile { path: path.to_owned(), source };
    let mut file = private_options().write(true).create(true).truncate(false).open(path).map_err(err)?;
    narrow(&file).map_err(err)?;
    file.set_len(0).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Creates `path` empty, readable only by its owner, unless it exists (then it is untouched).
pub fn create_private(path: &Path) -> Result<(), RuntimeError> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(RuntimeError::PrivateFile { path: path.to_owned(), source }),
    }
}

/// Narrows the mode of an open file to [`FILE_MODE`] (a file made before this version).
fn narrow(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
