//! Preference lists: the first r distinct physical nodes clockwise from a key.

use super::{NodeId, Point, Ring};

/// How many nodes a preference list holds without allocating.
const INLINE: usize = 8;

/// The first `r` distinct physical nodes clockwise from a position, the owner
/// first; every node once if `r` exceeds the number of nodes.
///
/// Cost: for `r ≤ 3` (and rings of at most 65,535 nodes) the list is read from
/// the point the key falls on, which carries the next two distinct nodes after
/// its own (computed when the ring is built). Otherwise it walks the points
/// clockwise until `min(r, nodes)` distinct nodes have been met: about `r`
/// points for the usual `r` of 4 or 5 on a ring with many vnodes, at most every
/// point for large `r`. For `r ≤ 8` the list lives inline and allocates
/// nothing; a larger `r` allocates one vector of `min(r, nodes)` entries.
#[derive(Clone, Debug)]
pub struct PreferenceList<'ring> {
    ring: &'ring Ring,
    start: usize,
    len: usize,
    inline: [u32; INLINE],
    spilled: Vec<u32>,
}

impl<'ring> PreferenceList<'ring> {
    /// Walks clockwise from point `start` of `ring`.
    #[inline]
    pub(super) fn collect(ring: &'ring Ring, start: usize, r: usize) -> PreferenceList<'ring> {
        let wanted = r.min(ring.members.len());
        let mut list = PreferenceList {
            ring,
            start,
            len: 0,
            inline: [0; INLINE],
            spilled: Vec::new(),
        };
        let point = ring.points()[start];
        if wanted <= 1 + point.successors.len() && ring.successors_known {
            // `successors` holds the next min(2, nodes - 1) distinct nodes, so
            // the first `wanted` entries here are all real.
            list.inline[0] = point.owner;
            list.inline[1] = u32::from(point.successors[0]);
            list.inline[2] = u32::from(point.successors[1]);
            list.len = wanted;
        } else if wanted <= INLINE {
            list.len = take_distinct_inline(ring, start, wanted, &mut list.inline);
        } else {
            let mut taken = vec![0; wanted];
            list.len = distinct_owners(ring.points(), start, &mut taken);
            list.spilled = taken;
        }
        list
    }

    /// The list whose first three nodes are `nodes` (the owner of point
    /// `start` and its two successors), cut to `min(r, nodes of the ring)`.
    #[inline]
    pub(super) fn from_nodes(
        ring: &'ring Ring,
        start: usize,
        nodes: [u32; 3],
        r: usize,
    ) -> PreferenceList<'ring> {
        let mut inline = [0; INLINE];
        inline[..3].copy_from_slice(&nodes);
        PreferenceList {
            ring,
            start,
            len: r.min(ring.members.len()),
            inline,
            spilled: Vec::new(),
        }
    }

    fn indices(&self) -> &[u32] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled[..self.len]
        }
    }

    /// How many nodes the list holds: `min(r, nodes)`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty, which happens only for `r = 0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The owner of the key: the first node of the list. For `r = 0` the list is
    /// empty and this is still the owner.
    pub fn owner(&self) -> &'ring NodeId {
        &self.ring.members[self.ring.points()[self.start].owner as usize].id
    }

    /// The `i`-th node of the list.
    pub fn get(&self, i: usize) -> Option<&'ring NodeId> {
        let ring = self.ring;
        self.indices()
            .get(i)
            .map(|&node| &ring.members[node as usize].id)
    }

    /// The nodes, owner first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'ring NodeId> + '_ {
        let ring = self.ring;
        self.indices()
            .iter()
            .map(move |&node| &ring.members[node as usize].id)
    }

    /// Whether node `id` is in the list.
    pub fn contains(&self, id: &str) -> bool {
        self.iter().any(|node| node.as_str() == id)
    }

    /// The nodes as owned ids, owner first.
    pub fn to_vec(&self) -> Vec<NodeId> {
        self.iter().cloned().collect()
    }
}

/// [`distinct_owners`] for `wanted ≤ INLINE`, tuned for the usual case in
/// which the next few points belong to distinct nodes. A 64-bit mask of
/// `node % 64` answers "certainly new" from a register; only when its bit is
/// already set does the walk compare with the nodes taken so far. Comparing
/// every step against the whole array instead would read `taken` right after
/// writing one element of it, a store-to-load forwarding stall that cost more
/// than the rest of the walk.
#[inline]
fn take_distinct_inline(
    ring: &Ring,
    start: usize,
    wanted: usize,
    taken: &mut [u32; INLINE],
) -> usize {
    let points = ring.points();
    let mut seen = 0u64;
    let mut len = 0;
    let mut index = start;
    for _ in 0..points.len() {
        if len == wanted {
            break;
        }
        let node = points[index].owner;
        let bit = 1u64 << (node % 64);
        if seen & bit == 0 || !taken[..len].contains(&node) {
            taken[len] = node;
            len += 1;
            seen |= bit;
        }
        index = if index + 1 == points.len() {
            0
        } else {
            index + 1
        };
    }
    len
}

/// Fills `taken` with the first distinct owners met clockwise from point
/// `start` of `points` and returns how many it found: all of `taken` when `taken` is no
/// longer than the member count, since every member owns a point and the walk
/// goes once round the ring at most.
pub(super) fn distinct_owners(points: &[Point], start: usize, taken: &mut [u32]) -> usize {
    let mut len = 0;
    let mut index = start;
    for _ in 0..points.len() {
        if len == taken.len() {
            break;
        }
        let node = points[index].owner;
        if !taken[..len].contains(&node) {
            taken[len] = node;
            len += 1;
        }
        index = if index + 1 == points.len() {
            0
        } else {
            index + 1
        };
    }
    len
}

#[cfg(test)]
mod tests {
    use crate::ring::Ring;

    #[test]
    fn lists_are_distinct_and_capped_at_the_node_count() {
        let ring = Ring::builder(20)
            .node("a", 1)
            .node("b", 1)
            .node("c", 1)
            .build()
            .unwrap();
        for key in 0u32..500 {
            let key = key.to_be_bytes();
            let list = ring.preference_list(&key, 5);
            assert_eq!(list.len(), 3);
            assert_eq!(list.owner(), ring.owner(&key));
            let mut ids: Vec<_> = list.iter().map(|id| id.as_str()).collect();
            ids.sort_unstable();
            assert_eq!(ids, ["a", "b", "c"]);
        }
        assert!(ring.preference_list(b"k", 0).is_empty());
    }

    #[test]
    fn short_lists_from_the_point_tables_match_a_walk() {
        for nodes in 1..=5 {
            let ring = (0..nodes)
                .fold(Ring::builder(7), |builder, node| {
                    builder.node(format!("n{node}"), 1 + node % 2)
                })
                .build()
                .unwrap();
            for start in 0..ring.point_count() {
                for r in 0..=3 {
                    let list = super::PreferenceList::collect(&ring, start, r);
                    let mut walked = vec![0; r.min(nodes as usize)];
                    let found = super::distinct_owners(ring.points(), start, &mut walked);
                    assert_eq!(list.indices(), &walked[..found], "{nodes} nodes, r {r}");
                }
            }
        }
    }

    #[test]
    fn a_long_list_spills_to_the_heap_and_stays_distinct() {
        let mut builder = Ring::builder(4);
        for node in 0..20 {
            builder = builder.node(format!("node-{node:02}"), 1);
        }
        let ring = builder.build().unwrap();
        let list = ring.preference_list(b"key", 12);
        assert_eq!(list.len(), 12);
        let mut ids = list.to_vec();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 12);
        assert_eq!(ring.preference_list(b"key", 100).len(), 20);
        // A longer list extends a shorter one.
        let short = ring.preference_list(b"key", 3).to_vec();
        assert_eq!(short[..], list.to_vec()[..3]);
    }
}
