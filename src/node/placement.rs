//! Where keys live: the ring of one epoch and the number of replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use crate::NodeId;
use crate::ring::{Ring, RingError};

/// The placement of keys in one ring epoch: a key lives on the first
/// `replicas` distinct nodes of its preference list.
#[derive(Clone, Debug)]
pub struct Placement {
    epoch: u64,
    members: BTreeSet<NodeId>,
    replicas: usize,
    vnodes: u32,
    ring: Ring,
    by_name: BTreeMap<Box<str>, NodeId>,
}

// The ring is derived from the other fields.
impl PartialEq for Placement {
    fn eq(&self, other: &Self) -> bool {
        (self.epoch, &self.members, self.replicas, self.vnodes)
            == (other.epoch, &other.members, other.replicas, other.vnodes)
    }
}

impl Eq for Placement {}

impl Hash for Placement {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.epoch, &self.members, self.replicas, self.vnodes).hash(state);
    }
}

impl Placement {
    /// The placement of `members` in `epoch`, with `vnodes` points per node
    /// and `replicas` copies of each key (at most the number of members).
    pub fn new(
        epoch: u64,
        members: impl IntoIterator<Item = NodeId>,
        vnodes: u32,
        replicas: usize,
    ) -> Result<Placement, RingError> {
        let members: BTreeSet<NodeId> = members.into_iter().collect();
        let mut builder = Ring::builder(vnodes).epoch(epoch);
        let mut by_name = BTreeMap::new();
        for member in &members {
            let name = member.0.to_string();
            builder = builder.node(name.clone(), 1);
            by_name.insert(name.into_boxed_str(), *member);
        }
        let ring = builder.build()?;
        Ok(Placement {
            epoch,
            replicas: replicas.clamp(1, members.len().max(1)),
            members,
            vnodes,
            ring,
            by_name,
        })
    }

    /// The ring epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The members, in id order.
    pub fn members(&self) -> &BTreeSet<NodeId> {
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

    /// The nodes that hold `key`, in preference order.
    pub fn replicas_of(&self, key: &[u8]) -> Vec<NodeId> {
        self.ring
            .preference_list(key, self.replicas)
            .iter()
            .filter_map(|name| self.by_name.get(name.as_str()).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_lives_on_distinct_replicas_in_preference_order() {
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let placement = Placement::new(1, members, 64, 2).unwrap();
        for key in [&b"a"[..], b"b", b"user:42"] {
            let replicas = placement.replicas_of(key);
            assert_eq!(replicas.len(), 2);
            assert_ne!(replicas[0], replicas[1]);
            assert_eq!(
                replicas[0].0.to_string(),
                placement.ring().owner(key).as_str()
            );
        }
    }

    #[test]
    fn replicas_never_exceed_members() {
        let placement = Placement::new(1, [NodeId(1), NodeId(2)], 16, 3).unwrap();
        assert_eq!(placement.replicas(), 2);
        assert_eq!(placement.replicas_of(b"k").len(), 2);
    }
}
