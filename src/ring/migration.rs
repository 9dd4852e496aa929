//! Migration plans: the key ranges whose holders differ between two rings.

use super::{NodeId, PreferenceList, Ring};

/// An arc of the hash circle: the positions `p` with `after < p ≤ through`,
/// read clockwise and wrapping past `u64::MAX` to `0`. When `after == through`
/// the arc is the whole circle.
///
/// The arc is open at `after` and closed at `through` because a key belongs to
/// the first point *at or after* its position: the arc ending at a point is the
/// set of positions that point owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// The position just before the arc (excluded).
    pub after: u64,
    /// The last position of the arc (included).
    pub through: u64,
}

impl KeyRange {
    /// Whether ring position `position` lies on the arc.
    pub fn contains(&self, position: u64) -> bool {
        // Measured clockwise from `after`, the arc is the distances 1..=span.
        let span = self.through.wrapping_sub(self.after);
        let distance = position.wrapping_sub(self.after);
        span == 0 || (distance != 0 && distance <= span)
    }

    /// How many positions the arc holds, from 1 to 2^64.
    pub fn len(&self) -> u128 {
        match self.through.wrapping_sub(self.after) {
            0 => 1u128 << 64,
            len => u128::from(len),
        }
    }

    /// Never true: an arc holds at least one position. (For clippy's `len` rule.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The share of the circle the arc covers, in (0, 1].
    pub fn fraction(&self) -> f64 {
        self.len() as f64 / (1u128 << 64) as f64
    }
}

/// One range whose preference list changes: held by `from` in the old ring and
/// by `to` in the new one, each owner first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeMove {
    range: KeyRange,
    from: Vec<NodeId>,
    to: Vec<NodeId>,
}

impl RangeMove {
    /// The keys concerned.
    pub fn range(&self) -> KeyRange {
        self.range
    }

    /// Who holds the range in the old ring, owner first.
    pub fn from(&self) -> &[NodeId] {
        &self.from
    }

    /// Who holds the range in the new ring, owner first.
    pub fn to(&self) -> &[NodeId] {
        &self.to
    }

    /// The nodes that must receive a copy of the range: in `to`, not in `from`.
    pub fn gaining(&self) -> impl Iterator<Item = &NodeId> {
        self.to.iter().filter(|id| !self.from.contains(id))
    }

    /// The nodes that may drop the range once every gaining node has
    /// acknowledged its copy: in `from`, not in `to`.
    pub fn losing(&self) -> impl Iterator<Item = &NodeId> {
        self.from.iter().filter(|id| !self.to.contains(id))
    }

    /// Whether the owner (the first holder) changes.
    pub fn owner_changes(&self) -> bool {
        self.from.first() != self.to.first()
    }
}

/// The ranges whose preference lists of `replicas` nodes differ between two
/// rings, in clockwise order of their `through` end. Ranges next to each other
/// with the same `from` and `to` are merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationPlan {
    from_epoch: u64,
    to_epoch: u64,
    replicas: usize,
    moves: Vec<RangeMove>,
}

impl MigrationPlan {
    /// The epoch of the old ring.
    pub fn from_epoch(&self) -> u64 {
        self.from_epoch
    }

    /// The epoch of the new ring.
    pub fn to_epoch(&self) -> u64 {
        self.to_epoch
    }

    /// The length of the preference lists compared.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The ranges that change hands.
    pub fn moves(&self) -> &[RangeMove] {
        &self.moves
    }

    /// Whether nothing moves.
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// The share of the circle whose preference list changes.
    pub fn moved_fraction(&self) -> f64 {
        let moved: u128 = self.moves.iter().map(|moved| moved.range.len()).sum();
        moved as f64 / (1u128 << 64) as f64
    }

    /// The share of the circle whose owner changes.
    pub fn owner_moved_fraction(&self) -> f64 {
        let moved: u128 = self
            .moves
            .iter()
            .filter(|moved| moved.owner_changes())
            .map(|moved| moved.range.len())
            .sum();
        moved as f64 / (1u128 << 64) as f64
    }

    /// The move covering ring position `position`, if its holders change.
    pub fn move_at(&self, position: u64) -> Option<&RangeMove> {
        self.moves
            .iter()
            .find(|moved| moved.range.contains(position))
    }
}

impl Ring {
    /// The ranges whose preference lists of `replicas` nodes (1: just the owner)
    /// differ between this ring and `next`, with their old and new holders.
    ///
    /// The points of both rings cut the circle into arcs on which both rings
    /// are constant; each arc is compared once. Cost: O((p + q) · replicas)
    /// for rings of p and q points, plus the walks of the preference lists.
    pub fn migration_to(&self, next: &Ring, replicas: usize) -> MigrationPlan {
        let mut cuts: Vec<u64> = Vec::with_capacity(self.points().len() + next.points().len());
        cuts.extend(self.points().iter().map(|point| point.position));
        cuts.extend(next.points().iter().map(|point| point.position));
        cuts.sort_unstable();
        cuts.dedup();

        let mut moves: Vec<RangeMove> = Vec::new();
        // `cuts` is never empty: a ring has at least one point.
        let mut after = cuts[cuts.len() - 1];
        for &through in &cuts {
            let old = self.preference_list_at(through, replicas);
            let new = next.preference_list_at(through, replicas);
            if !old.iter().eq(new.iter()) {
                let range = KeyRange { after, through };
                match moves.last_mut() {
                    Some(last) if last.range.through == after && same(&old, &new, last) => {
                        last.range.through = through;
                    }
                    _ => moves.push(RangeMove {
                        range,
                        from: old.to_vec(),
                        to: new.to_vec(),
                    }),
                }
            }
            after = through;
        }
        // The first and last moves meet across position 0 when both touch it.
        if moves.len() > 1 {
            let first = &moves[0];
            let last = &moves[moves.len() - 1];
            if last.range.through == first.range.after
                && last.from == first.from
                && last.to == first.to
            {
                let last = moves.pop().expect("moves has more than one entry");
                moves[0].range.after = last.range.after;
            }
        }
        MigrationPlan {
            from_epoch: self.epoch,
            to_epoch: next.epoch,
            replicas,
            moves,
        }
    }
}

fn same(old: &PreferenceList<'_>, new: &PreferenceList<'_>, known: &RangeMove) -> bool {
    old.iter().eq(known.from.iter()) && new.iter().eq(known.to.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_open_after_and_closed_through() {
        let plain = KeyRange {
            after: 10,
            through: 20,
        };
        assert!(!plain.contains(10) && plain.contains(11) && plain.contains(20));
        assert!(!plain.contains(21));
        assert_eq!(plain.len(), 10);
        let wrapping = KeyRange {
            after: u64::MAX - 1,
            through: 1,
        };
        assert!(wrapping.contains(u64::MAX) && wrapping.contains(0) && wrapping.contains(1));
        assert!(!wrapping.contains(u64::MAX - 1) && !wrapping.contains(2));
        assert_eq!(wrapping.len(), 3);
        let whole = KeyRange {
            after: 7,
            through: 7,
        };
        assert!(whole.contains(7) && whole.contains(0));
        assert_eq!(whole.len(), 1 << 64);
        assert_eq!(whole.fraction(), 1.0);
    }

    #[test]
    fn a_plan_covers_exactly_the_keys_that_move() {
        let ring = Ring::builder(30)
            .node("a", 1)
            .node("b", 1)
            .node("c", 1)
            .build()
            .unwrap();
        let grown = ring.with_node("d", 1).unwrap();
        for replicas in [1, 2] {
            let plan = ring.migration_to(&grown, replicas);
            assert_eq!((plan.from_epoch(), plan.to_epoch()), (0, 1));
            for key in 0u32..5_000 {
                let key = key.to_be_bytes();
                let position = crate::ring::key_position(&key);
                let old = ring.preference_list(&key, replicas).to_vec();
                let new = grown.preference_list(&key, replicas).to_vec();
                match plan.move_at(position) {
                    Some(moved) => {
                        assert_eq!((moved.from(), moved.to()), (&old[..], &new[..]));
                        assert!(moved.gaining().all(|id| id.as_str() == "d"));
                    }
                    None => assert_eq!(old, new),
                }
            }
        }
        assert!(ring.migration_to(&ring, 2).is_empty());
    }

    #[test]
    fn replacing_the_only_node_moves_the_whole_circle() {
        let before = Ring::builder(5).node("a", 1).build().unwrap();
        let after = Ring::builder(5).node("b", 1).build().unwrap();
        let plan = before.migration_to(&after, 1);
        assert_eq!(plan.moves().len(), 1);
        assert_eq!(plan.moved_fraction(), 1.0);
        assert_eq!(plan.moves()[0].range().len(), 1 << 64);
    }
}
