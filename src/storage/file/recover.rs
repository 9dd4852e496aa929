//! Recovery of a log directory: the rules are in the parent module's doc.
//!
//! Recovery first reads and checks everything, then changes the directory
//! (removes a leftover temp file, cuts a torn tail, deletes covered segments),
//! so that a refused start leaves the files exactly as it found them.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{LogError, NotTorn};
use super::format::{self, Corruption, FrameBuilder, SEGMENT_HEADER_LEN};
use super::{Active, CHECKPOINT, CHECKPOINT_TMP, create_segment, open_segment, parse_segment_name};
use crate::storage::disk::{ensure_dir, failed, sync_dir};
use crate::storage::{LogPosition, Recovery, Repair};

/// What the log directory holds, before anything is checked.
struct Listing {
    /// Segment files by first position, in order.
    segments: Vec<(LogPosition, PathBuf)>,
    checkpoint: Option<PathBuf>,
    temp: Option<PathBuf>,
}

/// Checks the log in `dir`, repairs what a crash left, and returns the state
/// to append from with what it read.
pub(super) fn recover(dir: &Path) -> Result<(Active, Recovery), LogError> {
    ensure_dir(dir)?;
    // What a killed process renamed or created may not be durable yet; make
    // it so before relying on it.
    sync_dir(dir)?;
    let (active, recovery) = check(dir, true)?;
    Ok((active.expect("a mutating check opens the log"), recovery))
}

/// Reads the log in `dir` as recovery would, but changes nothing: for looking
/// at the data of a node that may be running (a torn tail is then most likely
/// a frame being written, and is left alone).
pub(super) fn read(dir: &Path) -> Result<Recovery, LogError> {
    if !dir.is_dir() {
        return Ok(Recovery::default());
    }
    check(dir, false).map(|(_, recovery)| recovery)
}

/// Checks everything, then (if `repair`) changes the directory and opens the
/// log for appending.
fn check(dir: &Path, repair: bool) -> Result<(Option<Active>, Recovery), LogError> {
    let listing = list(dir)?;
    let mut repairs = Vec::new();
    // Files to remove once everything is checked.
    let mut removals = Vec::new();
    if let Some(temp) = listing.temp {
        repairs.push(Repair::UnfinishedCheckpoint { file: temp.clone() });
        removals.push(temp);
    }
    let checkpoint = match &listing.checkpoint {
        Some(path) => Some(read_checkpoint(path)?),
        None => None,
    };
    let start = checkpoint
        .as_ref()
        .map_or(LogPosition::START, |(covers, _)| *covers);
    let live_from = listing
        .segments
        .partition_point(|(first, _)| *first < start);
    let (obsolete, live) = listing.segments.split_at(live_from);
    if let (Some(path), None) = (&listing.checkpoint, live.first()) {
        return Err(LogError::CheckpointBeyondLog {
            checkpoint: path.clone(),
            covers: start,
            found: match obsolete.last() {
                Some((_, last)) => format!("the last segment is {}", last.display()),
                None => "the directory holds no segment".to_owned(),
            },
        });
    }

    let mut scan = Scan {
        expected: start,
        records: Vec::new(),
        kept: Vec::new(),
        tail_len: 0,
    };
    let mut before = match &listing.checkpoint {
        Some(path) => format!("the checkpoint {}", path.display()),
        None => "the start of the log".to_owned(),
    };
    for (index, (first, path)) in live.iter().enumerate() {
        if *first != scan.expected {
            return Err(LogError::Discontinuous {
                file: path.clone(),
                found: *first,
                expected: scan.expected,
                before,
            });
        }
        let next = live.get(index + 1).map(|(_, next)| next.clone());
        let named_by_checkpoint = checkpoint.is_some() && *first == start;
        if let Some(repair) = scan.segment(*first, path, next, named_by_checkpoint)? {
            if let Repair::TornSegment { file, .. } = &repair {
                removals.push(file.clone());
            }
            repairs.push(repair);
        }
        before = path.display().to_string();
    }

    if !repair {
        let recovery = Recovery {
            snapshot: checkpoint.map(|(_, snapshot)| snapshot),
            start,
            records: scan.records,
            repairs,
        };
        return Ok((None, recovery));
    }
    // Everything is checked: change the directory. A torn tail can only be
    // in the last segment kept, which is cut when it is reopened below.
    for path in removals {
        fs::remove_file(&path).map_err(failed(&path, "remove"))?;
    }
    for (_, path) in obsolete {
        fs::remove_file(path).map_err(failed(path, "delete the covered segment"))?;
        repairs.push(Repair::ObsoleteSegment { file: path.clone() });
    }
    let (file, path, len) = match scan.kept.last() {
        Some((_, path)) => (
            open_segment(path, scan.tail_len)?,
            path.clone(),
            scan.tail_len,
        ),
        None => {
            let (file, path) = create_segment(dir, start)?;
            scan.kept.push((start, path.clone()));
            (file, path, SEGMENT_HEADER_LEN as u64)
        }
    };
    // Bytes read back are durable from here on, and so are the removals.
    file.sync_data().map_err(failed(&path, "fdatasync"))?;
    sync_dir(dir)?;
    let active = Active {
        segments: scan.kept,
        file,
        path,
        len,
        end: scan.expected,
        durable: scan.expected,
        frame: FrameBuilder::new(),
    };
    let recovery = Recovery {
        snapshot: checkpoint.map(|(_, snapshot)| snapshot),
        start,
        records: scan.records,
        repairs,
    };
    Ok((Some(active), recovery))
}

/// The reading of the live segments, in order.
struct Scan {
    /// Where the next record must be.
    expected: LogPosition,
    records: Vec<Vec<u8>>,
    /// The segments kept, in order.
    kept: Vec<(LogPosition, PathBuf)>,
    /// The length of the last kept segment, after any cut.
    tail_len: u64,
}

impl Scan {
    /// Reads the segment at `path`, whose name says it starts at `first`
    /// (which is `self.expected`); `next` is the segment after it. Returns the
    /// repair it needs if it ends in a torn tail (cut it there) or is a torn
    /// segment (remove it).
    fn segment(
        &mut self,
        first: LogPosition,
        path: &Path,
        next: Option<PathBuf>,
        named_by_checkpoint: bool,
    ) -> Result<Option<Repair>, LogError> {
        let bytes = fs::read(path).map_err(failed(path, "read"))?;
        let corrupt = |offset: usize, found: Corruption, why: NotTorn| LogError::Corrupt {
            file: path.to_path_buf(),
            offset: offset as u64,
            found,
            why,
        };
        // Why damage at `offset` is not a torn tail, or `None` if it may be.
        let not_torn = |offset: usize, found: &Corruption| {
            if !found.could_be_torn() {
                Some(NotTorn::ValidChecksum)
            } else if let Some(file) = next.clone() {
                Some(NotTorn::LaterSegment { file })
            } else if offset == 0 && named_by_checkpoint {
                Some(NotTorn::NamedByCheckpoint)
            } else {
                format::valid_frame_after(&bytes, offset)
                    .map(|at| NotTorn::ValidFrameFollows { offset: at as u64 })
            }
        };
        match format::decode_segment_header(&bytes) {
            Ok(named) if named == first => {}
            Ok(named) => {
                let found = Corruption::WrongPosition {
                    part: format::Part::SegmentHeader,
                    found: named,
                    expected: self.expected,
                };
                return Err(corrupt(0, found, NotTorn::ValidChecksum));
            }
            Err(found) => {
                if let Some(why) = not_torn(0, &found) {
                    return Err(corrupt(0, found, why));
                }
                // A segment started just before the crash: no frame in it.
                return Ok(Some(Repair::TornSegment {
                    file: path.to_path_buf(),
                    len: bytes.len() as u64,
                }));
            }
        }
        let mut offset = SEGMENT_HEADER_LEN;
        let mut torn = None;
        while offset < bytes.len() {
            match format::decode_frame(&bytes, offset) {
                Ok(frame) if frame.first == self.expected => {
                    self.expected = self.expected.after(frame.records.len() as u64);
                    self.records.extend(
                        frame
                            .records
                            .into_iter()
                            .map(|record| bytes[record].to_vec()),
                    );
                    offset += frame.len;
                }
                Ok(frame) => {
                    let found = Corruption::WrongPosition {
                        part: format::Part::Frame,
                        found: frame.first,
                        expected: self.expected,
                    };
                    return Err(corrupt(offset, found, NotTorn::ValidChecksum));
                }
                Err(found) => {
                    if let Some(why) = not_torn(offset, &found) {
                        return Err(corrupt(offset, found, why));
                    }
                    torn = Some(Repair::TornTail {
                        file: path.to_path_buf(),
                        offset: offset as u64,
                        bytes_dropped: (bytes.len() - offset) as u64,
                        found,
                    });
                    break;
                }
            }
        }
        self.kept.push((first, path.to_path_buf()));
        self.tail_len = offset as u64;
        Ok(torn)
    }
}

/// Lists the log's files in `dir`.
fn list(dir: &Path) -> Result<Listing, LogError> {
    let mut listing = Listing {
        segments: Vec::new(),
        checkpoint: None,
        temp: None,
    };
    let entries = fs::read_dir(dir).map_err(failed(dir, "list"))?;
    for entry in entries {
        let entry = entry.map_err(failed(dir, "list"))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match name.as_str() {
            CHECKPOINT => listing.checkpoint = Some(path),
            CHECKPOINT_TMP => listing.temp = Some(path),
            _ => {
                if let Some(first) = parse_segment_name(dir, &name)? {
                    listing.segments.push((first, path));
                }
            }
        }
    }
    listing.segments.sort();
    Ok(listing)
}

/// The checkpoint at `path`: the position it covers and its snapshot.
fn read_checkpoint(path: &Path) -> Result<(LogPosition, Vec<u8>), LogError> {
    let bytes = fs::read(path).map_err(failed(path, "read"))?;
    format::decode_checkpoint(bytes).map_err(|found| LogError::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        found,
        why: NotTorn::CheckpointIsSynced,
    })
}
