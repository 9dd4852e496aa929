//! Datagram framing: each message in one UDP datagram, or in several
//! fragments when it is larger than a datagram; every datagram optionally
//! authenticated with an HMAC-SHA256 tag under the cluster key.
//!
//! # Layout
//!
//! A datagram is a fixed 38-byte header, the tag if the datagram is tagged,
//! then its share of the message, serialized with [postcard]. Every multi-byte
//! integer is little-endian.
//!
//! | offset | size | field | value |
//! |---:|---:|---|---|
//! | 0 | 4 | magic | `HAFT` ([`MAGIC`]) |
//! | 4 | 1 | version | [`VERSION`] |
//! | 5 | 1 | flags | bit 0: the datagram carries a tag; other bits 0 |
//! | 6 | 8 | sender | the sending node's id (or a client's), `u64` |
//! | 14 | 8 | message | the sender's number for the message, shared by its fragments, `u64` |
//! | 22 | 2 | index | this fragment's place, from 0, `u16` |
//! | 24 | 2 | count | the message's fragments, at least 1, `u16` |
//! | 26 | 4 | total | the whole message's length in bytes, `u32`, at most [`MAX_MESSAGE`] |
//! | 30 | 4 | length | this datagram's payload length in bytes, `u32` |
//! | 34 | 4 | checksum | CRC-32 (IEEE) of bytes 0..34 followed by the payload, `u32` |
//! | 38 | 32 | tag | if flagged: HMAC-SHA256 under the cluster key of bytes 0..38 followed by the payload |
//! | 38 or 70 | length | payload | bytes `index × MAX_FRAGMENT ..` of the message's postcard encoding |
//!
//! Fragment sizes are fixed by the header: every fragment but the last carries
//! exactly [`MAX_FRAGMENT`] bytes, and `count` is the least number of
//! fragments that holds `total` bytes (1 for an empty message). A header that
//! breaks these rules is refused before anything is buffered.
//!
//! Datagrams that a node sends one peer at the same moment may travel
//! together as one [`bundle`]: the datagrams in it are exactly these, each
//! checked on its own.
//!
//! # What the receiver sees: the models' network
//!
//! A message of one fragment is decoded on arrival. The fragments of a larger
//! message are collected by [`Reassembly`] in bounded memory (bytes held,
//! messages pending, age); once all have arrived the message is decoded, and
//! an incomplete one is dropped when it grows too old or must make room. A
//! fragment that arrives twice is ignored. So a large message is lost,
//! duplicated or reordered *as a whole*, like a small one: the receiver sees
//! exactly the unordered, duplicating, lossy network the models check against
//! (models/network.rs), whatever happens to the individual datagrams.
//!
//! # Authentication
//!
//! With a [`ClusterKey`], every datagram sent is tagged and every datagram
//! received must carry a correct tag, checked before its payload is read or
//! buffered: one without a tag, with a wrong one, or tagged when this side has
//! no key, is refused with [`DecodeError::BadTag`]. The tag covers the header
//! (sender, message number, fragment place) and the payload, so no part of a
//! datagram can be changed or moved into another message. It does not make a
//! datagram fresh: a recorded datagram can be sent again. A replay is a
//! duplicate delivered late, which the protocol already tolerates (see
//! [`crate::runtime::node`]).
//!
//! The checksum covers the header fields as well as the payload, so a flipped
//! bit anywhere is caught; a datagram with bytes to spare is rejected, never
//! half-read; the message must be consumed exactly by postcard.
//!
//! [`open`], [`decode`] and [`Reassembly::push`] never panic: whatever arrives
//! is either what was sent or a [`DecodeError`] saying what was wrong with it.
//! The node counts drops by [`DropKind`] and carries on.

pub mod bundle;
mod key;
mod reassembly;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

pub use key::{ClusterKey, KeyError, TAG_LEN};
pub use reassembly::{Reassembly, ReassemblyLimits, ReassemblyStats};

/// The first four bytes of every haft datagram.
pub const MAGIC: [u8; 4] = *b"HAFT";

/// The version of the layout described in the module doc. A node drops a
/// datagram of any other version.
pub const VERSION: u8 = 2;

/// The length of the header that precedes the tag and the payload.
pub const HEADER_LEN: usize = 38;

/// The largest datagram haft sends or accepts, header and tag included.
///
/// The largest UDP payload over IPv4 is 65,507 bytes; 65,000 stays below it
/// with room to spare.
pub const MAX_DATAGRAM: usize = 65_000;

/// The payload bytes of every fragment but a message's last: what a datagram
/// holds once a header and a tag are taken out (room for the tag is kept even
/// when there is none, so that fragment sizes never depend on the key).
pub const MAX_FRAGMENT: usize = MAX_DATAGRAM - HEADER_LEN - TAG_LEN;

/// The largest message, in bytes of its postcard encoding: room for a 64 MiB
/// value twice over with its transaction around it.
pub const MAX_MESSAGE: usize = 128 << 20;

/// The receive buffer a node should use: one byte more than
/// [`MAX_DATAGRAM`], so that a longer datagram (which the socket would cut to
/// the buffer's size) arrives with more than `MAX_DATAGRAM` bytes and is
/// reported as [`DecodeError::Oversized`] rather than as a truncated frame.
pub const RECV_BUFFER: usize = MAX_DATAGRAM + 1;

const FLAG_TAGGED: u8 = 1;

// Offsets of the header fields (see the module doc).
const FLAGS_AT: usize = 5;
const SENDER_AT: usize = 6;
const MESSAGE_AT: usize = 14;
const INDEX_AT: usize = 22;
const COUNT_AT: usize = 24;
const TOTAL_AT: usize = 26;
const LENGTH_AT: usize = 30;
const CHECKSUM_AT: usize = 34;

/// A decoded message: who sent it and what it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<T> {
    /// The sender's node id, as written in the header. The codec does not know
    /// the peers: the node drops a frame from an unknown sender
    /// ([`DropKind::UnknownSender`]).
    pub sender: u64,
    /// The message.
    pub payload: T,
}

/// One datagram that passed every check of [`open`]: a whole message
/// (`count == 1`) or one fragment of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The sender's id.
    pub sender: u64,
    /// The sender's number for the message.
    pub message: u64,
    /// This fragment's place.
    pub index: u16,
    /// The message's fragments.
    pub count: u16,
    /// The whole message's length.
    pub total: usize,
    /// This fragment's bytes.
    pub payload: &'a [u8],
}

/// Why a message could not be encoded. Nothing was sent.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// The message is larger than any datagram (for [`encode`]) or than
    /// [`MAX_MESSAGE`] (for [`encode_message`]).
    #[error(
        "the encoded message is {len} bytes, more than the {max}-byte limit; \
         write smaller values or fewer keys per transaction"
    )]
    Oversized {
        /// The length of the message (with its header, for [`encode`]).
        len: usize,
        /// The limit.
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
    /// The header's fragment fields contradict each other or the limits.
    #[error("bad header: {reason}; the sender framed it wrongly")]
    BadHeader {
        /// Which rule of the layout the header breaks.
        reason: &'static str,
    },
    /// The datagram holds more bytes than its header announces.
    #[error(
        "the header announces a {declared}-byte payload but {actual} bytes follow it; \
         the sender framed it wrongly"
    )]
    BadLength {
        /// The payload length written in the header.
        declared: usize,
        /// The number of bytes that follow the header (and tag).
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
    /// The datagram's authentication does not match this node's cluster key.
    #[error("{reason}; give every node (and client) the same cluster_key_file")]
    BadTag {
        /// What was wrong: no tag, a wrong tag, or a tag this side has no key for.
        reason: &'static str,
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
            DecodeError::BadHeader { .. } => DropKind::BadHeader,
            DecodeError::BadLength { .. } => DropKind::BadLength,
            DecodeError::BadChecksum { .. } => DropKind::BadChecksum,
            DecodeError::BadTag { .. } => DropKind::BadTag,
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
    /// [`DecodeError::BadHeader`].
    BadHeader,
    /// [`DecodeError::BadLength`].
    BadLength,
    /// [`DecodeError::BadChecksum`].
    BadChecksum,
    /// [`DecodeError::BadTag`].
    BadTag,
    /// [`DecodeError::Undecodable`].
    Undecodable,
    /// [`DecodeError::Oversized`].
    Oversized,
    /// A well-formed frame whose sender is not among the node's peers.
    UnknownSender,
}

impl DropKind {
    /// Every kind, in declaration order: to list all counters, zeros included.
    pub const ALL: [DropKind; 10] = [
        DropKind::Truncated,
        DropKind::BadMagic,
        DropKind::BadVersion,
        DropKind::BadHeader,
        DropKind::BadLength,
        DropKind::BadChecksum,
        DropKind::BadTag,
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
            DropKind::BadHeader => "bad_header",
            DropKind::BadLength => "bad_length",
            DropKind::BadChecksum => "bad_checksum",
            DropKind::BadTag => "bad_tag",
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

/// Whether `datagram` claims to be one fragment of a message sent in several
/// (a haft header whose fragment count is above one). Nothing is checked
/// beyond that claim: it tells a reader that more datagrams of the message
/// follow, not that this one is valid ([`open`] decides that).
pub fn is_fragment(datagram: &[u8]) -> bool {
    match datagram.split_first_chunk::<HEADER_LEN>() {
        Some((header, _)) => {
            header[..4] == MAGIC && u16::from_le_bytes(field(header, COUNT_AT)) > 1
        }
        None => false,
    }
}

/// The number of fragments a message of `total` bytes travels in.
pub fn fragment_count(total: usize) -> usize {
    total.div_ceil(MAX_FRAGMENT).max(1)
}

/// Encodes `payload` from `sender` as the datagrams of message number
/// `message`: one if it fits, else its fragments, each tagged under `key` if
/// one is given.
pub fn encode_message<T: Serialize>(
    sender: u64,
    message: u64,
    payload: &T,
    key: Option<&ClusterKey>,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let bytes = postcard::to_stdvec(payload).map_err(|error| EncodeError::Serialize {
        reason: error.to_string(),
    })?;
    frame_message(sender, message, &bytes, key)
}

/// Frames `bytes`, a message already serialized (or, in tests and the fuzz
/// target, arbitrary bytes), as the datagrams of message number `message`.
pub fn frame_message(
    sender: u64,
    message: u64,
    bytes: &[u8],
    key: Option<&ClusterKey>,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(EncodeError::Oversized {
            len: bytes.len(),
            max: MAX_MESSAGE,
        });
    }
    let count = fragment_count(bytes.len());
    let mut datagrams = Vec::with_capacity(count);
    let mut chunks = bytes.chunks(MAX_FRAGMENT);
    for index in 0..count {
        let chunk = chunks.next().unwrap_or(&[]);
        // Fits: count ≤ MAX_MESSAGE / MAX_FRAGMENT + 1 < u16::MAX, and
        // MAX_MESSAGE < u32::MAX.
        datagrams.push(seal(
            sender,
            message,
            index as u16,
            count as u16,
            bytes.len() as u32,
            chunk,
            key,
        ));
    }
    Ok(datagrams)
}

/// One datagram around `chunk`.
fn seal(
    sender: u64,
    message: u64,
    index: u16,
    count: u16,
    total: u32,
    chunk: &[u8],
    key: Option<&ClusterKey>,
) -> Vec<u8> {
    let tag_len = if key.is_some() { TAG_LEN } else { 0 };
    let mut datagram = Vec::with_capacity(HEADER_LEN + tag_len + chunk.len());
    datagram.extend_from_slice(&MAGIC);
    datagram.push(VERSION);
    datagram.push(if key.is_some() { FLAG_TAGGED } else { 0 });
    datagram.extend_from_slice(&sender.to_le_bytes());
    datagram.extend_from_slice(&message.to_le_bytes());
    datagram.extend_from_slice(&index.to_le_bytes());
    datagram.extend_from_slice(&count.to_le_bytes());
    datagram.extend_from_slice(&total.to_le_bytes());
    // Fits: a chunk is at most MAX_FRAGMENT bytes.
    datagram.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
    let sum = checksum(&datagram[..CHECKSUM_AT], chunk);
    datagram.extend_from_slice(&sum.to_le_bytes());
    if let Some(key) = key {
        let tag = key.tag(&datagram[..HEADER_LEN], chunk);
        datagram.extend_from_slice(&tag);
    }
    datagram.extend_from_slice(chunk);
    datagram
}

/// Encodes `payload` from `sender` as one untagged datagram (message number
/// 0), or refuses it if it does not fit in one. For tools and tests; nodes and
/// clients use [`encode_message`].
pub fn encode<T: Serialize>(sender: u64, payload: &T) -> Result<Vec<u8>, EncodeError> {
    let bytes = postcard::to_stdvec(payload).map_err(|error| EncodeError::Serialize {
        reason: error.to_string(),
    })?;
    encode_bytes(sender, &bytes)
}

/// Frames `payload`, bytes that are already a serialized message (or, in
/// tests and the fuzz target, are not), as one untagged datagram from
/// `sender`, with a correct header and checksum.
pub fn encode_bytes(sender: u64, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if payload.len() > MAX_FRAGMENT {
        return Err(EncodeError::Oversized {
            len: payload.len(),
            max: MAX_FRAGMENT,
        });
    }
    // Fits: below MAX_FRAGMENT.
    Ok(seal(sender, 0, 0, 1, payload.len() as u32, payload, None))
}

/// Checks one datagram: in order the size limit, magic, version, header
/// length, flags and fragment fields, payload length, checksum and, under
/// `key`, the tag. Returns the fragment it carries; its payload is not
/// deserialized yet (see [`decode_payload`] and [`Reassembly`]).
pub fn open<'a>(datagram: &'a [u8], key: Option<&ClusterKey>) -> Result<Fragment<'a>, DecodeError> {
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
    let Some((header, rest)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            len,
            needed: HEADER_LEN,
        });
    };
    let flags = header[FLAGS_AT];
    let sender = u64::from_le_bytes(field(header, SENDER_AT));
    let message = u64::from_le_bytes(field(header, MESSAGE_AT));
    let index = u16::from_le_bytes(field(header, INDEX_AT));
    let count = u16::from_le_bytes(field(header, COUNT_AT));
    let total = u32::from_le_bytes(field(header, TOTAL_AT)) as usize;
    let declared = u32::from_le_bytes(field(header, LENGTH_AT)) as usize;
    let bad = |reason| Err(DecodeError::BadHeader { reason });
    if flags & !FLAG_TAGGED != 0 {
        return bad("unknown flags are set");
    }
    if total > MAX_MESSAGE {
        return bad("the message is larger than MAX_MESSAGE");
    }
    if usize::from(count) != fragment_count(total) {
        return bad("the fragment count does not fit the message length");
    }
    if index >= count {
        return bad("the fragment index is not below the count");
    }
    let expected = if usize::from(index) + 1 < usize::from(count) {
        MAX_FRAGMENT
    } else {
        total - usize::from(index) * MAX_FRAGMENT
    };
    if declared != expected {
        return bad("the fragment length does not fit its place in the message");
    }
    let tag_len = if flags & FLAG_TAGGED != 0 { TAG_LEN } else { 0 };
    let needed = HEADER_LEN.saturating_add(tag_len).saturating_add(declared);
    if len < needed {
        return Err(DecodeError::Truncated { len, needed });
    }
    if len > needed {
        return Err(DecodeError::BadLength {
            declared,
            actual: len - HEADER_LEN - tag_len,
        });
    }
    let (tag, payload) = rest.split_at(tag_len);
    let expected = u32::from_le_bytes(field(header, CHECKSUM_AT));
    let actual = checksum(&header[..CHECKSUM_AT], payload);
    if expected != actual {
        return Err(DecodeError::BadChecksum { expected, actual });
    }
    match (key, tag_len) {
        (Some(_), 0) => {
            return Err(DecodeError::BadTag {
                reason: "the datagram carries no tag but this node requires one",
            });
        }
        (None, TAG_LEN) => {
            return Err(DecodeError::BadTag {
                reason: "the datagram is tagged but this node has no cluster key",
            });
        }
        (Some(key), _) if !key.verify(header, payload, tag) => {
            return Err(DecodeError::BadTag {
                reason: "the datagram's tag does not match this node's cluster key",
            });
        }
        _ => {}
    }
    Ok(Fragment {
        sender,
        message,
        index,
        count,
        total,
        payload,
    })
}

/// Deserializes a whole message's bytes as one `T`, requiring that nothing is
/// left over.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|error| DecodeError::Undecodable {
            reason: error.to_string(),
        })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::Undecodable {
            reason: format!("{} bytes left over after the message", rest.len()),
        })
    }
}

/// Decodes one untagged datagram that holds a whole message. A fragment of a
/// larger message is refused ([`DecodeError::BadHeader`]): it needs
/// [`Reassembly`].
pub fn decode<T: DeserializeOwned>(datagram: &[u8]) -> Result<Frame<T>, DecodeError> {
    let fragment = open(datagram, None)?;
    if fragment.count != 1 {
        return Err(DecodeError::BadHeader {
            reason: "a fragment of a larger message, outside reassembly",
        });
    }
    let payload = decode_payload(fragment.payload)?;
    Ok(Frame {
        sender: fragment.sender,
        payload,
    })
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
        assert_eq!(datagram[5], 0, "untagged");
        assert_eq!(datagram[6..14], 3u64.to_le_bytes());
        let length = u32::from_le_bytes(datagram[30..34].try_into().unwrap()) as usize;
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
                assert_eq!(max, MAX_FRAGMENT);
            }
            other => panic!("expected Oversized, got {other:?}"),
        }
        let huge = bytes::Bytes::from(vec![0u8; MAX_MESSAGE]);
        assert!(matches!(
            encode_message(1, 1, &huge, None),
            Err(EncodeError::Oversized {
                max: MAX_MESSAGE,
                ..
            })
        ));
    }

    #[test]
    fn a_large_message_travels_in_fixed_size_fragments() {
        let value = bytes::Bytes::from(vec![9u8; 5 * MAX_FRAGMENT]);
        let datagrams = encode_message(2, 77, &value, None).unwrap();
        assert_eq!(
            datagrams.len(),
            6,
            "5 full fragments and the length prefix's spill"
        );
        for (index, datagram) in datagrams.iter().enumerate() {
            assert!(datagram.len() <= MAX_DATAGRAM);
            let fragment = open(datagram, None).unwrap();
            assert_eq!((fragment.sender, fragment.message), (2, 77));
            assert_eq!((usize::from(fragment.index), fragment.count), (index, 6));
            assert!(is_fragment(datagram), "fragment {index}");
        }
        assert!(!is_fragment(&valid()), "a message in one datagram");
        assert!(!is_fragment(&datagrams[0][..HEADER_LEN - 1]), "no header");
        let mut other = datagrams[0].clone();
        other[0] = b'X';
        assert!(!is_fragment(&other), "not haft's magic");
        assert_eq!(
            decode::<bytes::Bytes>(&datagrams[0]).unwrap_err().kind(),
            DropKind::BadHeader,
            "a fragment is not a whole message"
        );
    }

    #[test]
    fn headers_that_break_the_fragment_rules_are_refused() {
        let value = bytes::Bytes::from(vec![1u8; 2 * MAX_FRAGMENT]);
        let datagrams = encode_message(2, 5, &value, None).unwrap();
        let rewrite = |datagram: &[u8], at: usize, bytes: &[u8]| {
            let mut changed = datagram.to_vec();
            changed[at..at + bytes.len()].copy_from_slice(bytes);
            changed
        };
        for (changed, why) in [
            (rewrite(&datagrams[0], FLAGS_AT, &[0x80]), "flags"),
            (
                rewrite(&datagrams[0], COUNT_AT, &2u16.to_le_bytes()),
                "count",
            ),
            (
                rewrite(&datagrams[0], INDEX_AT, &3u16.to_le_bytes()),
                "index",
            ),
            (
                rewrite(&datagrams[0], TOTAL_AT, &u32::MAX.to_le_bytes()),
                "total",
            ),
            (
                rewrite(&datagrams[2], LENGTH_AT, &7u32.to_le_bytes()),
                "length",
            ),
        ] {
            let error = open(&changed, None).unwrap_err();
            assert_eq!(error.kind(), DropKind::BadHeader, "{why}: {error}");
        }
    }

    #[test]
    fn tags_are_required_checked_and_refused_without_a_key() {
        let key = ClusterKey::new(b"the cluster secret").unwrap();
        let wrong = ClusterKey::new(b"another secret!!").unwrap();
        let tagged = encode_message(3, 1, &message(), Some(&key))
            .unwrap()
            .remove(0);
        let plain = encode_message(3, 1, &message(), None).unwrap().remove(0);
        assert_eq!(tagged.len(), plain.len() + TAG_LEN);
        let fragment = open(&tagged, Some(&key)).unwrap();
        assert_eq!(decode_payload::<Msg>(fragment.payload).unwrap(), message());
        for (datagram, key) in [
            (&tagged, Some(&wrong)),
            (&tagged, None),
            (&plain, Some(&key)),
        ] {
            assert_eq!(open(datagram, key).unwrap_err().kind(), DropKind::BadTag);
        }
        // The tag covers the header: the same payload under another sender
        // (checksum recomputed) no longer verifies.
        let mut moved = tagged.clone();
        moved[SENDER_AT] ^= 1;
        let sum = checksum(&moved[..CHECKSUM_AT], &moved[HEADER_LEN + TAG_LEN..]);
        moved[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        assert_eq!(
            open(&moved, Some(&key)).unwrap_err().kind(),
            DropKind::BadTag
        );
    }

    #[test]
    fn every_drop_kind_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            DropKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names.len(), DropKind::ALL.len());
    }
}
