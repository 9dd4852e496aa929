//! Datagram framing: one protocol message per UDP datagram.
//!
//! A datagram is a fixed 21-byte header followed by the message, serialized
//! with [postcard]. Every multi-byte integer is little-endian.
//!
//! | offset | size | field | value |
//! |---:|---:|---|---|
//! | 0 | 4 | magic | `HAFT` ([`MAGIC`]) |
//! | 4 | 1 | version | [`VERSION`] |
//! | 5 | 8 | sender | the sending node's id, `u64` |
//! | 13 | 4 | length | the payload's length in bytes, `u32` |
//! | 17 | 4 | checksum | CRC-32 (IEEE) of bytes 0..17 followed by the payload, `u32` |
//! | 21 | length | payload | the postcard encoding of the message |
//!
//! The checksum covers the header fields as well as the payload, so a flipped
//! bit in the sender id is caught like one in the message. The payload must be
//! exactly `length` bytes long and postcard must consume all of it: a datagram
//! with bytes to spare is rejected, never half-read.
//!
//! [`decode`] never panics: whatever arrives is either the frame that was sent
//! or a [`DecodeError`] saying what was wrong with it. The node counts drops by
//! [`DropKind`] and carries on.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// The first four bytes of every haft datagram.
pub const MAGIC: [u8; 4] = *b"HAFT";

/// The version of the layout described in the module doc. A node drops a
/// datagram of any other version.
pub const VERSION: u8 = 1;

/// The length of the header that precedes the payload.
pub const HEADER_LEN: usize = 21;

/// The largest datagram haft sends or accepts, header included.
///
/// The largest UDP payload over IPv4 is 65,507 bytes; 65,000 stays below it
/// with room to spare, so an encoded frame always fits one datagram. Messages
/// of two-phase commit are far smaller; only a transaction with very many
/// writes at one participant comes near the limit, and [`encode`] refuses it
/// with [`EncodeError::Oversized`] instead of sending a datagram that the
/// network would cut.
pub const MAX_DATAGRAM: usize = 65_000;

/// The receive buffer a node should use: one byte more than
/// [`MAX_DATAGRAM`], so that a longer datagram (which the socket would cut to
/// the buffer's size) arrives with more than `MAX_DATAGRAM` bytes and is
/// reported as [`DecodeError::Oversized`] rather than as a truncated frame.
pub const RECV_BUFFER: usize = MAX_DATAGRAM + 1;

/// A decoded datagram: who sent it and what it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<T> {
    /// The sender's node id, as written in the header. The codec does not know
    /// the peers: the node drops a frame from an unknown sender
    /// ([`DropKind::UnknownSender`]).
    pub sender: u64,
    /// The message.
    pub payload: T,
}

/// Why a message could not be encoded. Nothing was sent.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// The frame would be larger than one datagram may be.
    #[error(
        "the encoded message is {len} bytes, more than the {max}-byte datagram limit; \
         send fewer writes per transaction at one participant"
    )]
    Oversized {
        /// The length the frame would have, header included.
        len: usize,
        /// [`MAX_DATAGRAM`].
        max: usize,
    },
    /// postcard could not serialize the message.
    #[error(
        "the message cannot be serialized with postcard: {reason}; \
         this is a bug in the message type, please report it"
    )]
    Serialize {
        /// postcard's description of the failure.
        reason: String,
    },
}

/// Why a datagram was dropped. Every variant says what was wrong; none means
/// that the node's state changed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The datagram is shorter than its header, or than the payload its header
    /// announces.
    #[error(
        "truncated datagram: {len} bytes, but {needed} are needed; \
         the sender or the network cut it short"
    )]
    Truncated {
        /// The datagram's length.
        len: usize,
        /// The length the header (or the header alone) requires.
        needed: usize,
    },
    /// The datagram does not start with [`MAGIC`]: it is not haft's.
    #[error(
        "bad magic {found:02x?}, expected {MAGIC:02x?} (\"HAFT\"); \
         something other than a haft node is sending to this port"
    )]
    BadMagic {
        /// The first four bytes of the datagram.
        found: [u8; 4],
    },
    /// The datagram is from another version of haft's layout.
    #[error(
        "datagram version {found}, but this node speaks version {VERSION}; \
         run the same haft version on every node"
    )]
    BadVersion {
        /// The version byte of the datagram.
        found: u8,
    },
    /// The datagram holds more bytes than its header announces.
    #[error(
        "the header announces a {declared}-byte payload but {actual} bytes follow it; \
         the sender framed it wrongly"
    )]
    BadLength {
        /// The payload length written in the header.
        declared: usize,
        /// The number of bytes that follow the header.
        actual: usize,
    },
    /// The checksum does not match the header and payload: corrupted in
    /// flight.
    #[error(
        "checksum mismatch: the header says {expected:#010x}, the content gives {actual:#010x}; \
         the datagram was corrupted on the way"
    )]
    BadChecksum {
        /// The checksum written in the header.
        expected: u32,
        /// The checksum of what arrived.
        actual: u32,
    },
    /// The payload is not a postcard-encoded message of the expected type, or
    /// it has bytes left over after the message.
    #[error(
        "undecodable payload: {reason}; \
         the sender runs an incompatible message type under the same version"
    )]
    Undecodable {
        /// What postcard (or the check for leftover bytes) reported.
        reason: String,
    },
    /// The datagram is longer than [`MAX_DATAGRAM`].
    #[error(
        "oversized datagram: {len} bytes, more than the {max}-byte limit; \
         haft never sends one this large"
    )]
    Oversized {
        /// The datagram's length (at least `max + 1` when read through a
        /// [`RECV_BUFFER`]-sized buffer).
        len: usize,
        /// [`MAX_DATAGRAM`].
        max: usize,
    },
}

impl DecodeError {
    /// The drop counter this error increments.
    pub fn kind(&self) -> DropKind {
        match self {
            DecodeError::Truncated { .. } => DropKind::Truncated,
            DecodeError::BadMagic { .. } => DropKind::BadMagic,
            DecodeError::BadVersion { .. } => DropKind::BadVersion,
            DecodeError::BadLength { .. } => DropKind::BadLength,
            DecodeError::BadChecksum { .. } => DropKind::BadChecksum,
            DecodeError::Undecodable { .. } => DropKind::Undecodable,
            DecodeError::Oversized { .. } => DropKind::Oversized,
        }
    }
}

/// The kinds of dropped datagram, one per [`DecodeError`] variant plus
/// [`DropKind::UnknownSender`], which the node detects: a key for per-kind
/// drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropKind {
    /// [`DecodeError::Truncated`].
    Truncated,
    /// [`DecodeError::BadMagic`].
    BadMagic,
    /// [`DecodeError::BadVersion`].
    BadVersion,
    /// [`DecodeError::BadLength`].
    BadLength,
    /// [`DecodeError::BadChecksum`].
    BadChecksum,
    /// [`DecodeError::Undecodable`].
    Undecodable,
    /// [`DecodeError::Oversized`].
    Oversized,
    /// A well-formed frame whose sender is not among the node's peers.
    UnknownSender,
}

impl DropKind {
    /// Every kind, in declaration order: to list all counters, zeros included.
    pub const ALL: [DropKind; 8] = [
        DropKind::Truncated,
        DropKind::BadMagic,
        DropKind::BadVersion,
        DropKind::BadLength,
        DropKind::BadChecksum,
        DropKind::Undecodable,
        DropKind::Oversized,
        DropKind::UnknownSender,
    ];

    /// A stable snake_case name, for counters in status output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Truncated => "truncated",
            DropKind::BadMagic => "bad_magic",
            DropKind::BadVersion => "bad_version",
            DropKind::BadLength => "bad_length",
            DropKind::BadChecksum => "bad_checksum",
            DropKind::Undecodable => "undecodable",
            DropKind::Oversized => "oversized",
            DropKind::UnknownSender => "unknown_sender",
        }
    }
}

/// The CRC-32 of `header` followed by `body`: the checksum of datagrams and
/// of durable files.
pub(crate) fn checksum(header: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(body);
    hasher.finalize()
}

// Offsets of the header fields (see the module doc).
const SENDER_AT: usize = 5;
const LENGTH_AT: usize = 13;
const CHECKSUM_AT: usize = 17;

/// Encodes `payload` from `sender` as one datagram.
pub fn encode<T: Serialize>(sender: u64, payload: &T) -> Result<Vec<u8>, EncodeError> {
    let datagram =
        postcard::to_extend(payload, header(sender)).map_err(|error| EncodeError::Serialize {
            reason: error.to_string(),
        })?;
    seal(datagram)
}

/// Frames `payload`, bytes that are already a serialized message (or, in
/// tests and the fuzz target, are not), as one datagram from `sender`, with a
/// correct length and checksum.
pub fn encode_bytes(sender: u64, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut datagram = header(sender);
    datagram.extend_from_slice(payload);
    seal(datagram)
}

/// The header of a datagram from `sender`, its length and checksum still zero.
fn header(sender: u64) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(64);
    datagram.extend_from_slice(&MAGIC);
    datagram.push(VERSION);
    datagram.extend_from_slice(&sender.to_le_bytes());
    datagram.extend_from_slice(&[0; 8]);
    datagram
}

/// Fills in the length and checksum of a datagram whose payload follows its
/// header, or refuses it if it is too long.
fn seal(mut datagram: Vec<u8>) -> Result<Vec<u8>, EncodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(EncodeError::Oversized {
            len: datagram.len(),
            max: MAX_DATAGRAM,
        });
    }
    // Fits: the payload is below MAX_DATAGRAM, far below u32::MAX.
    let length = (datagram.len() - HEADER_LEN) as u32;
    datagram[LENGTH_AT..CHECKSUM_AT].copy_from_slice(&length.to_le_bytes());
    let sum = checksum(&datagram[..CHECKSUM_AT], &datagram[HEADER_LEN..]);
    datagram[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
    Ok(datagram)
}

/// Decodes one datagram. Checks, in order: size limit, magic, version, header
/// length, payload length, checksum, and finally the payload itself, which
/// must be consumed exactly.
pub fn decode<T: DeserializeOwned>(datagram: &[u8]) -> Result<Frame<T>, DecodeError> {
    let len = datagram.len();
    if len > MAX_DATAGRAM {
        return Err(DecodeError::Oversized {
            len,
            max: MAX_DATAGRAM,
        });
    }
    let Some(magic) = datagram.first_chunk::<4>() else {
        return Err(DecodeError::Truncated {
            len,
            needed: HEADER_LEN,
        });
    };
    if *magic != MAGIC {
        return Err(DecodeError::BadMagic { found: *magic });
    }
    if let Some(&found) = datagram.get(4)
        && found != VERSION
    {
        return Err(DecodeError::BadVersion { found });
    }
    let Some((header, body)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            len,
            needed: HEADER_LEN,
        });
    };
    let sender = u64::from_le_bytes(field(header, SENDER_AT));
    let declared = u32::from_le_bytes(field(header, LENGTH_AT)) as usize;
    if declared > body.len() {
        return Err(DecodeError::Truncated {
            len,
            needed: HEADER_LEN.saturating_add(declared),
        });
    }
    if declared < body.len() {
        return Err(DecodeError::BadLength {
            declared,
            actual: body.len(),
        });
    }
    let expected = u32::from_le_bytes(field(header, CHECKSUM_AT));
    let actual = checksum(&header[..CHECKSUM_AT], body);
    if expected != actual {
        return Err(DecodeError::BadChecksum { expected, actual });
    }
    let payload = decode_exact(body).map_err(|reason| DecodeError::Undecodable { reason })?;
    Ok(Frame { sender, payload })
}

/// Deserializes `bytes` as one `T` with postcard, requiring that nothing is
/// left over.
fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|error| error.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} bytes left over after the message", rest.len()))
    }
}

/// The `N` header bytes at `at`.
fn field<const N: usize>(header: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&header[at..at + N]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::{Msg, Outcome, TxnId};

    fn message() -> Msg {
        Msg::Outcome {
            txn: TxnId(7),
            outcome: Outcome::Commit,
        }
    }

    fn valid() -> Vec<u8> {
        encode(3, &message()).unwrap()
    }

    fn decode_msg(bytes: &[u8]) -> Result<Frame<Msg>, DecodeError> {
        decode(bytes)
    }

    /// A correctly framed datagram around `valid()`'s payload altered by `change`.
    fn reframed(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut payload = valid()[HEADER_LEN..].to_vec();
        change(&mut payload);
        encode_bytes(3, &payload).unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let datagram = valid();
        assert_eq!(&datagram[..4], b"HAFT");
        assert_eq!(datagram[4], VERSION);
        assert_eq!(datagram[5..13], 3u64.to_le_bytes());
        let length = u32::from_le_bytes(datagram[13..17].try_into().unwrap()) as usize;
        assert_eq!(length, datagram.len() - HEADER_LEN);
        let frame = decode_msg(&datagram).unwrap();
        assert_eq!(frame.sender, 3);
        assert_eq!(frame.payload, message());
    }

    #[test]
    fn truncated_header_and_payload() {
        let datagram = valid();
        for cut in [0, 3, 5, HEADER_LEN - 1, HEADER_LEN, datagram.len() - 1] {
            let error = decode_msg(&datagram[..cut]).unwrap_err();
            assert_eq!(error.kind(), DropKind::Truncated, "cut at {cut}: {error}");
        }
    }

    #[test]
    fn bad_magic() {
        let mut datagram = valid();
        datagram[0] = b'X';
        let error = decode_msg(&datagram).unwrap_err();
        assert_eq!(error, DecodeError::BadMagic { found: *b"XAFT" });
        assert!(
            error.to_string().contains("other than a haft node"),
            "{error}"
        );
    }

    #[test]
    fn bad_version() {
        let mut datagram = valid();
        datagram[4] = VERSION + 1;
        assert_eq!(
            decode_msg(&datagram).unwrap_err(),
            DecodeError::BadVersion { found: VERSION + 1 }
        );
    }

    #[test]
    fn trailing_bytes_are_a_bad_length() {
        let mut datagram = valid();
        datagram.push(0);
        let error = decode_msg(&datagram).unwrap_err();
        assert_eq!(error.kind(), DropKind::BadLength, "{error}");
    }

    #[test]
    fn bad_checksum() {
        let mut datagram = valid();
        let last = datagram.len() - 1;
        datagram[last] ^= 0x40;
        assert_eq!(
            decode_msg(&datagram).unwrap_err().kind(),
            DropKind::BadChecksum
        );
        // The sender id is covered too.
        let mut datagram = valid();
        datagram[SENDER_AT] ^= 1;
        assert_eq!(
            decode_msg(&datagram).unwrap_err().kind(),
            DropKind::BadChecksum
        );
    }

    #[test]
    fn undecodable_payload() {
        // A variant index no Msg has, correctly framed and checksummed.
        let datagram = reframed(|payload| payload[0] = 0x7f);
        let error = decode_msg(&datagram).unwrap_err();
        assert_eq!(error.kind(), DropKind::Undecodable, "{error}");
    }

    #[test]
    fn payload_with_leftover_bytes_is_undecodable() {
        // A well-framed payload holding a message and one spare byte.
        let datagram = reframed(|payload| payload.push(0));
        let error = decode_msg(&datagram).unwrap_err();
        assert_eq!(error.kind(), DropKind::Undecodable);
        assert!(error.to_string().contains("1 bytes left over"), "{error}");
    }

    #[test]
    fn oversized_datagram() {
        let datagram = vec![0; RECV_BUFFER];
        assert_eq!(
            decode_msg(&datagram).unwrap_err(),
            DecodeError::Oversized {
                len: RECV_BUFFER,
                max: MAX_DATAGRAM
            }
        );
    }

    #[test]
    fn oversized_message_is_refused_by_encode() {
        let big = "x".repeat(MAX_DATAGRAM);
        match encode(1, &big) {
            Err(EncodeError::Oversized { len, max }) => {
                assert!(len > max);
                assert_eq!(max, MAX_DATAGRAM);
            }
            other => panic!("expected Oversized, got {other:?}"),
        }
    }

    #[test]
    fn every_drop_kind_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            DropKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names.len(), DropKind::ALL.len());
    }
}
