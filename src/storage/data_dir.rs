//! A node's data directory: locked by one process, tied to one node id.
//!
//! | name | what |
//! |---|---|
//! | `LOCK` | locked (exclusively, `flock` on Unix) by the process that runs the node; empty |
//! | `node-id` | the node's id in decimal, written once, atomically |
//! | `log/` | the node's [`FileStorage`] |
//!
//! The lock lives as long as the [`DataDir`] and every log opened through it:
//! the operating system releases it when the process ends, however it ends,
//! so a crashed node never leaves a stale lock behind. It is taken with the
//! `fs4` crate (`flock` on Unix, `LockFileEx` on Windows), so this module is
//! built with the `runtime` feature.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::disk::{IoError, ensure_dir, failed, replace_file};
use super::file::{FileStorage, LogOptions};

const LOCK: &str = "LOCK";
const NODE_ID: &str = "node-id";
const NODE_ID_TMP: &str = "node-id.tmp";
const LOG: &str = "log";

/// Why a data directory could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// An operating-system call failed.
    #[error(
        "{0}; check that the data directory is writable by this user and that its disk is not \
         full"
    )]
    Io(#[from] IoError),
    /// Another process holds the directory's lock.
    #[error(
        "another node holds the data directory {} (its lock file {} is locked by another \
         process); stop that node first, or give this node its own data directory",
        dir.display(),
        dir.join(LOCK).display()
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The directory belongs to another node id.
    #[error(
        "the data directory {} belongs to node {stored}, but this node was started as node \
         {given}; start it with id {stored}, or give node {given} its own data directory",
        dir.display()
    )]
    WrongNode {
        /// The data directory.
        dir: PathBuf,
        /// The id stored in it.
        stored: u64,
        /// The id this node was started with.
        given: u64,
    },
    /// The node-id file does not hold a node id.
    #[error(
        "{} should hold this data directory's node id as a decimal number, but holds {content:?}; \
         write the right id into it (e.g. `echo 1 > {}`) or restore it from a backup",
        file.display(),
        file.display()
    )]
    BadNodeId {
        /// The node-id file.
        file: PathBuf,
        /// What it holds (lossily decoded, at most 64 bytes).
        content: String,
    },
}

/// A node's locked data directory. See the module doc for its files.
///
/// ```no_run
/// use haft::storage::{DataDir, LogOptions, Storage};
///
/// let data = DataDir::open("data/1", 1)?; // fails if another process has it
/// let mut log = data.open_log(LogOptions::default());
/// let recovery = log.recover()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    node_id: u64,
    /// The locked `LOCK` file; shared with the logs opened here so that the
    /// lock outlives the last of them.
    lock: std::sync::Arc<File>,
}

impl DataDir {
    /// Opens (creating it if missing) the data directory at `path` for node
    /// `node_id`: takes its lock, then checks the node id stored there, or
    /// stores `node_id` if there is none yet.
    ///
    /// Fails with [`DataDirError::Locked`] if another process (or another
    /// `DataDir` in this one) holds the directory, and with
    /// [`DataDirError::WrongNode`] if it belongs to another node.
    pub fn open(path: impl Into<PathBuf>, node_id: u64) -> Result<DataDir, DataDirError> {
        let path = path.into();
        ensure_dir(&path)?;
        let lock_path = path.join(LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(failed(&lock_path, "open the lock file"))?;
        // Called through fs4's trait: std's inherent `try_lock` is newer than
        // the crate's minimum Rust version.
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => return Err(DataDirError::Locked { dir: path }),
            Err(fs4::TryLockError::Error(source)) => {
                return Err(failed(&lock_path, "lock")(source).into());
            }
        }
        check_node_id(&path, node_id)?;
        Ok(DataDir {
            path,
            node_id,
            lock: std::sync::Arc::new(lock),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node id stored in it.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The directory of the node's log, `log/` inside it.
    pub fn log_dir(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// The node's log, in [`log_dir`](Self::log_dir); it keeps the directory
    /// locked as long as it lives. Call [`Storage::recover`](super::Storage::recover)
    /// on it next.
    pub fn open_log(&self, options: LogOptions) -> FileStorage {
        FileStorage::new(self.log_dir(), options).holding(std::sync::Arc::clone(&self.lock))
    }
}

/// The node id stored in the data directory `dir`, read without taking its
/// lock (the node may be running); `None` if no node has started there.
pub fn stored_node_id(dir: &Path) -> Result<Option<u64>, DataDirError> {
    let file = dir.join(NODE_ID);
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failed(&file, "read")(error).into()),
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim_end_matches('\n').parse::<u64>() {
        Ok(stored) => Ok(Some(stored)),
        Err(_) => Err(DataDirError::BadNodeId {
            file,
            content: text.chars().take(64).collect(),
        }),
    }
}

/// Checks the node id stored in `dir` against `node_id`, storing it if none
/// is. The caller holds the lock.
fn check_node_id(dir: &Path, node_id: u64) -> Result<(), DataDirError> {
    let Some(stored) = stored_node_id(dir)? else {
        replace_file(dir, NODE_ID, NODE_ID_TMP, format!("{node_id}\n").as_bytes())?;
        return Ok(());
    };
    if stored != node_id {
        return Err(DataDirError::WrongNode {
            dir: dir.to_path_buf(),
            stored,
            given: node_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    #[test]
    fn a_second_open_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        let first = DataDir::open(&path, 3).unwrap();
        assert_eq!(first.node_id(), 3);
        let error = DataDir::open(&path, 3).unwrap_err();
        assert!(matches!(&error, DataDirError::Locked { dir } if *dir == path));
        let message = error.to_string();
        assert!(message.contains("another node holds the data directory"));
        assert!(message.contains(&path.display().to_string()), "{message}");
        // A log opened through the directory keeps it locked.
        let log = first.open_log(LogOptions::default());
        drop(first);
        assert!(matches!(
            DataDir::open(&path, 3),
            Err(DataDirError::Locked { .. })
        ));
        drop(log);
        DataDir::open(&path, 3).unwrap();
    }

    #[test]
    fn the_node_id_is_stored_and_a_different_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(DataDir::open(dir.path(), 7).unwrap());
        assert_eq!(fs::read_to_string(dir.path().join(NODE_ID)).unwrap(), "7\n");
        let error = DataDir::open(dir.path(), 8).unwrap_err();
        assert!(matches!(
            error,
            DataDirError::WrongNode {
                stored: 7,
                given: 8,
                ..
            }
        ));
        let message = error.to_string();
        assert!(message.contains("belongs to node 7"), "{message}");
        assert!(message.contains("started as node 8"), "{message}");
        DataDir::open(dir.path(), 7).unwrap();
    }

    #[test]
    fn a_damaged_node_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NODE_ID), "seven\n").unwrap();
        let error = DataDir::open(dir.path(), 7).unwrap_err();
        assert!(
            matches!(&error, DataDirError::BadNodeId { content, .. } if content == "seven\n"),
            "{error}"
        );
    }

    #[test]
    fn the_log_lives_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path(), 1).unwrap();
        let mut log = data.open_log(LogOptions::default());
        log.recover().unwrap();
        log.append(b"record").unwrap();
        log.sync().unwrap();
        assert_eq!(log.dir(), dir.path().join(LOG));
        let mut again = FileStorage::new(dir.path().join(LOG), LogOptions::default());
        assert_eq!(again.recover().unwrap().records, [b"record".to_vec()]);
    }
}
