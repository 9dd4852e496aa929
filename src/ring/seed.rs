//! **The seed's placement — wrong, kept as a fixture.** Do not use it to place
//! data.
//!
//! The seed document's "consistent hashing" computes `h(key) mod n`. That is
//! modular hashing: when `n` changes, a key stays put only if `h mod n` and
//! `h mod n'` agree, which is about one key in `max(n, n')` — going from 100 to
//! 101 nodes moves about 99% of the keys, where a ring moves about 1%. (The
//! seed's `get_node` is broken as well: it compares an integer with hex digests
//! and never finds a node.) Tests and benchmarks compare [`Ring`](super::Ring)
//! with this function to show the difference.

use super::key_position;

/// The seed's `h(key) mod n`, with `h` = [`key_position`] so that it differs
/// from the ring only in the placement rule. `None` when there are no nodes.
pub fn modular_owner(key: &[u8], nodes: usize) -> Option<usize> {
    let nodes = u64::try_from(nodes).ok().filter(|&n| n > 0)?;
    // The remainder is below `nodes`, which came from a usize.
    Some((key_position(key) % nodes) as usize)
}
