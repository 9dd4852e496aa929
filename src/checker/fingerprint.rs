//! 64-bit fingerprints of states.
//!
//! A state is identified by a 64-bit hash of its `Hash` image, as TLC and
//! stateright do. With n states the chance that two of them share a fingerprint
//! is about n²/2⁶⁵: 3·10⁻⁶ at ten million states. aHash with fixed keys is fast
//! on the many small writes a derived `Hash` makes, mixes well, and is already
//! in the build through stateright.

use std::hash::Hash;

const KEYS: [u64; 4] = [
    0x243F_6A88_85A3_08D3,
    0x1319_8A2E_0370_7344,
    0xA409_3822_299F_31D0,
    0x082E_FA98_EC4E_6C89,
];

/// The fingerprint of `value`: never 0, which the visited-state table uses to
/// mark an empty slot.
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let state = ahash::RandomState::with_seeds(KEYS[0], KEYS[1], KEYS[2], KEYS[3]);
    state.hash_one(value).max(1)
}
