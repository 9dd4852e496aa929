//! File-system steps shared by the log and the data directory; each failure
//! names the path and the step.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A failed file-system call: what was done to which path, and the
/// operating system's error.
#[derive(Debug, Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct IoError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What was being done, e.g. "fdatasync" or "rename into place".
    pub op: &'static str,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

/// Wraps an `io::Error` from `op` on `path`.
pub(super) fn failed(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError { path, op, source }
}

/// Makes the entries of `dir` (a new, renamed or deleted file) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(failed(dir, "fsync the directory"))
}

/// Creates `dir` if it is missing, making its entry durable in its parent.
pub(super) fn ensure_dir(dir: &Path) -> Result<(), IoError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(failed(dir, "create the directory"))?;
    match dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Replaces `dir/name` with `bytes` atomically and durably: write
/// `dir/temp`, fsync it, rename it over `dir/name`, fsync `dir`. After a
/// crash the file holds the old content or the new, and `temp` may be left.
pub(super) fn replace_file(
    dir: &Path,
    name: &str,
    temp: &str,
    bytes: &[u8],
) -> Result<(), IoError> {
    let temp = dir.join(temp);
    let mut file = File::create(&temp).map_err(failed(&temp, "create"))?;
    file.write_all(bytes).map_err(failed(&temp, "write"))?;
    file.sync_all().map_err(failed(&temp, "fsync"))?;
    drop(file);
    let path = dir.join(name);
    fs::rename(&temp, &path).map_err(failed(&path, "rename into place"))?;
    sync_dir(dir)
}
