//! The ring of one epoch as a cluster's nodes use it: which members hold a
//! key ([`Layout`]). The node's membership protocol (`crate::node`'s
//! membership module) moves keys between the layouts of two epochs.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::{Ring, RingError};
use crate::NodeId;

/// A ring epoch: the number of membership changes before this ring.
pub type Epoch = u64;

/// Where keys live at one epoch: each key is held by the first `replicas`
/// distinct members of its preference list on haft's ring.
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

    /// The nodes that hold `key`, in preference order.
    pub fn holders(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring
            .preference_list(key, self.replicas)
            .iter()
            .filter_map(|name| self.node(name.as_str()))
            .collect()
    }

    /// Whether `node` holds `key`.
    pub fn holds(&self, key: &[u8], node: NodeId) -> bool {
        self.holders(key).contains(&node)
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
    fn holders_are_distinct_members() {
        let layout = Layout::new(4, &members(&[0, 1, 2]), 16, 2).unwrap();
        for key in [&b"a"[..], b"b", b"user:42"] {
            let holders = layout.holders(key);
            assert_eq!(holders.len(), 2);
            assert_ne!(holders[0], holders[1]);
        }
        assert_eq!(Layout::new(0, &[], 16, 1).unwrap_err(), RingError::Empty);
    }

    #[test]
    fn the_first_holder_is_the_rings_owner_and_replicas_never_exceed_members() {
        let layout = Layout::new(1, &members(&[1, 2]), 16, 3).unwrap();
        assert_eq!(layout.replicas(), 2);
        for key in [&b"a"[..], b"b", b"user:42"] {
            assert_eq!(layout.holders(key).len(), 2);
            assert_eq!(
                layout.holders(key)[0].0.to_string(),
                layout.ring().owner(key).as_str()
            );
        }
    }
}
