//! Fuzzes the datagram decoder with two readings of each input: as a whole
//! datagram (exercising the header checks), and as the payload of a correctly
//! framed datagram (so that the input reaches postcard past the checksum).
//! Decoding must never panic, and whatever decodes must survive a round trip.
//! The payload type is the node's [`Wire`], exactly what `haft node` decodes
//! from every datagram it receives.
#![no_main]

use haft::runtime::codec::{Frame, decode, encode, encode_bytes};
use haft::runtime::node::Wire;
use libfuzzer_sys::fuzz_target;

fn check(datagram: &[u8]) {
    if let Ok(frame) = decode::<Wire>(datagram) {
        let again = encode(frame.sender, &frame.payload).expect("a decoded message re-encodes");
        let back: Frame<Wire> = decode(&again).expect("a re-encoded message decodes");
        assert_eq!(back, frame);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(framed) = encode_bytes(7, data) {
        check(&framed);
    }
});
