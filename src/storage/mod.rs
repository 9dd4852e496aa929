//! Durable storage for a node: an append-only log of opaque records, bounded by
//! checkpoints, with many writers sharing one sync.
//!
//! The protocol core emits *deltas* (small records such as "prepared T with
//! these writes" or "decided T commit"); a node's state is the last
//! checkpoint's snapshot followed by the replay of the records appended after
//! it. This module stores those bytes without knowing what they mean.
//!
//! - [`Storage`] is the contract: [`append`](Storage::append) records,
//!   [`sync`](Storage::sync) them (one sync for many records),
//!   [`checkpoint`](Storage::checkpoint) a snapshot that covers every record
//!   before it, and [`recover`](Storage::recover) after a restart;
//! - [`MemoryStorage`] keeps everything in memory and can simulate a crash
//!   (for tests and embedders);
//! - [`FileStorage`] is the real one: checksummed frames in segment files,
//!   checkpoints written atomically, a torn tail told apart from corruption
//!   (its module doc gives the layouts and the argument);
//! - [`GroupCommit`] is the barrier between an event loop and a storage: a
//!   flusher thread syncs whatever has accumulated, then releases the effects
//!   that were waiting for it;
//! - `DataDir` (feature `runtime`) locks a node's data directory and keeps its
//!   node id there.
//!
//! [`Storage`], [`MemoryStorage`] and [`GroupCommit`] need nothing but `std`
//! (and loom under `cfg(loom)`); [`FileStorage`] uses `std::fs` only;
//! `DataDir` takes its lock with the `fs4` crate, so it is built with the
//! `runtime` feature.
//!
//! # Positions
//!
//! Records are numbered from 0 in the order they were appended, over the whole
//! life of the log. A [`LogPosition`] `n` is the point after the first `n`
//! records: "durable up to `n`" means records `0..n` survive a crash, and a
//! checkpoint "covering `n`" replaces records `0..n`.

#[cfg(feature = "runtime")]
mod data_dir;
mod disk;
mod file;
mod group_commit;
mod memory;

use std::fmt;
use std::path::PathBuf;

#[cfg(feature = "runtime")]
pub use data_dir::{DataDir, DataDirError, stored_node_id};
pub use disk::IoError;
pub use file::{Corruption, FileStorage, LogError, LogOptions, NotTorn, Part};
pub use group_commit::{GroupCommit, GroupCommitError, GroupCommitStats};
pub use memory::{MemoryError, MemoryStorage};

/// The point in a log after its first `n` records (records are numbered from 0
/// in append order, over the whole life of the log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition(pub u64);

impl LogPosition {
    /// The start of every log.
    pub const START: LogPosition = LogPosition(0);

    /// The position `count` records further on.
    #[must_use]
    pub fn after(self, count: u64) -> LogPosition {
        LogPosition(self.0 + count)
    }
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.0)
    }
}

/// Where records go and what a restarted node reads back.
///
/// # Contract
///
/// - [`append`](Self::append) adds a record at the end of the log; it need not
///   be durable yet.
/// - [`sync`](Self::sync) makes every record appended so far durable: when it
///   returns `Ok(p)`, records `0..p` survive a crash.
/// - [`checkpoint`](Self::checkpoint) stores a snapshot that replaces every
///   record appended before it (synced or not); once it returns, recovery
///   starts from the snapshot and those records may be gone.
/// - After a crash, [`recover`](Self::recover) returns the last checkpoint's
///   snapshot and the records after it, in order: a prefix of what was
///   appended that contains at least everything synced. What it had to repair
///   to get there is listed in [`Recovery::repairs`]; damage it cannot repair
///   without losing durable data is an error, never a shorter log.
/// - An error from `append`, `sync` or `checkpoint` is final: the outcome on
///   disk is unknown, so the storage refuses further writes and the node must
///   restart and recover.
///
/// An implementation may need `recover` to be called once before the first
/// append (the file implementation does: it finds the end of the log there).
pub trait Storage: Send {
    /// What went wrong. It names what was damaged or which operation failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends `record`; returns the position after it.
    fn append(&mut self, record: &[u8]) -> Result<LogPosition, Self::Error>;

    /// Makes every record appended so far durable; returns the position up to
    /// which the log is now durable.
    fn sync(&mut self) -> Result<LogPosition, Self::Error>;

    /// Stores `snapshot` as covering every record appended so far, durably, and
    /// lets the storage drop those records; returns the position it covers.
    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<LogPosition, Self::Error>;

    /// Reads the last checkpoint and the records after it, repairing a torn
    /// tail; afterwards the storage appends after the last recovered record.
    fn recover(&mut self) -> Result<Recovery, Self::Error>;

    /// The position after the last record appended (the next record's number).
    fn end(&self) -> LogPosition;
}

/// What [`Storage::recover`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The last checkpoint's snapshot, if a checkpoint was ever written.
    pub snapshot: Option<Vec<u8>>,
    /// The position the snapshot covers ([`LogPosition::START`] without one):
    /// `records[i]` is the record at position `start + i`.
    pub start: LogPosition,
    /// The records after the checkpoint, in append order.
    pub records: Vec<Vec<u8>>,
    /// What recovery changed on disk to make the log consistent; empty after
    /// a clean shutdown. A node should log each of these.
    pub repairs: Vec<Repair>,
}

impl Recovery {
    /// The position after the last recovered record.
    pub fn end(&self) -> LogPosition {
        self.start.after(self.records.len() as u64)
    }
}

/// One change recovery made to the storage. None of them loses a durable
/// record: each undoes a write that a crash interrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repair {
    /// The end of the log held a write that a crash cut short (or bytes that
    /// were never synced); it was cut off.
    TornTail {
        /// The segment file.
        file: PathBuf,
        /// Where the cut was made: the file now ends here.
        offset: u64,
        /// How many bytes were removed.
        bytes_dropped: u64,
        /// What was wrong with the bytes at `offset`.
        found: Corruption,
    },
    /// A segment file started when the crash came never got a complete header
    /// and holds no record; it was removed.
    TornSegment {
        /// The removed file.
        file: PathBuf,
        /// Its length.
        len: u64,
    },
    /// A checkpoint was being written when the node stopped; its temp file was
    /// removed, and the previous checkpoint (if any) stays in force.
    UnfinishedCheckpoint {
        /// The removed temp file.
        file: PathBuf,
    },
    /// A segment that the last checkpoint covers was still there (the node
    /// stopped before deleting it); it was deleted.
    ObsoleteSegment {
        /// The deleted file.
        file: PathBuf,
    },
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::TornTail {
                file,
                offset,
                bytes_dropped,
                found,
            } => write!(
                f,
                "{}: cut a torn tail of {bytes_dropped} bytes at byte {offset} ({found}); \
                 these bytes were never synced, so no durable record was lost",
                file.display()
            ),
            Repair::TornSegment { file, len } => write!(
                f,
                "{}: removed a segment of {len} bytes whose header was never completed",
                file.display()
            ),
            Repair::UnfinishedCheckpoint { file } => write!(
                f,
                "{}: removed an unfinished checkpoint; the previous one stays in force",
                file.display()
            ),
            Repair::ObsoleteSegment { file } => write!(
                f,
                "{}: deleted a segment that the checkpoint already covers",
                file.display()
            ),
        }
    }
}
