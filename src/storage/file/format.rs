//! The byte layouts of segment files, frames and checkpoint files (see the
//! tables in the parent module), and what can be wrong with them. No I/O.

use std::fmt;
use std::ops::Range;

use super::super::LogPosition;

/// The first eight bytes of every segment file.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"HAFTLOG\0";
/// The first eight bytes of every checkpoint file.
pub(super) const CHECKPOINT_MAGIC: [u8; 8] = *b"HAFTCKPT";
/// The first four bytes of every frame.
pub(super) const FRAME_MARKER: [u8; 4] = *b"HFRM";
/// The layout version of segments and checkpoints.
pub(super) const VERSION: u8 = 1;

pub(super) const SEGMENT_HEADER_LEN: usize = 24;
pub(super) const FRAME_HEADER_LEN: usize = 24;
pub(super) const CHECKPOINT_HEADER_LEN: usize = 32;
/// Each record in a frame is preceded by its length.
pub(super) const RECORD_PREFIX_LEN: usize = 4;

/// Which structure a [`Corruption`] was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The header at the start of a segment file.
    SegmentHeader,
    /// A frame: the records made durable by one sync.
    Frame,
    /// A checkpoint file.
    Checkpoint,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::SegmentHeader => "segment header",
            Part::Frame => "frame",
            Part::Checkpoint => "checkpoint",
        })
    }
}

/// What is wrong with the bytes at some offset of a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The file ends inside a header.
    IncompleteHeader {
        /// The structure whose header is cut.
        part: Part,
        /// The header bytes present.
        available: u64,
    },
    /// The file ends before the length a header announces.
    IncompleteBody {
        /// The structure whose body is cut.
        part: Part,
        /// The length the header announces.
        declared: u64,
        /// The bytes present.
        available: u64,
    },
    /// The bytes do not start with the magic or marker of `part`.
    BadMagic {
        /// The structure expected here.
        part: Part,
    },
    /// The checksum stored in `part` does not match its bytes.
    BadChecksum {
        /// The structure whose checksum failed.
        part: Part,
        /// The stored checksum.
        stored: u32,
        /// The checksum of the bytes on disk.
        computed: u32,
    },
    /// `part` has a valid checksum but another layout version.
    BadVersion {
        /// The structure.
        part: Part,
        /// Its version byte.
        found: u8,
    },
    /// A checkpoint file is longer than its header announces.
    TrailingBytes {
        /// The length the header announces.
        declared: u64,
        /// The bytes present.
        available: u64,
    },
    /// A segment or frame has a valid checksum but starts at another position
    /// than the log's order requires.
    WrongPosition {
        /// The structure.
        part: Part,
        /// The position it names.
        found: LogPosition,
        /// The position that should be there.
        expected: LogPosition,
    },
    /// A frame has a valid checksum but its records do not add up to its
    /// length: it was written by a different program or a bug.
    MalformedFrame,
}

impl Corruption {
    /// Whether a crash during a write could leave these bytes: cut short, or
    /// not matching their checksum. A valid checksum on wrong content cannot
    /// come from a torn write.
    pub(super) fn could_be_torn(&self) -> bool {
        matches!(
            self,
            Corruption::IncompleteHeader { .. }
                | Corruption::IncompleteBody { .. }
                | Corruption::BadMagic { .. }
                | Corruption::BadChecksum { .. }
        )
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::IncompleteHeader { part, available } => {
                write!(f, "the file ends {available} bytes into a {part} header")
            }
            Corruption::IncompleteBody {
                part,
                declared,
                available,
            } => write!(
                f,
                "a {part} announces {declared} bytes but the file ends after {available}"
            ),
            Corruption::BadMagic { part } => {
                write!(
                    f,
                    "the bytes there are not a {part} (wrong magic or marker)"
                )
            }
            Corruption::BadChecksum {
                part,
                stored,
                computed,
            } => write!(
                f,
                "a {part}'s checksum is {stored:#010x} but its bytes give {computed:#010x}"
            ),
            Corruption::BadVersion { part, found } => write!(
                f,
                "a {part} has layout version {found}, but this haft reads version {VERSION}"
            ),
            Corruption::TrailingBytes {
                declared,
                available,
            } => write!(
                f,
                "a checkpoint announces {declared} bytes but {available} follow its header"
            ),
            Corruption::WrongPosition {
                part,
                found,
                expected,
            } => write!(
                f,
                "a {part} starts at {found} where the log continues at {expected}"
            ),
            Corruption::MalformedFrame => f.write_str(
                "a frame's checksum is valid but its records do not add up to its length",
            ),
        }
    }
}

fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

/// `N` bytes of `bytes` from `at`; the callers have checked the length.
fn field<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(bytes, at))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(field(bytes, at))
}

/// The header of a segment whose first record is at `first`.
pub(super) fn segment_header(first: LogPosition) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8] = VERSION;
    header[12..20].copy_from_slice(&first.0.to_le_bytes());
    let sum = checksum(&header[..20], &[]);
    header[20..].copy_from_slice(&sum.to_le_bytes());
    header
}

/// The position a segment file's header names.
pub(super) fn decode_segment_header(file: &[u8]) -> Result<LogPosition, Corruption> {
    let part = Part::SegmentHeader;
    if file.len() < SEGMENT_HEADER_LEN {
        return Err(Corruption::IncompleteHeader {
            part,
            available: file.len() as u64,
        });
    }
    let (stored, computed) = (u32_at(file, 20), checksum(&file[..20], &[]));
    if stored != computed {
        return Err(Corruption::BadChecksum {
            part,
            stored,
            computed,
        });
    }
    if file[..8] != SEGMENT_MAGIC {
        return Err(Corruption::BadMagic { part });
    }
    if file[8] != VERSION {
        return Err(Corruption::BadVersion {
            part,
            found: file[8],
        });
    }
    Ok(LogPosition(u64_at(file, 12)))
}

/// A frame being filled: the records appended since the last sync, behind
/// room for the header, so that a sync writes the frame with one `write`.
#[derive(Debug)]
pub(super) struct FrameBuilder {
    bytes: Vec<u8>,
    count: u32,
}

impl FrameBuilder {
    pub(super) fn new() -> FrameBuilder {
        FrameBuilder {
            bytes: vec![0; FRAME_HEADER_LEN],
            count: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The length of the records so far, prefixes included.
    pub(super) fn body_len(&self) -> usize {
        self.bytes.len() - FRAME_HEADER_LEN
    }

    /// Adds a record; the caller has checked that its length fits in a `u32`.
    pub(super) fn push(&mut self, record: &[u8]) {
        self.bytes
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    /// The whole frame, its first record at `first`, ready to write; the
    /// builder is empty again afterwards.
    pub(super) fn seal(&mut self, first: LogPosition) -> Vec<u8> {
        let mut frame = std::mem::replace(&mut self.bytes, vec![0; FRAME_HEADER_LEN]);
        let body_len = (frame.len() - FRAME_HEADER_LEN) as u32;
        frame[..4].copy_from_slice(&FRAME_MARKER);
        frame[4..8].copy_from_slice(&body_len.to_le_bytes());
        frame[8..16].copy_from_slice(&first.0.to_le_bytes());
        frame[16..20].copy_from_slice(&self.count.to_le_bytes());
        let sum = checksum(&frame[..20], &frame[FRAME_HEADER_LEN..]);
        frame[20..24].copy_from_slice(&sum.to_le_bytes());
        self.count = 0;
        frame
    }
}

/// A frame read back: where its records are in the file.
#[derive(Debug)]
pub(super) struct Frame {
    /// The position of its first record.
    pub(super) first: LogPosition,
    /// Each record's bytes, as a range of the file.
    pub(super) records: Vec<Range<usize>>,
    /// The frame's total length, header included.
    pub(super) len: usize,
}

/// The frame at `offset` of `file`. It is checked against its checksum and
/// its own structure, not against the position the log expects there.
pub(super) fn decode_frame(file: &[u8], offset: usize) -> Result<Frame, Corruption> {
    let part = Part::Frame;
    let bytes = &file[offset..];
    if bytes.len() < FRAME_HEADER_LEN {
        // A cut marker is still "not a frame" when its bytes are wrong, so
        // that zeros at the end read as what they are.
        if !bytes.starts_with(&FRAME_MARKER[..bytes.len().min(FRAME_MARKER.len())]) {
            return Err(Corruption::BadMagic { part });
        }
        return Err(Corruption::IncompleteHeader {
            part,
            available: bytes.len() as u64,
        });
    }
    if bytes[..4] != FRAME_MARKER {
        return Err(Corruption::BadMagic { part });
    }
    let declared = u32_at(bytes, 4) as usize;
    let available = bytes.len() - FRAME_HEADER_LEN;
    if declared > available {
        return Err(Corruption::IncompleteBody {
            part,
            declared: declared as u64,
            available: available as u64,
        });
    }
    let body = &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + declared];
    let (stored, computed) = (u32_at(bytes, 20), checksum(&bytes[..20], body));
    if stored != computed {
        return Err(Corruption::BadChecksum {
            part,
            stored,
            computed,
        });
    }
    let first = LogPosition(u64_at(bytes, 8));
    let count = u32_at(bytes, 16);
    let mut records = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut at = 0;
    for _ in 0..count {
        if body.len() - at < RECORD_PREFIX_LEN {
            return Err(Corruption::MalformedFrame);
        }
        let len = u32_at(body, at) as usize;
        at += RECORD_PREFIX_LEN;
        if body.len() - at < len {
            return Err(Corruption::MalformedFrame);
        }
        let start = offset + FRAME_HEADER_LEN + at;
        records.push(start..start + len);
        at += len;
    }
    if at != body.len() {
        return Err(Corruption::MalformedFrame);
    }
    Ok(Frame {
        first,
        records,
        len: FRAME_HEADER_LEN + declared,
    })
}

/// The offset of the first frame after `offset` whose checksum holds, if
/// any: the evidence that damage at `offset` was synced (see the parent doc).
pub(super) fn valid_frame_after(file: &[u8], offset: usize) -> Option<usize> {
    (offset + 1..file.len())
        .filter(|&at| file[at..].starts_with(&FRAME_MARKER))
        .find(|&at| decode_frame(file, at).is_ok())
}

/// A checkpoint file covering `covers`.
pub(super) fn encode_checkpoint(covers: LogPosition, snapshot: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(CHECKPOINT_HEADER_LEN + snapshot.len());
    file.extend_from_slice(&CHECKPOINT_MAGIC);
    file.extend_from_slice(&[VERSION, 0, 0, 0]);
    file.extend_from_slice(&covers.0.to_le_bytes());
    file.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
    let sum = checksum(&file, snapshot);
    file.extend_from_slice(&sum.to_le_bytes());
    file.extend_from_slice(snapshot);
    file
}

/// The position a checkpoint file covers, and its snapshot.
pub(super) fn decode_checkpoint(mut file: Vec<u8>) -> Result<(LogPosition, Vec<u8>), Corruption> {
    let part = Part::Checkpoint;
    if file.len() < CHECKPOINT_HEADER_LEN {
        return Err(Corruption::IncompleteHeader {
            part,
            available: file.len() as u64,
        });
    }
    if file[..8] != CHECKPOINT_MAGIC {
        return Err(Corruption::BadMagic { part });
    }
    let declared = u64_at(&file, 20);
    let available = (file.len() - CHECKPOINT_HEADER_LEN) as u64;
    if declared > available {
        return Err(Corruption::IncompleteBody {
            part,
            declared,
            available,
        });
    }
    if declared < available {
        return Err(Corruption::TrailingBytes {
            declared,
            available,
        });
    }
    let (stored, computed) = (
        u32_at(&file, 28),
        checksum(&file[..28], &file[CHECKPOINT_HEADER_LEN..]),
    );
    if stored != computed {
        return Err(Corruption::BadChecksum {
            part,
            stored,
            computed,
        });
    }
    if file[8] != VERSION {
        return Err(Corruption::BadVersion {
            part,
            found: file[8],
        });
    }
    let covers = LogPosition(u64_at(&file, 12));
    file.drain(..CHECKPOINT_HEADER_LEN);
    Ok((covers, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(first: u64, records: &[&[u8]]) -> Vec<u8> {
        let mut builder = FrameBuilder::new();
        for record in records {
            builder.push(record);
        }
        builder.seal(LogPosition(first))
    }

    #[test]
    fn a_frame_round_trips() {
        let mut file = vec![7; 3];
        file.extend(frame_of(5, &[b"one", b"", b"three"]));
        let frame = decode_frame(&file, 3).unwrap();
        assert_eq!(frame.first, LogPosition(5));
        assert_eq!(frame.len, file.len() - 3);
        let records: Vec<&[u8]> = frame.records.iter().map(|r| &file[r.clone()]).collect();
        assert_eq!(records, [&b"one"[..], b"", b"three"]);
    }

    #[test]
    fn every_single_byte_change_of_a_frame_is_caught() {
        let frame = frame_of(9, &[b"alpha", b"beta"]);
        for at in 0..frame.len() {
            let mut damaged = frame.clone();
            damaged[at] ^= 0x20;
            let error = decode_frame(&damaged, 0).unwrap_err();
            assert!(error.could_be_torn(), "byte {at}: {error}");
        }
    }

    #[test]
    fn every_cut_of_a_frame_is_incomplete() {
        let frame = frame_of(0, &[b"alpha"]);
        for len in 0..frame.len() {
            let error = decode_frame(&frame[..len], 0).unwrap_err();
            assert!(
                matches!(
                    error,
                    Corruption::IncompleteHeader { .. } | Corruption::IncompleteBody { .. }
                ),
                "cut at {len}: {error}"
            );
        }
    }

    #[test]
    fn zeros_are_not_a_frame() {
        for len in 0..40 {
            let zeros = vec![0; len];
            if len > 0 {
                let error = decode_frame(&zeros, 0).unwrap_err();
                assert_eq!(
                    error,
                    Corruption::BadMagic { part: Part::Frame },
                    "{len} zeros"
                );
            }
            assert_eq!(valid_frame_after(&zeros, 0), None);
        }
    }

    #[test]
    fn a_frame_with_a_valid_checksum_but_bad_records_is_malformed() {
        // The count says two records, the body holds one.
        let mut frame = frame_of(0, &[b"only"]);
        frame[16..20].copy_from_slice(&2u32.to_le_bytes());
        let sum = checksum(&frame[..20], &frame[FRAME_HEADER_LEN..]);
        frame[20..24].copy_from_slice(&sum.to_le_bytes());
        let error = decode_frame(&frame, 0).unwrap_err();
        assert_eq!(error, Corruption::MalformedFrame);
        assert!(!error.could_be_torn());
    }

    #[test]
    fn segment_headers_and_checkpoints_round_trip_and_catch_damage() {
        let header = segment_header(LogPosition(42));
        assert_eq!(decode_segment_header(&header), Ok(LogPosition(42)));
        let checkpoint = encode_checkpoint(LogPosition(7), b"state");
        assert_eq!(
            decode_checkpoint(checkpoint.clone()),
            Ok((LogPosition(7), b"state".to_vec()))
        );
        for at in 0..header.len() {
            let mut damaged = header;
            damaged[at] ^= 1;
            assert!(decode_segment_header(&damaged).is_err(), "byte {at}");
        }
        for at in 0..checkpoint.len() {
            let mut damaged = checkpoint.clone();
            damaged[at] ^= 1;
            assert!(decode_checkpoint(damaged).is_err(), "byte {at}");
        }
        let mut longer = checkpoint;
        longer.push(0);
        assert!(matches!(
            decode_checkpoint(longer),
            Err(Corruption::TrailingBytes { .. })
        ));
    }
}
