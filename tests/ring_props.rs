//! Properties of the consistent-hash ring (issue 3, "Properties").
//!
//! Statistical tolerances: a node with `k` of the ring's `P` points owns a share
//! of the circle that is a sum of `k` gaps between random points, each gap about
//! exponential with mean and standard deviation `1/P`. Its share therefore has
//! mean `k/P` and standard deviation about `√k/P`; the tests allow 5 of those
//! (a chance below 1e-6 per case of a false alarm).

mod support;

use std::collections::BTreeSet;

use haft::ring::seed::modular_owner;
use haft::ring::{Ring, RingError, key_position};
use proptest::prelude::*;
use support::{loads, mean_cv, moved_share, ring_of, sample_keys};

/// Up to 10 distinct node names with weights 1 to 3.
fn members() -> impl Strategy<Value = Vec<(String, u32)>> {
    prop::collection::btree_set("[a-z]{1,6}", 1..10).prop_flat_map(|names| {
        let count = names.len();
        (
            Just(names.into_iter().collect::<Vec<_>>()),
            prop::collection::vec(1u32..=3, count),
        )
            .prop_map(|(names, weights)| names.into_iter().zip(weights).collect())
    })
}

fn build(vnodes: u32, members: &[(String, u32)]) -> Result<Ring, RingError> {
    members
        .iter()
        .fold(Ring::builder(vnodes), |builder, (id, weight)| {
            builder.node(id.as_str(), *weight)
        })
        .build()
}

fn positions(count: usize, seed: u64) -> Vec<u64> {
    sample_keys(count, seed)
        .iter()
        .map(|key| key_position(key))
        .collect()
}

/// Five standard deviations of the share of a node owning `points` of `total`.
fn share_tolerance(points: usize, total: usize) -> f64 {
    5.0 * (points as f64).sqrt() / total as f64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn insertion_order_does_not_matter(
        (members, shuffled) in members().prop_flat_map(|m| (Just(m.clone()), Just(m).prop_shuffle())),
        vnodes in 1u32..40,
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        let other = build(vnodes, &shuffled).unwrap();
        prop_assert_eq!(&ring, &other);
        for key in sample_keys(200, seed) {
            prop_assert_eq!(ring.owner(&key), other.owner(&key));
            prop_assert!(ring.preference_list(&key, 3).iter().eq(other.preference_list(&key, 3).iter()));
        }
    }

    #[test]
    fn adding_a_node_moves_keys_only_to_it_and_about_its_share(
        members in members(),
        vnodes in 20u32..120,
        weight in 1u32..=3,
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        let grown = ring.with_node("newcomer-node", weight).unwrap();
        for position in positions(2_000, seed) {
            let before = ring.owner_at(position);
            let after = grown.owner_at(position);
            prop_assert!(before == after || after.as_str() == "newcomer-node");
        }
        let plan = ring.migration_to(&grown, 1);
        prop_assert!(plan.moves().iter().all(|moved| moved.to()[0].as_str() == "newcomer-node"));
        let points = (vnodes * weight) as usize;
        let share = points as f64 / grown.point_count() as f64;
        let moved = plan.owner_moved_fraction();
        prop_assert!(
            (moved - share).abs() <= share_tolerance(points, grown.point_count()),
            "moved {moved}, share of points {share}"
        );
    }

    #[test]
    fn removing_a_node_moves_only_its_keys_and_about_its_share(
        members in members().prop_filter("two nodes at least", |m| m.len() > 1),
        vnodes in 20u32..120,
        which in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        let (leaving, weight) = &members[which.index(members.len())];
        let shrunk = ring.without_node(leaving).unwrap();
        for position in positions(2_000, seed) {
            let before = ring.owner_at(position);
            let after = shrunk.owner_at(position);
            prop_assert!(before == after || before.as_str() == leaving);
        }
        let points = (vnodes * weight) as usize;
        let share = points as f64 / ring.point_count() as f64;
        let moved = ring.migration_to(&shrunk, 1).owner_moved_fraction();
        prop_assert!(
            (moved - share).abs() <= share_tolerance(points, ring.point_count()),
            "moved {moved}, share of points {share}"
        );
    }

    #[test]
    fn a_preference_list_has_min_r_n_distinct_nodes_owner_first(
        members in members(),
        vnodes in 1u32..40,
        r in 0usize..14,
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        for key in sample_keys(100, seed) {
            let list = ring.preference_list(&key, r);
            prop_assert_eq!(list.len(), r.min(members.len()));
            let distinct: BTreeSet<_> = list.iter().collect();
            prop_assert_eq!(distinct.len(), list.len());
            prop_assert_eq!(list.owner(), ring.owner(&key));
            if r > 0 {
                prop_assert_eq!(list.get(0), Some(ring.owner(&key)));
            }
            // Short lists come from per-point tables, long ones from a walk of
            // the points; a list must be the start of every longer one.
            let longest = ring.preference_list(&key, 12);
            prop_assert!(list.iter().eq(longest.iter().take(list.len())));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The migration plan between any two rings names exactly the positions
    /// whose preference list changes, with the old and new lists; the nodes
    /// it says gain a range are the new list's nodes that did not hold it.
    #[test]
    fn a_migration_plan_covers_exactly_the_changed_preference_lists(
        members in members(),
        vnodes in 1u32..30,
        change in 0usize..3,
        replicas in 1usize..4,
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        let (first, weight) = &members[0];
        let next = match change {
            0 => ring.with_node("joining", 2).unwrap(),
            1 if members.len() > 1 => ring.without_node(first).unwrap(),
            _ => ring.reweighted(first, weight + 1).unwrap(),
        };
        let plan = ring.migration_to(&next, replicas);
        prop_assert_eq!(plan.to_epoch(), plan.from_epoch() + 1);
        for position in positions(1_000, seed) {
            let old = ring.preference_list_at(position, replicas).to_vec();
            let new = next.preference_list_at(position, replicas).to_vec();
            match plan.move_at(position) {
                Some(moved) => {
                    prop_assert_eq!(moved.from(), &old[..]);
                    prop_assert_eq!(moved.to(), &new[..]);
                    let gaining: Vec<_> = moved.gaining().collect();
                    prop_assert!(gaining.iter().all(|id| new.contains(id) && !old.contains(id)));
                }
                None => prop_assert_eq!(&old, &new),
            }
        }
        // Arcs never overlap, so their shares add up to at most the circle.
        prop_assert!(plan.moved_fraction() <= 1.0);
        prop_assert!(plan.owner_moved_fraction() <= plan.moved_fraction());
    }

    /// Reweighting keeps a node's first points, so only the difference moves:
    /// raising a weight moves keys only to the node, lowering it only from it.
    #[test]
    fn reweighting_moves_keys_only_to_or_from_the_node(
        members in members().prop_filter("two nodes at least", |m| m.len() > 1),
        vnodes in 5u32..60,
        seed in any::<u64>(),
    ) {
        let ring = build(vnodes, &members).unwrap();
        let (id, weight) = &members[0];
        let heavier = ring.reweighted(id, weight + 2).unwrap();
        let back = heavier.reweighted(id, *weight).unwrap();
        for position in positions(1_000, seed) {
            let before = ring.owner_at(position);
            let after = heavier.owner_at(position);
            prop_assert!(before == after || after.as_str() == id);
            prop_assert_eq!(back.owner_at(position), before);
        }
    }
}

/// The coefficient of variation of per-node load is about 1/√vnodes: each
/// node's share is a sum of `vnodes` exponential gaps. The CV measured over
/// the 100 nodes of one ring is itself a sample, with a relative error of about
/// 1/√(2·99) ≈ 7%; averaging four independent rings (four name sets) brings
/// that to about 3.5%. The 1,000,000 keys add a sampling CV of √(n/m) = 1%.
#[test]
fn balance_over_a_million_keys_follows_one_over_root_vnodes() {
    let positions = positions(1_000_000, 1);
    for vnodes in [10u32, 100, 1000] {
        let cv = mean_cv(100, vnodes, &positions);
        let expected = 1.0 / f64::from(vnodes).sqrt();
        assert!(
            (cv / expected - 1.0).abs() <= 0.15,
            "vnodes {vnodes}: CV {cv:.4}, 1/√vnodes {expected:.4}"
        );
    }
}

/// Bounded loads cap every node at ⌈(1+ε)·m/n⌉, where plain consistent
/// hashing with few vnodes overshoots the mean by far more.
#[test]
fn bounded_loads_keep_max_over_mean_within_one_plus_epsilon() {
    let keys = sample_keys(200_000, 2);
    let ring = ring_of(50, 10);
    let mean = keys.len() as f64 / 50.0;
    let plain_max = loads(
        &ring,
        &keys.iter().map(|key| key_position(key)).collect::<Vec<_>>(),
    )
    .into_iter()
    .max()
    .unwrap();
    for epsilon in [0.05, 0.25, 1.0] {
        let assignment = ring.bounded_assignment(&keys, epsilon).unwrap();
        let capacity = ((1.0 + epsilon) * mean).ceil() as usize;
        assert!(assignment.loads().all(|(_, _, cap)| cap == capacity));
        let max = assignment.max_load();
        assert!(max <= capacity, "ε {epsilon}: max {max} > {capacity}");
        assert!(
            max as f64 / mean <= 1.0 + epsilon,
            "ε {epsilon}: max/mean {}",
            max as f64 / mean
        );
        assert_eq!(assignment.item_count(), keys.len());
    }
    // Without the bound, 10 vnodes leave the busiest node well above 1.25×.
    assert!(
        plain_max as f64 / mean > 1.25,
        "plain max/mean {}",
        plain_max as f64 / mean
    );
}

/// The seed's `h(key) mod n` moves a key unless `h mod 100 = h mod 101`, i.e.
/// all but about 1 key in 101; the ring moves only the newcomer's share, 1/101.
#[test]
fn the_seeds_modular_placement_moves_almost_every_key_and_the_ring_one_percent() {
    let keys = sample_keys(200_000, 3);
    let modular_moved = keys
        .iter()
        .filter(|key| modular_owner(key.as_slice(), 100) != modular_owner(key.as_slice(), 101))
        .count() as f64
        / keys.len() as f64;
    assert!(modular_moved >= 0.90, "modular moved {modular_moved}");

    let ring = ring_of(100, 160);
    let grown = ring.with_node("node-0100", 1).unwrap();
    let positions: Vec<u64> = keys.iter().map(|key| key_position(key)).collect();
    let ring_moved = moved_share(&ring, &grown, &positions);
    let ideal = 1.0 / 101.0;
    assert!(
        (ring_moved - ideal).abs() <= share_tolerance(160, grown.point_count()),
        "ring moved {ring_moved}, ideal {ideal}"
    );
}
