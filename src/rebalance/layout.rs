//! The ring of one epoch as the handoff machine uses it: who holds a key,
//! and which primaries hand ranges to which at a change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::ring::{Ring, RingError};

/// A ring epoch: the number of membership changes before this ring.
pub type Epoch = u64;

/// A ring change as the administrator announces it: the members of `epoch`,
/// and those of `epoch - 1`, which a node joining at `epoch` needs to know
/// whose handoffs to wait for.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RingChange {
    /// The epoch of the new ring.
    pub epoch: Epoch,
    /// Its members (in any order; duplicates count once).
    pub members: Vec<NodeId>,
    /// The members of the ring before it (empty for a cluster's first ring).
    pub previous: Vec<NodeId>,
}

impl fmt::Debug for RingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{} {:?}", self.epoch, self.members)
    }
}

/// Where keys live at one epoch: each key is held by the first `replicas`
/// distinct members of its preference list on haft's ring; the first is its
/// *primary*, the others its *backups*.
#[derive(Clone)]
pub struct Layout {
    epoch: Epoch,
    /// In id order, each once.
    members: Vec<NodeId>,
    vnodes: u32,
    replicas: usize,
    ring: Ring,
    by_name: BTreeMap<Box<str>, NodeId>,
}

// The ring and the name table follow from the other fields.
impl PartialEq for Layout {
    fn eq(&self, other: &Self) -> bool {
        (self.epoch, &self.members, self.vnodes, self.replicas)
            == (other.epoch, &other.members, other.vnodes, other.replicas)
    }
}

impl Eq for Layout {}

impl Hash for Layout {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.epoch, &self.members, self.vnodes, self.replicas).hash(state);
    }
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{} {:?}", self.epoch, self.members)
    }
}

impl Layout {
    /// The layout of `members` at `epoch`, `vnodes` points per member and
    /// `replicas` holders per key (at most the number of members).
    pub fn new(
        epoch: Epoch,
        members: &[NodeId],
        vnodes: u32,
        replicas: usize,
    ) -> Result<Layout, RingError> {
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        let mut builder = Ring::builder(vnodes).epoch(epoch);
        let mut by_name = BTreeMap::new();
        for member in &members {
            let name = member.0.to_string();
            builder = builder.node(name.clone(), 1);
            by_name.insert(name.into_boxed_str(), *member);
        }
        let ring = builder.build()?;
        Ok(Layout {
            epoch,
            replicas: replicas.clamp(1, members.len().max(1)),
            members,
            vnodes,
            ring,
            by_name,
        })
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The members, in id order.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// How many nodes hold each key.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Whether `node` is a member.
    pub fn is_member(&self, node: NodeId) -> bool {
        self.members.binary_search(&node).is_ok()
    }

    /// The nodes that hold `key`, primary first.
    pub fn holders(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring
            .preference_list(key, self.replicas)
            .iter()
            .filter_map(|name| self.node(name.as_str()))
            .collect()
    }

    /// The primary of `key`: the only node that may accept writes to it in
    /// this epoch (once it holds the key's custody).
    pub fn primary(&self, key: &[u8]) -> NodeId {
        // Every name on the ring is a member's, so the lookup cannot miss.
        self.node(self.ring.owner(key).as_str())
            .unwrap_or(NodeId(u16::MAX))
    }

    /// Whether `node` holds `key` (as its primary or a backup).
    pub fn holds(&self, key: &[u8], node: NodeId) -> bool {
        self.holders(key).contains(&node)
    }

    /// The handoffs from this layout to `next`: each pair `(from, to)` of
    /// distinct primaries such that some range of keys has primary `from`
    /// here and `to` there. Both sides compute the same pairs, so a receiver
    /// knows exactly which handoffs to wait for, even for ranges that hold
    /// no key.
    pub fn handoffs_to(&self, next: &Layout) -> BTreeSet<(NodeId, NodeId)> {
        self.ring
            .migration_to(&next.ring, 1)
            .moves()
            .iter()
            .filter_map(|moved| {
                let from = self.node(moved.from().first()?.as_str())?;
                let to = next.node(moved.to().first()?.as_str())?;
                (from != to).then_some((from, to))
            })
            .collect()
    }

    fn node(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[u16]) -> Vec<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_join_hands_ranges_only_to_the_new_node_and_a_leave_only_from_the_old() {
        let before = Layout::new(0, &members(&[0, 1, 2]), 16, 1).unwrap();
        let joined = Layout::new(1, &members(&[0, 1, 2, 3]), 16, 1).unwrap();
        let left = Layout::new(2, &members(&[1, 2, 3]), 16, 1).unwrap();
        let joins = before.handoffs_to(&joined);
        assert!(!joins.is_empty());
        assert!(joins.iter().all(|(_, to)| *to == NodeId(3)));
        let leaves = joined.handoffs_to(&left);
        assert!(!leaves.is_empty());
        assert!(leaves.iter().all(|(from, _)| *from == NodeId(0)));
        // A key's primary changes only along a listed handoff.
        for key in 0u32..500 {
            let key = key.to_be_bytes();
            let (old, new) = (before.primary(&key), joined.primary(&key));
            assert!(old == new || joins.contains(&(old, new)));
        }
    }

    #[test]
    fn holders_are_distinct_members_primary_first() {
        let layout = Layout::new(4, &members(&[0, 1, 2]), 16, 2).unwrap();
        for key in [&b"a"[..], b"b", b"user:42"] {
            let holders = layout.holders(key);
            assert_eq!(holders.len(), 2);
            assert_ne!(holders[0], holders[1]);
            assert_eq!(holders[0], layout.primary(key));
        }
        assert_eq!(Layout::new(0, &[], 16, 1).unwrap_err(), RingError::Empty);
    }

    #[test]
    fn the_primary_is_the_rings_owner_and_replicas_never_exceed_members() {
        let layout = Layout::new(1, &members(&[1, 2]), 16, 3).unwrap();
        assert_eq!(layout.replicas(), 2);
        for key in [&b"a"[..], b"b", b"user:42"] {
            assert_eq!(layout.holders(key).len(), 2);
            assert_eq!(
                layout.primary(key).0.to_string(),
                layout.ring().owner(key).as_str()
            );
        }
    }
}
