//! The audit checkpoint key file. A leaf over `exit` and `failure`.

use std::path::Path;

use anyhow::Context as _;
use remediation_audit::AuditKey;
use secrecy::ExposeSecret as _;

use crate::failure::Failure;

/// Creates a new random audit checkpoint key at `path` (which must not exist), readable and
/// writable by the owner only, as 64 hex characters and a newline. Never prints the key.
pub(crate) fn create_audit_key(path: &Path) -> Result<AuditKey, Failure> {
    use std::io::Write as _;
    let key = AuditKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(key.to_hex().expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    write().with_context(|| format!("cannot create the audit key file {}", path.display()))?;
    Ok(key)
}
