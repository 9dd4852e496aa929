//! Consistent hashing with bounded loads.
//!
//! Reference: Vahab Mirrokni, Mikkel Thorup and Morteza Zadimoghaddam,
//! "Consistent Hashing with Bounded Loads", SODA 2018, §2. Items are placed one
//! at a time; each goes to the first node clockwise from its position whose load
//! is still below its capacity. With `n` equal nodes and `m` items the capacity
//! is `⌈(1+ε)·m/n⌉`, so no node exceeds it, and the paper shows that a change of
//! membership moves O(1/ε²) times the keys plain consistent hashing moves.
//!
//! Weighted nodes: the fair share of a node of weight `w` among total weight
//! `W` is `m·w/W`, and its capacity is `⌈(1+ε)·m·w/W⌉` — the paper's bound
//! scaled by weight share, equal to it when all weights are equal. The sum of
//! the capacities is at least `(1+ε)·m ≥ m`, so every item finds a node.

use super::{NodeId, Ring, RingError, key_position};

/// Items placed on a ring with bounded loads: which node took each item, and
/// each node's load and capacity.
#[derive(Clone, Debug)]
pub struct BoundedAssignment<'ring> {
    ring: &'ring Ring,
    placements: Vec<u32>,
    loads: Vec<usize>,
    capacities: Vec<usize>,
}

impl<'ring> BoundedAssignment<'ring> {
    /// The node that took item `item` (an index into the items given), or
    /// `None` past the last item.
    pub fn node_of(&self, item: usize) -> Option<&'ring NodeId> {
        let ring = self.ring;
        self.placements
            .get(item)
            .map(|&node| &ring.members[node as usize].id)
    }

    /// Each member with its load and its capacity, in the ring's member order.
    pub fn loads(&self) -> impl Iterator<Item = (&'ring NodeId, usize, usize)> + '_ {
        let ring = self.ring;
        ring.members
            .iter()
            .zip(self.loads.iter().zip(&self.capacities))
            .map(|(member, (&load, &capacity))| (&member.id, load, capacity))
    }

    /// The largest load of any node.
    pub fn max_load(&self) -> usize {
        self.loads.iter().copied().max().unwrap_or(0)
    }

    /// How many items were placed.
    pub fn item_count(&self) -> usize {
        self.placements.len()
    }
}

/// How far above an integer a capacity may land through float rounding and
/// still count as that integer.
const RELATIVE_SLACK: f64 = 1e-12;

impl Ring {
    /// Places `items`, in the order given, so that no node takes more than its
    /// capacity `⌈(1+ε)·m·w/W⌉` (`⌈(1+ε)·m/n⌉` with equal weights). The result
    /// depends on the order of the items, as in the paper: the same items in the
    /// same order always give the same placement.
    ///
    /// `epsilon` must be finite and greater than 0.
    pub fn bounded_assignment<K: AsRef<[u8]>>(
        &self,
        items: &[K],
        epsilon: f64,
    ) -> Result<BoundedAssignment<'_>, RingError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(RingError::BadEpsilon { epsilon });
        }
        let capacities = self.capacities(items.len(), epsilon);
        let mut loads = vec![0usize; self.members.len()];
        let mut placements = Vec::with_capacity(items.len());
        let points = self.points().len();
        for item in items {
            let mut index = self.point_at(key_position(item.as_ref()));
            // The capacities sum to at least the item count and every member
            // owns a point, so one lap always finds a node with room.
            for _ in 0..points {
                let node = self.points()[index].owner as usize;
                if loads[node] < capacities[node] {
                    loads[node] += 1;
                    placements.push(node as u32);
                    break;
                }
                index += 1;
                if index == points {
                    index = 0;
                }
            }
        }
        debug_assert_eq!(placements.len(), items.len(), "every item found room");
        Ok(BoundedAssignment {
            ring: self,
            placements,
            loads,
            capacities,
        })
    }

    /// `⌈(1+ε)·m·w/W⌉` per member. ε is a binary float (0.1 is really
    /// 0.1000000000000000055…), so a product within a relative 1e-12 above an
    /// integer counts as that integer: ε = 0.1 over 1,000 items gives 1,100, as
    /// a reader expects. The exact `⌈m·w/W⌉`, computed in integers, is a floor
    /// under that figure, so rounding can never make the capacities sum to less
    /// than `m`.
    fn capacities(&self, items: usize, epsilon: f64) -> Vec<usize> {
        let total_weight: u128 = self.members.iter().map(|m| u128::from(m.weight)).sum();
        self.members
            .iter()
            .map(|member| {
                let weighted = items as u128 * u128::from(member.weight);
                let exact = weighted.div_ceil(total_weight) as usize;
                let relaxed = (1.0 + epsilon) * weighted as f64 / total_weight as f64;
                let relaxed = (relaxed * (1.0 - RELATIVE_SLACK)).ceil();
                exact.max(relaxed as usize)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_node_exceeds_its_capacity() {
        let ring = Ring::builder(10)
            .node("a", 1)
            .node("b", 1)
            .node("c", 1)
            .node("d", 3)
            .build()
            .unwrap();
        let items: Vec<[u8; 4]> = (0u32..6_000).map(u32::to_be_bytes).collect();
        let assignment = ring.bounded_assignment(&items, 0.1).unwrap();
        assert_eq!(assignment.item_count(), 6_000);
        let caps: Vec<usize> = assignment.loads().map(|(_, _, cap)| cap).collect();
        // m·w/W = 1000 for weight 1 and 3000 for weight 3; ×1.1.
        assert_eq!(caps, [1100, 1100, 1100, 3300]);
        for (id, load, capacity) in assignment.loads() {
            assert!(load <= capacity, "{id}: {load} > {capacity}");
        }
        let total: usize = assignment.loads().map(|(_, load, _)| load).sum();
        assert_eq!(total, 6_000);
        assert!(assignment.node_of(5_999).is_some() && assignment.node_of(6_000).is_none());
    }

    #[test]
    fn epsilon_must_be_positive_and_finite() {
        let ring = Ring::builder(1).node("a", 1).build().unwrap();
        for epsilon in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = ring.bounded_assignment(&[b"k"], epsilon).unwrap_err();
            assert!(matches!(err, RingError::BadEpsilon { .. }), "{epsilon}");
        }
    }
}
