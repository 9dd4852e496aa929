//! Balance and movement of the ring, the figures of verification/REPORT.md
//! ("Ring"): `cargo run --release --example ring_balance`.
//!
//! For 100 nodes of weight 1 and vnodes in {1, 10, 100, 160, 1000}, over
//! 1,000,000 seeded 20-byte keys: the coefficient of variation (CV) of per-node
//! load beside 1/√vnodes (one ring, and the mean over four rings with other
//! node names, as `tests/ring_props.rs` checks it), the busiest node over the
//! mean, and the share of keys that move when a 101st node joins, beside the
//! ideal 1/(n+1). Then the seed's `h(key) mod n` for the same change, and the
//! ring's memory.

#[path = "../tests/support/mod.rs"]
mod support;

use haft::ring::key_position;
use haft::ring::seed::modular_owner;

const NODES: usize = 100;
const KEYS: usize = 1_000_000;

fn main() {
    let keys = support::sample_keys(KEYS, 1);
    let positions: Vec<u64> = keys.iter().map(|key| key_position(key)).collect();
    let ideal_moved = 1.0 / (NODES as f64 + 1.0);

    println!(
        "{NODES} nodes, {KEYS} keys; moved = keys whose owner changes when node {NODES} joins"
    );
    println!(
        "| vnodes | CV | mean CV of 4 rings | 1/√vnodes | mean CV × √vnodes | max/mean | moved (keys) | moved (arc) | ideal 1/(n+1) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for vnodes in [1u32, 10, 100, 160, 1000] {
        let ring = support::ring_of(NODES, vnodes);
        let loads = support::loads(&ring, &positions);
        let cv = support::coefficient_of_variation(&loads);
        let mean_cv = support::mean_cv(NODES, vnodes, &positions);
        let expected_cv = 1.0 / f64::from(vnodes).sqrt();
        let mean = KEYS as f64 / NODES as f64;
        let max_over_mean = loads.iter().copied().max().unwrap_or(0) as f64 / mean;
        let grown = ring
            .with_node(support::node_name(NODES), 1)
            .expect("the new name is not on the ring");
        let moved_keys = support::moved_share(&ring, &grown, &positions);
        let moved_arc = ring.migration_to(&grown, 1).owner_moved_fraction();
        println!(
            "| {vnodes} | {cv:.4} | {mean_cv:.4} | {expected_cv:.4} | {:.3} | {max_over_mean:.3} | {moved_keys:.5} | {moved_arc:.5} | {ideal_moved:.5} |",
            mean_cv / expected_cv
        );
    }

    let modular_moved = keys
        .iter()
        .filter(|key| {
            modular_owner(key.as_slice(), NODES) != modular_owner(key.as_slice(), NODES + 1)
        })
        .count() as f64
        / KEYS as f64;
    println!();
    println!(
        "seed's h(key) mod n, {NODES} → {} nodes: moved {modular_moved:.5} (ideal {ideal_moved:.5})",
        NODES + 1
    );

    let ring = support::ring_of(NODES, 160);
    println!(
        "memory of the 100 × 160 ring: {} points, {} bytes on the heap ({:.1} bytes per point)",
        ring.point_count(),
        ring.heap_bytes(),
        ring.heap_bytes() as f64 / ring.point_count() as f64
    );
}
