//! [`FileStorage`]: the log in a directory of segment files, with checkpoints.
//!
//! # Files
//!
//! | name | what |
//! |---|---|
//! | `00000000000000000000.log` | a segment: a header, then frames; named by the position of its first record (20 digits) |
//! | `checkpoint` | the last checkpoint: the position it covers and its snapshot |
//! | `checkpoint.tmp` | a checkpoint being written; removed by recovery if a crash left it |
//!
//! Records are appended to the last segment. When it has grown past
//! [`LogOptions::segment_bytes`], the next sync starts a new one. A checkpoint
//! also starts a new segment, at the position it covers, so that a segment is
//! either wholly covered by the checkpoint (and deleted) or not at all.
//!
//! # Layouts
//!
//! Every integer is little-endian; every checksum is CRC-32 (IEEE, the
//! `crc32fast` crate).
//!
//! A segment header, 24 bytes:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `HAFTLOG\0` |
//! | 8 | 1 | layout version, 1 |
//! | 9 | 3 | zero |
//! | 12 | 8 | position of the segment's first record (also its file name) |
//! | 20 | 4 | checksum of bytes 0..20 |
//!
//! A frame, the records of one sync, 24 bytes of header then the body:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 4 | marker `HFRM` |
//! | 4 | 4 | body length |
//! | 8 | 8 | position of the frame's first record |
//! | 16 | 4 | number of records |
//! | 20 | 4 | checksum of bytes 0..20 and the body |
//! | 24 | body length | each record as its length (4 bytes) and its bytes |
//!
//! A checkpoint file, 32 bytes of header then the snapshot:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `HAFTCKPT` |
//! | 8 | 1 | layout version, 1 |
//! | 9 | 3 | zero |
//! | 12 | 8 | the position it covers: the log continues in the segment of that name |
//! | 20 | 8 | snapshot length |
//! | 28 | 4 | checksum of bytes 0..28 and the snapshot |
//!
//! # Writing
//!
//! [`append`](Storage::append) only adds the record to a frame in memory.
//! [`sync`](Storage::sync) writes that frame with one `write` at the end of
//! the last segment and calls `fdatasync`; one sync, one frame, however many
//! records. Nothing more is written to the log until that `fdatasync` has
//! returned `Ok`; if it fails, nothing more is ever written by this
//! `FileStorage` ([`LogError::Failed`]). A new segment's header is synced, and
//! so is the directory, before the first frame goes in it. A checkpoint syncs
//! the pending frame, starts a new segment, writes `checkpoint.tmp`, syncs it,
//! renames it to `checkpoint`, syncs the directory, and only then deletes the
//! segments it covers (learned from raft-engine, which also purges a log file
//! once every entry in it is obsolete).
//!
//! # Recovery: torn tail or corruption
//!
//! Those rules give the invariant recovery relies on: **every frame except the
//! last frame of the last segment was synced before anything after it was
//! written.** A crash can only damage what was not synced yet (the disk keeps
//! what `fdatasync` promised; the rest may be missing, cut, zeroed or
//! garbled), so a crash can damage only the last frame of the last segment, or
//! the header of a last segment that holds no frame. Recovery reads the
//! segments from the checkpoint's position on and, at the first structure that
//! fails its checks:
//!
//! - if it could come from a torn write (cut short, wrong marker, bad
//!   checksum), is in the last segment, and **no valid frame follows it**, it
//!   is a torn tail: the segment is truncated there (a segment with a damaged
//!   header and no frame is removed) and [`Repair::TornTail`] reports the
//!   file, the offset and the bytes dropped;
//! - otherwise it is corruption, and recovery refuses to start with
//!   [`LogError::Corrupt`], naming the file, the byte offset and why it cannot
//!   be a torn tail: a valid frame after it (which was written only after the
//!   damaged one was synced), a later segment, the checkpoint naming that
//!   segment, or a valid checksum over wrong content.
//!
//! Why this is sound: a torn tail holds only bytes written after the last
//! successful `fdatasync`, which were never reported durable, so nothing the
//! node relied on is cut; and damage followed by a valid frame is damage to
//! synced bytes, which recovery never cuts. The one case it cannot tell apart
//! is a disk that flips a bit in the last frame after it was synced: that
//! frame reads as torn and is cut, and the [`Repair`] says so. Recovery looks
//! for a valid frame after damage at every byte offset; a record whose bytes
//! happen to contain a whole valid frame could make a torn tail look like
//! corruption, which refuses the start rather than losing data.
//!
//! A missing segment, a segment that does not start where the one before it
//! ends, and a checkpoint whose segment is missing are errors too
//! ([`LogError::Discontinuous`], [`LogError::CheckpointBeyondLog`]): recovery
//! never returns a shorter log than the one that was synced.
//!
//! Recovery also makes what it read durable before returning (it syncs the
//! last segment and the directory): bytes a killed process wrote but never
//! synced are still in the page cache and read as valid, and the node must
//! not act on records that a later power loss could take away. (This cannot
//! help after an `fdatasync` that *failed*: Linux may then have dropped the
//! data and marked the pages clean, so a storage that saw a failure refuses
//! every later call, and an operator should check the disk.)

mod error;
mod format;
mod recover;

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use error::{LogError, NotTorn};
pub use format::{Corruption, Part};

use self::format::{FrameBuilder, RECORD_PREFIX_LEN, SEGMENT_HEADER_LEN};
#[allow(unused_imports)] // for the module doc
use super::Repair;
use super::disk::{failed, replace_file, sync_dir};
use super::{LogPosition, Recovery, Storage};

/// The name of the checkpoint file.
const CHECKPOINT: &str = "checkpoint";
/// The name of a checkpoint being written.
const CHECKPOINT_TMP: &str = "checkpoint.tmp";

/// Tuning of a [`FileStorage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// A sync starts a new segment once the last one is at least this long.
    /// Segments are the unit in which a checkpoint frees disk space.
    pub segment_bytes: u64,
    /// The most record bytes (with their 4-byte length prefixes) one frame
    /// holds: an append that would pass it syncs the frame first, and a
    /// larger record is refused. Bounds the memory a frame takes.
    pub max_batch_bytes: usize,
}

impl Default for LogOptions {
    /// 64 MiB segments, frames of at most 16 MiB.
    fn default() -> LogOptions {
        LogOptions {
            segment_bytes: 64 << 20,
            max_batch_bytes: 16 << 20,
        }
    }
}

/// The log in a directory: see the module doc for its files, layouts and
/// recovery rules.
///
/// Create it with [`FileStorage::new`] and call [`Storage::recover`] before
/// anything else. One process must own the directory: a node opens it
/// through `DataDir::open_log` (feature `runtime`), which holds the data
/// directory's lock for as long as the log lives.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    options: LogOptions,
    /// Keeps the data directory locked while the log is in use; an immutable
    /// handle, not something threads synchronise on, hence std's `Arc`.
    _lock: Option<std::sync::Arc<File>>,
    /// `None` until recovered.
    active: Option<Active>,
    /// The first write error; once set, every call fails.
    failed: Option<String>,
}

/// The state of a recovered log.
#[derive(Debug)]
struct Active {
    /// The live segments, oldest first, by first position; the last one is
    /// written to.
    segments: Vec<(LogPosition, PathBuf)>,
    /// The last segment, its cursor at its end.
    file: File,
    /// Its path.
    path: PathBuf,
    /// The last segment's length.
    len: u64,
    /// The position after the last appended record.
    end: LogPosition,
    /// The position up to which records are synced.
    durable: LogPosition,
    /// The records `durable..end`.
    frame: FrameBuilder,
}

impl FileStorage {
    /// A log in `dir` (created by recovery if missing). Does no I/O: call
    /// [`Storage::recover`] next.
    pub fn new(dir: impl Into<PathBuf>, options: LogOptions) -> FileStorage {
        FileStorage {
            dir: dir.into(),
            options,
            _lock: None,
            active: None,
            failed: None,
        }
    }

    /// Reads the log in `dir` without changing anything (no repair, no lock):
    /// what a recovery would return, for inspecting a node's data, even while
    /// the node runs. A missing directory reads as an empty log.
    pub fn read(dir: &Path) -> Result<Recovery, LogError> {
        recover::read(dir)
    }

    /// Keeps `lock` (the data directory's lock file) open as long as the log.
    #[cfg(feature = "runtime")]
    pub(super) fn holding(mut self, lock: std::sync::Arc<File>) -> FileStorage {
        self._lock = Some(lock);
        self
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The position up to which records are synced.
    pub fn durable(&self) -> LogPosition {
        self.active
            .as_ref()
            .map_or(LogPosition::START, |active| active.durable)
    }

    /// Runs a write operation on the recovered log; an error from it is
    /// final.
    fn write<R>(
        &mut self,
        operation: impl FnOnce(&mut Active, &Path, &LogOptions) -> Result<R, LogError>,
    ) -> Result<R, LogError> {
        if let Some(first) = &self.failed {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                first: first.clone(),
            });
        }
        let Some(active) = self.active.as_mut() else {
            return Err(LogError::NotRecovered {
                dir: self.dir.clone(),
            });
        };
        let result = operation(active, &self.dir, &self.options);
        if let Err(error) = &result {
            self.failed = Some(error.to_string());
        }
        result
    }
}

impl Storage for FileStorage {
    type Error = LogError;

    fn append(&mut self, record: &[u8]) -> Result<LogPosition, LogError> {
        let max = self.options.max_batch_bytes.min(u32::MAX as usize);
        if record.len() + RECORD_PREFIX_LEN > max {
            // Refused before anything is written: not a failure of the log.
            return Err(LogError::RecordTooLarge {
                len: record.len(),
                max: max - RECORD_PREFIX_LEN,
            });
        }
        self.write(|active, dir, options| {
            if active.frame.body_len() + RECORD_PREFIX_LEN + record.len() > max {
                active.sync(dir, options)?;
            }
            active.frame.push(record);
            active.end = active.end.after(1);
            Ok(active.end)
        })
    }

    fn sync(&mut self) -> Result<LogPosition, LogError> {
        self.write(|active, dir, options| active.sync(dir, options))
    }

    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<LogPosition, LogError> {
        self.write(|active, dir, options| active.checkpoint(dir, options, snapshot))
    }

    fn recover(&mut self) -> Result<Recovery, LogError> {
        if self.active.is_some() {
            // What a restarted process would read includes the pending frame.
            self.sync()?;
        } else if let Some(first) = &self.failed {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                first: first.clone(),
            });
        }
        self.active = None;
        let (active, recovery) = recover::recover(&self.dir)?;
        self.active = Some(active);
        Ok(recovery)
    }

    fn end(&self) -> LogPosition {
        self.active
            .as_ref()
            .map_or(LogPosition::START, |active| active.end)
    }
}

impl Active {
    /// Writes the pending frame and syncs it.
    fn sync(&mut self, dir: &Path, options: &LogOptions) -> Result<LogPosition, LogError> {
        if self.frame.is_empty() {
            return Ok(self.durable);
        }
        if self.len >= options.segment_bytes && self.len > SEGMENT_HEADER_LEN as u64 {
            self.start_segment(dir)?;
        }
        let frame = self.frame.seal(self.durable);
        self.file
            .write_all(&frame)
            .map_err(failed(&self.path, "append a frame to"))?;
        self.len += frame.len() as u64;
        self.file
            .sync_data()
            .map_err(failed(&self.path, "fdatasync"))?;
        self.durable = self.end;
        Ok(self.durable)
    }

    /// Syncs, starts a segment at the end of the log, installs the checkpoint
    /// and deletes the segments it covers.
    fn checkpoint(
        &mut self,
        dir: &Path,
        options: &LogOptions,
        snapshot: &[u8],
    ) -> Result<LogPosition, LogError> {
        let covers = self.sync(dir, options)?;
        if self.len > SEGMENT_HEADER_LEN as u64 {
            self.start_segment(dir)?;
        }
        let encoded = format::encode_checkpoint(covers, snapshot);
        replace_file(dir, CHECKPOINT, CHECKPOINT_TMP, &encoded)?;
        let live = self.segments.partition_point(|(first, _)| *first < covers);
        for (_, obsolete) in self.segments.drain(..live) {
            fs::remove_file(&obsolete).map_err(failed(&obsolete, "delete the covered segment"))?;
        }
        sync_dir(dir)?;
        Ok(covers)
    }

    /// Creates the segment that starts at `self.durable` (everything before it
    /// is synced) and makes it the one written to.
    fn start_segment(&mut self, dir: &Path) -> Result<(), LogError> {
        let first = self.durable;
        let (file, path) = create_segment(dir, first)?;
        self.file = file;
        self.len = SEGMENT_HEADER_LEN as u64;
        self.path = path.clone();
        self.segments.push((first, path));
        Ok(())
    }
}

/// The file name of the segment whose first record is at `first`.
fn segment_name(first: LogPosition) -> String {
    format!("{:020}.log", first.0)
}

/// The first position named by a segment file name, `None` if `name` is not
/// a `.log` file, an error if it is one with a name this log never gives.
fn parse_segment_name(dir: &Path, name: &str) -> Result<Option<LogPosition>, LogError> {
    let Some(stem) = name.strip_suffix(".log") else {
        return Ok(None);
    };
    let reason = if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        "a segment is named by 20 decimal digits and .log"
    } else {
        match stem.parse() {
            Ok(first) => return Ok(Some(LogPosition(first))),
            Err(_) => "its number does not fit in 64 bits",
        }
    };
    Err(LogError::UnexpectedFile {
        file: dir.join(name),
        reason,
    })
}

/// Creates a segment starting at `first`, with its header synced and its
/// directory entry durable; returns it with its cursor after the header.
fn create_segment(dir: &Path, first: LogPosition) -> Result<(File, PathBuf), LogError> {
    let path = dir.join(segment_name(first));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(failed(&path, "create the segment"))?;
    file.write_all(&format::segment_header(first))
        .map_err(failed(&path, "write the header of"))?;
    file.sync_data().map_err(failed(&path, "fdatasync"))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Opens an existing segment for appending at `len`, cutting it there.
fn open_segment(path: &Path, len: u64) -> Result<File, LogError> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(failed(path, "open for writing"))?;
    file.set_len(len)
        .map_err(failed(path, "truncate the torn tail of"))?;
    file.seek(SeekFrom::Start(len))
        .map_err(failed(path, "seek in"))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
