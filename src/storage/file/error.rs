//! The errors of [`FileStorage`](super::FileStorage).

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::format::Corruption;
use crate::storage::LogPosition;
use crate::storage::disk::IoError;

/// Why damage found by recovery is not a torn tail it could cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotTorn {
    /// A frame after the damage checks out; it was written only after
    /// everything before it was synced, so the damage hit synced bytes.
    ValidFrameFollows {
        /// Where the valid frame starts.
        offset: u64,
    },
    /// A later segment exists; a segment is started only once every frame of
    /// the one before is synced.
    LaterSegment {
        /// The later segment.
        file: PathBuf,
    },
    /// The checkpoint names this segment; it was synced before the checkpoint
    /// was renamed into place.
    NamedByCheckpoint,
    /// A checkpoint file is renamed into place only after it is synced.
    CheckpointIsSynced,
    /// The bytes carry a valid checksum, so no crash cut them: they were
    /// written wrong, or by something else.
    ValidChecksum,
}

impl fmt::Display for NotTorn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTorn::ValidFrameFollows { offset } => write!(
                f,
                "a valid frame follows at byte {offset}, and frames are written only after \
                 everything before them was synced"
            ),
            NotTorn::LaterSegment { file } => write!(
                f,
                "a later segment ({}) exists, and a segment is started only after the one \
                 before it was synced",
                file.display()
            ),
            NotTorn::NamedByCheckpoint => f.write_str(
                "the checkpoint starts the log in this segment, which was synced before the \
                 checkpoint was written",
            ),
            NotTorn::CheckpointIsSynced => {
                f.write_str("a checkpoint is renamed into place only after it was synced")
            }
            NotTorn::ValidChecksum => {
                f.write_str("its checksum is valid, so a torn write did not cause it")
            }
        }
    }
}

/// Why the log could not be recovered or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LogError {
    /// An operating-system call failed. For a write, the outcome on disk is
    /// unknown: the log accepts nothing more (see [`LogError::Failed`]).
    #[error(
        "{0}; check that the log directory exists, is writable by this user and that its disk \
         is not full, then restart the node"
    )]
    Io(#[from] IoError),
    /// Recovery found damage before the end of the log. Nothing was changed.
    #[error(
        "{} is corrupt at byte {offset}: {found}. This is not a write torn by a crash: {why}. \
         The node refuses to start, because records there were synced and may carry promises \
         it made. Restore the data directory from a backup; or, if this node's state may be \
         discarded, move the directory aside and start the node empty",
        file.display()
    )]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Where in it the damaged structure starts.
        offset: u64,
        /// What is wrong there.
        found: Corruption,
        /// Why it cannot be a torn tail.
        why: NotTorn,
    },
    /// A segment does not start where the log before it ends: records are
    /// missing or repeated. Nothing was changed.
    #[error(
        "{} starts at {found}, but the log before it ({before}) ends at {expected}: {}. The node \
         refuses to start rather than replay a log with a hole or an overlap; restore the missing \
         segment files from a backup",
        file.display(),
        if found > expected { "records are missing between them" } else { "the two overlap" }
    )]
    Discontinuous {
        /// The segment that starts in the wrong place.
        file: PathBuf,
        /// Where it starts.
        found: LogPosition,
        /// Where the log before it ends.
        expected: LogPosition,
        /// What comes before it: a segment file, the checkpoint, or the start
        /// of the log.
        before: String,
    },
    /// The checkpoint covers a position from which the log has no segment.
    #[error(
        "the checkpoint {} covers the log up to {covers}, but no segment file continues the log \
         from there ({found}); the segment written with the checkpoint is missing. Restore it \
         from a backup; starting without it would lose every record after the checkpoint",
        checkpoint.display()
    )]
    CheckpointBeyondLog {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// The position it covers.
        covers: LogPosition,
        /// What the directory holds instead.
        found: String,
    },
    /// A file in the log directory has a log file's extension but not a name
    /// this log gives its files.
    #[error(
        "{} is not a file this log writes ({reason}); the log directory must hold only the log: \
         move the file elsewhere and restart",
        file.display()
    )]
    UnexpectedFile {
        /// The file.
        file: PathBuf,
        /// What is wrong with its name.
        reason: &'static str,
    },
    /// A record is larger than one frame may be.
    #[error(
        "a record of {len} bytes is larger than the log's limit of {max} bytes per sync \
         (LogOptions::max_batch_bytes); split the record or raise the limit"
    )]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The log was written to before [`recover`](crate::storage::Storage::recover).
    #[error(
        "the log in {} was not recovered yet: call recover() before appending, syncing or \
         checkpointing",
        dir.display()
    )]
    NotRecovered {
        /// The log directory.
        dir: PathBuf,
    },
    /// An earlier write failed, so the log refuses every later one.
    #[error(
        "the log in {} accepts no more writes because an earlier one failed ({first}); its \
         outcome on disk is unknown. Restart the node: recovery keeps what is durable",
        dir.display()
    )]
    Failed {
        /// The log directory.
        dir: PathBuf,
        /// The first error, as text.
        first: String,
    },
}
