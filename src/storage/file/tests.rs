//! The file log's recovery rules, each on real files.

use std::fs;
use std::path::{Path, PathBuf};

use super::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::*;
use crate::storage::Repair;

/// A directory for a test's log: in `/dev/shm` when there is one, where a
/// sync costs nothing, so that tests that recover hundreds of times stay
/// fast; the recovery logic is the same on any file system.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("haft-log")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

const DEFAULT_SEGMENT: u64 = 64 << 20;

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes,
        ..LogOptions::default()
    }
}

fn open(dir: &Path, options: LogOptions) -> (FileStorage, Recovery) {
    let mut log = FileStorage::new(dir, options);
    let recovery = log.recover().unwrap();
    (log, recovery)
}

fn recover(dir: &Path) -> Result<Recovery, LogError> {
    FileStorage::new(dir, LogOptions::default()).recover()
}

fn record(n: u64) -> Vec<u8> {
    // Lengths vary, so that frames do not all line up.
    format!("record {n} {}", "x".repeat((n % 7) as usize)).into_bytes()
}

fn records(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(record).collect()
}

/// Appends records `range`, syncing after each (one frame each).
fn append_synced(log: &mut FileStorage, range: std::ops::Range<u64>) {
    for n in range {
        log.append(&record(n)).unwrap();
        log.sync().unwrap();
    }
}

/// A scratch directory holding a log of records `0..count`, one frame each,
/// in segments of `segment_bytes`, then (if given) a checkpoint.
fn synced_log(count: u64, segment_bytes: u64, checkpoint: Option<&[u8]>) -> tempfile::TempDir {
    let dir = scratch();
    let (mut log, _) = open(dir.path(), options(segment_bytes));
    append_synced(&mut log, 0..count);
    if let Some(snapshot) = checkpoint {
        log.checkpoint(snapshot).unwrap();
    }
    dir
}

/// The segment files of the log in `dir`, in order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Every file in `dir` with its bytes, to show that a refused start changed
/// nothing.
fn snapshot_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn records_round_trip_across_restarts() {
    let dir = scratch();
    let (mut log, recovery) = open(dir.path(), LogOptions::default());
    assert_eq!(recovery, Recovery::default());
    assert_eq!(log.append(b"").unwrap(), LogPosition(1));
    assert_eq!(log.append(b"second").unwrap(), LogPosition(2));
    assert_eq!(log.durable(), LogPosition(0));
    assert_eq!(log.sync().unwrap(), LogPosition(2));
    log.append(b"third").unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, recovery) = open(dir.path(), LogOptions::default());
    assert_eq!(
        recovery.records,
        [b"".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    assert!(recovery.repairs.is_empty());
    assert_eq!(log.end(), LogPosition(3));
}

#[test]
fn records_not_synced_are_lost_and_nothing_else() {
    let dir = scratch();
    let (mut log, _) = open(dir.path(), LogOptions::default());
    append_synced(&mut log, 0..3);
    log.append(&record(3)).unwrap();
    drop(log); // a crash: the frame was never written
    let (_, recovery) = open(dir.path(), LogOptions::default());
    assert_eq!(recovery.records, records(0..3));
    assert!(recovery.repairs.is_empty());
}

#[test]
fn appending_before_recovery_is_refused() {
    let dir = scratch();
    let mut log = FileStorage::new(dir.path(), LogOptions::default());
    let error = log.append(b"x").unwrap_err();
    assert!(matches!(error, LogError::NotRecovered { .. }), "{error}");
    assert!(error.to_string().contains("call recover() before"));
}

/// Writes 12 records, one frame each, in segments of about 100 bytes (so
/// that the last records span several segments), then cuts a copy of the
/// log at every byte offset of the last five frames: the segment holding
/// the offset is cut there and every later segment removed, as a crash that
/// lost everything after that byte would. Recovery must report the torn
/// tail (file, offset, bytes dropped), return every record before it, and
/// leave a log that takes new records.
#[test]
fn a_torn_tail_at_every_byte_of_the_last_records_is_cut_and_reported() {
    let dir = scratch();
    let written = dir.path().join("written");
    let (mut log, _) = open(&written, options(100));
    append_synced(&mut log, 0..12);
    drop(log);

    // The whole log as one sequence of bytes, and where each frame ends.
    let files = segments(&written);
    assert!(files.len() >= 3, "{files:?}");
    let mut bytes = Vec::new(); // (file index, offset in file) of each byte
    let mut frame_ends = Vec::new(); // global offset after each frame
    for (index, file) in files.iter().enumerate() {
        let content = fs::read(file).unwrap();
        let mut offset = SEGMENT_HEADER_LEN;
        bytes.extend((0..content.len()).map(|at| (index, at)));
        while offset < content.len() {
            offset += format::decode_frame(&content, offset).unwrap().len;
            frame_ends.push(bytes.len() - content.len() + offset);
        }
    }
    assert_eq!(frame_ends.len(), 12);

    let from = frame_ends[12 - 6];
    for (cut, &(index, local)) in bytes.iter().enumerate().skip(from) {
        let copy = dir.path().join(format!("cut-{cut}"));
        copy_dir(&written, &copy);
        for later in &files[index + 1..] {
            fs::remove_file(copy.join(later.file_name().unwrap())).unwrap();
        }
        let segment = copy.join(files[index].file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(local as u64)
            .unwrap();

        let (mut log, recovery) = open(&copy, options(100));
        let whole = frame_ends.iter().filter(|&&end| end <= cut).count() as u64;
        assert_eq!(recovery.records, records(0..whole), "cut at {cut}");
        let frame_start = frame_ends
            .iter()
            .rev()
            .find(|&&end| end <= cut)
            .copied()
            .unwrap_or(0);
        let header_start = cut - local;
        match recovery.repairs.as_slice() {
            // Cut at the end of a frame, or of a segment header.
            [] => assert!(cut == frame_start || local == SEGMENT_HEADER_LEN, "{cut}"),
            [Repair::TornSegment { file, len }] => {
                assert_eq!((file, *len), (&segment, local as u64), "cut at {cut}");
                assert!(local < SEGMENT_HEADER_LEN);
            }
            [
                Repair::TornTail {
                    file,
                    offset,
                    bytes_dropped,
                    ..
                },
            ] => {
                let start = frame_start.max(header_start + SEGMENT_HEADER_LEN);
                assert_eq!(file, &segment, "cut at {cut}");
                assert_eq!(*offset as usize, start - header_start, "cut at {cut}");
                assert_eq!(*bytes_dropped as usize, cut - start, "cut at {cut}");
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
        // The repaired log takes new records after the ones kept.
        log.append(b"after").unwrap();
        log.sync().unwrap();
        drop(log);
        let (_, again) = open(&copy, options(100));
        let mut expected = records(0..whole);
        expected.push(b"after".to_vec());
        assert_eq!(again.records, expected, "cut at {cut}");
        assert!(
            again.repairs.is_empty(),
            "cut at {cut}: {:?}",
            again.repairs
        );
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn zeros_or_garbage_after_the_last_frame_are_a_torn_tail() {
    for tail in [vec![0u8; 4096], b"HFRM\x10\0\0\0garbage".to_vec()] {
        let dir = synced_log(3, DEFAULT_SEGMENT, None);
        let segment = segments(dir.path()).remove(0);
        let len = fs::metadata(&segment).unwrap().len();
        let mut file = fs::OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&tail).unwrap();
        drop(file);
        let recovery = recover(dir.path()).unwrap();
        assert_eq!(recovery.records, records(0..3));
        assert!(
            matches!(
                recovery.repairs.as_slice(),
                [Repair::TornTail { offset, bytes_dropped, .. }]
                    if *offset == len && *bytes_dropped == tail.len() as u64
            ),
            "{:?}",
            recovery.repairs
        );
        assert_eq!(fs::metadata(&segment).unwrap().len(), len);
    }
}

/// Flips each byte of a frame in the middle of a segment in turn: recovery
/// refuses to start, naming the segment and the frame's offset, because a
/// valid frame follows, and changes nothing on disk.
#[test]
fn a_flipped_byte_before_the_tail_refuses_the_start_naming_file_and_offset() {
    let dir = synced_log(4, DEFAULT_SEGMENT, None);
    let segment = segments(dir.path()).remove(0);
    let content = fs::read(&segment).unwrap();
    let second = SEGMENT_HEADER_LEN
        + format::decode_frame(&content, SEGMENT_HEADER_LEN)
            .unwrap()
            .len;
    let third = second + format::decode_frame(&content, second).unwrap().len;
    for at in second..third {
        let mut damaged = content.clone();
        damaged[at] ^= 0x04;
        fs::write(&segment, &damaged).unwrap();
        let before = snapshot_of(dir.path());
        let error = recover(dir.path()).unwrap_err();
        match &error {
            LogError::Corrupt {
                file,
                offset,
                found,
                why: NotTorn::ValidFrameFollows { offset: valid },
            } => {
                assert_eq!(file, &segment, "byte {at}");
                assert_eq!(*offset as usize, second, "byte {at}: {found}");
                assert_eq!(*valid as usize, third, "byte {at}");
            }
            other => panic!("byte {at}: {other}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "{} is corrupt at byte {second}",
                segment.display()
            )),
            "{message}"
        );
        assert!(message.contains("refuses to start"), "{message}");
        assert_eq!(snapshot_of(dir.path()), before, "byte {at}");
    }
}

#[test]
fn damage_in_a_segment_before_the_last_refuses_the_start() {
    let dir = synced_log(6, 60, None);
    let files = segments(dir.path());
    assert!(files.len() >= 2, "{files:?}");
    // The last frame of the first segment: nothing valid after it in that
    // file, but a later segment exists.
    let content = fs::read(&files[0]).unwrap();
    let mut last = content.clone();
    let at = content.len() - 1;
    last[at] ^= 1;
    fs::write(&files[0], &last).unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&error, LogError::Corrupt { file, why: NotTorn::LaterSegment { file: next }, .. }
            if *file == files[0] && *next == files[1]),
        "{error}"
    );
    // A damaged header of the first segment is corruption too.
    let mut header = content;
    header[3] ^= 1;
    fs::write(&files[0], &header).unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(
        matches!(
            &error,
            LogError::Corrupt {
                offset: 0,
                why: NotTorn::LaterSegment { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_checkpoint_then_more_records_recovers_the_snapshot_and_exactly_those_records() {
    let dir = scratch();
    let (mut log, _) = open(dir.path(), options(80));
    append_synced(&mut log, 0..5);
    log.append(&record(5)).unwrap(); // not synced: the checkpoint covers it
    assert_eq!(log.checkpoint(b"state after 6").unwrap(), LogPosition(6));
    append_synced(&mut log, 6..9);
    drop(log);
    // The segments before the checkpoint are gone.
    let files = segments(dir.path());
    assert_eq!(files[0], dir.path().join(segment_name(LogPosition(6))));
    let (mut log, recovery) = open(dir.path(), options(80));
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"state after 6"[..]));
    assert_eq!(recovery.start, LogPosition(6));
    assert_eq!(recovery.records, records(6..9));
    assert!(recovery.repairs.is_empty());
    // A second checkpoint with nothing new since reuses the empty segment.
    log.checkpoint(b"state after 9").unwrap();
    log.checkpoint(b"state after 9, again").unwrap();
    drop(log);
    let recovery = recover(dir.path()).unwrap();
    assert_eq!(
        recovery.snapshot.as_deref(),
        Some(&b"state after 9, again"[..])
    );
    assert_eq!(recovery.start, LogPosition(9));
    assert!(recovery.records.is_empty());
    assert_eq!(segments(dir.path()).len(), 1);
}

/// The two crash points of a checkpoint, rebuilt from the files of a real
/// one: the new segment and the temp file written but not renamed; renamed,
/// the covered segments not yet deleted.
#[test]
fn a_crash_between_checkpoint_steps_recovers_correctly() {
    let dir = scratch();
    let before = dir.path().join("before");
    let (mut log, _) = open(&before, options(60));
    log.checkpoint(b"first").unwrap();
    append_synced(&mut log, 0..5);
    drop(log);
    let after = dir.path().join("after");
    copy_dir(&before, &after);
    let (mut log, _) = open(&after, options(60));
    log.checkpoint(b"second").unwrap();
    drop(log);
    let new_segment = segment_name(LogPosition(5));

    // 1. The temp file written, not renamed.
    let temp_written = dir.path().join("temp-written");
    copy_dir(&before, &temp_written);
    fs::copy(after.join(&new_segment), temp_written.join(&new_segment)).unwrap();
    fs::copy(after.join(CHECKPOINT), temp_written.join(CHECKPOINT_TMP)).unwrap();
    let recovery = recover(&temp_written).unwrap();
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"first"[..]));
    assert_eq!(recovery.records, records(0..5));
    assert_eq!(
        recovery.repairs,
        [Repair::UnfinishedCheckpoint {
            file: temp_written.join(CHECKPOINT_TMP)
        }]
    );
    assert!(!temp_written.join(CHECKPOINT_TMP).exists());

    // 2. Renamed, the covered segments still there.
    let renamed = dir.path().join("renamed");
    copy_dir(&before, &renamed);
    fs::copy(after.join(&new_segment), renamed.join(&new_segment)).unwrap();
    fs::copy(after.join(CHECKPOINT), renamed.join(CHECKPOINT)).unwrap();
    let old = segments(&before);
    assert!(old.len() >= 2, "{old:?}");
    let recovery = recover(&renamed).unwrap();
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"second"[..]));
    assert_eq!(recovery.start, LogPosition(5));
    assert!(recovery.records.is_empty());
    let deleted: Vec<_> = old
        .iter()
        .map(|path| Repair::ObsoleteSegment {
            file: renamed.join(path.file_name().unwrap()),
        })
        .collect();
    assert_eq!(recovery.repairs, deleted);
    assert_eq!(segments(&renamed), [renamed.join(&new_segment)]);
}

#[test]
fn a_missing_segment_is_an_error_never_a_shorter_log() {
    let dir = synced_log(8, 60, None);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");

    // A segment in the middle.
    let middle = dir.path().join("middle");
    copy_dir(dir.path(), &middle);
    fs::remove_file(middle.join(files[1].file_name().unwrap())).unwrap();
    let error = recover(&middle).unwrap_err();
    assert!(
        matches!(&error, LogError::Discontinuous { file, found, expected, .. }
            if *file == middle.join(files[2].file_name().unwrap()) && found > expected),
        "{error}"
    );
    assert!(error.to_string().contains("records are missing"), "{error}");

    // The first segment, with no checkpoint to cover it.
    let first = dir.path().join("first");
    copy_dir(dir.path(), &first);
    fs::remove_file(first.join(files[0].file_name().unwrap())).unwrap();
    let error = recover(&first).unwrap_err();
    assert!(
        matches!(&error, LogError::Discontinuous { before, .. } if before == "the start of the log"),
        "{error}"
    );
}

#[test]
fn a_checkpoint_whose_segment_is_missing_is_an_error() {
    let dir = synced_log(3, DEFAULT_SEGMENT, Some(b"state"));
    fs::remove_file(dir.path().join(segment_name(LogPosition(3)))).unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(
        matches!(
            &error,
            LogError::CheckpointBeyondLog {
                covers: LogPosition(3),
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("no segment"), "{error}");
}

#[test]
fn a_damaged_checkpoint_or_a_damaged_segment_it_names_refuses_the_start() {
    let dir = synced_log(3, DEFAULT_SEGMENT, Some(b"state"));

    let named = dir.path().join("named");
    copy_dir(dir.path(), &named);
    let segment = named.join(segment_name(LogPosition(3)));
    fs::write(&segment, &fs::read(&segment).unwrap()[..10]).unwrap();
    let error = recover(&named).unwrap_err();
    assert!(
        matches!(
            &error,
            LogError::Corrupt {
                why: NotTorn::NamedByCheckpoint,
                ..
            }
        ),
        "{error}"
    );

    let checkpoint = dir.path().join(CHECKPOINT);
    let mut bytes = fs::read(&checkpoint).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&checkpoint, bytes).unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&error, LogError::Corrupt { file, why: NotTorn::CheckpointIsSynced, .. }
            if *file == checkpoint),
        "{error}"
    );
}

#[test]
fn a_frame_with_a_valid_checksum_in_the_wrong_place_is_corruption() {
    // The first frame again where the second should be: its checksum holds,
    // its position does not.
    let dir = synced_log(2, DEFAULT_SEGMENT, None);
    let segment = segments(dir.path()).remove(0);
    let content = fs::read(&segment).unwrap();
    let first_len = format::decode_frame(&content, SEGMENT_HEADER_LEN)
        .unwrap()
        .len;
    let mut spliced = content.clone();
    spliced.truncate(SEGMENT_HEADER_LEN + first_len);
    spliced.extend_from_slice(&content[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + first_len]);
    fs::write(&segment, spliced).unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(
        matches!(&error, LogError::Corrupt { offset, why: NotTorn::ValidChecksum, .. }
            if *offset as usize == SEGMENT_HEADER_LEN + first_len),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("where the log continues at record 1"),
        "{error}"
    );
}

#[test]
fn a_misnamed_log_file_is_refused() {
    let dir = scratch();
    fs::write(dir.path().join("7.log"), b"").unwrap();
    let error = recover(dir.path()).unwrap_err();
    assert!(matches!(error, LogError::UnexpectedFile { .. }), "{error}");
    assert!(error.to_string().contains("7.log"), "{error}");
}

#[test]
fn a_record_too_large_is_refused_and_the_log_stays_usable() {
    let dir = scratch();
    let small = LogOptions {
        max_batch_bytes: 64,
        ..LogOptions::default()
    };
    let (mut log, _) = open(dir.path(), small);
    let error = log.append(&[0; 61]).unwrap_err();
    assert!(
        matches!(error, LogError::RecordTooLarge { len: 61, max: 60 }),
        "{error}"
    );
    // Records that fill the frame past the limit sync it first.
    for n in 0..10 {
        log.append(&[n; 20]).unwrap();
    }
    assert!(log.durable() >= LogPosition(8), "{:?}", log.durable());
    log.sync().unwrap();
    drop(log);
    let (_, recovery) = open(dir.path(), small);
    assert_eq!(recovery.records.len(), 10);
}

#[test]
fn a_failed_write_is_final() {
    let dir = scratch();
    let path = dir.path().join("log");
    let (mut log, _) = open(&path, options(SEGMENT_HEADER_LEN as u64 + 1));
    append_synced(&mut log, 0..1);
    // The directory vanishes: the next segment cannot be created.
    fs::remove_dir_all(&path).unwrap();
    log.append(b"x").unwrap();
    let error = log.sync().unwrap_err();
    assert!(matches!(error, LogError::Io(_)), "{error}");
    let later = log.append(b"y").unwrap_err();
    assert!(matches!(later, LogError::Failed { .. }), "{later}");
    assert!(later.to_string().contains("restart the node"), "{later}");
    assert!(matches!(log.recover(), Err(LogError::Failed { .. })));
}

#[test]
fn frames_hold_exactly_the_records_of_one_sync() {
    let dir = scratch();
    let (mut log, _) = open(dir.path(), LogOptions::default());
    for n in 0..5 {
        log.append(&record(n)).unwrap();
    }
    log.sync().unwrap();
    log.sync().unwrap(); // nothing new: no empty frame
    drop(log);
    let content = fs::read(segments(dir.path()).remove(0)).unwrap();
    let frame = format::decode_frame(&content, SEGMENT_HEADER_LEN).unwrap();
    assert_eq!(frame.records.len(), 5);
    assert_eq!(SEGMENT_HEADER_LEN + frame.len, content.len());
    assert_eq!(
        frame.len,
        FRAME_HEADER_LEN + records(0..5).iter().map(|r| r.len() + 4).sum::<usize>()
    );
}
