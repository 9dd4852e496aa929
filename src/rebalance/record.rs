//! What the handoff machine saves: small deltas appended to a log, and the
//! record they fold into.
//!
//! As in [`crate::commit`], the machine changes its memory *through*
//! [`HandoffRecord::apply`], the very function recovery replays the log with,
//! so memory and disk cannot disagree about what a delta means. A delta
//! carries what its handler decided (the handoffs an installation starts,
//! the keys it drops), so applying it needs no ring.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::layout::{Epoch, RingChange};
use super::message::{Key, Versioned};
use crate::NodeId;

/// A change the handoff machine must survive a crash with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Delta {
    /// A ring was announced; it is installed once this node holds the custody
    /// of every key it owes the ring before.
    Queued(RingChange),
    /// The first queued ring is installed.
    Installed {
        /// The ring.
        ring: RingChange,
        /// The previous primaries whose handoffs this node now waits for.
        awaiting: BTreeSet<NodeId>,
        /// The handoffs this node starts: to each new primary, the keys it
        /// hands over (possibly none: the receiver waits for the handoff all
        /// the same).
        handing: BTreeMap<NodeId, BTreeSet<Key>>,
        /// Keys this node no longer holds and hands to no one.
        dropped: BTreeSet<Key>,
    },
    /// A key's value: a write this node accepted as primary, or a replica.
    Stored {
        /// The key.
        key: Key,
        /// Its value and version.
        versioned: Versioned,
    },
    /// The handoff from `from` arrived: its entries are merged (the higher
    /// version wins) and `from` is no longer awaited.
    Received {
        /// The previous primary.
        from: NodeId,
        /// The keys it handed over.
        entries: Vec<(Key, Versioned)>,
    },
    /// `to` acknowledged the handoff of `epoch`: it is finished, and the keys
    /// this node no longer holds are dropped.
    Released {
        /// The epoch of the handoff.
        epoch: Epoch,
        /// Its receiver.
        to: NodeId,
        /// The keys dropped.
        dropped: BTreeSet<Key>,
    },
}

/// A node's durable handoff state.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// The installed ring (`None`: this node has joined no ring yet).
    pub ring: Option<RingChange>,
    /// Rings announced and not yet installed, in epoch order.
    pub queued: Vec<RingChange>,
    /// The previous primaries whose handoffs for the installed epoch have not
    /// arrived; this node serves the keys they owe it only once they have.
    pub awaiting: BTreeSet<NodeId>,
    /// Handoffs sent and not yet acknowledged, by (epoch, receiver), with
    /// their keys. The sender keeps these keys until then.
    pub handing: BTreeMap<(Epoch, NodeId), BTreeSet<Key>>,
    /// The keys this node holds: their values and tombstones.
    pub store: BTreeMap<Key, Versioned>,
}

impl HandoffRecord {
    /// The record of a founding member of a cluster whose first ring is
    /// `ring`: installed, with nothing to wait for.
    pub fn founded(ring: RingChange) -> HandoffRecord {
        HandoffRecord {
            ring: Some(ring),
            ..HandoffRecord::default()
        }
    }

    /// The epoch of the installed ring.
    pub fn epoch(&self) -> Option<Epoch> {
        self.ring.as_ref().map(|ring| ring.epoch)
    }

    /// Applies one delta. Memory and recovery both go through here.
    pub fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::Queued(ring) => self.queued.push(ring.clone()),
            Delta::Installed {
                ring,
                awaiting,
                handing,
                dropped,
            } => {
                self.queued.retain(|queued| queued.epoch > ring.epoch);
                self.ring = Some(ring.clone());
                self.awaiting = awaiting.clone();
                for (to, keys) in handing {
                    self.handing.insert((ring.epoch, *to), keys.clone());
                }
                for key in dropped {
                    self.store.remove(key);
                }
            }
            Delta::Stored { key, versioned } => self.merge(key, versioned),
            Delta::Received { from, entries } => {
                for (key, versioned) in entries {
                    self.merge(key, versioned);
                }
                self.awaiting.remove(from);
            }
            Delta::Released { epoch, to, dropped } => {
                self.handing.remove(&(*epoch, *to));
                for key in dropped {
                    self.store.remove(key);
                }
            }
        }
    }

    /// Keeps the higher version of `key`: merging is idempotent and
    /// commutative, so duplicates and reordering change nothing.
    fn merge(&mut self, key: &Key, versioned: &Versioned) {
        match self.store.get(key) {
            Some(held) if held.version >= versioned.version => {}
            _ => {
                self.store.insert(key.clone(), versioned.clone());
            }
        }
    }

    /// Whether `key` is in a handoff not yet acknowledged.
    pub fn is_handing(&self, key: &[u8]) -> bool {
        self.handing.values().any(|keys| keys.contains(key))
    }
}
