//! What the commit machines save: small deltas appended to a log, and the
//! records they fold into.
//!
//! A machine never saves its whole state. Each change it must survive a crash
//! with is one delta; a record is what the deltas of a life add up to, and a
//! checkpoint is a record written whole so that the log before it can go.
//! The participant changes its memory *through* [`ParticipantRecord::apply`],
//! the very function recovery replays the log with, so memory and disk cannot
//! disagree about what a delta means.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TxnId;
use super::message::{Key, Outcome, Refusal, Versioned, WriteSet};
use super::store::Store;
use crate::NodeId;

/// The client request a transaction runs for, as the application numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The client.
    pub client: u64,
    /// The client's number for the request.
    pub request: u64,
}

/// A change a commit machine must survive a crash with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Delta {
    /// A coordinator's change.
    Coordinator(CoordinatorDelta),
    /// A participant's change.
    Participant(ParticipantDelta),
}

impl Delta {
    /// Whether this delta only tidies up after a decision that is already
    /// durable at the coordinator (a participant applying the outcome, a
    /// coordinator forgetting a finished transaction, a watermark moving up).
    /// No answer to a client waits for it: lost in a crash, it costs a resent
    /// outcome and an acknowledgement, and a record kept a little longer. A
    /// driver may let it wait and share the sync of a later save.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(
            self,
            Delta::Coordinator(CoordinatorDelta::Forgotten { .. })
                | Delta::Participant(
                    ParticipantDelta::Decided { .. } | ParticipantDelta::Finished { .. }
                )
        )
    }
}

/// A coordinator's change. Presumed abort: only commits are recorded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CoordinatorDelta {
    /// A new life began; its transaction ids carry this incarnation.
    Started {
        /// The new incarnation.
        incarnation: u64,
    },
    /// `txn` is decided Commit; resend it to `participants` until each
    /// acknowledges (AC1 across crashes: durable before any Commit leaves).
    Committed {
        /// The transaction.
        txn: TxnId,
        /// Its participants.
        participants: BTreeSet<NodeId>,
        /// The request it runs for, if the application gave one: recorded in
        /// the same delta, so that the decision and the answer to a retry of
        /// the request cannot be torn apart by a crash.
        origin: Option<Origin>,
    },
    /// Every participant acknowledged `txn`; its record can go.
    Forgotten {
        /// The transaction.
        txn: TxnId,
    },
}

/// A participant's change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ParticipantDelta {
    /// Voted Yes on `txn`: its keys are locked until the outcome is known.
    Prepared {
        /// The transaction.
        txn: TxnId,
        /// The keys it read here (read-locked).
        reads: BTreeSet<Key>,
        /// Its writes here (write-locked; applied on commit). Shared with the
        /// prepared record, so that saving the delta copies no value.
        writes: Arc<WriteSet>,
        /// The other participants, asked when uncertain.
        peers: Vec<NodeId>,
    },
    /// Refused `txn` before voting Yes.
    Refused {
        /// The transaction.
        txn: TxnId,
        /// Why.
        refusal: Refusal,
    },
    /// Learned the outcome of `txn`; on Commit its prepared writes are applied
    /// with `txn` as their version.
    Decided {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        outcome: Outcome,
    },
    /// Committed values copied from another node (a key handoff when the
    /// ring changes): each replaces the key's value here.
    Copied {
        /// The keys and their values, with the versions that wrote them.
        entries: Vec<(Key, Versioned)>,
    },
    /// Keys this node no longer holds, dropped from the store.
    Dropped {
        /// The keys.
        keys: Vec<Key>,
    },
    /// `coordinator` has finished every transaction below `below`: their
    /// records are dropped, and a late Prepare of one is refused.
    Finished {
        /// The coordinator.
        coordinator: NodeId,
        /// Its watermark.
        below: TxnId,
    },
}

/// What a participant knows durably about one transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnRecord {
    /// Voted Yes: the keys are locked and the outcome is unknown. A prepared
    /// participant may not abort on its own (AC1).
    Prepared {
        /// Keys read (read-locked).
        reads: BTreeSet<Key>,
        /// Writes to apply on commit (write-locked); shared with the delta that
        /// recorded them.
        writes: Arc<WriteSet>,
        /// The other participants, also asked (cooperative termination).
        peers: Vec<NodeId>,
    },
    /// Refused before voting Yes, which dooms the transaction. A duplicate
    /// Prepare is answered No again, for the same reason (AC2).
    Refused(Refusal),
    /// Learned the coordinator's decision; kept to answer duplicates and
    /// queries until the coordinator's watermark passes the transaction.
    Decided(Outcome),
}

/// A participant's durable state: its store, its transaction records and the
/// coordinators' watermarks. Locks are derived from the prepared records.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantRecord {
    /// The committed store.
    pub store: Store,
    /// One record per transaction not yet finished by its coordinator.
    pub txns: BTreeMap<TxnId, TxnRecord>,
    /// Per coordinator, the watermark below which its transactions are
    /// finished and forgotten.
    pub finished_below: BTreeMap<NodeId, TxnId>,
}

impl ParticipantRecord {
    /// Applies one delta. Memory and recovery both go through here.
    pub fn apply(&mut self, delta: &ParticipantDelta) {
        match delta {
            ParticipantDelta::Prepared {
                txn,
                reads,
                writes,
                peers,
            } => {
                self.txns.insert(
                    *txn,
                    TxnRecord::Prepared {
                        reads: reads.clone(),
                        writes: Arc::clone(writes),
                        peers: peers.clone(),
                    },
                );
            }
            ParticipantDelta::Refused { txn, refusal } => {
                self.txns.insert(*txn, TxnRecord::Refused(refusal.clone()));
            }
            ParticipantDelta::Decided { txn, outcome } => {
                let previous = self.txns.insert(*txn, TxnRecord::Decided(*outcome));
                if let (Outcome::Commit, Some(TxnRecord::Prepared { writes, .. })) =
                    (outcome, previous)
                {
                    // The delta was saved and dropped by now, as a rule, so the
                    // writes move into the store; otherwise they are copied.
                    let writes = Arc::try_unwrap(writes).unwrap_or_else(|shared| (*shared).clone());
                    for (key, value) in writes {
                        match value {
                            Some(value) => {
                                self.store.insert(
                                    key,
                                    Versioned {
                                        value,
                                        version: *txn,
                                    },
                                );
                            }
                            None => {
                                self.store.remove(&key);
                            }
                        }
                    }
                }
            }
            ParticipantDelta::Copied { entries } => {
                for (key, versioned) in entries {
                    self.store.insert(key.clone(), versioned.clone());
                }
            }
            ParticipantDelta::Dropped { keys } => {
                for key in keys {
                    self.store.remove(key);
                }
            }
            ParticipantDelta::Finished { coordinator, below } => {
                let watermark = self.finished_below.entry(*coordinator).or_insert(*below);
                *watermark = (*watermark).max(*below);
                let below = *watermark;
                // A prepared record stays: its coordinator may have crashed
                // before deciding (presumed abort), and only the outcome it
                // learns by asking releases its locks.
                self.txns.retain(|txn, record| {
                    txn.node() != *coordinator
                        || *txn >= below
                        || matches!(record, TxnRecord::Prepared { .. })
                });
            }
        }
    }

    /// The watermark of `coordinator`: its transactions below it are finished.
    pub fn finished_below(&self, coordinator: NodeId) -> Option<TxnId> {
        self.finished_below.get(&coordinator).copied()
    }
}

/// A coordinator's durable state. Presumed abort: only commit decisions are
/// recorded; a transaction with no record is aborted.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CoordinatorRecord {
    /// The incarnation of the coordinator's current life (0: never started).
    pub incarnation: u64,
    /// Transactions decided Commit and not yet acknowledged by every
    /// participant, with their participants.
    pub commits: BTreeMap<TxnId, BTreeSet<NodeId>>,
}

impl CoordinatorRecord {
    /// Applies one delta; recovery replays the log through here.
    pub fn apply(&mut self, delta: &CoordinatorDelta) {
        match delta {
            CoordinatorDelta::Started { incarnation } => self.incarnation = *incarnation,
            CoordinatorDelta::Committed {
                txn, participants, ..
            } => {
                self.commits.insert(*txn, participants.clone());
            }
            CoordinatorDelta::Forgotten { txn } => {
                self.commits.remove(txn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::message::{Msg, Vote};

    /// Only what tidies up after a durable decision may wait for a later
    /// sync: never a vote's save, a decision, a refusal or a new life.
    #[test]
    fn bookkeeping_is_what_follows_a_durable_decision() {
        let txn = TxnId::new(NodeId(1), 1, 0).expect("a valid id");
        let coordinator = NodeId(1);
        let tidy = [
            Delta::Coordinator(CoordinatorDelta::Forgotten { txn }),
            Delta::Participant(ParticipantDelta::Decided {
                txn,
                outcome: Outcome::Commit,
            }),
            Delta::Participant(ParticipantDelta::Finished {
                coordinator,
                below: txn,
            }),
        ];
        let urgent = [
            Delta::Coordinator(CoordinatorDelta::Started { incarnation: 2 }),
            Delta::Coordinator(CoordinatorDelta::Committed {
                txn,
                participants: BTreeSet::from([coordinator]),
                origin: None,
            }),
            Delta::Participant(ParticipantDelta::Prepared {
                txn,
                reads: BTreeSet::new(),
                writes: WriteSet::new().into(),
                peers: Vec::new(),
            }),
            Delta::Participant(ParticipantDelta::Refused {
                txn,
                refusal: Refusal::Changed {
                    key: Key::from_static(b"k"),
                },
            }),
        ];
        assert!(tidy.iter().all(Delta::is_bookkeeping));
        assert!(!urgent.iter().any(Delta::is_bookkeeping));
        let ack = Msg::Ack {
            txn,
            outcome: Outcome::Commit,
        };
        assert!(ack.is_bookkeeping());
        for msg in [
            Msg::Vote {
                txn,
                vote: Vote::Yes,
            },
            Msg::Outcome {
                txn,
                outcome: Outcome::Commit,
            },
            Msg::Query { txn },
        ] {
            assert!(!msg.is_bookkeeping(), "{msg:?}");
        }
    }
}
