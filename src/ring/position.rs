//! Where keys and points sit on the ring: the fixed byte layouts hashed with SHA-1.
//!
//! The hash space is the 64-bit circle `0..2^64`, read clockwise as increasing
//! numbers that wrap from `u64::MAX` to `0`. Both layouts below are part of
//! haft's contract: two processes, on any platform and with any Rust version,
//! place every key and every point identically. Nothing here uses std's `Hash`
//! or `RandomState`, whose output is neither specified nor stable.
//!
//! - **Key position**: SHA-1 of the key's raw bytes, exactly as given (no length
//!   prefix, no terminator); the position is the first 8 bytes of the digest read
//!   as a big-endian `u64`.
//! - **Point position** of vnode `v` of a node: SHA-1 of the node id's UTF-8
//!   bytes followed by `v` as a big-endian `u32` (4 bytes); again the first 8
//!   bytes of the digest, big-endian. Because the index is a fixed 4-byte
//!   suffix, distinct `(id, v)` pairs always hash distinct messages.

use sha1::{Digest, Sha1};

/// The position of `key` on the ring: the first 8 bytes, big-endian, of
/// SHA-1(`key`).
///
/// ```
/// // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d
/// assert_eq!(haft::ring::key_position(b"abc"), 0xa999_3e36_4706_816a);
/// ```
#[inline]
pub fn key_position(key: &[u8]) -> u64 {
    if key.len() <= SINGLE_BLOCK_MAX {
        single_block_position(key)
    } else {
        leading_u64(Sha1::digest(key).as_slice())
    }
}

/// The longest message whose SHA-1 padding fits one 64-byte block: the message,
/// the 0x80 byte, and the 8-byte bit length.
const SINGLE_BLOCK_MAX: usize = 64 - 1 - 8;

/// SHA-1's initial hash value (FIPS 180-4, §5.3.1).
const SHA1_INITIAL: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// [`key_position`] for keys of at most [`SINGLE_BLOCK_MAX`] bytes: the same
/// SHA-1, with the padding (FIPS 180-4, §5.1.1) written directly into one block
/// and the position read from the first two state words. Going through
/// `Digest` instead serialises the state to bytes on the stack and reads them
/// back, a round trip that sits on the critical path of every lookup.
#[inline]
fn single_block_position(key: &[u8]) -> u64 {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    block[key.len()] = 0x80;
    let bit_length = (key.len() as u64) * 8;
    block[56..].copy_from_slice(&bit_length.to_be_bytes());
    let mut state = SHA1_INITIAL;
    sha1::block_api::compress(&mut state, &[block]);
    (u64::from(state[0]) << 32) | u64::from(state[1])
}

/// The position of vnode `vnode` of the node whose id is `node_id`: the first 8
/// bytes, big-endian, of SHA-1(`node_id` bytes ‖ `vnode` as big-endian `u32`).
pub fn point_position(node_id: &str, vnode: u32) -> u64 {
    let mut hasher = Sha1::new();
    hasher.update(node_id.as_bytes());
    hasher.update(vnode.to_be_bytes());
    leading_u64(hasher.finalize().as_slice())
}

/// The first 8 bytes of a SHA-1 digest (always 20 bytes long) as a big-endian `u64`.
#[inline]
fn leading_u64(digest: &[u8]) -> u64 {
    let mut leading = [0u8; 8];
    leading.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(leading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_position_is_the_leading_digest_bytes() {
        // SHA-1("") = da39a3ee 5e6b4b0d 3255bfef 95601890 afd80709
        assert_eq!(key_position(b""), 0xda39_a3ee_5e6b_4b0d);
    }

    #[test]
    fn the_single_block_path_is_sha1() {
        let message: Vec<u8> = (0..=200u8).collect();
        for len in 0..message.len() {
            let key = &message[..len];
            let expected = leading_u64(Sha1::digest(key).as_slice());
            assert_eq!(key_position(key), expected, "length {len}");
        }
    }

    #[test]
    fn point_position_hashes_id_then_big_endian_index() {
        let mut message = b"node-a".to_vec();
        message.extend_from_slice(&[0, 0, 1, 2]);
        assert_eq!(point_position("node-a", 0x0102), key_position(&message));
        assert_ne!(point_position("node-a", 0), point_position("node-a", 1));
    }
}
