//! Renaming the nodes a commit value mentions: the hook a model checker's
//! symmetry reduction needs (feature `check`; the protocol never renames).
//!
//! A symmetry of a system of interchangeable nodes renames them: node `n`
//! becomes `f(n)` everywhere it appears — in a machine's own id, in the sets
//! and lists of participants, in messages, durable records and deltas, and in
//! the coordinator part of every [`TxnId`] (a transaction id packs its
//! coordinator's node). [`RenameNodes`] does that for every commit type, so
//! that the model side can rename a state made of production machines without
//! reaching into their private fields.
//!
//! Sets and maps keyed by node or transaction ids are rebuilt, so that a
//! renamed value is equal to the same value built directly with the new
//! names. Lists keep their order and rename their items: the order of a
//! Prepare's `peers` is the ring order the coordinator chose (it decides whom
//! an uncertain participant asks first), and the order of a participant's
//! waiting Prepares is their arrival order — neither is a set.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::message::{Msg, Outcome, Refusal, Timer, Versioned, Vote};
use super::record::{
    CoordinatorDelta, CoordinatorRecord, Delta, Origin, ParticipantDelta, ParticipantRecord,
    TxnRecord,
};
use super::store::KeyMap;
use super::txn_id::{INCARNATION_BITS, SEQUENCE_BITS, TxnId};
use crate::NodeId;

/// A value whose node ids can be renamed (see src/commit/rename.rs).
pub trait RenameNodes: Sized {
    /// This value with every node `n` it mentions replaced by `f(n)`,
    /// transaction ids included. `f` should be a bijection: a renaming that
    /// merges two nodes merges their entries in sets and maps.
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self;
}

impl RenameNodes for NodeId {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        f(*self)
    }
}

/// The coordinator's node is renamed; its incarnation and sequence stay.
impl RenameNodes for TxnId {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        let shift = INCARNATION_BITS + SEQUENCE_BITS;
        let rest = self.0 & ((1 << shift) - 1);
        TxnId((u64::from(f(self.node()).0) << shift) | rest)
    }
}

/// Implements [`RenameNodes`] as a copy for types that mention no node.
macro_rules! no_nodes {
    ($($t:ty),*) => {
        $(impl RenameNodes for $t {
            fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, _: &F) -> Self {
                self.clone()
            }
        })*
    };
}

no_nodes!(Bytes, Outcome, Origin, u64);

impl<T: RenameNodes> RenameNodes for Option<T> {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        self.as_ref().map(|t| t.rename_nodes(f))
    }
}

impl<T: RenameNodes> RenameNodes for Vec<T> {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        self.iter().map(|t| t.rename_nodes(f)).collect()
    }
}

impl<T: RenameNodes + Ord> RenameNodes for BTreeSet<T> {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        self.iter().map(|t| t.rename_nodes(f)).collect()
    }
}

impl<K: RenameNodes + Ord, V: RenameNodes> RenameNodes for BTreeMap<K, V> {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        self.iter()
            .map(|(k, v)| (k.rename_nodes(f), v.rename_nodes(f)))
            .collect()
    }
}

impl RenameNodes for Versioned {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        Versioned {
            value: self.value.clone(),
            version: self.version.rename_nodes(f),
        }
    }
}

impl RenameNodes for Refusal {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            Refusal::Locked { key, by } => Refusal::Locked {
                key: key.clone(),
                by: by.rename_nodes(f),
            },
            Refusal::Changed { .. }
            | Refusal::Finished
            | Refusal::NotHeld { .. }
            | Refusal::Epoch { .. } => self.clone(),
        }
    }
}

impl RenameNodes for Vote {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            Vote::Yes => Vote::Yes,
            Vote::No(refusal) => Vote::No(refusal.rename_nodes(f)),
        }
    }
}

impl RenameNodes for Msg {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            Msg::Prepare {
                txn,
                reads,
                writes,
                peers,
                finished_below,
            } => Msg::Prepare {
                txn: txn.rename_nodes(f),
                reads: reads.rename_nodes(f),
                writes: writes.clone(),
                peers: peers.rename_nodes(f),
                finished_below: finished_below.rename_nodes(f),
            },
            Msg::Vote { txn, vote } => Msg::Vote {
                txn: txn.rename_nodes(f),
                vote: vote.rename_nodes(f),
            },
            Msg::Outcome { txn, outcome } => Msg::Outcome {
                txn: txn.rename_nodes(f),
                outcome: *outcome,
            },
            Msg::Ack { txn, outcome } => Msg::Ack {
                txn: txn.rename_nodes(f),
                outcome: *outcome,
            },
            Msg::Query { txn } => Msg::Query {
                txn: txn.rename_nodes(f),
            },
        }
    }
}

impl RenameNodes for Timer {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            Timer::VoteTimeout(txn) => Timer::VoteTimeout(txn.rename_nodes(f)),
            Timer::Resend(txn) => Timer::Resend(txn.rename_nodes(f)),
            Timer::Uncertain(txn) => Timer::Uncertain(txn.rename_nodes(f)),
        }
    }
}

impl RenameNodes for TxnRecord {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            TxnRecord::Prepared {
                reads,
                writes,
                peers,
            } => TxnRecord::Prepared {
                reads: reads.clone(),
                writes: writes.clone(),
                peers: peers.rename_nodes(f),
            },
            TxnRecord::Refused(refusal) => TxnRecord::Refused(refusal.rename_nodes(f)),
            TxnRecord::Decided(outcome) => TxnRecord::Decided(*outcome),
        }
    }
}

/// Values are renamed (a version names its transaction's coordinator).
impl<V: RenameNodes> RenameNodes for KeyMap<V> {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        self.iter()
            .map(|(key, versioned)| (key.clone(), versioned.rename_nodes(f)))
            .collect()
    }
}

impl RenameNodes for ParticipantRecord {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        ParticipantRecord {
            store: self.store.rename_nodes(f),
            txns: self.txns.rename_nodes(f),
            finished_below: self.finished_below.rename_nodes(f),
        }
    }
}

impl RenameNodes for CoordinatorRecord {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        CoordinatorRecord {
            incarnation: self.incarnation,
            commits: self.commits.rename_nodes(f),
        }
    }
}

impl RenameNodes for ParticipantDelta {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            ParticipantDelta::Prepared {
                txn,
                reads,
                writes,
                peers,
            } => ParticipantDelta::Prepared {
                txn: txn.rename_nodes(f),
                reads: reads.clone(),
                writes: writes.clone(),
                peers: peers.rename_nodes(f),
            },
            ParticipantDelta::Refused { txn, refusal } => ParticipantDelta::Refused {
                txn: txn.rename_nodes(f),
                refusal: refusal.rename_nodes(f),
            },
            ParticipantDelta::Decided { txn, outcome } => ParticipantDelta::Decided {
                txn: txn.rename_nodes(f),
                outcome: *outcome,
            },
            ParticipantDelta::Copied { entries } => ParticipantDelta::Copied {
                entries: entries
                    .iter()
                    .map(|(key, versioned)| (key.clone(), versioned.rename_nodes(f)))
                    .collect(),
            },
            ParticipantDelta::Dropped { .. } => self.clone(),
            ParticipantDelta::Finished { coordinator, below } => ParticipantDelta::Finished {
                coordinator: f(*coordinator),
                below: below.rename_nodes(f),
            },
        }
    }
}

impl RenameNodes for CoordinatorDelta {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            CoordinatorDelta::Started { incarnation } => CoordinatorDelta::Started {
                incarnation: *incarnation,
            },
            CoordinatorDelta::Committed {
                txn,
                participants,
                origin,
            } => CoordinatorDelta::Committed {
                txn: txn.rename_nodes(f),
                participants: participants.rename_nodes(f),
                origin: *origin,
            },
            CoordinatorDelta::Forgotten { txn } => CoordinatorDelta::Forgotten {
                txn: txn.rename_nodes(f),
            },
        }
    }
}

impl RenameNodes for Delta {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        match self {
            Delta::Coordinator(delta) => Delta::Coordinator(delta.rename_nodes(f)),
            Delta::Participant(delta) => Delta::Participant(delta.rename_nodes(f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap_1_2(n: NodeId) -> NodeId {
        match n.0 {
            1 => NodeId(2),
            2 => NodeId(1),
            _ => n,
        }
    }

    #[test]
    fn a_transaction_id_keeps_its_incarnation_and_sequence() {
        let txn = TxnId::new(NodeId(1), 7, 9).unwrap();
        assert_eq!(
            txn.rename_nodes(&swap_1_2),
            TxnId::new(NodeId(2), 7, 9).unwrap()
        );
        assert_eq!(TxnId(u64::MAX).rename_nodes(&swap_1_2), TxnId(u64::MAX));
    }

    #[test]
    fn sets_are_rebuilt_and_lists_keep_their_order() {
        let txn = TxnId::new(NodeId(0), 1, 0).unwrap();
        let delta = CoordinatorDelta::Committed {
            txn,
            participants: BTreeSet::from([NodeId(1), NodeId(3)]),
            origin: None,
        };
        assert_eq!(
            delta.rename_nodes(&swap_1_2),
            CoordinatorDelta::Committed {
                txn,
                participants: BTreeSet::from([NodeId(2), NodeId(3)]),
                origin: None,
            }
        );
        let record = TxnRecord::Prepared {
            reads: BTreeSet::new(),
            writes: BTreeMap::new().into(),
            peers: vec![NodeId(3), NodeId(1)],
        };
        let TxnRecord::Prepared { peers, .. } = record.rename_nodes(&swap_1_2) else {
            unreachable!()
        };
        assert_eq!(peers, [NodeId(3), NodeId(2)]);
    }
}
