//! Properties of the datagram codec (issue 5, "Codec"): every message survives
//! a round trip, and no input — random bytes, a random payload in a valid
//! frame, a valid frame with one byte changed or cut short — makes the decoder
//! panic or hand back a message other than the one that was sent.

use bytes::Bytes;
use haft::NodeId;
use haft::commit::{Msg, Outcome, ReadSet, Refusal, TxnId, Vote, WriteSet};
use haft::runtime::codec::{
    DecodeError, DropKind, Frame, HEADER_LEN, MAGIC, VERSION, decode, encode, encode_bytes,
};
use proptest::prelude::*;

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![Just(Outcome::Commit), Just(Outcome::Abort)]
}

fn txn() -> impl Strategy<Value = TxnId> {
    any::<u64>().prop_map(TxnId)
}

/// Every kind of message, with keys, values and peer lists of varied sizes
/// (non-ASCII text included).
fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::string::string_regex(&format!(".{{0,{max}}}"))
            .unwrap()
            .prop_map(Bytes::from),
        prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from),
    ]
}

fn refusal() -> impl Strategy<Value = Refusal> {
    prop_oneof![
        (bytes(8), txn()).prop_map(|(key, by)| Refusal::Locked { key, by }),
        bytes(8).prop_map(|key| Refusal::Changed { key }),
        Just(Refusal::Finished),
        bytes(8).prop_map(|key| Refusal::NotHeld { key }),
    ]
}

fn msg() -> impl Strategy<Value = Msg> {
    let writes = prop::collection::btree_map(bytes(8), prop::option::of(bytes(16)), 0..6);
    let reads = prop::collection::btree_map(bytes(8), prop::option::of(txn()), 0..4);
    let peers = prop::collection::vec(any::<u16>().prop_map(NodeId), 0..5);
    prop_oneof![
        (txn(), reads, writes, peers, txn()).prop_map(
            |(txn, reads, writes, peers, finished_below): (
                TxnId,
                ReadSet,
                WriteSet,
                Vec<NodeId>,
                TxnId
            )| {
                Msg::Prepare {
                    txn,
                    reads,
                    writes,
                    peers,
                    finished_below,
                }
            }
        ),
        (
            txn(),
            prop_oneof![Just(Vote::Yes), refusal().prop_map(Vote::No)]
        )
            .prop_map(|(txn, vote)| Msg::Vote { txn, vote }),
        (txn(), outcome()).prop_map(|(txn, outcome)| Msg::Outcome { txn, outcome }),
        (txn(), outcome()).prop_map(|(txn, outcome)| Msg::Ack { txn, outcome }),
        txn().prop_map(|txn| Msg::Query { txn }),
    ]
}

/// Decoding must not panic; if it succeeds, the frame must survive its own
/// round trip (so that no "success" is a half-read message).
fn decodes_consistently(bytes: &[u8]) -> Result<Frame<Msg>, DecodeError> {
    let result = decode::<Msg>(bytes);
    if let Ok(frame) = &result {
        let again = encode(frame.sender, &frame.payload).expect("a decoded frame re-encodes");
        assert_eq!(decode::<Msg>(&again).as_ref(), Ok(frame));
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_message_round_trips(sender in any::<u64>(), msg in msg()) {
        let datagram = encode(sender, &msg).unwrap();
        prop_assert_eq!(decode::<Msg>(&datagram), Ok(Frame { sender, payload: msg }));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = decodes_consistently(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut datagram = MAGIC.to_vec();
        datagram.push(VERSION);
        datagram.extend_from_slice(&bytes);
        let _ = decodes_consistently(&datagram);
    }

    #[test]
    fn arbitrary_payload_in_a_valid_frame_decodes_exactly_or_is_undecodable(
        sender in any::<u64>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let datagram = encode_bytes(sender, &payload).unwrap();
        match decodes_consistently(&datagram) {
            Ok(frame) => prop_assert_eq!(frame.sender, sender),
            Err(error) => prop_assert_eq!(error.kind(), DropKind::Undecodable),
        }
    }

    #[test]
    fn any_single_byte_change_is_detected(
        sender in any::<u64>(),
        msg in msg(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut datagram = encode(sender, &msg).unwrap();
        let at = position.index(datagram.len());
        datagram[at] ^= flip;
        let result = decodes_consistently(&datagram);
        prop_assert!(result.is_err(), "byte {} changed, decoded {:?}", at, result);
    }

    #[test]
    fn any_truncation_is_detected(
        sender in any::<u64>(),
        msg in msg(),
        cut in any::<prop::sample::Index>(),
    ) {
        let datagram = encode(sender, &msg).unwrap();
        let keep = cut.index(datagram.len());
        let error = decodes_consistently(&datagram[..keep]).unwrap_err();
        prop_assert_eq!(error.kind(), DropKind::Truncated);
    }

    #[test]
    fn any_extension_is_detected(
        sender in any::<u64>(),
        msg in msg(),
        extra in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut datagram = encode(sender, &msg).unwrap();
        datagram.extend_from_slice(&extra);
        let error = decodes_consistently(&datagram).unwrap_err();
        prop_assert_eq!(error.kind(), DropKind::BadLength);
    }
}

#[test]
fn the_header_is_38_bytes() {
    let datagram = encode(1, &Msg::Query { txn: TxnId(0) }).unwrap();
    assert_eq!(HEADER_LEN, 38);
    assert_eq!(datagram.len(), HEADER_LEN + 2);
}
