//! Fuzzes the datagram decoder with three readings of each input: as a whole
//! datagram (exercising the header and fragment checks), as the payload of a
//! correctly framed datagram (so that the input reaches postcard past the
//! checksum), and as a stream of datagrams fed to reassembly, untagged and
//! under a cluster key. Decoding must never panic, and whatever decodes must
//! survive a round trip. The payload type is the node's [`Wire`], exactly what
//! `haft node` decodes from every message it receives.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use haft::runtime::codec::{
    ClusterKey, Frame, Reassembly, ReassemblyLimits, decode, decode_payload, encode,
    encode_bytes, frame_message, open,
};
use haft::runtime::node::Wire;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static ClusterKey {
    static KEY: OnceLock<ClusterKey> = OnceLock::new();
    KEY.get_or_init(|| ClusterKey::new(b"the fuzzer's cluster key").expect("long enough"))
}

fn check(datagram: &[u8]) {
    if let Ok(frame) = decode::<Wire>(datagram) {
        let again = encode(frame.sender, &frame.payload).expect("a decoded message re-encodes");
        let back: Frame<Wire> = decode(&again).expect("a re-encoded message decodes");
        assert_eq!(back, frame);
    }
    let _ = open(datagram, Some(key()));
}

/// Cuts `data` into datagrams at the lengths its first bytes name, and feeds
/// them all to one reassembly, with and without the key.
fn reassemble(data: &[u8]) {
    let from: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let limits = ReassemblyLimits {
        max_bytes: 1 << 20,
        max_messages: 4,
        max_age: Duration::from_millis(5),
    };
    for key in [None, Some(key())] {
        let mut reassembly = Reassembly::new(limits);
        let start = Instant::now();
        let mut rest = data;
        let mut step = 0u64;
        while let Some((&len, tail)) = rest.split_first() {
            let cut = usize::from(len).min(tail.len());
            let (datagram, after) = tail.split_at(cut);
            rest = after;
            step += 1;
            if let Ok(fragment) = open(datagram, key) {
                let now = start + Duration::from_millis(step);
                if let Some(message) = reassembly.push(from, &fragment, now) {
                    let _ = decode_payload::<Wire>(&message);
                }
            }
            assert!(reassembly.held_bytes() <= limits.max_bytes);
        }
    }
    // And the input as a message split into tagged fragments comes back whole.
    if let Ok(datagrams) = frame_message(5, 1, data, Some(key())) {
        let mut reassembly = Reassembly::default();
        let mut whole = None;
        for datagram in datagrams.iter().rev() {
            let fragment = open(datagram, Some(key())).expect("a tagged fragment opens");
            whole = whole.or(reassembly.push(from, &fragment, Instant::now()));
        }
        assert_eq!(whole.as_deref(), Some(data));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(framed) = encode_bytes(7, data) {
        check(&framed);
    }
    reassemble(data);
});
