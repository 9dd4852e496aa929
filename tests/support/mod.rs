//! Helpers shared by the ring's property tests, its benchmark and its
//! `ring_balance` example (the last two include this file by path).
// Each includer uses a different subset of these helpers.
#![allow(dead_code)]

use haft::ring::Ring;

/// `count` pseudo-random 20-byte keys from `seed` (splitmix64), the same on every
/// run and platform.
pub fn sample_keys(count: usize, seed: u64) -> Vec<[u8; 20]> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let mut key = [0u8; 20];
            for chunk in key.chunks_mut(8) {
                let bytes = next().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            key
        })
        .collect()
}

/// The id of the `index`-th node of [`ring_of`].
pub fn node_name(index: usize) -> String {
    format!("node-{index:04}")
}

/// Name prefixes of independent rings of the same shape: each name set places
/// its points elsewhere, so statistics averaged over them are more precise than
/// those of a single ring.
pub const RING_FAMILIES: [&str; 4] = ["node", "cache", "store", "shard"];

/// `nodes` nodes of weight 1, named by [`node_name`].
pub fn ring_of(nodes: usize, vnodes: u32) -> Ring {
    ring_named(RING_FAMILIES[0], nodes, vnodes)
}

/// `nodes` nodes of weight 1 named `{prefix}-0000`, `{prefix}-0001`, …
pub fn ring_named(prefix: &str, nodes: usize, vnodes: u32) -> Ring {
    (0..nodes)
        .fold(Ring::builder(vnodes), |builder, index| {
            builder.node(format!("{prefix}-{index:04}"), 1)
        })
        .build()
        .expect("a ring of at least one node with distinct names")
}

/// The CV of per-node load over `positions`, averaged over the rings of
/// [`RING_FAMILIES`].
pub fn mean_cv(nodes: usize, vnodes: u32, positions: &[u64]) -> f64 {
    RING_FAMILIES
        .iter()
        .map(|prefix| {
            coefficient_of_variation(&loads(&ring_named(prefix, nodes, vnodes), positions))
        })
        .sum::<f64>()
        / RING_FAMILIES.len() as f64
}

/// How many of `positions` each member of `ring` owns, by member index.
pub fn loads(ring: &Ring, positions: &[u64]) -> Vec<u64> {
    let mut loads = vec![0u64; ring.node_count()];
    for &position in positions {
        loads[ring.owner_index_at(position)] += 1;
    }
    loads
}

/// Population standard deviation over mean.
pub fn coefficient_of_variation(loads: &[u64]) -> f64 {
    let count = loads.len() as f64;
    let mean = loads.iter().sum::<u64>() as f64 / count;
    let variance = loads
        .iter()
        .map(|&load| (load as f64 - mean).powi(2))
        .sum::<f64>()
        / count;
    variance.sqrt() / mean
}

/// The share of `positions` whose owner differs between two rings.
pub fn moved_share(before: &Ring, after: &Ring, positions: &[u64]) -> f64 {
    let moved = positions
        .iter()
        .filter(|&&position| before.owner_at(position) != after.owner_at(position))
        .count();
    moved as f64 / positions.len() as f64
}
